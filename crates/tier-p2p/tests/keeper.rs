//! Keepers and directories with real daemons on loopback: runners that do not listen share
//! through a keeper; a daemon that joins learns from its peers' directories; a directory reply
//! that lies is refused and counted.

use std::sync::Arc;
use std::time::Duration;

use ghcache_core::testkit::{sample_entry, MemoryTier};
use ghcache_core::{now_ms, CacheTier, Entry, Lookup, Manifest, ScopeId};
use ghcache_tier_p2p::wire::{self, DirectoryItem, DirectoryResponse, DIRECTORY_PROTOCOL};
use ghcache_tier_p2p::{run, sign, Config, Keypair, Multiaddr, SwarmKey, SwarmKeyExt as _, Tier};
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, Swarm};

mod harness;
use harness::raw_directory::RawDirectory;
use harness::{wait_for, Daemon};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);

fn scope() -> ScopeId {
    ScopeId::of("keeper-scope")
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
    async fn tier(&self) -> Result<Tier, Box<dyn std::error::Error>> {
        self.tier_in(scope(), Duration::from_millis(150)).await
    }
}

async fn stored(store: &MemoryTier, entry: &Entry) -> bool {
    matches!(store.get(&entry.manifest.key).await, Ok(Lookup::Hit(_)))
}

/// An entry of `scope()`, as the CLI hands one fetched from GitHub to its daemon.
fn fresh_entry(seed: u8, stdout: &[u8]) -> Entry {
    let mut entry = sample_entry(seed, "o/r", stdout);
    entry.manifest.scope_id = scope();
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_that_do_not_listen_share_through_a_keeper() -> TestResult {
    let key = SwarmKey::generate()?;
    let keeper = Daemon::following(key, &[], |c| c.keep = true).await?;
    let runner = |c: &mut Config| c.listen = Vec::new();
    let a = Daemon::following(key, &keeper.addr(), runner).await?;
    assert!(a.addr.is_none(), "A listens nowhere");
    let entry = fresh_entry(1, b"pr list\n");
    // The keeper follows A's scope once it sees A subscribe; publish until it took the entry.
    a.store.put(&entry).await?;
    let a_tier = a.tier().await?;
    let kept = wait_for(WAIT, || async {
        a_tier.put(&entry).await.ok()?;
        wait_for(Duration::from_millis(300), || async {
            stored(&keeper.store, &entry).await.then_some(())
        })
        .await
    })
    .await;
    assert!(
        kept.is_some(),
        "the keeper fetched A's entry over A's connection"
    );
    assert!(keeper.counters().await.kept >= 1);
    let a_id: libp2p::PeerId = a.status().await.peer_id.parse()?;
    a.stop().await?;

    // C joins after A left, and nobody but the keeper can serve it.
    let c = Daemon::following(key, &keeper.addr(), runner).await?;
    let learned = wait_for(WAIT, || async {
        (c.counters().await.directory_learned >= 1).then_some(())
    })
    .await;
    assert!(
        learned.is_some(),
        "C learned the entry from the keeper's directory on joining"
    );
    assert!(
        c.status().await.keepers.len() == 1,
        "C knows the keeper for one"
    );
    let c_tier = c.tier().await?;
    let got = c_tier.get(&entry.manifest.key).await?;
    let Lookup::Hit(got) = got else {
        panic!("C missed: {:?}", c.status().await);
    };
    assert_eq!(got.body, entry.body, "byte-identical body");
    assert_eq!(
        sign::verify(&got.manifest, &[]).ok(),
        Some(a_id),
        "still signed by A, who fetched it"
    );
    assert!(keeper.counters().await.fetches_served >= 1);
    c.stop().await?;
    keeper.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_keepers_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(SwarmKey::generate()?);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.mdns = false;
    config.keep = true;
    config.read_only = true;
    let refused = run(config, dir.path(), Arc::new(MemoryTier::new("l")), async {}).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("exclude each other"), "{message}");
    Ok(())
}

#[derive(NetworkBehaviour)]
struct FakeBehaviour {
    identify: identify::Behaviour,
    directory: request_response::Behaviour<RawDirectory>,
}

/// A swarm member that says it is a keeper and answers every directory request with the bytes
/// `answer`; returns its address.
fn fake_keeper(key: SwarmKey, answer: Vec<u8>) -> Result<Multiaddr, Box<dyn std::error::Error>> {
    let keypair = Keypair::generate_ed25519();
    let transport = ghcache_tier_p2p::transport(&keypair, &key, Default::default())?;
    let behaviour = FakeBehaviour {
        identify: identify::Behaviour::new(
            identify::Config::new("/ghcache/id/1.0.0".into(), keypair.public())
                .with_agent_version("ghcache/0.0.0 keeper".into()),
        ),
        directory: request_response::Behaviour::with_codec(
            RawDirectory,
            [(DIRECTORY_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default(),
        ),
    };
    let peer = keypair.public().to_peer_id();
    let mut swarm = Swarm::new(
        transport,
        behaviour,
        peer,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(60)),
    );
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let (tx, rx) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    let _ = tx.send(address);
                }
                SwarmEvent::Behaviour(FakeBehaviourEvent::Directory(
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
                _ => {}
            }
        }
    });
    let addr = rx.recv_timeout(WAIT)?;
    Ok(format!("{addr}/p2p/{peer}").parse()?)
}

/// A directory reply of one manifest, held by a peer nobody knows.
fn reply_with(manifest: &Manifest) -> Vec<u8> {
    DirectoryResponse {
        items: vec![DirectoryItem {
            manifest: manifest.encode(),
            providers: vec![libp2p::PeerId::random()],
        }],
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_replies_are_checked_before_they_are_believed() -> TestResult {
    let key = SwarmKey::generate()?;
    let producer = Keypair::generate_ed25519();
    let mut honest = fresh_entry(2, b"honest\n").manifest;
    honest.created_at_ms = now_ms();
    sign::sign(&mut honest, &producer)?;
    let mut forged = honest.clone();
    forged.ttl_ms += 3_600_000; // signed, then changed: the signature no longer covers it
    let mut elsewhere = fresh_entry(3, b"other scope\n").manifest;
    elsewhere.scope_id = ScopeId::of("someone else's scope");
    sign::sign(&mut elsewhere, &producer)?;
    // More manifests than a reply may carry: refused before any is read.
    let mut too_many = vec![0x25];
    too_many.extend_from_slice(&((wire::MAX_DIRECTORY_ITEMS + 1) as u32).to_le_bytes());

    for (what, answer, believed) in [
        ("an honest reply", reply_with(&honest), true),
        ("a forged signature", reply_with(&forged), false),
        ("another scope's manifest", reply_with(&elsewhere), false),
        ("too many manifests", too_many, false),
    ] {
        let fake = fake_keeper(key, answer)?;
        let daemon = Daemon::following(key, &[fake], |_| {}).await?;
        if believed {
            let learned = wait_for(WAIT, || async {
                (daemon.counters().await.directory_learned == 1).then_some(())
            })
            .await;
            assert!(learned.is_some(), "{what}: {:?}", daemon.status().await);
            assert_eq!(daemon.status().await.directory_entries, 1, "{what}");
            assert_eq!(daemon.counters().await.rejected, 0, "{what}");
        } else {
            let rejected = wait_for(WAIT, || async {
                (daemon.counters().await.rejected >= 1).then_some(())
            })
            .await;
            assert!(
                rejected.is_some(),
                "{what} is counted: {:?}",
                daemon.status().await
            );
            assert_eq!(daemon.status().await.directory_entries, 0, "{what}");
            assert_eq!(daemon.counters().await.directory_learned, 0, "{what}");
            let cut_off = wait_for(WAIT, || async { (daemon.peers().await == 0).then_some(()) });
            assert!(cut_off.await.is_some(), "{what}: the liar is disconnected");
        }
        daemon.stop().await?;
    }
    Ok(())
}
