//! Writes, as the swarm hears of them: this machine's own (a local command sends
//! [`Command::Invalidate`](crate::daemon::Command::Invalidate)) and GitHub's, told by a webhook
//! delivery or a follow probe ([`crate::heard`]). Both drop what they cover here and tell the
//! peers of a scope with a signed invalidation.

use ghcache_core::event::HeardWrite;
use ghcache_core::policy::Resources;
use ghcache_core::{now_ms, InvalidationId, ScopeId};
use libp2p::gossipsub;

use super::state::Node;
use crate::heard;
use crate::log::log;
use crate::swarm::topic;
use crate::wire::{Gossip, Invalidation};

impl Node {
    /// This machine's write to `repo`, which the command recorded here as issued at `at_ms` (0:
    /// now): drops what it covers here and tells `scope_id`'s peers, with the same time, so that
    /// every machine knows it by the same [`InvalidationId`].
    pub(super) fn on_own_write(
        &mut self,
        scope_id: ScopeId,
        repo: String,
        resources: Option<Resources>,
        at_ms: u64,
    ) {
        let invalidation = Invalidation {
            scope_id,
            repo,
            resources,
            at_ms: match at_ms {
                0 => now_ms(),
                at => at,
            },
        };
        self.name_scope(scope_id);
        self.drop_covered(&invalidation.selector());
        self.send_invalidation(invalidation);
    }

    /// A write GitHub told of: dropped from the local store and from what this node knows, and
    /// sent on every scope it follows (a write changes GitHub for every scope; a peer follows
    /// the scopes it uses, so that is where its copies are).
    pub(super) fn on_heard_write(&mut self, source: usize, write: HeardWrite) {
        let name = self.sources.heard(source).to_owned();
        let scopes = self.topics.scopes();
        let at_ms = now_ms();
        for selector in heard::selectors(&write) {
            let id = InvalidationId::of(&selector, at_ms);
            self.shared.invalidations.push(selector.clone(), Some(id));
            self.drop_covered(&selector);
            for scope_id in &scopes {
                if let Some(invalidation) = Invalidation::of(*scope_id, &selector, at_ms) {
                    self.send_invalidation(invalidation);
                }
            }
        }
        log(format_args!(
            "{} from {name}: invalidated {} here and on {} scope(s)",
            write.what,
            write.trigger.about(),
            scopes.len()
        ));
    }

    /// Gossips `invalidation` on its scope's topic.
    fn send_invalidation(&mut self, invalidation: Invalidation) {
        self.remember(&invalidation);
        let what = match (invalidation.repo.as_str(), &invalidation.resources) {
            ("", None) => "everything".to_owned(),
            (repo, _) => repo.to_owned(),
        };
        let topic = topic(&invalidation.scope_id);
        let message = Gossip::Invalidation(invalidation);
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, message.encode())
        {
            Ok(_) => log(format_args!("sent invalidation of {what}")),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => log(format_args!("cannot send invalidation of {what}: {e}")),
        }
    }
}
