//! What a daemon tells its commands it hears, as they read it: the file, its times and when
//! it goes.

use std::os::unix::fs::PermissionsExt as _;

use ghcache_core::policy::Resource;

use super::*;

fn scope(n: u8) -> ScopeId {
    ScopeId([n; 32])
}

/// A daemon's state in a fresh cache dir, with the directory made as the daemon makes it.
fn hearing() -> (tempfile::TempDir, Hearing) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node_dir = dir.path().join(ghcache_core::cache_dir::NODE_DIR);
    std::fs::create_dir_all(&node_dir).unwrap_or_else(|e| panic!("{e}"));
    let hearing = Hearing::start(dir.path(), BTreeMap::new());
    (dir, hearing)
}

/// The report its commands read now; `None` when there is no file.
fn report(dir: &tempfile::TempDir) -> Option<Report> {
    let path = dir
        .path()
        .join(ghcache_core::cache_dir::NODE_DIR)
        .join(HEARD_FILE);
    let bytes = std::fs::read(path).ok()?;
    Some(Report::decode(&bytes).unwrap_or_else(|e| panic!("{e}")))
}

fn follow(repo: &str, since_ms: u64) -> Cover {
    Cover {
        kind: SourceKind::Follow,
        repo: Some(repo.into()),
        resources: ghcache_core::policy::Resources::of(&[Resource::Issues]),
        since_ms,
    }
}

fn joined_all(_: &ScopeId) -> Option<u64> {
    Some(100)
}

fn known<'a>(own: Vec<Cover>, gap: bool, joined: &'a dyn Fn(&ScopeId) -> Option<u64>) -> Known<'a> {
    Known {
        own,
        gap,
        in_touch_since_ms: 50,
        joined_since: joined,
    }
}

#[test]
fn own_sources_hold_for_every_scope_and_a_gap_removes_the_file_at_once() {
    let (dir, mut hearing) = hearing();
    let now = Instant::now();
    let own = vec![Cover::everything(SourceKind::Webhook, 10)];
    assert!(hearing.refresh(&known(own.clone(), false, &joined_all), now));
    let read = report(&dir).unwrap_or_else(|| panic!("a report is written"));
    let in_30s = now_ms() + REPORT_VALID.as_millis() as u64;
    assert!(read.valid_until_ms <= in_30s && read.valid_until_ms + 5_000 > in_30s);
    assert_eq!(
        read.scopes,
        vec![Covered {
            scope: None,
            covers: vec![Cover::everything(SourceKind::Webhook, 50)],
        }],
        "heard since the later of the source's start and the node's last gap"
    );
    let path = dir.path().join("p2p").join(HEARD_FILE);
    let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    assert!(
        !hearing.refresh(&known(own.clone(), false, &joined_all), now),
        "unchanged and not due: not rewritten"
    );
    assert!(hearing.refresh(
        &known(own.clone(), false, &joined_all),
        now + REPORT_REFRESH
    ));

    assert!(hearing.refresh(&known(own.clone(), true, &joined_all), now + REPORT_REFRESH));
    assert_eq!(report(&dir), None, "a node with a gap tells of nothing");
    assert!(hearing.status(&known(own, true, &joined_all)).is_empty());
}

#[test]
fn a_peer_vouch_holds_from_the_latest_of_its_times_and_goes_with_its_connection() {
    let (dir, mut hearing) = hearing();
    let now = Instant::now();
    let peer = PeerId::random();
    hearing.connected(peer, 400);
    let vouch = Vouch {
        covers: vec![
            Cover::everything(SourceKind::Webhook, 300),
            follow("o/r", 900),
        ],
        scopes: vec![(scope(1), 200), (scope(2), 200)],
    };
    hearing.vouched(peer, vouch, now);
    // This node follows scope 1 since 350; not scope 2.
    let joined = |s: &ScopeId| (*s == scope(1)).then_some(350);
    assert!(hearing.refresh(&known(Vec::new(), false, &joined), now));
    let read = report(&dir).unwrap_or_else(|| panic!("written"));
    assert_eq!(read.scopes.len(), 1, "{read:?}");
    assert_eq!(read.scopes[0].scope, Some(scope(1)));
    let mut since: Vec<(Option<String>, u64)> = read.scopes[0]
        .covers
        .iter()
        .map(|c| (c.repo.clone(), c.since_ms))
        .collect();
    since.sort();
    assert_eq!(
        since,
        vec![(None, 400), (Some("o/r".into()), 900)],
        "connected at 400: the webhook's since 300 holds here from 400"
    );
    assert_eq!(hearing.vouching(), vec![peer]);

    assert!(hearing.gone(&peer));
    assert!(hearing.refresh(&known(Vec::new(), false, &joined), now));
    assert_eq!(report(&dir), None, "the peer that vouched is gone");
}

#[test]
fn a_vouch_not_said_again_lapses_and_an_empty_one_takes_it_back() {
    let (dir, mut hearing) = hearing();
    let now = Instant::now();
    let peer = PeerId::random();
    hearing.connected(peer, 0);
    let vouch = Vouch {
        covers: vec![Cover::everything(SourceKind::Webhook, 0)],
        scopes: vec![(scope(1), 0)],
    };
    hearing.vouched(peer, vouch.clone(), now);
    assert!(hearing.refresh(&known(Vec::new(), false, &joined_all), now));
    assert!(report(&dir).is_some());
    hearing.refresh(&known(Vec::new(), false, &joined_all), now + VOUCH_FOR);
    assert_eq!(report(&dir), None, "not said again within {VOUCH_FOR:?}");

    hearing.vouched(peer, vouch, now + VOUCH_FOR);
    hearing.refresh(&known(Vec::new(), false, &joined_all), now + VOUCH_FOR);
    assert!(report(&dir).is_some());
    hearing.vouched(peer, Vouch::default(), now + VOUCH_FOR);
    hearing.refresh(&known(Vec::new(), false, &joined_all), now + VOUCH_FOR);
    assert_eq!(report(&dir), None, "its source paused");

    let stranger = PeerId::random();
    hearing.vouched(
        stranger,
        Vouch {
            covers: vec![Cover::everything(SourceKind::Webhook, 0)],
            scopes: vec![(scope(1), 0)],
        },
        now,
    );
    assert!(hearing.vouching().is_empty(), "a peer not connected");
}

#[test]
fn a_stopping_node_removes_its_report_and_a_new_one_starts_without() {
    let (dir, mut hearing) = hearing();
    let own = vec![follow("o/r", 10)];
    hearing.refresh(&known(own, false, &joined_all), Instant::now());
    assert!(report(&dir).is_some());
    hearing.stop();
    assert_eq!(report(&dir), None);

    // A daemon killed leaves its file; the next one starts by removing it.
    let own = vec![follow("o/r", 10)];
    hearing.refresh(&known(own, false, &joined_all), Instant::now());
    assert!(report(&dir).is_some());
    let _next = Hearing::start(dir.path(), BTreeMap::new());
    assert_eq!(report(&dir), None);
}
