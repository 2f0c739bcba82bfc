//! What this node does for the swarm, decided once from its configuration.
//!
//! Every "may this node ..." of the daemon asks [`Role`]: what a read-only node holds back
//! (DESIGN.md: "`read_only` nodes consume but never announce or serve") is this one list, not a
//! flag checked wherever it matters.

use crate::config::Config;
use crate::error::Error;

/// A node's part in the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Finds entries, and announces, provides and serves what it fetched or found.
    Member,
    /// Consumes only (untrusted CI, such as fork PRs): finds entries and vouches for nothing.
    ReadOnly,
    /// A member that also keeps a copy of what its scopes' peers announce.
    Keeper,
}

impl Role {
    /// The role `config` asks for.
    ///
    /// # Errors
    /// [`Error::Node`] for a read-only keeper: a keeper serves what it keeps.
    pub(crate) fn of(config: &Config) -> Result<Role, Error> {
        match (config.keep, config.read_only) {
            (true, true) => Err(Error::Node(
                "a keeper serves what it keeps: keep and read-only exclude each other".into(),
            )),
            (true, false) => Ok(Role::Keeper),
            (false, true) => Ok(Role::ReadOnly),
            (false, false) => Ok(Role::Member),
        }
    }

    /// Signs and announces what this machine's CLI fetched (a publish).
    pub(crate) fn announces(self) -> bool {
        self != Role::ReadOnly
    }

    /// Names itself a holder of what it stored: in the DHT, and in its directory replies.
    pub(crate) fn provides(self) -> bool {
        self != Role::ReadOnly
    }

    /// Answers peers' fetches and directory requests.
    pub(crate) fn serves(self) -> bool {
        self != Role::ReadOnly
    }

    /// Tells the scope's peers about a write made on this machine.
    pub(crate) fn invalidates(self) -> bool {
        self != Role::ReadOnly
    }

    /// Tells the scope's peers what GitHub said of a rate-limit budget on this machine. Not a
    /// read-only node: its word is taken for nothing, and a pause it made up would hold back
    /// the principal's requests fleet-wide. It still writes what its commands and peers tell
    /// to its own machine's book.
    pub(crate) fn shares_budget(self) -> bool {
        self != Role::ReadOnly
    }

    /// Before it leaves, waits for keepers to take what it announced lately: only a node that
    /// announced has anything to hand off.
    pub(crate) fn hands_off(self) -> bool {
        self.announces()
    }

    /// Keeps a copy of what its scopes' peers announce.
    pub(crate) fn keeps(self) -> bool {
        self == Role::Keeper
    }

    /// How the daemon's first log line names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Role::Member => "",
            Role::ReadOnly => ", read-only",
            Role::Keeper => ", keeper",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm_key::{SwarmKey, SwarmKeyExt as _};

    #[test]
    fn a_read_only_node_vouches_for_nothing_and_cannot_keep() -> Result<(), Error> {
        let mut config = Config::new(SwarmKey::generate()?);
        config.read_only = true;
        let role = Role::of(&config)?;
        assert!(!role.announces() && !role.provides() && !role.serves());
        assert!(!role.invalidates() && !role.hands_off() && !role.keeps());
        assert!(!role.shares_budget());
        config.keep = true;
        assert!(Role::of(&config).is_err(), "a read-only keeper");
        config.read_only = false;
        let keeper = Role::of(&config)?;
        assert!(keeper.keeps() && keeper.serves() && keeper.announces());
        Ok(())
    }
}
