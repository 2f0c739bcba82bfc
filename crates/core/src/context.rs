//! Who is asking and about which repository: pure parsers for the files gh itself reads.
//!
//! The caller finds and reads the files; this module only parses, so the hot path spawns neither
//! `git` nor `gh` and every rule here is testable without a filesystem.

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
    let mut remotes: Vec<Remote> = Vec::new();
    let mut in_remote = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_remote = false;
            let header = line.trim_start_matches('[').trim_end_matches(']').trim();
            if let Some(rest) = header.strip_prefix("remote") {
                let name = rest.trim().trim_matches('"');
                if !name.is_empty() && rest.starts_with(char::is_whitespace) {
                    in_remote = true;
                    remotes.push(Remote {
                        name: name.to_owned(),
                        url: String::new(),
                        gh_resolved: None,
                    });
                }
            }
            continue;
        }
        if !in_remote || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().trim_matches('"').to_owned();
        if let Some(remote) = remotes.last_mut() {
            match key.as_str() {
                "url" if remote.url.is_empty() => remote.url = value,
                "gh-resolved" => remote.gh_resolved = Some(value),
                _ => {}
            }
        }
    }
    remotes.retain(|r| !r.url.is_empty());
    remotes
}

/// `(host, owner, name)` of a GitHub remote URL (https, ssh, scp-like, git). The host is lowercase;
/// owner and name keep their case.
pub fn parse_remote_url(url: &str) -> Option<(String, String, String)> {
    let url = url.trim();
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(
            scheme,
            "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git"
        ) {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?;
        (host, path)
    } else {
        // scp-like: [user@]host:owner/name.git
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') {
            return None;
        }
        (authority.rsplit('@').next()?, path)
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !valid_part(owner) || !valid_part(name) || host.is_empty() {
        return None;
    }
    Some((host.to_ascii_lowercase(), owner.to_owned(), name.to_owned()))
}

fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// gh treats these hosts as the same GitHub.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "www.github.com" | "ssh.github.com" => "github.com".to_owned(),
        _ => host,
    }
}

/// The repository context gh would use, as `owner/name` lowercase, from remotes on `host`.
///
/// As gh does: a remote marked by `gh repo set-default` wins; otherwise remotes are ranked
/// `upstream`, `github`, `origin`, then the rest in file order, and the first on `host` is used.
pub fn base_repo(remotes: &[Remote], host: &str) -> Option<String> {
    let host = canonical_host(host);
    let on_host: Vec<(&Remote, String)> = remotes
        .iter()
        .filter_map(|remote| {
            let (h, owner, name) = parse_remote_url(&remote.url)?;
            (canonical_host(&h) == host).then(|| (remote, format!("{owner}/{name}")))
        })
        .collect();
    for (remote, repo) in &on_host {
        match remote.gh_resolved.as_deref() {
            Some("base") => return normalize_repo(repo),
            Some(other) if !other.is_empty() => {
                if let Some(resolved) = normalize_repo(other) {
                    return Some(resolved);
                }
            }
            _ => {}
        }
    }
    let rank = |name: &str| match name {
        "upstream" => 0,
        "github" => 1,
        "origin" => 2,
        _ => 3,
    };
    on_host
        .iter()
        .enumerate()
        .min_by_key(|(i, (remote, _))| (rank(&remote.name), *i))
        .and_then(|(_, (_, repo))| normalize_repo(repo))
}

/// Normalises a `-R` value (`owner/name`, `host/owner/name`, a URL) to lowercase `owner/name`.
pub fn normalize_repo(value: &str) -> Option<String> {
    let value = value.trim();
    if value.contains("://") || value.contains('@') {
        let (_, owner, name) = parse_remote_url(value)?;
        return Some(format!("{owner}/{name}").to_ascii_lowercase());
    }
    let value = value.trim_matches('/');
    let value = value.strip_suffix(".git").unwrap_or(value);
    let parts: Vec<&str> = value.split('/').collect();
    let (owner, name) = match parts.as_slice() {
        [owner, name] => (*owner, *name),
        [_host, owner, name] => (*owner, *name),
        _ => return None,
    };
    (valid_part(owner) && valid_part(name)).then(|| format!("{owner}/{name}").to_ascii_lowercase())
}

/// What gh's `hosts.yml` says about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsEntry {
    /// `user`: the login gh is logged in as.
    pub user: Option<String>,
    /// `oauth_token`: the token gh sends, when gh keeps it in the file rather than in the
    /// system keyring (`gh auth login --insecure-storage`, and CI setups that write the file).
    pub oauth_token: Option<String>,
}

/// The entry for `host` in gh's `hosts.yml`: only the host's own keys count, not those of the
/// accounts listed under its `users:` (gh 2.40 and later), which are not the active one.
pub fn hosts_entry(hosts_yml: &str, host: &str) -> HostsEntry {
    let host = canonical_host(host);
    let mut entry = HostsEntry::default();
    let mut in_host = false;
    // The indentation of the host's own keys: that of its first key.
    let mut key_indent = None;
    for line in hosts_yml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            let key = line
                .trim_end()
                .trim_end_matches(':')
                .trim()
                .trim_matches(['"', '\'']);
            in_host = canonical_host(key) == host;
            key_indent = None;
            continue;
        }
        if !in_host || *key_indent.get_or_insert(indent) != indent {
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']);
        let slot = match key.trim() {
            "user" => &mut entry.user,
            "oauth_token" => &mut entry.oauth_token,
            _ => continue,
        };
        if !value.is_empty() && slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }
    entry
}

/// The login for `host` in gh's `hosts.yml`, if any.
pub fn login_from_hosts_yml(hosts_yml: &str, host: &str) -> Option<String> {
    hosts_entry(hosts_yml, host).user
}

/// The hash of a GitHub Actions job's own token (`GITHUB_TOKEN`) that the job's setup step
/// declares in `GH_CACHE_JOB_TOKEN_HASH` (see [`declaration`]): a request made with this token
/// shares the repository's `actions:` scope. A hash of its own, so that the value in the job's
/// environment is not the one that manifests carry ([`crate::Manifest::token_hash`]).
pub fn job_token_hash(token: &str) -> JobTokenHash {
    JobTokenHash(blake3::derive_key(
        "ghcache actions job token v1",
        token.trim().as_bytes(),
    ))
}

/// The hash of a job's own token ([`job_token_hash`]), as its setup step declares it in hex: a
/// type apart from [`crate::TokenHash`], which manifests carry, so that one is never taken for
/// the other.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobTokenHash(pub [u8; 32]);

crate::hex::hex_id!(JobTokenHash);

/// The environment variable that declares the job's own token, and its value for `token`: the
/// `NAME=VALUE` line that a job's setup step appends to `$GITHUB_ENV`.
pub fn declaration(token: &str) -> String {
    format!("{JOB_TOKEN_HASH_VAR}={}", job_token_hash(token).to_hex())
}

/// Where a GitHub Actions job declares the hash of its own token ([`job_token_hash`], hex).
pub const JOB_TOKEN_HASH_VAR: &str = "GH_CACHE_JOB_TOKEN_HASH";

/// Inputs for [`scope`], read by the caller from the environment and gh's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeInputs {
    /// `GH_CACHE_SCOPE`.
    pub explicit: Option<String>,
    /// `GITHUB_REPOSITORY` when `GITHUB_ACTIONS=true`.
    pub actions_repository: Option<String>,
    /// [`JOB_TOKEN_HASH_VAR`]: the hash of the job's own token, declared by its setup step.
    pub job_token_hash: Option<String>,
    /// What the job declared of its permissions and which job it is, when `GITHUB_ACTIONS=true`:
    /// which of the repository's jobs the declared token shares with ([`crate::actions`]).
    pub actions_job: crate::actions::Job,
    /// The token gh will use from the environment (`GH_TOKEN`, `GITHUB_TOKEN`, ...).
    pub env_token: Option<String>,
    /// The login from `hosts.yml`.
    pub login: Option<String>,
    /// The token from `hosts.yml`, which gh uses when the environment has none.
    pub config_token: Option<String>,
}

/// The scope string: who is asking. Never contains a token.
///
/// Order:
/// 1. `GH_CACHE_SCOPE`;
/// 2. in GitHub Actions, `actions:<repo>#<suffix>` when the token gh will send is the one the
///    job declared as its own `GITHUB_TOKEN` ([`ScopeInputs::job_token_hash`]): the jobs of a
///    repository share answers only under their own tokens, and only with the jobs whose
///    tokens read the same ([`crate::actions::scope`]: the same declared permissions, else the
///    same job). A PAT or an App token in `GH_TOKEN` may read what the job token cannot
///    (another private repository), and looks no different: without the declaration, or where
///    the job's share cannot be told, every token has its own scope;
/// 3. a token in the environment (`token:<keyed hash>`), because gh then asks as that token
///    rather than as the logged-in user;
/// 4. the login from `hosts.yml` (`user:<login>`);
/// 5. the token from `hosts.yml` (`token:<keyed hash>`);
/// 6. else `anonymous`.
pub fn scope(inputs: &ScopeInputs) -> String {
    if let Some(explicit) = nonempty(&inputs.explicit) {
        return explicit.to_owned();
    }
    let token = nonempty(&inputs.env_token).or_else(|| nonempty(&inputs.config_token));
    if let (Some(repo), Some(declared), Some(token)) = (
        nonempty(&inputs.actions_repository),
        nonempty(&inputs.job_token_hash),
        token,
    ) {
        if JobTokenHash::from_hex(declared) == Some(job_token_hash(token)) {
            if let Some(shared) = crate::actions::scope(repo, &inputs.actions_job) {
                return shared;
            }
        }
    }
    if let Some(token) = nonempty(&inputs.env_token) {
        return token_scope(token);
    }
    if let Some(login) = nonempty(&inputs.login) {
        return format!("user:{}", login.to_ascii_lowercase());
    }
    if let Some(token) = nonempty(&inputs.config_token) {
        return token_scope(token);
    }
    "anonymous".to_owned()
}

fn token_scope(token: &str) -> String {
    let hash = blake3::derive_key("ghcache scope token v1", token.as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("token:{hex}")
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests;
