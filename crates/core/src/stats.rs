//! Stats events: what happened while serving a request ([`Event`]), and the sinks that tiers
//! and the CLI persist them with ([`StatsSink`], [`Recorder`]).

use std::sync::Mutex;

/// Something that happened while serving a request; tiers and the CLI persist these as counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A fresh entry was served by this tier.
    Hit(&'static str),
    /// No tier had a fresh entry; the origin was asked.
    Miss,
    /// The command was not cacheable and went straight to gh.
    Bypassed,
    /// A stale entry was confirmed by a 304 (free against the rate limit).
    Revalidated,
    /// GitHub failed and a stale entry was served.
    StaleServed,
    /// A tier failed or timed out.
    Error(&'static str),
    /// A tier held an entry that failed its checks; it was dropped.
    Corrupt(&'static str),
}

/// Receives [`Event`]s. Must not block: the chain calls it on the hot path.
pub trait StatsSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: Event);
}

/// A sink that keeps events in memory until they are drained (the CLI persists them at exit).
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// Takes the events recorded so far.
    pub fn drain(&self) -> Vec<Event> {
        match self.events.lock() {
            Ok(mut events) => std::mem::take(&mut *events),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl StatsSink for Recorder {
    fn record(&self, event: Event) {
        match self.events.lock() {
            Ok(mut events) => events.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}
