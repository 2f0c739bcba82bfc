//! Producers bound to what they may read, with real daemons on loopback and tokens of the fake
//! GitHub's OIDC issuer: a keeper that requires tokens keeps a runner's entries for its own
//! repository's scope, refuses and counts those for another repository's, and binds a runner
//! whose token is expired, forged or addressed to another peer to nothing.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_github::oidc::{self as fake, Claims, Signer};
use ghcache_core::producer::Identity;
use ghcache_core::testkit::{sample_entry, MemoryTier};
use ghcache_core::{CacheTier, Entry, Lookup, ScopeId};
use ghcache_tier_p2p::oidc::{audience, Verifier};
use ghcache_tier_p2p::{run, Config, Multiaddr, PeerId};
use ghcache_tier_p2p::{SwarmKey, SwarmKeyExt as _, Tier};

mod harness;
use harness::{wait_for, Daemon};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const OWN: &str = "actions:o/a";
const OTHER: &str = "actions:o/b";

impl Daemon {
    /// A daemon that follows both scopes from the start, bootstrapping from `bootstrap`.
    async fn following(
        key: SwarmKey,
        bootstrap: &[Multiaddr],
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Daemon, Box<dyn std::error::Error>> {
        Daemon::start(key, bootstrap, |config| {
            config.scopes = vec![ScopeId::of(OWN), ScopeId::of(OTHER)];
            tweak(config);
        })
        .await
    }

    /// Publishes `entry` (of scope `scope`) as the CLI does, until `done` holds.
    async fn publish_until<F, Fut>(&self, entry: &Entry, scope: &str, mut done: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        if self.store.put(entry).await.is_err() {
            return false;
        }
        let Ok(Some(tier)) = Tier::connect(
            self.dir.path(),
            ScopeId::of(scope),
            Duration::from_millis(150),
        )
        .await
        else {
            return false;
        };
        // Republished until seen: the keeper follows the scope once it sees the runner
        // subscribe, and hears only what is announced after that.
        let until = Instant::now() + WAIT;
        while Instant::now() < until {
            if tier.put(entry).await.is_err() {
                return false;
            }
            let round = Instant::now() + Duration::from_millis(300);
            while Instant::now() < round {
                if done().await {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        false
    }
}

async fn stored(store: &MemoryTier, entry: &Entry) -> bool {
    matches!(store.get(&entry.manifest.key).await, Ok(Lookup::Hit(_)))
}

fn entry_of(scope: &str, seed: u8) -> Entry {
    let mut entry = sample_entry(seed, "o/r", format!("answer {seed}\n").as_bytes());
    entry.manifest.scope_id = ScopeId::of(scope);
    entry
}

/// A keeper that checks tokens of the fake issuer and, if `require`, takes entries only from
/// producers bound by one.
async fn keeper(key: SwarmKey, require: bool) -> Result<Daemon, Box<dyn std::error::Error>> {
    let verifier = Verifier::new(ISSUER, fake::jwks().to_string().as_bytes())?;
    Daemon::following(key, &[], move |c| {
        c.keep = true;
        c.require_oidc = require;
        c.oidc = Some(verifier);
    })
    .await
}

async fn strict_keeper(key: SwarmKey) -> Result<Daemon, Box<dyn std::error::Error>> {
    keeper(key, true).await
}

/// A runner that nobody can dial, of a job whose token `token` makes for its own peer id: it
/// presents the token to the keeper with both scopes.
async fn runner(
    key: SwarmKey,
    keeper: &Daemon,
    token: impl FnOnce(&PeerId) -> Result<String, Box<dyn std::error::Error>>,
) -> Result<(Daemon, PeerId), Box<dyn std::error::Error>> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let identity = Identity::from_secret(&secret);
    let peer: PeerId = identity.id().to_string().parse()?;
    let token = token(&peer)?;
    let token_dir = tempfile::tempdir()?;
    let token_file: PathBuf = token_dir.path().join("oidc-token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let daemon = Daemon::following(key, &keeper.addr(), move |c| {
        c.identity = identity;
        c.listen = Vec::new();
        c.oidc_token_file = Some(token_file);
        c.produces_for = vec![OWN.into(), OTHER.into()];
    })
    .await?;
    // The token file is read when the runner connects; the keeper has it once it says so.
    let presented = wait_for(WAIT, || async {
        let status = keeper.status().await;
        status
            .bound_producers
            .contains(&peer.to_string())
            .then_some(())
    })
    .await;
    drop(token_dir);
    presented.ok_or("the keeper never heard the runner's token")?;
    Ok((daemon, peer))
}

fn mint(claims: &Claims, signer: Signer) -> Result<String, Box<dyn std::error::Error>> {
    Ok(fake::mint(claims, signer).map_err(|e| e.to_string())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_produces_for_its_own_repository_only() -> TestResult {
    let key = SwarmKey::generate()?;
    let keeper = strict_keeper(key).await?;
    let (a, _) = runner(key, &keeper, |peer| {
        mint(&Claims::job(ISSUER, "o/a", &audience(peer)), Signer::Issuer)
    })
    .await?;

    let own = entry_of(OWN, 1);
    let kept = a
        .publish_until(&own, OWN, || stored(&keeper.store, &own))
        .await;
    assert!(kept, "the keeper kept o/a's entry from o/a's runner");

    let planted = entry_of(OTHER, 2);
    let refused = a
        .publish_until(&planted, OTHER, || async {
            keeper.counters().await.unbound >= 1
        })
        .await;
    assert!(
        refused,
        "the keeper counted the refusal: {:?}",
        keeper.counters().await
    );
    assert!(
        !stored(&keeper.store, &planted).await,
        "o/a's runner planted an answer for o/b"
    );
    let counters = keeper.counters().await;
    assert!(counters.rejected >= counters.unbound, "{counters:?}");
    assert_eq!(counters.tokens_refused, 0);
    a.stop().await?;
    keeper.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_or_misaddressed_tokens_bind_their_runner_to_nothing() -> TestResult {
    let key = SwarmKey::generate()?;
    let keeper = strict_keeper(key).await?;
    let expired = |peer: &PeerId| {
        let claims = Claims {
            exp: fake::now_secs() - 600,
            ..Claims::job(ISSUER, "o/a", &audience(peer))
        };
        mint(&claims, Signer::Issuer)
    };
    let forged = |peer: &PeerId| {
        mint(
            &Claims::job(ISSUER, "o/a", &audience(peer)),
            Signer::Stranger,
        )
    };
    let stolen = |_: &PeerId| {
        let someone = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        mint(
            &Claims::job(ISSUER, "o/a", &audience(&someone)),
            Signer::Issuer,
        )
    };
    let mut runners = Vec::new();
    for (what, seed, token) in [
        (
            "expired",
            11,
            Box::new(expired) as Box<dyn FnOnce(&PeerId) -> _>,
        ),
        ("forged", 12, Box::new(forged)),
        ("addressed to another peer", 13, Box::new(stolen)),
    ] {
        let before = keeper.counters().await;
        let (daemon, _) = runner(key, &keeper, token).await?;
        let refused = wait_for(WAIT, || async {
            (keeper.counters().await.tokens_refused > before.tokens_refused).then_some(())
        })
        .await;
        assert!(refused.is_some(), "{what}: the token was taken");
        let entry = entry_of(OWN, seed);
        let counted = daemon
            .publish_until(&entry, OWN, || async {
                keeper.counters().await.unbound > before.unbound
            })
            .await;
        assert!(counted, "{what}: no refusal counted");
        assert!(
            !stored(&keeper.store, &entry).await,
            "{what}: the keeper kept the entry"
        );
        runners.push(daemon);
    }
    assert_eq!(keeper.counters().await.kept, 0);
    for daemon in runners {
        daemon.stop().await?;
    }
    keeper.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_requiring_tokens_a_silent_peer_produces_as_before_and_a_presenter_is_held(
) -> TestResult {
    let key = SwarmKey::generate()?;
    let keeper = keeper(key, false).await?;
    let (a, _) = runner(key, &keeper, |peer| {
        mint(&Claims::job(ISSUER, "o/a", &audience(peer)), Signer::Issuer)
    })
    .await?;
    let planted = entry_of(OTHER, 21);
    let refused = a
        .publish_until(&planted, OTHER, || async {
            keeper.counters().await.unbound >= 1
        })
        .await;
    assert!(
        refused,
        "a presenter is held to its token: {:?}",
        keeper.counters().await
    );
    assert!(!stored(&keeper.store, &planted).await);

    let silent = Daemon::following(key, &keeper.addr(), |c| c.listen = Vec::new()).await?;
    let theirs = entry_of(OTHER, 22);
    let kept = silent
        .publish_until(&theirs, OTHER, || stored(&keeper.store, &theirs))
        .await;
    assert!(kept, "a peer that presented nothing is taken as before");
    silent.stop().await?;
    a.stop().await?;
    keeper.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiring_tokens_without_a_key_set_is_refused_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(SwarmKey::generate()?);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.mdns = false;
    config.require_oidc = true;
    let refused = run(config, dir.path(), Arc::new(MemoryTier::new("l")), async {}).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("key set"), "{message}");
    Ok(())
}
