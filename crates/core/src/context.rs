//! Who is asking and about which repository: pure parsers for the files gh itself reads.
//!
//! PLACEHOLDER API: bodies are being written; signatures are the contract.

/// A git remote from `.git/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Remote name (`origin`, `upstream`).
    pub name: String,
    /// Fetch URL.
    pub url: String,
    /// Value of `remote.<name>.gh-resolved` (gh's `gh repo set-default` marker), if any.
    pub gh_resolved: Option<String>,
}

/// Parses the `[remote "..."]` sections of a git config file.
pub fn parse_git_remotes(config: &str) -> Vec<Remote> {
    let _ = config;
    Vec::new()
}

/// `(host, owner, name)` of a GitHub remote URL (https, ssh, scp-like, git).
pub fn parse_remote_url(url: &str) -> Option<(String, String, String)> {
    let _ = url;
    None
}

/// The repository context gh would use, as `owner/name` lowercase, from remotes on `host`.
pub fn base_repo(remotes: &[Remote], host: &str) -> Option<String> {
    let _ = (remotes, host);
    None
}

/// Normalises a `-R` value (`owner/name`, `host/owner/name`, a URL) to lowercase `owner/name`.
pub fn normalize_repo(value: &str) -> Option<String> {
    let _ = value;
    None
}

/// The login for `host` in gh's `hosts.yml`, if any.
pub fn login_from_hosts_yml(hosts_yml: &str, host: &str) -> Option<String> {
    let _ = (hosts_yml, host);
    None
}

/// Inputs for [`scope`], read by the caller from the environment and gh's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeInputs {
    /// `GH_CACHE_SCOPE`.
    pub explicit: Option<String>,
    /// `GITHUB_REPOSITORY` when `GITHUB_ACTIONS=true`.
    pub actions_repository: Option<String>,
    /// The token gh will use from the environment (`GH_TOKEN`, `GITHUB_TOKEN`, ...).
    pub env_token: Option<String>,
    /// The login from `hosts.yml`.
    pub login: Option<String>,
}

/// The scope string: who is asking. Never contains a token.
pub fn scope(inputs: &ScopeInputs) -> String {
    let _ = inputs;
    "anonymous".into()
}
