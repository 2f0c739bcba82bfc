//! How the daemon stops: a runner first hands what it announced lately to the connected
//! keepers, then closes its connections and waits for them to close, and applies the
//! invalidations peers sent before it goes. Nobody can fetch from a runner that nobody can dial
//! once it is gone, and a lost invalidation would leave a stale entry for the CLI to serve.

use std::time::Duration;

use ghcache_core::{Manifest, ScopeId};
use libp2p::futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::daemon::Command;
use crate::log::log;

use super::exchange::MAX_DIRECTORY_ASKS;
use super::state::Node;

/// How long a stopping daemon still spends applying invalidations it received.
const INVALIDATION_DRAIN: Duration = Duration::from_secs(5);
/// How long a stopping daemon waits for connected keepers to take what it announced lately.
const HANDOFF_DRAIN: Duration = Duration::from_secs(5);
/// How often a stopping daemon asks the keepers whether they hold what it announced: a keeper
/// fetches an entry in milliseconds once it heard of it.
const HANDOFF_POLL: Duration = Duration::from_millis(100);
/// How long a stopping daemon waits for its connections to close: a close takes a round trip.
const GOODBYE: Duration = Duration::from_secs(1);

impl Node {
    /// Before a runner goes: what it announced lately and no keeper is known to hold is
    /// announced again, and the node keeps serving for up to [`HANDOFF_DRAIN`], asking the
    /// connected keepers' directories every [`HANDOFF_POLL`] until each names its keeper as a
    /// holder. Nobody can fetch from a runner that nobody can dial once it is gone.
    pub(super) async fn hand_off(&mut self, commands: &mut mpsc::Receiver<Command>) {
        let now = Instant::now();
        let due = self.handoff_due(now);
        if due.is_empty() || self.keepers.is_empty() || !self.shared.role.hands_off() {
            return;
        }
        log(format_args!(
            "waiting up to {}s for keepers to take {} entries announced lately",
            HANDOFF_DRAIN.as_secs(),
            due.len()
        ));
        // A keeper that began to follow the scope after the first announcement never heard it.
        for manifest in &due {
            self.publish_announcement(manifest);
        }
        let until = now + HANDOFF_DRAIN;
        let mut poll = tokio::time::interval(HANDOFF_POLL);
        loop {
            let due = self.handoff_due(Instant::now());
            if due.is_empty() {
                log(format_args!("keepers hold what this node announced"));
                return;
            }
            if self.keepers.is_empty() {
                log(format_args!("stopping: no keeper is connected any more"));
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {
                    log(format_args!("stopping before keepers took every entry"));
                    return;
                }
                _ = poll.tick() => self.ask_keepers_again(&due),
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => self.on_command(command),
            }
        }
    }

    /// The handoff's entries that no connected keeper is known (from its directory) to hold.
    fn handoff_due(&mut self, now: Instant) -> Vec<Manifest> {
        let (directory, keepers) = (&self.directory, &self.keepers);
        self.handoff.due(now, |m| {
            keepers.iter().any(|k| directory.holds_as_new(m, k))
        })
    }

    /// Asks each connected keeper again for its directory of the scopes of `due`, unless a
    /// request about that scope is still in flight.
    fn ask_keepers_again(&mut self, due: &[Manifest]) {
        let mut scopes: Vec<ScopeId> = due.iter().map(|m| m.scope_id).collect();
        scopes.sort();
        scopes.dedup();
        let keepers: Vec<PeerId> = self.keepers.iter().copied().collect();
        for keeper in keepers {
            for scope_id in &scopes {
                let pending = self
                    .asking
                    .values()
                    .any(|asked| asked == &(keeper, *scope_id));
                if !pending && self.asking.len() < MAX_DIRECTORY_ASKS {
                    self.asked.remove(&(keeper, *scope_id));
                    self.ask_directory(keeper, *scope_id);
                }
            }
        }
    }

    /// Closes every connection and waits, up to [`GOODBYE`], until they are closed. A
    /// connection dropped with the process loses what it had not sent yet, such as the last
    /// answer to a keeper's fetch, which the keeper then never gets.
    pub(super) async fn close_connections(&mut self) {
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let until = Instant::now() + GOODBYE;
        while !self.connected.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
    }

    /// Applies, for up to [`INVALIDATION_DRAIN`], the invalidations peers sent that are still
    /// waiting for the store. (`&mut`, as the other steps of the stop: a `Node` is not `Sync`,
    /// and the daemon's future must stay `Send`.)
    pub(super) async fn drain_invalidations(&mut self) {
        let store = self.shared.store.clone();
        if tokio::time::timeout(
            INVALIDATION_DRAIN,
            self.shared.invalidations.drain(store.as_ref()),
        )
        .await
        .is_err()
        {
            log(format_args!(
                "stopped before every invalidation from peers was applied"
            ));
        }
    }
}
