//! GitHub's rate-limit budget, shared with the swarm (DESIGN.md, "The rate-limit budget").
//!
//! A command tells its daemon what GitHub said of a principal's budget (a `Budget` control
//! request); the daemon merges it into the machine's book and tells the scope's peers on its
//! gossip topic; a peer that hears it checks it (`check::plausible`) and merges it into its own
//! machine's book, so that a secondary limit met on one runner pauses the principal on every
//! runner of the scope. Only token and repository budgets travel: GitHub counts requests
//! without a token per IP address, which runners do not share.
//!
//! Two parts live here, apart from the event loop: [`MachineBook`], which writes news to the
//! book (a file, shared with the machine's commands) off the swarm task, and [`Outbox`], which
//! decides when news is sent: a new pause at once, readings at most once per [`DEBOUNCE`] per
//! principal and scope, the latest of them kept and sent when that time is up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ghcache_core::budget::{Book, BookStore, News, Principal};
use ghcache_core::ScopeId;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::log::log;

/// How often the news of one principal goes to one scope's peers when it carries no new pause:
/// readings change with every answer, and peers need the latest now and then, not each.
const DEBOUNCE: Duration = Duration::from_secs(10);
/// How often the node looks for held news whose time has come: a second late is no matter.
pub(crate) const SEND_HELD_EVERY: Duration = Duration::from_secs(1);
/// Principals (per scope) whose last news the outbox remembers: a machine runs gh under a few
/// tokens. Past it, the one sent to longest ago is forgotten (its next news goes at once).
const MAX_TRACKED: usize = 1024;

/// The machine's book as the daemon writes to it: news waits in one merged batch, which one
/// task writes at a time, so a flood of news from peers costs one write per batch, not a task
/// or a file write each, and memory no larger than a book.
pub(crate) struct MachineBook {
    store: Option<Arc<dyn BookStore>>,
    batch: Mutex<Batch>,
    ready: Notify,
    /// Peers' news written to the book (`status`'s `budget_news_applied`).
    applied: Arc<AtomicU64>,
}

#[derive(Default)]
struct Batch {
    book: Book,
    /// How many of the news merged into `book` came from peers.
    from_peers: u64,
    waiting: bool,
}

impl MachineBook {
    /// The book in `store` (none: news is only sent, never written), counting the peers' news
    /// written into `applied`.
    pub(crate) fn new(store: Option<Arc<dyn BookStore>>, applied: Arc<AtomicU64>) -> MachineBook {
        MachineBook {
            store,
            batch: Mutex::default(),
            ready: Notify::new(),
            applied,
        }
    }

    /// Queues `news` for the book; `from_peer` when a peer told it (counted once written).
    pub(crate) fn push(&self, news: News, from_peer: bool) {
        if self.store.is_none() {
            return;
        }
        {
            // One merge at a time; a panic in one leaves a book that is merely less complete.
            let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
            batch.book.merge(&news.into_book());
            batch.from_peers += u64::from(from_peer);
            batch.waiting = true;
        }
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Batch> {
        let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
        batch.waiting.then(|| std::mem::take(&mut *batch))
    }

    /// Writes what waits, then returns.
    pub(crate) async fn drain(&self) {
        let Some(store) = &self.store else {
            return;
        };
        while let Some(batch) = self.take() {
            let store = store.clone();
            let Batch {
                book, from_peers, ..
            } = batch;
            // A file under a lock: not on the async threads, which the swarm runs on.
            let written =
                tokio::task::spawn_blocking(move || store.update(&mut |kept| kept.merge(&book)))
                    .await;
            match written {
                Ok(Ok(())) => {
                    self.applied.fetch_add(from_peers, Ordering::Relaxed);
                }
                Ok(Err(e)) => log(format_args!("cannot write the rate-limit book: {e}")),
                Err(e) => log(format_args!("cannot write the rate-limit book: {e}")),
            }
        }
    }

    /// The book as stored now (with news still waiting to be written left out), read off the
    /// async threads; an empty one without a store.
    pub(crate) async fn load(&self) -> Book {
        let Some(store) = self.store.clone() else {
            return Book::default();
        };
        tokio::task::spawn_blocking(move || store.load())
            .await
            .unwrap_or_default()
    }

    /// Writes news to the book as it arrives, forever.
    pub(crate) async fn write(&self) {
        loop {
            let ready = self.ready.notified();
            self.drain().await;
            ready.await;
        }
    }
}

/// What was last sent of one principal to one scope's peers.
#[derive(Debug)]
struct Sent {
    at: Instant,
    /// When the latest pause sent began.
    pause_since_ms: Option<u64>,
    /// News that came within [`DEBOUNCE`] of `at`, merged: sent when that time is up.
    held: Option<News>,
}

/// When this machine's news goes to the peers (see the module doc). It keeps, rather than
/// drops, news held back: the readings a command heard last are the ones peers should have,
/// and they may be the last for a while (the runner's job ends).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    sent: HashMap<(ScopeId, Principal), Sent>,
}

impl Outbox {
    /// `news` for `scope_id`'s peers at `now`: returned to be sent now when it carries a pause
    /// that began after the last one sent, or nothing was sent of its principal to that scope
    /// within [`DEBOUNCE`] (with what was held back merged in); else held, merged with what
    /// was held before, until [`Outbox::due`].
    pub(crate) fn offer(&mut self, scope_id: ScopeId, news: News, now: Instant) -> Option<News> {
        let key = (scope_id, news.principal.clone());
        let Some(sent) = self.sent.get_mut(&key) else {
            return Some(news);
        };
        let new_pause = news
            .standing
            .pause
            .is_some_and(|p| sent.pause_since_ms.is_none_or(|since| p.since_ms > since));
        let news = merged(sent.held.take(), news);
        if new_pause || now >= sent.at + DEBOUNCE {
            return Some(news);
        }
        sent.held = Some(news);
        None
    }

    /// Records that `news` went to `scope_id`'s peers at `now`; `true` when it carried a pause
    /// that began after any sent before.
    pub(crate) fn sent(&mut self, scope_id: ScopeId, news: &News, now: Instant) -> bool {
        let key = (scope_id, news.principal.clone());
        let pause = news.standing.pause.map(|p| p.since_ms);
        if !self.sent.contains_key(&key) && self.sent.len() >= MAX_TRACKED {
            let oldest = self
                .sent
                .iter()
                .min_by_key(|(_, sent)| sent.at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.sent.remove(&oldest);
            }
        }
        let sent = self.sent.entry(key).or_insert(Sent {
            at: now,
            pause_since_ms: None,
            held: None,
        });
        sent.at = now;
        let new_pause = pause.is_some() && pause > sent.pause_since_ms;
        sent.pause_since_ms = sent.pause_since_ms.max(pause);
        new_pause
    }

    /// The news held back whose [`DEBOUNCE`] is up at `now`, to be sent (and recorded with
    /// [`Outbox::sent`] once it is: held news whose sending fails is gone, as news offered when
    /// no peer listens).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(ScopeId, News)> {
        let mut due = Vec::new();
        for ((scope_id, _), sent) in &mut self.sent {
            if now >= sent.at + DEBOUNCE {
                if let Some(news) = sent.held.take() {
                    due.push((*scope_id, news));
                }
            }
        }
        due
    }
}

/// `news` with what `held` knows that it does not (the newest of each reading, the latest
/// pause).
fn merged(held: Option<News>, news: News) -> News {
    let Some(held) = held else {
        return news;
    };
    let principal = news.principal.clone();
    let mut book = held.into_book();
    book.merge(&news.into_book());
    let standing = book.standing(&principal).cloned().unwrap_or_default();
    News {
        principal,
        standing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::budget::{Pause, Reading, Standing};

    fn news(pause_since: Option<u64>, readings: &[(&str, u64, u64)]) -> News {
        let mut standing = Standing {
            pause: pause_since.map(|since_ms| Pause {
                since_ms,
                until_ms: since_ms + 60_000,
                strikes: 0,
            }),
            ..Standing::default()
        };
        for (resource, remaining, at_ms) in readings {
            let reading = Reading {
                resource: (*resource).to_owned(),
                limit: 5000,
                remaining: *remaining,
                used: 5000 - remaining,
                reset_s: 1_700_003_600,
                at_ms: *at_ms,
            };
            standing.readings.insert(reading.resource.clone(), reading);
        }
        News {
            principal: Principal::of(None, None),
            standing,
        }
    }

    /// Offers `news`, and records it sent when it goes.
    fn offer(outbox: &mut Outbox, news: News, now: Instant) -> Option<News> {
        let scope = ScopeId::of("team");
        let out = outbox.offer(scope, news, now)?;
        outbox.sent(scope, &out, now);
        Some(out)
    }

    #[test]
    fn readings_go_at_most_once_per_debounce_and_the_latest_follows() {
        let mut outbox = Outbox::default();
        let t0 = Instant::now();
        let first = news(None, &[("core", 100, 1)]);
        assert_eq!(offer(&mut outbox, first.clone(), t0), Some(first));
        let core = news(None, &[("core", 90, 2)]);
        let graphql = news(None, &[("graphql", 40, 3)]);
        assert_eq!(offer(&mut outbox, core, t0 + Duration::from_secs(1)), None);
        assert_eq!(
            offer(&mut outbox, graphql, t0 + Duration::from_secs(2)),
            None
        );
        assert!(outbox.due(t0 + Duration::from_secs(9)).is_empty());
        let due = outbox.due(t0 + DEBOUNCE);
        let both = news(None, &[("core", 90, 2), ("graphql", 40, 3)]);
        assert_eq!(
            due,
            vec![(ScopeId::of("team"), both)],
            "merged, newest of each"
        );
        assert!(outbox.due(t0 + DEBOUNCE * 2).is_empty(), "sent once");
    }

    #[test]
    fn a_new_pause_goes_at_once_with_what_was_held() {
        let mut outbox = Outbox::default();
        let t0 = Instant::now();
        let first = news(Some(1_000), &[]);
        assert!(offer(&mut outbox, first.clone(), t0).is_some());
        // The same pause again, with readings: nothing new but readings, so held.
        let again = news(Some(1_000), &[("core", 5, 2)]);
        assert_eq!(offer(&mut outbox, again, t0 + Duration::from_secs(1)), None);
        let later = news(Some(2_000), &[]);
        let sent = offer(&mut outbox, later, t0 + Duration::from_secs(2));
        assert_eq!(sent, Some(news(Some(2_000), &[("core", 5, 2)])));
        assert!(
            outbox.due(t0 + DEBOUNCE * 2).is_empty(),
            "nothing left held"
        );
        // An older pause is no news.
        let older = news(Some(1_500), &[]);
        assert_eq!(offer(&mut outbox, older, t0 + Duration::from_secs(3)), None);
    }

    #[test]
    fn news_not_sent_is_not_held_against_the_next() {
        let mut outbox = Outbox::default();
        let t0 = Instant::now();
        let scope = ScopeId::of("team");
        // Offered but never sent (no peer listened): the next goes at once.
        assert!(outbox
            .offer(scope, news(None, &[("core", 1, 1)]), t0)
            .is_some());
        assert!(outbox
            .offer(scope, news(None, &[("core", 1, 2)]), t0)
            .is_some());
        // Another scope's peers are told on their own.
        assert!(offer(&mut outbox, news(None, &[("core", 1, 3)]), t0).is_some());
        let other = ScopeId::of("other");
        assert!(outbox
            .offer(other, news(None, &[("core", 1, 4)]), t0)
            .is_some());
    }

    #[test]
    fn the_outbox_remembers_a_bounded_number_of_principals() {
        let mut outbox = Outbox::default();
        let t0 = Instant::now();
        for n in 0..MAX_TRACKED + 10 {
            let at = t0 + Duration::from_millis(n as u64);
            outbox.sent(ScopeId::of(&n.to_string()), &news(None, &[]), at);
        }
        assert_eq!(outbox.sent.len(), MAX_TRACKED);
    }

    /// A book in memory.
    #[derive(Default)]
    struct Memory(Mutex<Book>);

    impl BookStore for Memory {
        fn load(&self) -> Book {
            self.0.lock().map(|b| b.clone()).unwrap_or_default()
        }

        fn update(&self, change: &mut dyn FnMut(&mut Book)) -> std::io::Result<()> {
            let mut book = self
                .0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            change(&mut book);
            Ok(())
        }
    }

    #[tokio::test]
    async fn news_is_written_to_the_book_and_peers_news_is_counted() {
        let memory = Arc::new(Memory::default());
        let applied = Arc::new(AtomicU64::new(0));
        let book = MachineBook::new(Some(memory.clone()), applied.clone());
        book.push(news(Some(5), &[("core", 10, 1)]), true);
        book.push(news(None, &[("core", 9, 2)]), true);
        book.push(news(None, &[("graphql", 8, 3)]), false);
        book.drain().await;
        let expected = news(Some(5), &[("core", 9, 2), ("graphql", 8, 3)]).into_book();
        assert_eq!(memory.load(), expected);
        assert_eq!(applied.load(Ordering::Relaxed), 2, "the peers' two");
        book.drain().await;
        assert_eq!(applied.load(Ordering::Relaxed), 2, "written once");

        let nowhere = MachineBook::new(None, applied.clone());
        nowhere.push(news(Some(6), &[]), true);
        nowhere.drain().await;
        assert_eq!(
            applied.load(Ordering::Relaxed),
            2,
            "no book, nothing applied"
        );
    }
}
