//! The tier's own tests, of what only the tier's insides can set up (a connection left in a
//! transaction); the tier's behaviour is tested from outside in `tests/`.

use ghcache_core::testkit::sample_entry;

use super::*;

/// A transaction whose `BEGIN` went through but whose `Transaction` never came back (the
/// future was dropped in between) is what `forget` leaves too: stores go on working.
#[tokio::test(flavor = "current_thread")]
async fn a_transaction_abandoned_mid_begin_does_not_stop_later_stores(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let tier = Tier::open(Config::new(dir.path())).await?;
    {
        let mut conn = tier.conn.lock().await;
        let abandoned = conn.begin_with("BEGIN IMMEDIATE").await?;
        std::mem::forget(abandoned);
        assert!(conn.is_in_transaction());
    }
    let entry = sample_entry(1, "o/r", b"stored after all\n");
    tier.put(&entry).await?;
    assert_eq!(
        tier.get(&entry.manifest.key).await?,
        Lookup::Hit(entry.clone())
    );
    tier.invalidate(&Selector::Repo("o/r".into())).await?;
    assert_eq!(tier.get(&entry.manifest.key).await?, Lookup::Miss);
    Ok(())
}
