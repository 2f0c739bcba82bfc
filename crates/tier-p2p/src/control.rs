//! The daemon's control socket: the Unix socket CLI processes ask, one reply per request.
//!
//! The socket is private to its owner (0700 directory), so every client is the owner's own
//! process, and a limit per user means nothing. What can go wrong is a client that holds a
//! connection and sends nothing, or part of a frame: the owner's own tooling gone wrong, or an
//! attack test. The rules that keep such clients from locking real ones out:
//!
//! - **Deadlines.** A new connection must start a request within [`FIRST_REQUEST_DEADLINE`]
//!   (a CLI connects just before it asks), a kept one within [`IDLE_DEADLINE`]; a request must
//!   arrive whole within [`FRAME_DEADLINE`] of its first byte, and its reply must be taken within
//!   [`REPLY_DEADLINE`]. A client that misses one is closed.
//! - **A cap, with eviction.** At most [`MAX_CLIENTS`] connections are served. When all are
//!   taken, the newcomer gets the slot of the connection that has been idle longest (then of
//!   the one that has been sending a request longest): a real client is idle only between its
//!   requests, and reconnects once when it finds its connection closed (see `Tier::call`), so
//!   evicting costs it a reconnect, while a client that never asks loses its slot to anyone who
//!   does. A connection with a request being answered is never evicted: the newcomer waits for
//!   one to finish, which the requests' own deadlines bound.
//! - **Memory.** A request's declared length is checked against its kind's cap before anything
//!   is allocated, and large requests draw from one [`FrameBudget`] as their bytes arrive, so
//!   stalled partial frames hold at most [`REQUEST_MEMORY`] between them (see
//!   [`wire::read_request`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ghcache_core::{Body, Entry, Manifest, Mark};
use tokio::io::AsyncReadExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, Notify};
use tokio::time::{timeout, Instant};

use crate::daemon::{Command, Shared};
use crate::fetches::{hold, lookup, Answer};
use crate::log::log;
use crate::sign;
use crate::status::bump;
use crate::tier::REPLY_ALLOWANCE;
use crate::wire::{self, Control, FrameBudget, Reply};

/// Connections served at once. A `ghcache gh` holds one for its whole run (lookup, then the
/// publish after GitHub answered), so this is how many may run at once before idle ones are
/// closed to make room.
const MAX_CLIENTS: usize = 128;
/// How long a new connection may wait before it starts its first request.
const FIRST_REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How long a connection may idle between requests: a CLI's publish follows its lookup after
/// gh has run, which can take a while; past this it reconnects.
const IDLE_DEADLINE: Duration = Duration::from_secs(30);
/// From a request's first byte to its last. Even the largest request (a publish of 8 MiB) takes
/// milliseconds over a Unix socket; a client that needs longer has stalled.
const FRAME_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client may take to read its reply.
const REPLY_DEADLINE: Duration = Duration::from_secs(5);
/// Memory that requests being read may hold between them: two of the largest publishes.
const REQUEST_MEMORY: usize = 2 * wire::MAX_CONTROL_REQUEST;
/// How long a `Get` that names no deadline searches the swarm: as a CLI with the default p2p
/// deadline asks (see `tier::search_ms`).
const DEFAULT_SEARCH: Duration = ghcache_core::layers::P2P_DEADLINE.saturating_sub(REPLY_ALLOWANCE);
/// The longest search a client may ask for: not a deadline of ours but a bound on the work one
/// request can make the daemon do, far above any deadline a CLI is configured with.
const MAX_SEARCH: Duration = Duration::from_secs(10);
/// At most one line per this interval about closed connections: under a flood, the count in
/// `status` tells the rest.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts CLI connections on the control socket, forever.
pub(crate) async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let clients = Arc::new(Clients::default());
    let budget = FrameBudget::new(REQUEST_MEMORY);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log(format_args!("control socket accept failed: {e}"));
                // Out of file descriptors, most likely: do not spin on the error.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(why) = same_user(&stream) {
            log(format_args!("control socket: closed a connection: {why}"));
            continue;
        }
        let ticket = clients.admit(&shared).await;
        tokio::spawn(client(stream, ticket, shared.clone(), budget.clone()));
    }
}

/// Whether the process on the other end of `stream` runs as this daemon's user. The daemon
/// stores what a client hands it and signs it with this machine's identity, for the scope the
/// client names: only the user whose cache and identity these are may ask that (the socket's
/// directory is private too; this holds if its mode is ever loosened, and for root's
/// processes, which pass any mode).
fn same_user(stream: &UnixStream) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(peer) if peer.uid() == me => Ok(()),
        Ok(peer) => Err(format!(
            "the client runs as uid {}, not as this daemon's user (uid {me})",
            peer.uid()
        )),
        Err(e) => Err(format!("cannot tell who the client is: {e}")),
    }
}

/// What a connection is doing, in the order connections are evicted: idle first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Waiting for the first byte of a request.
    Idle,
    /// Reading a request.
    Reading,
    /// Answering a request: never evicted.
    Busy,
}

/// One open connection, as the table sees it.
struct Slot {
    phase: Phase,
    since: Instant,
    /// Dropped to evict: the connection's task sees its receiver complete and closes.
    _evict: oneshot::Sender<()>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Slot>,
}

/// The connections being served. A connection leaves the table when its task ends or when it
/// is evicted; an evicted task closes at its next step, without answering.
#[derive(Default)]
struct Clients {
    table: Mutex<Table>,
    /// Signalled when a connection leaves the table: a newcomer may be waiting for a slot.
    freed: Notify,
    /// When a closed connection was last logged.
    last_drop_log: Mutex<Option<Instant>>,
}

/// Locks `mutex`; what these mutexes guard stays consistent if a holder panicked (each change
/// is one insert, remove or assignment), so a poisoned one is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Clients {
    fn table(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// A slot for a new connection: a free one, else the one of the connection idle longest
    /// (then reading longest), else waits until one frees.
    async fn admit(self: &Arc<Self>, shared: &Shared) -> Ticket {
        loop {
            let freed = self.freed.notified();
            {
                let mut table = self.table();
                if table.open.len() >= MAX_CLIENTS {
                    let victim = table
                        .open
                        .iter()
                        .filter(|(_, slot)| slot.phase != Phase::Busy)
                        .min_by_key(|(_, slot)| (slot.phase, slot.since))
                        .map(|(id, slot)| (*id, slot.phase));
                    if let Some((id, phase)) = victim {
                        table.open.remove(&id);
                        self.dropped(
                            shared,
                            match phase {
                                Phase::Idle => "closed the control connection idle longest",
                                _ => "closed the control connection slowest to send its request",
                            },
                        );
                    }
                }
                if table.open.len() < MAX_CLIENTS {
                    let id = table.next_id;
                    table.next_id += 1;
                    let (evict, evicted) = oneshot::channel();
                    table.open.insert(
                        id,
                        Slot {
                            phase: Phase::Idle,
                            since: Instant::now(),
                            _evict: evict,
                        },
                    );
                    return Ticket {
                        clients: self.clone(),
                        id,
                        evicted,
                    };
                }
            }
            // Every connection is answering a request: wait for one to finish.
            freed.await;
        }
    }

    /// Counts a connection closed by the server, and says so in the log now and then.
    fn dropped(&self, shared: &Shared, why: &str) {
        bump(&shared.counters.clients_dropped);
        let mut last = lock(&self.last_drop_log);
        if last.is_none_or(|at| at.elapsed() >= DROP_LOG_INTERVAL) {
            *last = Some(Instant::now());
            let total = shared.counters.clients_dropped.load(Ordering::Relaxed);
            log(format_args!(
                "{why} ({MAX_CLIENTS} at most; {total} closed so far, `ghcache daemon status` counts them)"
            ));
        }
    }
}

/// A connection's place in the table; gives it up when dropped.
struct Ticket {
    clients: Arc<Clients>,
    id: u64,
    /// Completes when the connection was evicted.
    evicted: oneshot::Receiver<()>,
}

impl Ticket {
    /// Records that the connection now does `phase`; `false` if it was evicted meanwhile (then
    /// it must close without going further).
    fn enter(&self, phase: Phase) -> bool {
        match self.clients.table().open.get_mut(&self.id) {
            Some(slot) => {
                slot.phase = phase;
                slot.since = Instant::now();
                true
            }
            None => false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.clients.table().open.remove(&self.id).is_some() {
            self.clients.freed.notify_one();
        }
    }
}

/// Why a connection was closed by the server.
enum Closed {
    /// The client closed it, or a socket error: nothing to say.
    Quietly,
    /// Evicted to make room: said when it was evicted.
    Evicted,
    /// A deadline passed, or the client sent something that is no request.
    Dropped(String),
}

/// Serves one CLI connection: one reply per request, in order, until the client closes it or
/// breaks a rule (see the module doc).
async fn client(
    mut stream: UnixStream,
    mut ticket: Ticket,
    shared: Arc<Shared>,
    budget: FrameBudget,
) {
    let closed = serve_requests(&mut stream, &mut ticket, &shared, &budget).await;
    match closed {
        Closed::Quietly | Closed::Evicted => {}
        Closed::Dropped(why) => ticket.clients.dropped(&shared, &why),
    }
}

async fn serve_requests(
    stream: &mut UnixStream,
    ticket: &mut Ticket,
    shared: &Arc<Shared>,
    budget: &FrameBudget,
) -> Closed {
    let mut wait = FIRST_REQUEST_DEADLINE;
    loop {
        // Idle: the first byte of the next request opens it.
        let mut prefix = [0u8; 4];
        let first = tokio::select! {
            _ = &mut ticket.evicted => return Closed::Evicted,
            read = timeout(wait, stream.read(&mut prefix)) => read,
        };
        let got = match first {
            Ok(Ok(0)) | Ok(Err(_)) => return Closed::Quietly,
            Ok(Ok(n)) => n,
            Err(_) => {
                return Closed::Dropped(format!(
                    "closed a control connection that sent no request for {}s",
                    wait.as_secs()
                ))
            }
        };
        if !ticket.enter(Phase::Reading) {
            return Closed::Evicted;
        }
        let read = async {
            stream.read_exact(&mut prefix[got..]).await?;
            wire::read_request(stream, prefix, budget).await
        };
        let frame = tokio::select! {
            _ = &mut ticket.evicted => return Closed::Evicted,
            frame = timeout(FRAME_DEADLINE, read) => frame,
        };
        let frame = match frame {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Closed::Dropped(format!("bad control frame: {e}"))
            }
            Ok(Err(_)) => return Closed::Quietly,
            Err(_) => {
                return Closed::Dropped(format!(
                    "closed a control connection that took over {}s to send one request",
                    FRAME_DEADLINE.as_secs()
                ))
            }
        };
        if !ticket.enter(Phase::Busy) {
            return Closed::Evicted;
        }
        let Answer { reply, hold: found } = match Control::decode(&frame) {
            Ok(request) => handle(shared, request).await,
            Err(e) => Reply::Error(e.to_string()).into(),
        };
        // Held until now: the decoded request is a copy of the frame, and the budget covers both.
        drop(frame);
        let written = timeout(REPLY_DEADLINE, wire::write_frame(stream, &reply.encode())).await;
        // Kept whether or not the command took its answer: the next read of it finds it here.
        if let Some(entry) = found {
            hold(shared, entry).await;
        }
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Closed::Quietly,
            Err(_) => {
                return Closed::Dropped(format!(
                    "closed a control connection that did not take its reply within {}s",
                    REPLY_DEADLINE.as_secs()
                ))
            }
        }
        // Busy connections are never evicted, so the slot is still ours.
        if !ticket.enter(Phase::Idle) {
            return Closed::Evicted;
        }
        wait = IDLE_DEADLINE;
    }
}

async fn handle(shared: &Arc<Shared>, request: Control) -> Answer {
    let reply = match request {
        Control::Get {
            key,
            scope_id,
            deadline_ms,
        } => {
            let deadline = match deadline_ms {
                0 => DEFAULT_SEARCH,
                ms => Duration::from_millis(ms.into()).min(MAX_SEARCH),
            };
            bump(&shared.counters.lookups);
            let answer = lookup(shared, key, scope_id, deadline).await;
            if matches!(answer.reply, Reply::Hit { .. }) {
                bump(&shared.counters.hits);
            }
            return answer;
        }
        Control::Publish { manifest, body } => publish(shared, &manifest, &body).await,
        Control::Store {
            manifest,
            body,
            mark,
        } => store_for_cli(shared, &manifest, &body, mark).await,
        Control::Manifest { key, scope_id } => {
            shared.send(Command::Subscribe { scope_id }).await;
            let (tx, rx) = oneshot::channel();
            if !shared
                .send(Command::Manifest {
                    key,
                    scope_id,
                    reply: tx,
                })
                .await
            {
                return Reply::Miss.into();
            }
            match rx.await {
                Ok(Some(manifest)) => Reply::Manifest(manifest.encode()),
                _ => Reply::Miss,
            }
        }
        Control::Invalidate {
            scope_id,
            repo,
            resources,
            at_ms,
        } => {
            if !shared.role.invalidates() {
                return Reply::Ok.into();
            }
            let command = Command::Invalidate {
                scope_id,
                repo,
                resources,
                at_ms,
            };
            if shared.send(command).await {
                Reply::Ok
            } else {
                Reply::Error("daemon is shutting down".into())
            }
        }
        Control::Budget { scope_id, news } => {
            // Usually the command wrote it to the same book already: merging it again changes
            // nothing then, and covers a command that could not write the book itself.
            shared.book.push(news.clone(), false);
            if !shared.role.shares_budget() {
                return Reply::Ok.into();
            }
            if shared.send(Command::Budget { scope_id, news }).await {
                Reply::Ok
            } else {
                Reply::Error("daemon is shutting down".into())
            }
        }
        Control::Status => {
            let (tx, rx) = oneshot::channel();
            if !shared.send(Command::Status { reply: tx }).await {
                return Reply::Error("daemon is shutting down".into()).into();
            }
            let Ok(mut status) = rx.await else {
                return Reply::Error("daemon is shutting down".into()).into();
            };
            // The book is a file: read here, not by the swarm task that made the rest.
            status.rate_limits = shared.book.load().await.summaries();
            match status.to_json() {
                Ok(json) => Reply::Status(json),
                Err(e) => Reply::Error(format!("cannot write the status: {e}")),
            }
        }
    };
    reply.into()
}

/// Stores an entry the CLI found or fetched in the machine's cache, under the CLI's fence mark:
/// the same checks as the CLI's own store, through an index that is open already.
async fn store_for_cli(
    shared: &Arc<Shared>,
    manifest: &[u8],
    body: &[u8],
    mark: Option<u64>,
) -> Reply {
    let entry = match checked_entry(manifest, body) {
        Ok(entry) => entry,
        Err(reply) => return reply,
    };
    let stored = match mark {
        Some(mark) => shared.store.put_fenced(&entry, Mark(mark)).await,
        None => shared.store.put(&entry).await,
    };
    match stored {
        Ok(()) => {
            bump(&shared.counters.local_stores);
            Reply::Ok
        }
        // The CLI stores it itself, and reports what fails there as it always does.
        Err(e) => Reply::Error(e.to_string()),
    }
}

/// The entry a CLI sent (`Manifest::encode` and `Body::encode` bytes), if it decodes and its body
/// matches the manifest's digest; else the error reply that says why.
fn checked_entry(manifest: &[u8], body: &[u8]) -> Result<Entry, Reply> {
    let manifest = Manifest::decode(manifest).map_err(|e| Reply::Error(e.to_string()))?;
    let body = Body::decode(body).map_err(|e| Reply::Error(e.to_string()))?;
    let entry = Entry { manifest, body };
    if !entry.verify_body() {
        return Err(Reply::Error(
            "body does not match the manifest's digest".into(),
        ));
    }
    Ok(entry)
}

async fn publish(shared: &Arc<Shared>, manifest: &[u8], body: &[u8]) -> Reply {
    let mut entry = match checked_entry(manifest, body) {
        Ok(entry) => entry,
        Err(reply) => return reply,
    };
    if !shared.role.announces() {
        return Reply::Ok;
    }
    if entry.manifest.producer.is_some() {
        // Signed already: by this machine's CLI (the same identity, after adding the body to
        // IPFS), or by another peer (an entry found in IPFS). Announce it as theirs, if it checks out.
        let mut trusted = shared.accept.trusted.clone();
        if !trusted.is_empty() {
            trusted.push(shared.keypair.public().to_peer_id());
        }
        if let Err(r) = sign::verify(&entry.manifest, &trusted) {
            return Reply::Error(format!(
                "not announcing {}: {r}",
                entry.manifest.key.short()
            ));
        }
    } else if let Err(e) = sign::sign(&mut entry.manifest, &shared.keypair) {
        return Reply::Error(e.to_string());
    }
    if entry.manifest.body_size > wire::MAX_BODY as u64 {
        // Too big to travel between peers: keep it local.
        return Reply::Ok;
    }
    let announced = shared
        .send(Command::Announce {
            manifest: Box::new(entry.manifest),
        })
        .await;
    if announced {
        Reply::Ok
    } else {
        Reply::Error("daemon is shutting down".into())
    }
}
