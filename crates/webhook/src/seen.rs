//! The delivery ids already taken, so that a delivery sent again is acknowledged and ignored.
//!
//! GitHub gives every delivery a GUID (`X-GitHub-Delivery`) and keeps it when a delivery is
//! redelivered. A delivery taken twice would only drop again what it dropped (and what was
//! fetched since), but one recorded by an attacker and replayed later would do that at will:
//! the signature covers the body, not the time.

use std::collections::{HashSet, VecDeque};

/// How many delivery ids are remembered. A busy organisation sends a few thousand deliveries
/// an hour; GitHub's redeliveries come within days, so an old id can be forgotten only where
/// its replay drops at most what a write would.
pub const REMEMBERED: usize = 65_536;

/// The last [`REMEMBERED`] delivery ids taken, oldest first out.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Records `id`; `false` if it was already there.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }

    /// Forgets `id`, taken but not handed on: GitHub's redelivery of it must be taken.
    pub(crate) fn forget(&mut self, id: &str) {
        if self.ids.remove(id) {
            self.order.retain(|seen| seen != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_taken_once_until_forgotten_and_the_oldest_go_first() {
        let mut seen = Seen::default();
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        seen.forget("a");
        assert!(seen.insert("a"));
        for n in 0..REMEMBERED {
            seen.insert(&n.to_string());
        }
        assert!(seen.insert("a"), "the oldest id was forgotten");
        assert!(!seen.insert(&(REMEMBERED - 1).to_string()));
        assert_eq!(seen.order.len(), REMEMBERED);
        assert_eq!(seen.ids.len(), REMEMBERED);
    }
}
