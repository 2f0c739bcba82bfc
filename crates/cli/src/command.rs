//! A gh command, classified once: the policy's decision (cached, a write, or gh untouched) and
//! the command word travel with the arguments, so that the steps after it (the lookup, the write's
//! invalidation, the HTTP level of the gh that runs) do not read the arguments again.

use ghcache_core::policy::{self, Decision};

/// gh commands (and their aliases) that change gh's own configuration: `auth` (hosts.yml, the
/// keyring), `config`, `alias`, `extension`.
const CHANGES_GH_CONFIG: [&str; 6] = ["auth", "config", "alias", "extension", "extensions", "ext"];

/// gh's arguments (without the leading `gh`) and what they were found to be.
pub(crate) struct Command {
    args: Vec<String>,
    decision: Decision,
    /// The first argument that is not a flag, if any.
    word: Option<usize>,
}

impl Command {
    /// Classifies gh's `args`.
    pub(crate) fn classify(args: Vec<String>) -> Command {
        let decision = policy::classify(&args);
        let word = args.iter().position(|a| !a.starts_with('-'));
        Command {
            args,
            decision,
            word,
        }
    }

    /// gh's arguments, as given.
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    /// What the policy decided.
    pub(crate) fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Whether gh may change its own configuration (`gh auth login`, `gh config set`, ...):
    /// what it writes must reach the user's own configuration directory.
    pub(crate) fn changes_gh_config(&self) -> bool {
        self.word
            .and_then(|i| self.args.get(i))
            .is_some_and(|word| CHANGES_GH_CONFIG.contains(&word.as_str()))
    }
}
