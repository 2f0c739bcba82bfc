//! Bounds that one peer cannot exhaust, with real daemons on loopback: a member that subscribes
//! to hundreds of scopes does not take every slot of a keeper, a peer that announces a newer
//! manifest it does not serve does not hide the honest provider (from a lookup, nor from a
//! keeper), and the scopes a local client names do not grow the daemon's topic table without
//! end.

use std::time::Duration;

use ghcache_core::testkit::{sample_entry, MemoryTier};
use ghcache_core::{now_ms, CacheTier, Entry, Lookup, ScopeId};
use ghcache_tier_p2p::wire::{DirectoryItem, DirectoryResponse, DIRECTORY_PROTOCOL};
use ghcache_tier_p2p::{sign, Config, Keypair, Multiaddr, SwarmKey, SwarmKeyExt as _, Tier};
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, PeerId, Swarm};
use tokio::sync::mpsc;

mod harness;
use harness::raw_directory::RawDirectory;
use harness::{wait_for, Daemon};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);

fn scope() -> ScopeId {
    ScopeId::of("bounds-scope")
}

impl Daemon {
    /// A daemon that follows `scope()` from the start, bootstrapping from `bootstrap`.
    async fn following(
        key: SwarmKey,
        bootstrap: &[Multiaddr],
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Daemon, Box<dyn std::error::Error>> {
        Daemon::start(key, bootstrap, |config| {
            config.scopes = vec![scope()];
            tweak(config);
        })
        .await
    }

    /// The CLI's adapter to this daemon, in `scope()`.
    async fn tier(&self, deadline: Duration) -> Result<Tier, Box<dyn std::error::Error>> {
        self.tier_in(scope(), deadline).await
    }
}

async fn stored(store: &MemoryTier, entry: &Entry) -> bool {
    matches!(store.get(&entry.manifest.key).await, Ok(Lookup::Hit(_)))
}

/// An entry of `scope()` made now, as the CLI hands one fetched from GitHub to its daemon.
fn fresh_entry(seed: u8, stdout: &[u8]) -> Entry {
    let mut entry = sample_entry(seed, "o/r", stdout);
    entry.manifest.scope_id = scope();
    entry.manifest.created_at_ms = now_ms();
    entry
}

/// A swarm member that speaks only gossipsub and dials `to`. Each number sent on the channel it
/// returns has it subscribe to that many more topics, named as a daemon names a scope's
/// (scopes `first`, `first + 1`, ..., in one
/// message: a batch must stay under the daemon's gossip size cap). It stays connected until the
/// test ends.
fn subscriber(
    key: SwarmKey,
    to: Multiaddr,
    first: usize,
) -> Result<mpsc::UnboundedSender<usize>, Box<dyn std::error::Error>> {
    let keypair = Keypair::generate_ed25519();
    let transport = ghcache_tier_p2p::transport(&keypair, &key, Default::default())?;
    let gossip: gossipsub::Behaviour = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        gossipsub::Config::default(),
    )?;
    let mut swarm = Swarm::new(
        transport,
        gossip,
        keypair.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(60)),
    );
    swarm.dial(to)?;
    let (batches, mut next) = mpsc::unbounded_channel::<usize>();
    tokio::spawn(async move {
        let mut subscribed = first;
        loop {
            tokio::select! {
                event = swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionClosed { .. } = event {
                        break;
                    }
                }
                Some(batch) = next.recv() => {
                    for n in subscribed..subscribed + batch {
                        let scope = ScopeId::of(&format!("hostile scope {n}"));
                        let topic = format!("ghcache/v1/{}", scope.to_hex());
                        let _ = swarm
                            .behaviour_mut()
                            .subscribe(&gossipsub::IdentTopic::new(topic));
                    }
                    subscribed += batch;
                }
            }
        }
    });
    Ok(batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_subscribing_to_hundreds_of_scopes_leaves_a_keeper_slot_for_others() -> TestResult
{
    let key = SwarmKey::generate()?;
    let keeper = Daemon::following(key, &[], |c| {
        c.keep = true;
        c.scopes = Vec::new();
    })
    .await?;
    let keeper_addr = keeper.addr().pop().ok_or("the keeper listens")?;
    // Gossipsub takes at most 100 topics of one peer, so the hostile member uses three ids to
    // ask for more scopes than a keeper has slots (256), 50 at a time (a batch must fit the
    // gossip size cap), each batch once the keeper decided on the one before or is full.
    let mut asked = 0;
    for id in 0..3 {
        let hostile = subscriber(key, keeper_addr.clone(), id * 100)?;
        let connected = wait_for(WAIT, || async {
            (keeper.status().await.connected_peers.len() == id + 1).then_some(())
        })
        .await;
        assert!(connected.is_some(), "hostile id {id} connected");
        for _ in 0..2 {
            hostile.send(50)?;
            asked += 50;
            let decided = wait_for(WAIT, || async {
                let status = keeper.status().await;
                let scopes = status.keep.map_or(0, |k| k.scopes) as u64;
                (scopes + status.counters.over_share >= asked || scopes >= 256).then_some(())
            })
            .await;
            assert!(decided.is_some(), "{asked}: {:?}", keeper.status().await);
        }
    }

    let runner = Daemon::following(key, &keeper.addr(), |c| c.listen = Vec::new()).await?;
    let entry = fresh_entry(1, b"pr list\n");
    runner.store.put(&entry).await?;
    let runner_tier = runner.tier(Duration::from_millis(150)).await?;
    let kept = wait_for(WAIT, || async {
        runner_tier.put(&entry).await.ok()?;
        wait_for(Duration::from_millis(300), || async {
            stored(&keeper.store, &entry).await.then_some(())
        })
        .await
    })
    .await;
    let status = keeper.status().await;
    assert!(
        kept.is_some(),
        "the keeper kept the runner's entry: {status:?}"
    );
    let scopes = status.keep.map_or(0, |k| k.scopes);
    assert!(
        scopes <= 3 * 8 + 1,
        "each hostile id got its share, not more: {scopes}"
    );
    assert!(
        status.counters.over_share >= 300 - scopes as u64,
        "each scope past its share is counted: {status:?}"
    );
    runner.stop().await?;
    keeper.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_provider_is_still_asked_after_a_newer_announcement_from_another_peer(
) -> TestResult {
    let key = SwarmKey::generate()?;
    // C is reachable; H and X dial it and listen nowhere, so that only their announcements
    // (not the DHT) tell C who holds what.
    let c = Daemon::following(key, &[], |_| {}).await?;
    let runner = |cfg: &mut Config| cfg.listen = Vec::new();
    let h = Daemon::following(key, &c.addr(), runner).await?;
    let x = Daemon::following(key, &c.addr(), runner).await?;
    let c_tier = c.tier(Duration::from_secs(3)).await?;

    let honest = fresh_entry(2, b"honest answer\n");
    h.store.put(&honest).await?;
    let h_tier = h.tier(Duration::from_millis(150)).await?;
    let heard = wait_for(WAIT, || async {
        h_tier.put(&honest).await.ok()?;
        wait_for(Duration::from_millis(300), || async {
            c_tier.announced_manifest(&honest.manifest.key).await
        })
        .await
    })
    .await;
    assert!(heard.is_some(), "C heard H's announcement");

    // X announces a newer answer to the same key, signed by itself, and holds nothing.
    let mut newer = fresh_entry(2, b"nothing behind it\n");
    newer.manifest.created_at_ms = honest.manifest.created_at_ms + 1_000;
    let x_tier = x.tier(Duration::from_millis(150)).await?;
    let x_id = x.status().await.peer_id;
    let heard = wait_for(WAIT, || async {
        x_tier.put(&newer).await.ok()?;
        wait_for(Duration::from_millis(300), || async {
            let known = c_tier.announced_manifest(&honest.manifest.key).await?;
            let producer = sign::verify(&known, &[]).ok()?;
            (producer.to_string() == x_id).then_some(())
        })
        .await
    })
    .await;
    assert!(heard.is_some(), "C heard X's newer announcement");

    let got = c_tier.get(&honest.manifest.key).await?;
    let Lookup::Hit(got) = got else {
        panic!("C missed: {:?}", c.status().await);
    };
    assert_eq!(got.body, honest.body, "H's answer, from H");
    x.stop().await?;
    h.stop().await?;
    c.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_named_by_local_clients_do_not_grow_the_topic_table_without_end() -> TestResult {
    let key = SwarmKey::generate()?;
    let daemon = Daemon::following(key, &[], |_| {}).await?;
    let deadline = Duration::from_millis(150);
    let probe = fresh_entry(3, b"x\n").manifest.key;
    for n in 0..200 {
        let scope = ScopeId::of(&format!("named scope {n}"));
        let tier = Tier::connect(daemon.dir.path(), scope, deadline)
            .await?
            .ok_or("no daemon")?;
        // Asking for a manifest names the scope, as every lookup does.
        assert!(tier.announced_manifest(&probe).await.is_none());
    }
    let scopes = daemon.status().await.scopes;
    // The 64 named most recently, and the machine's own scope from its configuration.
    assert_eq!(scopes, 64 + 1, "topics followed after naming 200 scopes");
    daemon.stop().await?;
    Ok(())
}

#[derive(NetworkBehaviour)]
struct Informant {
    gossipsub: gossipsub::Behaviour,
    directory: request_response::Behaviour<RawDirectory>,
}

/// A swarm member that joins `scope()`'s topic on `to` and answers every directory request
/// with `answer`.
fn informant(
    key: SwarmKey,
    to: Multiaddr,
    answer: Vec<u8>,
) -> Result<(), Box<dyn std::error::Error>> {
    let keypair = Keypair::generate_ed25519();
    let transport = ghcache_tier_p2p::transport(&keypair, &key, Default::default())?;
    let behaviour = Informant {
        gossipsub: gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossipsub::Config::default(),
        )?,
        directory: request_response::Behaviour::with_codec(
            RawDirectory,
            [(DIRECTORY_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        ),
    };
    let mut swarm = Swarm::new(
        transport,
        behaviour,
        keypair.public().to_peer_id(),
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(60)),
    );
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&gossipsub::IdentTopic::new(format!(
            "ghcache/v1/{}",
            scope().to_hex()
        )))?;
    swarm.dial(to)?;
    tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(InformantEvent::Directory(
                    request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. },
                        ..
                    },
                )) => {
                    let _ = swarm
                        .behaviour_mut()
                        .directory
                        .send_response(channel, answer.clone());
                }
                SwarmEvent::ConnectionClosed { .. } => break,
                _ => {}
            }
        }
    });
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_fetches_from_the_next_holder_when_the_first_has_nothing() -> TestResult {
    let key = SwarmKey::generate()?;
    let keeper = Daemon::following(key, &[], |c| c.keep = true).await?;
    let runner = |cfg: &mut Config| cfg.listen = Vec::new();
    let empty = Daemon::following(key, &keeper.addr(), runner).await?;
    let holder = Daemon::following(key, &keeper.addr(), runner).await?;
    let entry = fresh_entry(4, b"from the second holder\n");
    holder.store.put(&entry).await?;
    let both = wait_for(WAIT, || async {
        (keeper.status().await.connected_peers.len() == 2).then_some(())
    })
    .await;
    assert!(both.is_some(), "both runners connected to the keeper");

    // A peer tells the keeper that the runner with nothing holds the entry, and the holder too:
    // as a newer announcement from a peer that serves nothing leaves the holders' list.
    let mut manifest = entry.manifest.clone();
    sign::sign(&mut manifest, &Keypair::generate_ed25519())?;
    let first: PeerId = empty.status().await.peer_id.parse()?;
    let second: PeerId = holder.status().await.peer_id.parse()?;
    let answer = DirectoryResponse {
        items: vec![DirectoryItem {
            manifest: manifest.encode(),
            providers: vec![first, second],
        }],
    }
    .encode();
    informant(
        key,
        keeper.addr().pop().ok_or("the keeper listens")?,
        answer,
    )?;

    let kept = wait_for(WAIT, || async {
        stored(&keeper.store, &entry).await.then_some(())
    })
    .await;
    assert!(
        kept.is_some(),
        "the keeper asked the holder after the first had nothing: {:?}",
        keeper.status().await
    );
    assert_eq!(keeper.status().await.counters.kept, 1);
    holder.stop().await?;
    empty.stop().await?;
    keeper.stop().await?;
    Ok(())
}
