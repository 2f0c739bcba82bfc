//! Which of GitHub's writes the node hears (see [`crate::hearing`]): what it vouches for to a
//! peer that asks, and the report it keeps for its machine's commands.

use ghcache_core::heard::Cover;
use ghcache_core::ScopeId;
use tokio::time::Instant;

use super::state::Node;
use crate::hearing::Known;
use crate::status::HeardStatus;
use crate::wire::{CatchUp, Vouch};

impl Node {
    /// What this node vouches it hears, for a peer's catch-up `request`: its own sources'
    /// covers, and the scopes asked on which it sends what they hear. Nothing from a node with
    /// a gap of its own (what it sent may have missed the asker as what it was sent missed it).
    pub(super) fn vouch_for(&self, request: &CatchUp) -> Vouch {
        if self.catch_up.gap.is_some() {
            return Vouch::default();
        }
        let since = self.catch_up.in_touch_since_ms;
        let covers: Vec<Cover> = self
            .sources
            .covers()
            .iter()
            .map(|cover| cover.since_at_least(since))
            .collect();
        if covers.is_empty() {
            return Vouch::default();
        }
        let scopes = request
            .scopes
            .iter()
            .filter_map(|scope| Some((*scope, self.topics.joined_since(scope)?)))
            .collect();
        Vouch { covers, scopes }
    }

    /// Tells this machine's commands what is heard now: the report is rewritten when that
    /// changed or is due, and removed when nothing is (a gap, the last vouching peer gone, a
    /// source paused).
    pub(super) fn hear(&mut self) {
        let topics = &self.topics;
        let joined_since = |scope: &ScopeId| topics.joined_since(scope);
        let known = Known {
            own: self.sources.covers(),
            gap: self.catch_up.gap.is_some(),
            in_touch_since_ms: self.catch_up.in_touch_since_ms,
            joined_since: &joined_since,
        };
        self.catch_up.hearing.refresh(&known, Instant::now());
    }

    /// What `daemon status` says of what is heard.
    pub(super) fn heard_status(&self) -> Vec<HeardStatus> {
        let topics = &self.topics;
        let joined_since = |scope: &ScopeId| topics.joined_since(scope);
        let known = Known {
            own: self.sources.covers(),
            gap: self.catch_up.gap.is_some(),
            in_touch_since_ms: self.catch_up.in_touch_since_ms,
            joined_since: &joined_since,
        };
        self.catch_up.hearing.status(&known)
    }
}
