//! The adapter CLI processes use: a [`CacheTier`] that asks the local daemon.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::budget::{BudgetShare, News};
use ghcache_core::{
    Body, CacheKey, CacheTier, Digest, Entry, Lookup, Manifest, Mark, ScopeId, Selector, TierError,
};
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use crate::error::Error;
use crate::socket;
use crate::status::Status;
use crate::wire::{self, Control, Invalidation, Reply};

/// The p2p tier's name in counters, debug lines and errors.
pub const NAME: &str = "p2p";
/// Of a lookup's deadline, what the daemon leaves for its reply over the socket (a round trip
/// well under a millisecond; the entry it found is stored after the reply): it searches the
/// swarm for the rest, so that its answer, a hit or a miss, arrives within the deadline instead
/// of being cut off by it and counted as a failure.
pub(crate) const REPLY_ALLOWANCE: Duration = Duration::from_millis(20);
/// How long a publish, an invalidation or budget news may take: the daemon only queues them.
const SHORT: Duration = Duration::from_secs(1);
/// How long the daemon may take to store an entry for the CLI: a store through its open index
/// takes a few milliseconds; past this the CLI stores the entry itself.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a directory question may take: the daemon answers from memory.
const MANIFEST_TIMEOUT: Duration = Duration::from_millis(100);
/// How long `status` waits.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// The p2p tier as seen from a CLI process: a connection to this cache dir's daemon.
#[derive(Debug)]
pub struct Tier {
    socket: PathBuf,
    scope_id: ScopeId,
    deadline: Duration,
    // One request at a time per connection: replies come back in order.
    conn: Mutex<Option<UnixStream>>,
    /// The entries the daemon handed over in this process's lookups (key, body, date): it
    /// stores those itself once its reply is sent. Not by key alone: an entry handed over and
    /// refused (one from before a job's triggering event) leaves the key to GitHub's answer,
    /// which is this process's to store.
    handed_over: std::sync::Mutex<HashSet<(CacheKey, Digest, u64)>>,
}

impl Tier {
    /// Connects to the daemon of cache dir `dir`, for entries of scope `scope_id`; lookups take
    /// at most `deadline` (the CLI's `GH_CACHE_P2P_DEADLINE`, by default
    /// [`P2P_DEADLINE`](ghcache_core::layers::P2P_DEADLINE); the chain bounds the whole call by
    /// the same number with a [`Deadline`](ghcache_core::layers::Deadline) layer).
    ///
    /// Returns `Ok(None)` at once, after one failed connect, when no daemon runs: a CLI without
    /// a daemon pays no timeout.
    ///
    /// # Errors
    /// [`Error::Untrusted`] when the socket is not one to talk to: its directory is another
    /// user's or writable by others, or another user's process listens on it. Nothing was sent;
    /// the caller goes on without the swarm and tells the user why.
    pub async fn connect(
        dir: &Path,
        scope_id: ScopeId,
        deadline: Duration,
    ) -> Result<Option<Tier>, Error> {
        let socket = socket::path(dir);
        let stream = match socket::connect(&socket).await {
            Ok(stream) => stream,
            Err(untrusted @ Error::Untrusted { .. }) => return Err(untrusted),
            Err(_) => return Ok(None),
        };
        Ok(Some(Tier {
            socket,
            scope_id,
            deadline,
            conn: Mutex::new(Some(stream)),
            handed_over: std::sync::Mutex::default(),
        }))
    }

    /// Sends `request` and waits up to `limit` for the reply.
    async fn call(&self, request: Control, limit: Duration) -> Result<Reply, TierError> {
        let unavailable = |reason: String| TierError::Unavailable { tier: NAME, reason };
        let mut conn = self.conn.lock().await;
        // The stream is out of `conn` while a request is in flight: if this future is dropped
        // (a caller's deadline) or times out, the stream goes with it, and the next call
        // reconnects instead of reading this request's late reply as its own.
        let taken = conn.take();
        let payload = request.encode();
        let exchange = async {
            let mut stream = match taken {
                Some(stream) => stream,
                // The daemon restarted since the last call: one reconnect, no retry loop.
                None => reconnect(&self.socket).await?,
            };
            match ask(&mut stream, &payload).await {
                Ok(Some(frame)) => return Ok((frame, stream)),
                Ok(None) => {}
                Err(e) if closed(&e) => {}
                Err(e) => return Err(e),
            }
            // The daemon closed the connection without answering: it closes one that idled
            // past its deadline, or the one idle longest when all its slots are taken, and in
            // either case had not started on this request. Once more on a new connection.
            let mut stream = reconnect(&self.socket).await?;
            let frame = ask(&mut stream, &payload)
                .await?
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            Ok::<_, std::io::Error>((frame, stream))
        };
        let frame = match tokio::time::timeout(limit, exchange).await {
            Ok(Ok((frame, stream))) => {
                *conn = Some(stream);
                frame
            }
            Ok(Err(e)) => return Err(unavailable(format!("daemon socket: {e}"))),
            Err(_) => {
                return Err(TierError::Deadline {
                    tier: NAME,
                    deadline: limit,
                })
            }
        };
        match Reply::decode(&frame) {
            Ok(Reply::Error(text)) => Err(unavailable(text)),
            Ok(reply) => Ok(reply),
            Err(e) => {
                *conn = None;
                Err(unavailable(e.to_string()))
            }
        }
    }
}

/// How long, in the wire's milliseconds, the daemon may search the swarm for a lookup that must
/// be answered within `deadline`: all of it but [`REPLY_ALLOWANCE`], and at least 1 ms (0 would
/// ask for the daemon's default).
pub(crate) fn search_ms(deadline: Duration) -> u32 {
    let search = deadline.saturating_sub(REPLY_ALLOWANCE).as_millis();
    u32::try_from(search).unwrap_or(u32::MAX).max(1)
}

/// A new connection to the daemon, checked as the first one was: whatever listens on the
/// socket now may not be the daemon that did.
async fn reconnect(socket: &Path) -> std::io::Result<UnixStream> {
    socket::connect(socket).await.map_err(|e| match e {
        Error::Socket { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    })
}

/// Sends one request frame and reads its reply; `Ok(None)` when the daemon closed the
/// connection before replying.
async fn ask(stream: &mut UnixStream, payload: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    wire::write_frame(stream, payload).await?;
    wire::read_frame(stream, wire::MAX_CONTROL_FRAME).await
}

/// Is `e` what writing to or reading from a connection the daemon closed gives?
fn closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    matches!(e.kind(), BrokenPipe | ConnectionReset | UnexpectedEof)
}

impl Tier {
    /// The manifest the swarm announced for `key` in this tier's scope, if the daemon knows one.
    /// It was checked (signature, trust, scope, freshness) when it arrived; the caller checks it
    /// again before using it. `None` on any failure: this is only a hint where to look.
    pub async fn announced_manifest(&self, key: &CacheKey) -> Option<Manifest> {
        let request = Control::Manifest {
            key: *key,
            scope_id: self.scope_id,
        };
        match self.call(request, MANIFEST_TIMEOUT).await {
            Ok(Reply::Manifest(bytes)) => Manifest::decode(&bytes)
                .ok()
                .filter(|m| m.key == *key && m.scope_id == self.scope_id),
            _ => None,
        }
    }

    /// Did the daemon hand the entry `manifest` describes to this process in a lookup? It
    /// stores that entry in this machine's cache itself, once its reply is sent (a daemon of an
    /// earlier release, before it): storing it again would only make the command wait for the
    /// disk. Another entry of the same key (GitHub's answer after the handed one was refused)
    /// is not the one handed over.
    pub fn handed_over(&self, manifest: &Manifest) -> bool {
        self.handed_over
            .lock()
            .is_ok_and(|handed| handed.contains(&handed_key(manifest)))
    }

    /// Has the daemon store `entry` in this machine's cache (the local tier of the same cache
    /// dir) under fence mark `mark`, as [`CacheTier::put_fenced`] (or [`CacheTier::put`] without
    /// a mark) would: the daemon's index is open already, where the CLI would open its own
    /// for one store. The daemon reads the same fence and applies the same checks.
    ///
    /// # Errors
    /// The daemon could not store it (an entry too large for a control frame, an old daemon, a
    /// read-only or full disk, a timeout): the caller stores it itself, and learns the reason
    /// there.
    pub async fn store(&self, entry: &Entry, mark: Option<Mark>) -> Result<(), TierError> {
        let manifest = entry.manifest.encode();
        let body = entry.body.encode();
        if manifest.len() > wire::MAX_MANIFEST || body.len() > wire::MAX_BODY {
            return Err(TierError::Unavailable {
                tier: NAME,
                reason: "too large for the daemon's socket".into(),
            });
        }
        let request = Control::Store {
            manifest,
            body,
            mark: mark.map(|m| m.0),
        };
        match self.call(request, STORE_TIMEOUT).await? {
            Reply::Ok => Ok(()),
            other => Err(TierError::Unavailable {
                tier: NAME,
                reason: format!("the daemon did not store it: {other:?}"),
            }),
        }
    }
}

#[async_trait]
impl CacheTier for Tier {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Asks the daemon to find `key` among the peers of this tier's scope.
    ///
    /// # Errors
    /// [`TierError::Deadline`] when the daemon does not answer within the deadline,
    /// [`TierError::Corrupt`] when it answers with an entry that fails its checks.
    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        let request = Control::Get {
            key: *key,
            scope_id: self.scope_id,
            deadline_ms: search_ms(self.deadline),
        };
        match self.call(request, self.deadline).await? {
            Reply::Hit { manifest, body } => {
                let corrupt = |reason: String| TierError::Corrupt { tier: NAME, reason };
                let manifest = Manifest::decode(&manifest).map_err(|e| corrupt(e.to_string()))?;
                let body = Body::decode(&body).map_err(|e| corrupt(e.to_string()))?;
                let entry = Entry { manifest, body };
                if entry.manifest.key != *key || entry.manifest.scope_id != self.scope_id {
                    return Err(corrupt("daemon answered with another entry".into()));
                }
                if !entry.verify_body() {
                    return Err(corrupt("body does not match its digest".into()));
                }
                if let Ok(mut handed) = self.handed_over.lock() {
                    handed.insert(handed_key(&entry.manifest));
                }
                Ok(Lookup::Hit(entry))
            }
            Reply::Miss => Ok(Lookup::Miss),
            other => Err(TierError::Unavailable {
                tier: NAME,
                reason: format!("unexpected reply to get: {other:?}"),
            }),
        }
    }

    /// Hands an entry fetched from GitHub to the daemon, which signs, announces and provides it.
    /// The entry must already be in the local store: peers are served from there.
    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        let request = Control::Publish {
            manifest: entry.manifest.encode(),
            body: entry.body.encode(),
        };
        match self.call(request, SHORT).await? {
            Reply::Ok => Ok(()),
            other => Err(TierError::Unavailable {
                tier: NAME,
                reason: format!("unexpected reply to publish: {other:?}"),
            }),
        }
    }

    /// Tells the scope's peers that a repository's entries are out of date. Drops nothing here
    /// (returns 0): peers drop theirs when the message reaches them.
    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.invalidate_at(selector, ghcache_core::now_ms()).await
    }
}

impl Tier {
    /// [`CacheTier::invalidate`] of a write this machine recorded as issued at `at_ms`: peers
    /// are told that time, so that every machine knows the invalidation by the same
    /// [`ghcache_core::InvalidationId`], and an entry made after it by a peer that saw it is
    /// taken at once.
    ///
    /// # Errors
    /// The daemon could not be told.
    pub async fn invalidate_at(&self, selector: &Selector, at_ms: u64) -> Result<u64, TierError> {
        let Some(invalidation) = Invalidation::of(self.scope_id, selector, at_ms) else {
            return Ok(0);
        };
        let request = Control::Invalidate {
            scope_id: self.scope_id,
            repo: invalidation.repo,
            resources: invalidation.resources,
            at_ms,
        };
        match self.call(request, SHORT).await? {
            Reply::Ok => Ok(0),
            other => Err(TierError::Unavailable {
                tier: NAME,
                reason: format!("unexpected reply to invalidate: {other:?}"),
            }),
        }
    }

    /// Tells the daemon what GitHub said of a principal's rate-limit budget: it merges `news`
    /// into the machine's book and tells this tier's scope's peers (a new pause at once,
    /// readings at most every few seconds per principal), who merge it into theirs.
    ///
    /// # Errors
    /// The daemon could not be told (a daemon of an earlier release does not know the request).
    pub async fn share_budget(&self, news: &News) -> Result<(), TierError> {
        let request = Control::Budget {
            scope_id: self.scope_id,
            news: news.clone(),
        };
        match self.call(request, SHORT).await? {
            Reply::Ok => Ok(()),
            other => Err(TierError::Unavailable {
                tier: NAME,
                reason: format!("unexpected reply to budget news: {other:?}"),
            }),
        }
    }
}

#[async_trait]
impl BudgetShare for Tier {
    /// [`Tier::share_budget`]; a failure is ignored: each machine still learns from its own
    /// answers.
    async fn share(&self, news: &News) {
        let _ = self.share_budget(news).await;
    }
}

/// The status of cache dir `dir`'s daemon (for `ghcache daemon status` and the metrics).
///
/// # Errors
/// [`Error::NoDaemon`] only when nothing listens on the socket (no socket file, or one left by a
/// daemon that died); [`Error::Unresponsive`] when a daemon holds the socket but accepts no
/// connection or does not answer within 3 s; [`Error::Untrusted`] when the socket is not one
/// to talk to (another user's directory or process); [`Error::Socket`] when the socket cannot
/// be used at all (permissions); [`Error::Protocol`] on a garbled answer or a connection closed
/// without one, or a status that does not read as one.
pub async fn status(dir: &Path) -> Result<Status, Error> {
    use std::io::ErrorKind::{ConnectionRefused, NotFound, WouldBlock};
    let socket = socket::path(dir);
    let unresponsive = |what: String| Error::Unresponsive {
        socket: socket.clone(),
        what,
    };
    let stream = match socket::connect(&socket).await {
        Ok(stream) => stream,
        Err(Error::Socket { source, .. })
            if matches!(source.kind(), NotFound | ConnectionRefused) =>
        {
            return Err(Error::NoDaemon {
                dir: dir.to_owned(),
            })
        }
        // Linux refuses a connection with EAGAIN when the listener's backlog is full: a daemon
        // holds the socket but accepts nobody.
        Err(Error::Socket { source, .. }) if source.kind() == WouldBlock => {
            return Err(unresponsive("accepts no more connections".into()))
        }
        Err(other) => return Err(other),
    };
    let tier = Tier {
        socket: socket.clone(),
        scope_id: ScopeId([0; 32]),
        deadline: Duration::ZERO,
        conn: Mutex::new(Some(stream)),
        handed_over: std::sync::Mutex::default(),
    };
    match tier.call(Control::Status, STATUS_TIMEOUT).await {
        Ok(Reply::Status(json)) => Status::from_json(&json)
            .map_err(|e| Error::Protocol(format!("the daemon sent an unreadable status: {e}"))),
        Ok(other) => Err(Error::Protocol(format!("unexpected reply: {other:?}"))),
        Err(TierError::Deadline { deadline, .. }) => Err(unresponsive(format!(
            "did not answer within {}s",
            deadline.as_secs_f32()
        ))),
        Err(TierError::Unavailable { reason, .. }) => Err(Error::Protocol(reason)),
        Err(other) => Err(Error::Protocol(other.to_string())),
    }
}

/// What tells an entry the daemon handed over from another of the same key.
fn handed_key(manifest: &Manifest) -> (CacheKey, Digest, u64) {
    (manifest.key, manifest.body_digest, manifest.created_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::testkit::sample_entry;
    use tokio::net::UnixListener;

    /// A daemon that answers a `Get` late and everything else at once.
    async fn slow_daemon(dir: &Path) -> std::io::Result<()> {
        let socket = socket::path(dir);
        std::fs::create_dir_all(socket.parent().unwrap_or(dir))?;
        let listener = UnixListener::bind(&socket)?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    while let Ok(Some(frame)) = wire::read_frame(&mut stream, 1 << 20).await {
                        let reply = match Control::decode(&frame) {
                            Ok(Control::Get { .. }) => {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                Reply::Miss
                            }
                            _ => Reply::Ok,
                        };
                        if wire::write_frame(&mut stream, &reply.encode())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Ok(())
    }

    /// A daemon that answers one request per connection and then closes it, as the real one
    /// closes a connection left idle past its deadline or evicted to make room.
    async fn closing_daemon(dir: &Path) -> std::io::Result<()> {
        let socket = socket::path(dir);
        std::fs::create_dir_all(socket.parent().unwrap_or(dir))?;
        let listener = UnixListener::bind(&socket)?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                if let Ok(Some(_)) = wire::read_frame(&mut stream, 1 << 20).await {
                    let _ = wire::write_frame(&mut stream, &Reply::Ok.encode()).await;
                }
            }
        });
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_the_daemon_closed_between_requests_is_reopened() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        closing_daemon(dir.path()).await?;
        let connected = Tier::connect(dir.path(), ScopeId([1; 32]), Duration::from_secs(1)).await;
        let Ok(Some(tier)) = connected else {
            panic!("no connection to the test daemon");
        };
        let entry = sample_entry(1, "o/r", b"x");
        for call in 0..3 {
            let done = tier.put(&entry).await;
            assert!(done.is_ok(), "call {call}: {done:?}");
        }
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn status_tells_a_daemon_that_does_not_answer_from_no_daemon() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let socket = socket::path(dir.path());
        std::fs::create_dir_all(socket.parent().unwrap_or(dir.path()))?;
        // Bound and listening, never accepting: connections wait in the backlog.
        let listener = UnixListener::bind(&socket)?;
        let message = status(dir.path()).await.err().map(|e| e.to_string());
        let message = message.unwrap_or_default();
        assert!(
            message.contains("did not answer within 3s (busy?)"),
            "{message}"
        );
        assert!(message.contains(&socket.display().to_string()), "{message}");
        drop(listener);
        let message = status(dir.path()).await.err().map(|e| e.to_string());
        assert!(
            message
                .unwrap_or_default()
                .contains("no ghcache daemon is running"),
            "a socket nobody listens on is no daemon"
        );
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_dropped_by_its_caller_does_not_answer_the_next_one() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        slow_daemon(dir.path()).await?;
        let tier = Tier::connect(dir.path(), ScopeId([1; 32]), Duration::from_secs(1)).await;
        let Ok(Some(tier)) = tier else {
            panic!("no connection to the test daemon");
        };
        let entry = sample_entry(1, "o/r", b"x");
        // The chain gives up on a slow lookup by dropping it mid-call.
        let dropped =
            tokio::time::timeout(Duration::from_millis(50), tier.get(&entry.manifest.key));
        assert!(dropped.await.is_err(), "the lookup was still waiting");
        // The late `Miss` must not be taken as the answer to the publish.
        assert!(tier.put(&entry).await.is_ok());
        Ok(())
    }
}
