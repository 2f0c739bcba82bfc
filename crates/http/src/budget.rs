//! GitHub's rate limits at the HTTP level (DESIGN.md, "The rate-limit budget"): every answer's
//! `x-ratelimit-*` goes into the machine's book, a secondary limit pauses the principal's
//! requests (here and, through the book, in every other gh run of the machine), and a request
//! of a paused principal waits the pause out, up to a bound, before it is sent.
//!
//! Readings are written to the book once per gh run ([`Gate::flush`]); a pause at once, so that
//! a gh running beside this one holds back too. Where the machine is in a swarm, both are told
//! to its peers ([`BudgetShare`]): a pause at once, readings when the run is done.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ghcache_core::budget::{
    Book, BookStore, BudgetShare, InFlight, News, Pause, Principal, Refusal, Shortage, Slot,
    Standing,
};

/// How often a request waiting for a slot looks again.
const SLOT_POLL: Duration = Duration::from_millis(10);
use ghcache_core::{now_ms, TokenHash};
use hyper::header::HeaderMap;

/// Requests of a paused principal wait its pause out, up to a bound; answers GitHub gave are
/// written into the book.
pub struct Gate {
    store: Arc<dyn BookStore>,
    /// Where the peers are told, if the machine is in a swarm.
    share: Option<Arc<dyn BudgetShare>>,
    /// The slots of requests in flight per principal on this machine, and how many.
    in_flight: Option<(Arc<dyn InFlight>, usize)>,
    /// The declared job token and its repository, whose budget all its jobs share.
    job: Option<(TokenHash, String)>,
    /// The longest a request waits for a pause to end; a longer pause is not waited for (the
    /// request is sent, and GitHub answers as it would have answered gh).
    wait_max: Duration,
    /// Readings of this run, written at [`Gate::flush`].
    heard: Mutex<Book>,
    /// Requests that waited, and for how long in all (ms).
    waits: AtomicU64,
    waited_ms: AtomicU64,
    /// Writes that waited to be spaced, and for how long in all (ms).
    paced: AtomicU64,
    paced_ms: AtomicU64,
    /// Requests that found every slot of their principal taken.
    crowded: AtomicU64,
    /// The pause whose wait was told on stderr (its end, ms): one line per pause.
    told: Mutex<Option<u64>>,
}

/// What to do with an answer after [`Gate::heard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Pass it on.
    Pass,
    /// A secondary limit that a wait within the bound ends: send the request again once the
    /// pause is over (a read; a write only because the refusal proves it was not applied).
    Retry,
}

impl Gate {
    /// A gate over `store` (see the type), with `job` the declared job token, if any.
    pub fn new(
        store: Arc<dyn BookStore>,
        job: Option<(TokenHash, String)>,
        wait_max: Duration,
    ) -> Gate {
        Gate {
            store,
            share: None,
            in_flight: None,
            job,
            wait_max,
            heard: Mutex::default(),
            waits: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
            paced: AtomicU64::new(0),
            paced_ms: AtomicU64::new(0),
            crowded: AtomicU64::new(0),
            told: Mutex::default(),
        }
    }

    /// Tells the peers through `share` what GitHub said (see the module doc).
    pub fn with_share(mut self, share: Arc<dyn BudgetShare>) -> Gate {
        self.share = Some(share);
        self
    }

    /// Keeps at most `cap` requests of a principal in flight on this machine at once, in
    /// `slots` (see [`Gate::slot`]).
    pub fn with_in_flight(mut self, slots: Arc<dyn InFlight>, cap: usize) -> Gate {
        self.in_flight = Some((slots, cap.max(1)));
        self
    }

    /// A slot for a request of `principal`, held while it is in flight: taken at once when
    /// one is free, else when one is given back (by this or another gh run of the machine),
    /// waiting at most the bound; then the request goes without one (`None`).
    pub async fn slot(&self, principal: &Principal) -> Option<Slot> {
        let (slots, cap) = self.in_flight.as_ref()?;
        let started = std::time::Instant::now();
        let mut counted = false;
        loop {
            if let Some(slot) = slots.try_take(principal, *cap) {
                return Some(slot);
            }
            if !counted {
                counted = true;
                self.crowded.fetch_add(1, Ordering::Relaxed);
            }
            if started.elapsed() >= self.wait_max {
                return None;
            }
            tokio::time::sleep(SLOT_POLL).await;
        }
    }

    /// Who GitHub counts a request with the token whose hash is `token` against.
    pub fn principal(&self, token: Option<&TokenHash>) -> Principal {
        Principal::of(token, self.job.as_ref().map(|(t, repo)| (t, repo.as_str())))
    }

    /// Whether `principal` is short of budget now: paused, or at or below `reserve`.
    pub fn short(&self, principal: &Principal, reserve: u64) -> Option<Shortage> {
        let now = now_ms();
        let mut book = self.store.load();
        if let Ok(heard) = self.heard.lock() {
            book.merge(&heard);
        }
        book.short(principal, reserve, now)
    }

    /// Waits until `principal`'s pause is over, if it has one that ends within the bound; says
    /// so on stderr, once per pause.
    pub async fn before_send(&self, principal: &Principal) {
        let now = now_ms();
        let Some(until_ms) = self.store.load().paused_until(principal, now) else {
            return;
        };
        let wait = Duration::from_millis(until_ms - now);
        let first = self
            .told
            .lock()
            .map(|mut told| told.replace(until_ms) != Some(until_ms))
            .unwrap_or(true);
        if wait > self.wait_max {
            if first {
                let _ = writeln!(
                    std::io::stderr(),
                    "ghcache: GitHub's secondary rate limit holds requests back for {}s more, \
                     longer than GH_CACHE_RATE_LIMIT_WAIT ({}s): sending anyway",
                    wait.as_secs().max(1),
                    self.wait_max.as_secs()
                );
            }
            return;
        }
        if first {
            let _ = writeln!(
                std::io::stderr(),
                "ghcache: GitHub's secondary rate limit: waiting {:.1}s before sending",
                wait.as_secs_f64()
            );
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.waited_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }

    /// Waits until a write of `principal` may be sent: a second after the principal's last
    /// write on this machine or a peer's it heard of, and no more than 80 in a minute
    /// ([`Book::next_write`]), as GitHub asks of writes. Its time is taken at once, so that
    /// writes of gh runs beside this one are spaced after it. A wait longer than the bound is
    /// not made.
    pub async fn before_write(&self, principal: &Principal) {
        let now = now_ms();
        let mut at = now;
        if self
            .store
            .update(&mut |book| at = book.next_write(principal, now))
            .is_err()
        {
            return;
        }
        let wait = Duration::from_millis(at.saturating_sub(now));
        if wait.is_zero() || wait > self.wait_max {
            return;
        }
        self.paced.fetch_add(1, Ordering::Relaxed);
        self.paced_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }

    /// Takes in what GitHub answered a request of `principal` with: its reading, and a
    /// secondary limit's pause (stored at once). `body` is what was read of the answer (a
    /// refusal's message).
    pub(crate) async fn heard(
        &self,
        principal: &Principal,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Next {
        let now = now_ms();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(reading) = ghcache_core::budget::Reading::from_headers(header, now) {
            if let Ok(mut heard) = self.heard.lock() {
                heard.observe(principal, reading);
            }
        }
        let Some(Refusal::Secondary { retry_after }) = Refusal::of(status, header, body) else {
            return Next::Pass;
        };
        let mut pause = None;
        let stored = self.store.update(&mut |book| {
            let previous = book.standing(principal).and_then(|s| s.pause);
            let next = Pause::after(previous.as_ref(), retry_after, now);
            book.pause(principal, next);
            pause = Some(next);
        });
        if stored.is_err() {
            // Not stored: this run still holds back, by its own book.
            let next = Pause::after(None, retry_after, now);
            if let Ok(mut heard) = self.heard.lock() {
                heard.pause(principal, next);
            }
            pause = Some(next);
        }
        if let (Some(share), Some(p)) = (&self.share, pause) {
            let mut standing = self
                .heard
                .lock()
                .ok()
                .and_then(|heard| heard.standing(principal).cloned())
                .unwrap_or_default();
            standing.pause = Some(p);
            let news = News {
                principal: principal.clone(),
                standing,
            };
            share.share(&news).await;
        }
        match pause {
            Some(p) if Duration::from_millis(p.until_ms.saturating_sub(now)) <= self.wait_max => {
                Next::Retry
            }
            _ => Next::Pass,
        }
    }

    /// Writes this run's readings into the book (the newest per resource wins), and tells the
    /// peers.
    pub async fn flush(&self) {
        let heard = match self.heard.lock() {
            Ok(mut heard) => std::mem::take(&mut *heard),
            Err(_) => return,
        };
        if heard.principals().next().is_none() {
            return;
        }
        let mut stored = Book::default();
        let _ = self.store.update(&mut |book| {
            book.merge(&heard);
            stored = book.clone();
        });
        if let Some(share) = &self.share {
            for (principal, standing) in heard.principals() {
                // With the writes the book holds (this run's among them), so that peers space
                // theirs after them.
                let writes = stored
                    .standing(principal)
                    .map(|s| s.writes.clone())
                    .unwrap_or_default();
                let news = News {
                    principal: principal.clone(),
                    standing: Standing {
                        writes,
                        ..standing.clone()
                    },
                };
                share.share(&news).await;
            }
        }
    }

    /// Requests that waited for a pause, and the milliseconds they waited in all.
    pub fn waits(&self) -> (u64, u64) {
        (
            self.waits.load(Ordering::Relaxed),
            self.waited_ms.load(Ordering::Relaxed),
        )
    }

    /// Writes that waited to be spaced, and the milliseconds they waited in all.
    pub fn paced(&self) -> (u64, u64) {
        (
            self.paced.load(Ordering::Relaxed),
            self.paced_ms.load(Ordering::Relaxed),
        )
    }
}
