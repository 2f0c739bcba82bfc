//! Gossip as it arrives: what passes its checks is used and forwarded, the rest rejected.

use std::sync::atomic::Ordering;

use libp2p::{gossipsub, PeerId};

use super::state::Node;
use crate::check::{self, Heard};
use crate::log::log;
use crate::status::bump;

impl Node {
    /// App-level validation of a gossip message: only what passes its checks
    /// ([`check::gossip`]) is used, and forwarded to other peers.
    pub(super) fn on_gossip(
        &mut self,
        from: PeerId,
        message: gossipsub::Message,
    ) -> gossipsub::MessageAcceptance {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let Some(scope_id) = self.topics.scope(&message.topic) else {
            return Ignore;
        };
        let accept = &self.shared.accept;
        match check::gossip(accept, &scope_id, message.source, &message.data) {
            Err((reason, disconnect)) => {
                self.reject(from, &reason, disconnect);
                Reject
            }
            Ok(None) => Ignore,
            Ok(Some(Heard::Announcement { manifest, source })) => {
                bump(&self.shared.counters.announcements_received);
                self.note_repo(&manifest.repo);
                let over = self
                    .directory
                    .insert((*manifest).clone(), source, &[source]);
                self.shared
                    .counters
                    .over_share
                    .fetch_add(over as u64, Ordering::Relaxed);
                self.offer_to_keeper(*manifest, vec![source]);
                Accept
            }
            Ok(Some(Heard::Invalidation {
                invalidation: inv,
                source,
            })) => {
                bump(&self.shared.counters.invalidations_received);
                log(format_args!("invalidation of {} from {source}", inv.repo));
                self.remember(&inv);
                self.drop_covered(&inv.selector());
                self.shared
                    .invalidations
                    .push(inv.selector(), Some(inv.id()));
                Accept
            }
            Ok(Some(Heard::Budget { news, .. })) => {
                self.on_budget_news(news);
                Accept
            }
            Ok(Some(Heard::ImplausibleBudget { reason, source })) => {
                self.on_implausible_budget(reason, source);
                Ignore
            }
        }
    }
}
