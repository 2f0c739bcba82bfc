//! Fetches between peers, each in a task of its own beside the swarm task: a lookup's hedged
//! fetches, a keeper's fetches of what its peers announced, and answers to peers' fetches. They
//! reach the swarm through [`Command`]s, and the store directly, so a slow disk never stalls the
//! swarm.

use std::sync::Arc;
use std::time::Duration;

use ghcache_core::{now_ms, CacheKey, Entry, Lookup, Manifest, ScopeId};
use libp2p::futures::stream::FuturesUnordered;
use libp2p::futures::StreamExt;
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::asks::Asks;
use crate::check;
use crate::daemon::{Candidates, Command, Shared};
use crate::log::log;
use crate::sign;
use crate::status::bump;
use crate::wire::{self, FetchRequest, FetchResponse, Reply};

/// Fetches in flight per lookup: a hedge against one slow provider, not a flood.
const HEDGE: usize = 2;
/// A lookup waits for a dial (and for a DHT walk) this share of its deadline at most. A
/// connection on a LAN or in a data centre takes a few milliseconds, a dial to a runner behind
/// NAT never connects; and the deadline is what the user allows the swarm, so a network where
/// dials are slow has a longer one (by default a lookup searches 130 ms: 16 ms for a dial).
const DIAL_SHARE: u32 = 8;
/// How long a peer's fetch from a keeper may wait for the keeper's own fetch of that entry to
/// land: the asker gives up at its own deadline anyway, and the wait holds no slot of the swarm.
const KEEP_WAIT: Duration = Duration::from_secs(2);

/// A lookup's reply to the command, and the peer's entry it hands over, which the daemon stores
/// once the reply is sent ([`hold`]).
pub(crate) struct Answer {
    pub(crate) reply: Reply,
    pub(crate) hold: Option<Entry>,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer { reply, hold: None }
    }
}

/// Finds `key` in the swarm: the peers worth asking now (connected holders and keepers first),
/// then the DHT's providers; two fetches at once, the first valid entry wins.
///
/// The DHT walk costs round trips and, in a swarm with runners nobody can dial, dials that hang:
/// it starts at once only when none of the peers known now is connected, else only when they
/// all failed to answer. A dial (a fetch from a peer not connected, or a walk past its first
/// hop, which goes on to peers it may have to dial) is waited for a share of the deadline only
/// ([`DIAL_SHARE`]): when nothing else is left to wait for, the lookup says "miss" then, not at
/// its deadline, and later lookups skip the peers whose dial hung.
pub(crate) async fn lookup(
    shared: &Arc<Shared>,
    key: CacheKey,
    scope_id: ScopeId,
    deadline: Duration,
) -> Answer {
    let until = Instant::now() + deadline;
    let patience = deadline / DIAL_SHARE;
    shared.send(Command::Subscribe { scope_id }).await;
    let (tx, rx) = oneshot::channel();
    if !shared
        .send(Command::FindProviders {
            key,
            scope_id,
            reply: tx,
        })
        .await
    {
        return Reply::Miss.into();
    }
    let found = match tokio::time::timeout_at(until, rx).await {
        Ok(Ok(found)) => found,
        _ => return Reply::Miss.into(),
    };
    let request = FetchRequest { key, scope_id };
    let mut asks = Asks::new(found.peers, found.unconnected);
    let mut inflight = FuturesUnordered::new();
    let (mut dht, mut dht_asked) = (None, false);
    if !found.connected {
        dht = walk_dht(shared, key).await;
        dht_asked = true;
    }
    loop {
        while asks.live < HEDGE {
            let Some(peer) = asks.next(Instant::now()) else {
                break;
            };
            inflight.push(fetch(shared, peer, request.clone()));
        }
        if asks.live == 0 && dht.is_none() {
            if dht_asked {
                return Reply::Miss.into();
            }
            dht = walk_dht(shared, key).await;
            dht_asked = true;
            if dht.is_none() {
                return Reply::Miss.into();
            }
        }
        let walk_due = dht
            .as_ref()
            .and_then(|w: &Walk| w.farther_since)
            .map(|since| since + patience);
        let due = asks.due(patience).into_iter().chain(walk_due).min();
        enum Next {
            Fetched(Option<(PeerId, Option<FetchResponse>)>),
            Walked(Option<Candidates>),
            WalkGoesOn,
            Due,
            Deadline,
        }
        let (found, goes_on) = match dht.as_mut() {
            Some(walk) => (Some(&mut walk.found), walk.goes_on.as_mut()),
            None => (None, None),
        };
        let (walking, first_hop) = (found.is_some(), goes_on.is_some());
        let next = tokio::select! {
            done = inflight.next(), if !inflight.is_empty() => Next::Fetched(done),
            walked = async {
                match found {
                    Some(rx) => rx.await.ok(),
                    None => std::future::pending().await,
                }
            }, if walking => Next::Walked(walked),
            _ = async {
                match goes_on {
                    Some(rx) => rx.await.ok(),
                    None => std::future::pending().await,
                }
            }, if first_hop => Next::WalkGoesOn,
            _ = tokio::time::sleep_until(due.unwrap_or(until).min(until)), if due.is_some() => Next::Due,
            _ = tokio::time::sleep_until(until) => Next::Deadline,
        };
        match next {
            Next::Deadline => {
                bump(&shared.counters.lookups_timed_out);
                return Reply::Miss.into();
            }
            Next::WalkGoesOn => {
                if let Some(walk) = dht.as_mut() {
                    walk.goes_on = None;
                    walk.farther_since = Some(Instant::now());
                }
            }
            Next::Due => {
                let now = Instant::now();
                if walk_due.is_some_and(|due| due <= now) {
                    // Still walking past its first hop, `patience` after it went on.
                    dht = None;
                }
                let due = asks.take_due(now, patience);
                if !due.is_empty() {
                    asks.hung(hung(shared, due).await);
                }
            }
            Next::Walked(found) => {
                dht = None;
                if let Some(found) = found {
                    asks.walked(found.peers, found.unconnected);
                }
            }
            Next::Fetched(None) => {}
            Next::Fetched(Some((peer, response))) => {
                asks.answered(peer, response.is_some());
                let Some(FetchResponse::Found { manifest, body }) = response else {
                    continue;
                };
                match check::entry(&shared.accept, &request, &manifest, &body) {
                    Ok(entry) => {
                        return Answer {
                            reply: Reply::Hit { manifest, body },
                            hold: Some(entry),
                        };
                    }
                    Err((reason, disconnect)) => {
                        reject(shared, peer, reason, disconnect).await;
                    }
                }
            }
        }
    }
}

/// Stores a peer's entry that a lookup handed to the command, then tells the swarm this machine
/// holds it. It runs once the command has its answer: the command neither waits for this disk
/// nor sends the entry back to be stored (the p2p tier knows the daemon stores what it hands
/// over).
pub(crate) async fn hold(shared: &Shared, entry: Entry) {
    if let Err(e) = shared.store.put(&entry).await {
        log(format_args!(
            "cannot store {}: {e}",
            entry.manifest.key.short()
        ));
    }
    shared
        .send(Command::Held {
            manifest: Box::new(entry.manifest),
        })
        .await;
}

/// A DHT walk under way.
struct Walk {
    /// The providers it finds.
    found: oneshot::Receiver<Candidates>,
    /// Completes when a peer answered without providers and the walk goes on to the peers it
    /// named, which may cost dials that hang. Until then it asks the peers of this node's
    /// routing table (the ones it connected to), and is waited for.
    goes_on: Option<oneshot::Receiver<()>>,
    /// Since when it went past its first hop.
    farther_since: Option<Instant>,
}

/// Starts a DHT walk for `key`'s providers; `None` when the daemon is stopping.
async fn walk_dht(shared: &Shared, key: CacheKey) -> Option<Walk> {
    let (tx, found) = oneshot::channel();
    let (on, goes_on) = oneshot::channel();
    shared
        .send(Command::DhtProviders {
            key,
            reply: tx,
            goes_on: on,
        })
        .await
        .then_some(Walk {
            found,
            goes_on: Some(goes_on),
            farther_since: None,
        })
}

/// Tells the swarm task that the dials to `peers` took too long; returns those still not
/// connected, which the lookup stops waiting for.
async fn hung(shared: &Shared, peers: Vec<PeerId>) -> Vec<PeerId> {
    let (tx, rx) = oneshot::channel();
    if !shared.send(Command::Hung { peers, reply: tx }).await {
        return Vec::new();
    }
    rx.await.unwrap_or_default()
}

async fn reject(shared: &Shared, peer: PeerId, reason: String, disconnect: bool) {
    shared
        .send(Command::Reject {
            peer,
            reason,
            disconnect,
        })
        .await;
}

/// Asks `peer` for an entry; `None` if the request failed.
async fn fetch(
    shared: &Arc<Shared>,
    peer: PeerId,
    request: FetchRequest,
) -> (PeerId, Option<FetchResponse>) {
    let (tx, rx) = oneshot::channel();
    if !shared
        .send(Command::Fetch {
            peer,
            request,
            reply: tx,
        })
        .await
    {
        return (peer, None);
    }
    (peer, rx.await.ok().flatten())
}

/// A keeper's fetch of an announced entry from `holders` in turn (connected: the announcing
/// runners, over the connections they opened), until one sends an entry that passes. What
/// arrives is checked as a lookup's answer is, then stored; the swarm task hears how it ended
/// in [`Command::Kept`], which frees the fetch's slot. Asking the next holder when one has
/// nothing is what keeps a peer that announced a newer manifest it does not serve from
/// costing the keeper the entry.
pub(crate) async fn keep(shared: Arc<Shared>, holders: Vec<PeerId>, announced: Manifest) {
    let request = FetchRequest {
        key: announced.key,
        scope_id: announced.scope_id,
    };
    let mut kept = None;
    for peer in holders {
        let (_, response) = fetch(&shared, peer, request.clone()).await;
        let Some(FetchResponse::Found { manifest, body }) = response else {
            continue;
        };
        match check::entry(&shared.accept, &request, &manifest, &body) {
            Ok(entry) => {
                match shared.store.put(&entry).await {
                    Ok(()) => kept = Some(Box::new(entry.manifest)),
                    Err(e) => log(format_args!("cannot keep {}: {e}", request.key.short())),
                }
                break;
            }
            Err((reason, disconnect)) => reject(&shared, peer, reason, disconnect).await,
        }
    }
    shared
        .send(Command::Kept {
            key: request.key,
            manifest: kept,
        })
        .await;
}

/// Answers one peer's fetch request from the local store. A keeper that is fetching the entry
/// itself right now answers when its fetch lands: a runner asking just after another announced
/// it gets it from the keeper, not from GitHub.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    peer: PeerId,
    request: FetchRequest,
    channel: ResponseChannel<FetchResponse>,
) {
    let mut found = stored(&shared, peer, &request).await;
    if found.is_none() && shared.role.keeps() {
        let (tx, rx) = oneshot::channel();
        let asked = shared
            .send(Command::AwaitKept {
                key: request.key,
                reply: tx,
            })
            .await;
        if asked && matches!(tokio::time::timeout(KEEP_WAIT, rx).await, Ok(Ok(()))) {
            found = stored(&shared, peer, &request).await;
        }
    }
    let response = match found {
        Some(entry) => {
            bump(&shared.counters.fetches_served);
            FetchResponse::Found {
                manifest: entry.manifest.encode(),
                body: entry.body.encode(),
            }
        }
        None => FetchResponse::NotFound,
    };
    shared.send(Command::Respond { channel, response }).await;
}

/// The stored entry that answers `request`, if it may be sent to a peer.
async fn stored(shared: &Shared, peer: PeerId, request: &FetchRequest) -> Option<Entry> {
    match shared.store.get(&request.key).await {
        Ok(Lookup::Hit(entry)) => servable(shared, entry, &request.scope_id),
        Ok(Lookup::Miss) => None,
        Err(e) => {
            log(format_args!("local store failed serving {peer}: {e}"));
            None
        }
    }
}

/// The entry as it may be sent to a peer of scope `scope_id`, or `None` if it may not.
fn servable(shared: &Shared, mut entry: Entry, scope_id: &ScopeId) -> Option<Entry> {
    if &entry.manifest.scope_id != scope_id
        || !entry.manifest.is_fresh(now_ms(), Duration::ZERO)
        || entry.manifest.body_size > wire::MAX_BODY as u64
        || !entry.verify_body()
    {
        return None;
    }
    if entry.manifest.producer.is_none() {
        // Fetched from GitHub by this machine: we vouch for it.
        sign::sign(&mut entry.manifest, &shared.keypair).ok()?;
    }
    Some(entry)
}
