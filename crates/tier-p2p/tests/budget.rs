//! GitHub's rate-limit budget across the swarm, with real daemons on loopback: a secondary
//! limit met on one runner pauses the principal on the other runners of the scope; news off
//! its scope's topic or that cannot be so is not taken; readings are not sent more than once
//! per 10 s per principal, and the latest follows.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ghcache_core::budget::{
    Book, BookStore, BudgetShare as _, News, Pause, Principal, Reading, Standing,
};
use ghcache_core::{now_ms, ScopeId, TokenHash};
use ghcache_tier_p2p::wire::Gossip;
use ghcache_tier_p2p::{Config, Keypair, Multiaddr, SwarmKey, SwarmKeyExt as _, Tier};
use libp2p::futures::StreamExt;
use libp2p::{gossipsub, Swarm};
use tokio::sync::mpsc;

mod harness;
use harness::{wait_for, Daemon};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);
/// How often a principal's readings go to a scope's peers at most.
const DEBOUNCE: Duration = Duration::from_secs(10);

fn scope() -> ScopeId {
    ScopeId::of("budget-scope")
}

/// A machine's book in memory.
#[derive(Default)]
struct MemoryBook(Mutex<Book>);

impl BookStore for MemoryBook {
    fn load(&self) -> Book {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, change: &mut dyn FnMut(&mut Book)) -> std::io::Result<()> {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(())
    }
}

impl MemoryBook {
    /// The pause kept for `principal`, if any.
    fn pause(&self, principal: &Principal) -> Option<Pause> {
        self.load().standing(principal)?.pause
    }

    /// What is left of `principal`'s core budget, as kept.
    fn core_left(&self, principal: &Principal) -> Option<u64> {
        let book = self.load();
        Some(book.standing(principal)?.readings.get("core")?.remaining)
    }
}

impl Daemon {
    /// A daemon that follows `scope()` from the start and keeps its machine's book in `book`.
    async fn with_book(
        key: SwarmKey,
        bootstrap: &[Multiaddr],
        book: &Arc<MemoryBook>,
    ) -> Result<Daemon, Box<dyn std::error::Error>> {
        let book: Arc<dyn BookStore> = book.clone();
        Daemon::start(key, bootstrap, |config: &mut Config| {
            config.scopes = vec![scope()];
            config.book = Some(book);
        })
        .await
    }

    /// The CLI's adapter to this daemon, in `scope()`.
    async fn tier(&self) -> Result<Tier, Box<dyn std::error::Error>> {
        self.tier_in(scope(), Duration::from_millis(150)).await
    }
}

/// The principal of the token whose hash starts with `n`.
fn principal(n: u8) -> Principal {
    Principal::of(Some(&TokenHash([n; 32])), None)
}

/// News of `principal`: a pause that began now and lasts `lasts`.
fn paused(principal: &Principal, lasts: Duration) -> News {
    let since_ms = now_ms();
    News {
        principal: principal.clone(),
        standing: Standing {
            pause: Some(Pause {
                since_ms,
                until_ms: since_ms + lasts.as_millis() as u64,
                strikes: 0,
            }),
            ..Standing::default()
        },
    }
}

/// News of `principal`: `remaining` core requests left, read `remaining` ms ago (so that of
/// two made one after the other, the one with fewer left is the newer, even within a ms).
fn left(principal: &Principal, remaining: u64) -> News {
    let now = now_ms();
    let reading = Reading {
        resource: "core".into(),
        limit: 5000,
        remaining,
        used: 5000 - remaining,
        reset_s: now / 1000 + 3600,
        at_ms: now - remaining,
    };
    let mut standing = Standing::default();
    standing.readings.insert(reading.resource.clone(), reading);
    News {
        principal: principal.clone(),
        standing,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_met_on_one_runner_pauses_the_principal_on_the_other() -> TestResult {
    let key = SwarmKey::generate()?;
    let (a_book, b_book) = (Arc::default(), Arc::<MemoryBook>::default());
    let a = Daemon::with_book(key, &[], &a_book).await?;
    let b = Daemon::with_book(key, &a.addr(), &b_book).await?;
    let a_tier = a.tier().await?;
    let token = principal(1);
    // Until the daemons' gossip meshes form, nobody hears: each try is a new pause, which the
    // daemon sends at once.
    let heard = wait_for(WAIT, || async {
        let news = paused(&token, Duration::from_secs(60));
        a_tier.share(&news).await;
        wait_for(Duration::from_millis(300), || async {
            (b_book.pause(&token)? == news.standing.pause?).then_some(())
        })
        .await
    })
    .await;
    assert!(
        heard.is_some(),
        "b's book has a's pause: {:?}",
        b.status().await
    );
    let until = b_book.load().paused_until(&token, now_ms());
    assert!(until.is_some());
    // B's status shows the pause its peer met, read from its machine's book.
    let shown = b.status().await.rate_limits;
    let of_token = shown.iter().find(|s| s.principal == token.as_str());
    assert_eq!(of_token.and_then(|s| s.paused_until_ms), until, "{shown:?}");
    assert!(a_book.pause(&token).is_some(), "a's own book has it too");
    let counters = b.counters().await;
    assert!(counters.budget_news_received >= 1, "{counters:?}");
    assert!(counters.budget_news_applied >= 1, "{counters:?}");
    assert_eq!(counters.budget_news_refused, 0);
    assert!(a.counters().await.budget_news_sent >= 1);
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_within_ten_seconds_of_the_last_are_held_then_sent() -> TestResult {
    let key = SwarmKey::generate()?;
    let (a_book, b_book) = (Arc::default(), Arc::<MemoryBook>::default());
    let a = Daemon::with_book(key, &[], &a_book).await?;
    let b = Daemon::with_book(key, &a.addr(), &b_book).await?;
    let a_tier = a.tier().await?;
    // The meshes first, with pauses of another principal.
    let other = principal(2);
    let meshed = wait_for(WAIT, || async {
        a_tier
            .share_budget(&paused(&other, Duration::from_secs(60)))
            .await
            .ok()?;
        wait_for(Duration::from_millis(300), || async {
            b_book.pause(&other).map(drop)
        })
        .await
    })
    .await;
    assert!(meshed.is_some(), "a's news reaches b");

    let token = principal(3);
    let start = Instant::now();
    a_tier.share_budget(&left(&token, 100)).await?;
    let first = wait_for(WAIT, || async {
        (b_book.core_left(&token)? == 100).then_some(())
    })
    .await;
    assert!(first.is_some(), "the first reading goes at once");
    let sent = a.counters().await.budget_news_sent;

    a_tier.share_budget(&left(&token, 90)).await?;
    a_tier.share_budget(&left(&token, 80)).await?;
    // The status is asked after both were handled: the daemon takes its requests in order.
    assert_eq!(a.counters().await.budget_news_sent, sent, "held, not sent");
    assert_eq!(b_book.core_left(&token), Some(100));
    let own = wait_for(WAIT, || async {
        (a_book.core_left(&token)? == 80).then_some(())
    })
    .await;
    assert!(
        own.is_some(),
        "a's own book has the latest without waiting for the peers"
    );
    assert!(
        start.elapsed() < DEBOUNCE,
        "the test ran too slowly to show the hold"
    );
    assert_eq!(b_book.core_left(&token), Some(100), "b still has the first");

    let latest = wait_for(WAIT, || async {
        (b_book.core_left(&token)? == 80).then_some(start.elapsed())
    })
    .await;
    let Some(after) = latest else {
        panic!(
            "the latest reading never followed: {:?}",
            a.counters().await
        );
    };
    assert!(after >= DEBOUNCE, "sent {after:?} after the first");
    assert_eq!(
        a.counters().await.budget_news_sent,
        sent + 1,
        "once, merged"
    );
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

/// A swarm member that speaks only gossipsub, dials `to`, and publishes on `scope()`'s topic
/// each message sent on the channel it returns, once someone there listens.
fn publisher(
    key: SwarmKey,
    to: Multiaddr,
) -> Result<mpsc::Sender<Vec<u8>>, Box<dyn std::error::Error>> {
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
    let topic = gossipsub::IdentTopic::new(format!("ghcache/v1/{}", scope().to_hex()));
    let (messages, mut next) = mpsc::channel::<Vec<u8>>(8);
    tokio::spawn(async move {
        let mut retry = tokio::time::interval(Duration::from_millis(50));
        let mut waiting: Option<Vec<u8>> = None;
        loop {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                Some(message) = next.recv(), if waiting.is_none() => waiting = Some(message),
                _ = retry.tick(), if waiting.is_some() => {
                    if let Some(message) = waiting.take() {
                        let published = swarm
                            .behaviour_mut()
                            .publish(topic.clone(), message.clone());
                        if published.is_err() {
                            // Nobody known to listen yet: the daemon's subscription is on its way.
                            waiting = Some(message);
                        }
                    }
                }
            }
        }
    });
    Ok(messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn news_off_its_scopes_topic_or_that_cannot_be_so_is_not_taken() -> TestResult {
    let key = SwarmKey::generate()?;
    let book = Arc::<MemoryBook>::default();
    let b = Daemon::with_book(key, &[], &book).await?;
    let to = b.addr().pop().ok_or("b listens")?;
    let peer = publisher(key, to)?;
    let budget = |scope_id: ScopeId, news: &News| {
        Gossip::Budget {
            scope_id,
            news: news.clone(),
        }
        .encode()
    };

    // A pause of a day: no secondary limit asks for that.
    let day = principal(4);
    peer.send(budget(scope(), &paused(&day, Duration::from_secs(86_400))))
        .await?;
    let refused = wait_for(WAIT, || async {
        (b.counters().await.budget_news_refused >= 1).then_some(())
    })
    .await;
    assert!(refused.is_some(), "{:?}", b.counters().await);

    // The same peer's plausible news is taken: what it sends does reach the book.
    let minute = principal(5);
    peer.send(budget(scope(), &paused(&minute, Duration::from_secs(60))))
        .await?;
    let taken = wait_for(WAIT, || async { book.pause(&minute).map(drop) }).await;
    assert!(taken.is_some(), "{:?}", b.counters().await);
    assert_eq!(book.pause(&day), None, "the day-long pause was not taken");

    // News of another scope on this scope's topic: a lie, refused and counted.
    let elsewhere = principal(6);
    let rejected = b.counters().await.rejected;
    let news = paused(&elsewhere, Duration::from_secs(60));
    peer.send(budget(ScopeId::of("another scope"), &news))
        .await?;
    let counted = wait_for(WAIT, || async {
        (b.counters().await.rejected > rejected).then_some(())
    })
    .await;
    assert!(counted.is_some(), "{:?}", b.counters().await);
    assert_eq!(book.pause(&elsewhere), None);
    let counters = b.counters().await;
    assert_eq!(
        (counters.budget_news_received, counters.budget_news_refused),
        (2, 1),
        "{counters:?}"
    );
    b.stop().await?;
    Ok(())
}
