//! The SQL side: schema, migrations, and every query the tier runs.

use std::collections::HashSet;

use ghcache_core::policy::{Resource, Resources};
use sqlx::{Row, SqliteConnection};

use crate::stats::{Counts, Stats};

/// Migrations in order: entry `i` brings `PRAGMA user_version` from `i` to `i + 1`.
/// To change the schema, append a step; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: entries and counters.
    "CREATE TABLE entries (
        key BLOB PRIMARY KEY NOT NULL,
        scope_id BLOB NOT NULL,
        repo TEXT NOT NULL,
        manifest BLOB NOT NULL,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        last_used_ms INTEGER NOT NULL,
        has_cid INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX entries_repo ON entries (repo);
    CREATE INDEX entries_last_used ON entries (last_used_ms);
    CREATE INDEX entries_digest ON entries (digest, size);
    CREATE TABLE stats (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        requests INTEGER NOT NULL DEFAULT 0,
        hits_local INTEGER NOT NULL DEFAULT 0,
        hits_p2p INTEGER NOT NULL DEFAULT 0,
        hits_ipfs INTEGER NOT NULL DEFAULT 0,
        misses INTEGER NOT NULL DEFAULT 0,
        bypassed INTEGER NOT NULL DEFAULT 0,
        revalidated INTEGER NOT NULL DEFAULT 0,
        stale_served INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        corrupt INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL
    );",
    // 2: pending-counter files already folded into `stats` (see the journal module).
    "CREATE TABLE folded (
        name TEXT PRIMARY KEY NOT NULL,
        at_ms INTEGER NOT NULL
    );",
    // 3: the fence mark each answer was fetched under (see the fence module); rows from before
    // have 0, which no fence reads, so they are fetched again.
    // And the resource the answer shows (`policy::Resource` codes; 7 is "other").
    "ALTER TABLE entries ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE entries ADD COLUMN resource INTEGER NOT NULL DEFAULT 7;",
    // 4: hits by tier name, so that a new tier is counted without a new column; the counts of
    // the columns that stood for the three tiers of the time move over.
    "CREATE TABLE hits (
        tier TEXT PRIMARY KEY NOT NULL,
        count INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO hits (tier, count)
        SELECT 'local', hits_local FROM stats WHERE id = 1 AND hits_local <> 0
        UNION ALL SELECT 'p2p', hits_p2p FROM stats WHERE id = 1 AND hits_p2p <> 0
        UNION ALL SELECT 'ipfs', hits_ipfs FROM stats WHERE id = 1 AND hits_ipfs <> 0;
    ALTER TABLE stats DROP COLUMN hits_local;
    ALTER TABLE stats DROP COLUMN hits_p2p;
    ALTER TABLE stats DROP COLUMN hits_ipfs;",
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What [`migrate`] found.
pub(crate) enum Schema {
    /// Current (possibly after migrating).
    Current,
    /// Written by a newer build.
    Newer(i64),
}

pub(crate) async fn user_version(conn: &mut SqliteConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(conn)
        .await
}

/// Brings the schema to [`SCHEMA_VERSION`]. Costs one PRAGMA read when it is already current.
pub(crate) fn migrate(conn: &mut SqliteConnection, now_ms: u64) -> Boxed<'_, Schema> {
    Box::pin(migrate_inner(conn, now_ms))
}

/// A boxed future: checking `Send` here, at concrete lifetimes, sidesteps the compiler's
/// higher-ranked lifetime limits that sqlx's executor futures otherwise hit in callers.
pub(crate) type Boxed<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = sqlx::Result<T>> + Send + 'a>>;

async fn migrate_inner(conn: &mut SqliteConnection, now_ms: u64) -> sqlx::Result<Schema> {
    let found = user_version(conn).await?;
    if found == SCHEMA_VERSION {
        return Ok(Schema::Current);
    }
    if found > SCHEMA_VERSION {
        return Ok(Schema::Newer(found));
    }
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    // Another process may have migrated while we waited for the write lock.
    let found = user_version(&mut tx).await?;
    if found > SCHEMA_VERSION {
        return Ok(Schema::Newer(found));
    }
    let mut step = usize::try_from(found).unwrap_or(0);
    while let Some(sql) = MIGRATIONS.get(step) {
        sqlx::Executor::execute(&mut *tx, *sql).await?;
        step += 1;
    }
    sqlx::query("INSERT OR IGNORE INTO stats (id, created_at_ms) VALUES (1, ?)")
        .bind(to_i64(now_ms))
        .execute(&mut *tx)
        .await?;
    // PRAGMA takes no bound parameters; the value is our own constant.
    let set_version = format!("PRAGMA user_version = {SCHEMA_VERSION}");
    sqlx::Executor::execute(&mut *tx, set_version.as_str()).await?;
    tx.commit().await?;
    Ok(Schema::Current)
}

/// An index row as stored.
pub(crate) struct Stored {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub last_used_ms: i64,
    pub repo: String,
    pub fence: u64,
    pub created_at_ms: i64,
    pub resource: Resource,
}

pub(crate) async fn lookup(
    conn: &mut SqliteConnection,
    key: &[u8],
) -> sqlx::Result<Option<Stored>> {
    let row = sqlx::query(
        "SELECT manifest, digest, last_used_ms, repo, fence, created_at_ms, resource FROM entries
         WHERE key = ?",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Stored {
            manifest: row.try_get(0)?,
            digest: row.try_get(1)?,
            last_used_ms: row.try_get(2)?,
            repo: row.try_get(3)?,
            fence: row.try_get::<i64, _>(4)? as u64,
            created_at_ms: row.try_get(5)?,
            // A code this build does not know is "other": covered by every write.
            resource: u8::try_from(row.try_get::<i64, _>(6)?)
                .ok()
                .and_then(Resource::from_code)
                .unwrap_or(Resource::Other),
        })
    })
    .transpose()
}

pub(crate) async fn digest_of(
    conn: &mut SqliteConnection,
    key: &[u8],
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT digest FROM entries WHERE key = ?")
        .bind(key)
        .fetch_optional(conn)
        .await
}

pub(crate) async fn touch(
    conn: &mut SqliteConnection,
    key: &[u8],
    now_ms: u64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE entries SET last_used_ms = ? WHERE key = ?")
        .bind(to_i64(now_ms))
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}

/// Records a use at `at_ms` unless the row knows of a later one.
pub(crate) async fn touch_later(
    conn: &mut SqliteConnection,
    key: &[u8],
    at_ms: u64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE entries SET last_used_ms = MAX(last_used_ms, ?) WHERE key = ?")
        .bind(to_i64(at_ms))
        .bind(key)
        .execute(conn)
        .await
        .map(drop)
}

/// A row to insert.
pub(crate) struct NewRow<'a> {
    pub key: &'a [u8],
    pub scope_id: &'a [u8],
    pub repo: &'a str,
    pub manifest: &'a [u8],
    pub digest: &'a str,
    pub size: u64,
    pub created_at_ms: u64,
    pub now_ms: u64,
    pub has_cid: bool,
    /// The fence mark the answer was fetched under.
    pub fence: u64,
    /// What the answer shows.
    pub resource: Resource,
}

pub(crate) async fn upsert(conn: &mut SqliteConnection, row: &NewRow<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO entries
            (key, scope_id, repo, manifest, digest, size, created_at_ms, last_used_ms, has_cid,
             fence, resource)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(row.key)
    .bind(row.scope_id)
    .bind(row.repo)
    .bind(row.manifest)
    .bind(row.digest)
    .bind(to_i64(row.size))
    .bind(to_i64(row.created_at_ms))
    .bind(to_i64(row.now_ms))
    .bind(row.has_cid)
    // The mark's bits as SQLite's signed integer; read back with the same cast.
    .bind(row.fence as i64)
    .bind(i64::from(row.resource.code()))
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes one key if its digest is still `digest` (it was not replaced meanwhile).
pub(crate) async fn delete_if(
    conn: &mut SqliteConnection,
    key: &[u8],
    digest: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM entries WHERE key = ? AND digest = ?")
        .bind(key)
        .bind(digest)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Which rows to delete.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Which<'a> {
    Key(&'a [u8]),
    Repo(&'a str),
    /// The rows about these resources of a repository and its unclassified ones.
    Resources(&'a str, Resources),
    All,
}

/// The value bound to a [`condition`]'s one parameter.
enum Bound<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
    Nothing,
}

/// The rows `which` names, as an SQL condition with at most one parameter.
fn condition(which: Which<'_>) -> (String, Bound<'_>) {
    match which {
        Which::Key(key) => ("key = ?".into(), Bound::Bytes(key)),
        // And every search, whatever its repository, as with every write (see `Selector`).
        // Our own small integers, not input: safe to write into the statements.
        Which::Repo(repo) => (
            format!("repo = ? OR resource = {}", Resource::Search.code()),
            Bound::Text(repo),
        ),
        Which::Resources(repo, resources) => {
            let codes: Vec<String> = resources
                .iter()
                .chain([Resource::Other])
                .map(|r| r.code().to_string())
                .collect();
            let sql = format!(
                "(repo = ? AND resource IN ({})) OR resource = {}",
                codes.join(", "),
                Resource::Search.code()
            );
            (sql, Bound::Text(repo))
        }
        Which::All => ("1".into(), Bound::Nothing),
    }
}

/// A deleted row.
pub(crate) struct Deleted {
    pub key: Vec<u8>,
    pub digest: String,
}

/// Deletes rows; returns the key and digest of each deleted row.
pub(crate) async fn delete(
    conn: &mut SqliteConnection,
    which: Which<'_>,
) -> sqlx::Result<Vec<Deleted>> {
    let (condition, bound) = condition(which);
    let sql = format!("DELETE FROM entries WHERE {condition} RETURNING key, digest");
    let query = sqlx::query_as::<_, (Vec<u8>, String)>(&sql);
    let query = match bound {
        Bound::Bytes(b) => query.bind(b),
        Bound::Text(t) => query.bind(t),
        Bound::Nothing => query,
    };
    let rows = query.fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(key, digest)| Deleted { key, digest })
        .collect())
}

/// Keys of every row.
pub(crate) async fn all_keys(conn: &mut SqliteConnection) -> sqlx::Result<HashSet<[u8; 32]>> {
    let keys: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key FROM entries")
        .fetch_all(conn)
        .await?;
    Ok(keys
        .into_iter()
        .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .collect())
}

/// How many rows `which` names.
pub(crate) async fn count(conn: &mut SqliteConnection, which: Which<'_>) -> sqlx::Result<u64> {
    let (condition, bound) = condition(which);
    let sql = format!("SELECT COUNT(*) FROM entries WHERE {condition}");
    let query = sqlx::query_scalar(&sql);
    let query = match bound {
        Bound::Bytes(b) => query.bind(b),
        Bound::Text(t) => query.bind(t),
        Bound::Nothing => query,
    };
    query.fetch_one(conn).await.map(to_u64)
}

pub(crate) async fn referenced(conn: &mut SqliteConnection, digest: &str) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM entries WHERE digest = ? LIMIT 1")
        .bind(digest)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

pub(crate) async fn all_digests(conn: &mut SqliteConnection) -> sqlx::Result<HashSet<String>> {
    let digests: Vec<String> = sqlx::query_scalar("SELECT DISTINCT digest FROM entries")
        .fetch_all(conn)
        .await?;
    Ok(digests.into_iter().collect())
}

/// Bytes of distinct bodies.
pub(crate) async fn total_bytes(conn: &mut SqliteConnection) -> sqlx::Result<u64> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM entries GROUP BY digest)",
    )
    .fetch_one(conn)
    .await?;
    Ok(to_u64(total))
}

/// A candidate for eviction.
pub(crate) struct Victim {
    pub key: Vec<u8>,
    pub digest: String,
    pub size: u64,
}

/// The least recently used entries, except `spare`.
pub(crate) async fn oldest(
    conn: &mut SqliteConnection,
    spare: &[u8],
    limit: i64,
) -> sqlx::Result<Vec<Victim>> {
    let rows = sqlx::query(
        "SELECT key, digest, size FROM entries WHERE key <> ? ORDER BY last_used_ms ASC LIMIT ?",
    )
    .bind(spare)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Victim {
                key: row.try_get(0)?,
                digest: row.try_get(1)?,
                size: to_u64(row.try_get(2)?),
            })
        })
        .collect()
}

/// Keys of stored entries, most recently used first.
pub(crate) async fn keys(
    conn: &mut SqliteConnection,
    limit: u32,
) -> sqlx::Result<Vec<ghcache_core::CacheKey>> {
    let rows: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT key FROM entries ORDER BY last_used_ms DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .map(ghcache_core::CacheKey)
        .collect())
}

/// Whether a claimed counter file was already folded.
pub(crate) async fn was_folded(conn: &mut SqliteConnection, name: &str) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM folded WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Records that a claimed counter file was folded, and forgets records older than a week (its
/// file is long gone by then).
pub(crate) async fn mark_folded(
    conn: &mut SqliteConnection,
    name: &str,
    now_ms: u64,
) -> sqlx::Result<()> {
    let now = to_i64(now_ms);
    sqlx::query("INSERT OR IGNORE INTO folded (name, at_ms) VALUES (?, ?)")
        .bind(name)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM folded WHERE at_ms < ?")
        .bind(now - 7 * 24 * 3600 * 1000)
        .execute(conn)
        .await
        .map(drop)
}

/// Adds `requests` and a batch of counts to the counters.
pub(crate) async fn add_counts(
    conn: &mut SqliteConnection,
    requests: i64,
    c: &Counts,
) -> sqlx::Result<()> {
    for (tier, n) in &c.hits {
        sqlx::query(
            "INSERT INTO hits (tier, count) VALUES (?, ?)
             ON CONFLICT (tier) DO UPDATE SET count = count + excluded.count",
        )
        .bind(tier)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE stats SET requests = requests + ?,
            misses = misses + ?, bypassed = bypassed + ?, revalidated = revalidated + ?,
            stale_served = stale_served + ?, errors = errors + ?, corrupt = corrupt + ?
         WHERE id = 1",
    )
    .bind(requests)
    .bind(c.misses)
    .bind(c.bypassed)
    .bind(c.revalidated)
    .bind(c.stale_served)
    .bind(c.errors)
    .bind(c.corrupt)
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn stats(conn: &mut SqliteConnection) -> sqlx::Result<Stats> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let row = sqlx::query(
        "SELECT requests, misses, bypassed, revalidated, stale_served, errors, corrupt,
            created_at_ms FROM stats WHERE id = 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let hits: Vec<(String, i64)> = sqlx::query_as("SELECT tier, count FROM hits")
        .fetch_all(&mut *tx)
        .await?;
    let (entries, ipfs_entries): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(has_cid), 0) FROM entries")
            .fetch_one(&mut *tx)
            .await?;
    let bytes = total_bytes(&mut tx).await?;
    tx.commit().await?;
    let mut stats = Stats {
        hits: hits
            .into_iter()
            .map(|(tier, n)| (tier, to_u64(n)))
            .collect(),
        entries: to_u64(entries),
        bytes,
        ipfs_entries: to_u64(ipfs_entries),
        ..Stats::default()
    };
    if let Some(row) = row {
        let get = |i: usize| row.try_get::<i64, _>(i).map(to_u64);
        stats.requests = get(0)?;
        stats.misses = get(1)?;
        stats.bypassed = get(2)?;
        stats.revalidated = get(3)?;
        stats.stale_served = get(4)?;
        stats.errors = get(5)?;
        stats.corrupt = get(6)?;
        stats.created_at_ms = get(7)?;
    }
    Ok(stats)
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_hits_of_an_index_from_before_hits_by_name_move_to_their_tiers() -> sqlx::Result<()>
    {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await?;
        // The index as the build before hits by name left it: schema 3, a column per tier.
        for sql in &MIGRATIONS[..3] {
            sqlx::Executor::execute(&mut conn, *sql).await?;
        }
        sqlx::query(
            "INSERT INTO stats (id, requests, hits_local, hits_p2p, hits_ipfs, misses,
                created_at_ms) VALUES (1, 9, 5, 0, 3, 1, 42)",
        )
        .execute(&mut conn)
        .await?;
        sqlx::Executor::execute(&mut conn, "PRAGMA user_version = 3").await?;

        assert!(matches!(migrate(&mut conn, 1).await?, Schema::Current));
        let mut more = Counts::default();
        more.add_hits("local", 1);
        more.add_hits("http", 2);
        add_counts(&mut conn, 1, &more).await?;
        let read = stats(&mut conn).await?;
        let hits: Vec<(&str, u64)> = read.hits.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(hits, vec![("http", 2), ("ipfs", 3), ("local", 6)]);
        assert_eq!(
            (read.requests, read.misses, read.created_at_ms),
            (10, 1, 42)
        );
        conn.close().await
    }
}
