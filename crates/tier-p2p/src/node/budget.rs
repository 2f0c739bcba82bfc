//! Rate-limit news (see [`crate::budget`]): this machine's, sent on its scope's topic as the
//! outbox allows, and peers', written to the machine's book once checked.

use ghcache_core::budget::News;
use ghcache_core::{now_ms, ScopeId};
use libp2p::{gossipsub, PeerId};
use tokio::time::Instant;

use super::state::Node;
use crate::check;
use crate::log::log;
use crate::status::bump;
use crate::swarm::topic;
use crate::wire::Gossip;

impl Node {
    /// What a command of this machine heard of a principal's budget, for `scope_id`'s peers:
    /// sent now or held by the outbox, without what peers would find implausible.
    pub(super) fn on_own_budget(&mut self, scope_id: ScopeId, news: News) {
        self.name_scope(scope_id);
        let Some(news) = check::plausible_part(news, now_ms(), self.shared.accept.skew) else {
            return;
        };
        let now = Instant::now();
        if let Some(news) = self.outbox.offer(scope_id, news, now) {
            self.send_budget(scope_id, news, now);
        }
    }

    /// Sends the news the outbox held back whose time has come.
    pub(super) fn send_held_budget(&mut self, now: Instant) {
        for (scope_id, news) in self.outbox.due(now) {
            self.send_budget(scope_id, news, now);
        }
    }

    /// Gossips `news` on `scope_id`'s topic.
    fn send_budget(&mut self, scope_id: ScopeId, news: News, now: Instant) {
        let principal = news.principal.clone();
        let pause = news.standing.pause;
        let message = Gossip::Budget { scope_id, news };
        let published = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic(&scope_id), message.encode());
        match published {
            Ok(_) => {
                bump(&self.shared.counters.budget_news_sent);
                let new_pause = match &message {
                    Gossip::Budget { news, .. } => self.outbox.sent(scope_id, news, now),
                    _ => false,
                };
                if let Some(pause) = pause.filter(|_| new_pause) {
                    let secs = pause.until_ms.saturating_sub(now_ms()).div_ceil(1000);
                    log(format_args!(
                        "told the peers of {principal}'s secondary rate limit ({secs}s pause)"
                    ));
                }
            }
            // Nobody of this scope is online: nobody to tell, and the next news goes at once.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => log(format_args!(
                "cannot send {principal}'s rate-limit news: {e}"
            )),
        }
    }

    /// A peer's news that passed its checks: written to the machine's book. Not logged: a
    /// principal's news comes every few seconds while its commands run, and `daemon status`
    /// counts it.
    pub(super) fn on_budget_news(&mut self, news: News) {
        bump(&self.shared.counters.budget_news_received);
        self.shared.book.push(news, true);
    }

    /// A peer's news that cannot be so: counted and said, not used.
    pub(super) fn on_implausible_budget(&mut self, reason: &str, source: PeerId) {
        bump(&self.shared.counters.budget_news_received);
        bump(&self.shared.counters.budget_news_refused);
        log(format_args!(
            "ignored rate-limit news from {source}: {reason}"
        ));
    }
}
