//! Reads what the key is made of from this process's world: environment, `.git/config`,
//! gh's `hosts.yml`, the terminal. Parsing is core's; this module only finds and reads files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use ghcache_core::actions::{self, Permissions, PERMISSIONS_VAR};
use ghcache_core::context::{self, HostsEntry, ScopeInputs, JOB_TOKEN_HASH_VAR};
use ghcache_core::{Manifest, OutputMode};

use crate::config::Env;

/// Environment variables that change what gh prints, so they are part of the key.
const OUTPUT_ENV: [&str; 6] = [
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "GH_FORCE_TTY",
    "GLAMOUR_STYLE",
    "TZ",
];

/// The GitHub host gh talks to.
pub fn host(env: Env<'_>) -> String {
    env("GH_HOST")
        .filter(|h| !h.is_empty())
        .map(|h| h.to_ascii_lowercase())
        .unwrap_or_else(|| "github.com".to_owned())
}

/// Who is asking (see DESIGN.md, Keys and scope).
pub fn scope(env: Env<'_>, explicit: Option<&str>, host: &str) -> String {
    let actions = env("GITHUB_ACTIONS").is_some_and(|v| v == "true");
    let mut inputs = ScopeInputs {
        explicit: explicit.map(str::to_owned),
        actions_repository: actions.then(|| env("GITHUB_REPOSITORY")).flatten(),
        job_token_hash: actions.then(|| env(JOB_TOKEN_HASH_VAR)).flatten(),
        actions_job: if actions {
            actions_job(env)
        } else {
            actions::Job::default()
        },
        env_token: env_token(env, host),
        login: None,
        config_token: None,
    };
    // hosts.yml is read only when nothing cheaper decides the scope.
    if inputs.explicit.is_none() && inputs.env_token.is_none() {
        let HostsEntry { user, oauth_token } = hosts_entry(env, host);
        inputs.login = user;
        inputs.config_token = oauth_token;
    }
    context::scope(&inputs)
}

/// [`Manifest::token_hash`] of the token gh will send to `host`, found as gh finds it: the
/// environment, then `oauth_token` in `hosts.yml`.
///
/// `None` when neither has one: gh then takes the token from the system keyring (`gh auth
/// token` would tell, but running gh costs about 50 ms, on every call that goes to GitHub), or
/// has none. Not knowing is safe: the origin then sends an ETag only for an answer that had no
/// `Last-Modified`, and an ETag of another token costs one charged answer, as a request
/// without it would; GitHub answers 304 to an ETag only when it matches, so never wrongly. A
/// keyring login's token lasts, so the ETag is usually its own.
pub fn token_hash(env: Env<'_>, host: &str) -> Option<ghcache_core::TokenHash> {
    let token = env_token(env, host).or_else(|| hosts_entry(env, host).oauth_token)?;
    Some(Manifest::token_hash(token.trim()))
}

/// The declared job token that gh will send to `host`, as [`Manifest::token_hash`], and the
/// repository whose budget it counts against: set only in a GitHub Actions job whose setup
/// step declared its own token, and only when that is the token gh takes from the environment
/// (a PAT in `GH_TOKEN` is not the job's token).
pub fn declared_job_token(env: Env<'_>, host: &str) -> Option<(ghcache_core::TokenHash, String)> {
    if env("GITHUB_ACTIONS").is_none_or(|v| v != "true") {
        return None;
    }
    let repository = env("GITHUB_REPOSITORY").filter(|r| !r.trim().is_empty())?;
    let declared = env(JOB_TOKEN_HASH_VAR)?;
    let token = env_token(env, host)?;
    let token = token.trim();
    context::job_token_hash(token)
        .to_hex()
        .eq_ignore_ascii_case(declared.trim())
        .then(|| {
            (
                Manifest::token_hash(token),
                repository.trim().to_ascii_lowercase(),
            )
        })
}

/// The token gh takes from the environment for `host`, as gh (go-gh's `auth.TokenForHost`)
/// does: for github.com, `*.ghe.com` and `github.localhost`, `GH_TOKEN` then `GITHUB_TOKEN`;
/// for a GitHub Enterprise Server, `GH_ENTERPRISE_TOKEN` then `GITHUB_ENTERPRISE_TOKEN`, and
/// `GITHUB_TOKEN` in a codespace.
fn env_token(env: Env<'_>, host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let cloud = ["github.com", "github.localhost"]
        .iter()
        .any(|name| host == *name || host.ends_with(&format!(".{name}")))
        || host.ends_with(".ghe.com");
    let codespace = env("CODESPACES").is_some_and(|v| v == "true" || v == "1");
    let names: &[&str] = match (cloud, codespace) {
        (true, _) => &["GH_TOKEN", "GITHUB_TOKEN"],
        (false, false) => &["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"],
        (false, true) => &[
            "GH_ENTERPRISE_TOKEN",
            "GITHUB_ENTERPRISE_TOKEN",
            "GITHUB_TOKEN",
        ],
    };
    names
        .iter()
        .find_map(|name| env(name).filter(|t| !t.trim().is_empty()))
}

/// What gh's `hosts.yml` says about `host`; nothing when there is no such file.
fn hosts_entry(env: Env<'_>, host: &str) -> HostsEntry {
    gh_config_dir(env)
        .and_then(|dir| std::fs::read_to_string(dir.join("hosts.yml")).ok())
        .map(|text| context::hosts_entry(&text, host))
        .unwrap_or_default()
}

/// What the runner and the job's setup step say about this job (see [`actions::Job`]).
fn actions_job(env: Env<'_>) -> actions::Job {
    actions::Job {
        permissions: env(PERMISSIONS_VAR),
        workflow_ref: env("GITHUB_WORKFLOW_REF"),
        workflow_sha: env("GITHUB_WORKFLOW_SHA"),
        job: env("GITHUB_JOB"),
    }
}

/// `ghcache actions declare [--permissions P]`: the lines that declare, for the rest of a
/// GitHub Actions job, that `GITHUB_TOKEN` is the job's own token (see
/// [`context::declaration`]) and which permissions the job has ([`PERMISSIONS_VAR`], canonical;
/// empty when none are given, so that a declaration is all of what the job says).
///
/// # Errors
/// `GITHUB_TOKEN` is not set, or the permissions do not parse: the line to say what to do.
pub fn declare(env: Env<'_>, permissions: Option<&str>) -> Result<String, String> {
    let declared = Permissions::parse(permissions.unwrap_or_default())
        .map_err(|e| format!("--permissions: {e}"))?;
    let Some(token) = env("GITHUB_TOKEN").filter(|t| !t.trim().is_empty()) else {
        return Err(
            "GITHUB_TOKEN is not set: run this step with the job's own token \
             (`env: GITHUB_TOKEN: ${{ github.token }}`) and append what it prints to $GITHUB_ENV"
                .to_owned(),
        );
    };
    let permissions = declared.as_ref().map_or("", Permissions::as_str);
    Ok(format!(
        "{}\n{PERMISSIONS_VAR}={permissions}",
        context::declaration(&token)
    ))
}

/// `ghcache actions scope`: the scope that gh calls with the job's declared own token get,
/// for a process that is not given the token (the runner's daemon), from the same rule.
///
/// # Errors
/// Not in GitHub Actions, or the job shares no scope (see [`actions::scope`]): why.
pub fn actions_scope(env: Env<'_>) -> Result<String, String> {
    let repository = env("GITHUB_ACTIONS")
        .filter(|v| v == "true")
        .and_then(|_| env("GITHUB_REPOSITORY"))
        .filter(|r| !r.trim().is_empty())
        .ok_or("not in GitHub Actions: GITHUB_ACTIONS=true and GITHUB_REPOSITORY are not set")?;
    let job = actions_job(env);
    actions::scope(&repository, &job).ok_or_else(|| {
        match job.permissions.as_deref().map(Permissions::parse) {
            Some(Err(e)) => format!("{PERMISSIONS_VAR}: {e}"),
            _ => "this job declared no permissions, and GITHUB_WORKFLOW_REF, \
                  GITHUB_WORKFLOW_SHA or GITHUB_JOB is not set: its token shares no scope"
                .to_owned(),
        }
    })
}

/// gh's configuration directory, as gh finds it: `GH_CONFIG_DIR`, `$XDG_CONFIG_HOME/gh`,
/// `~/.config/gh`.
pub(crate) fn gh_config_dir(env: Env<'_>) -> Option<PathBuf> {
    if let Some(dir) = env("GH_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(xdg).join("gh"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".config/gh"))
}

/// The repository context gh would use: `-R`, else `GH_REPO`, else the git remotes of the working
/// directory. Lowercase `owner/name`, or empty when there is none.
pub fn repo(env: Env<'_>, repo_flag: Option<&str>, host: &str) -> String {
    if let Some(flag) = repo_flag {
        // A malformed -R keeps its raw text: gh will reject it, and the key stays distinct.
        return context::normalize_repo(flag).unwrap_or_else(|| flag.to_owned());
    }
    if let Some(repo) = env("GH_REPO").filter(|r| !r.is_empty()) {
        return context::normalize_repo(&repo).unwrap_or(repo);
    }
    std::env::current_dir()
        .ok()
        .and_then(|cwd| git_config_path(&cwd))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| context::base_repo(&context::parse_git_remotes(&text), host))
        .unwrap_or_default()
}

/// Finds the `config` file of the git repository containing `dir`, as git does: a `.git`
/// directory, or a `.git` file naming the git dir (worktrees, submodules) with its `commondir`.
fn git_config_path(dir: &Path) -> Option<PathBuf> {
    for ancestor in dir.ancestors() {
        let dot_git = ancestor.join(".git");
        let Ok(meta) = std::fs::metadata(&dot_git) else {
            continue;
        };
        if meta.is_dir() {
            return Some(dot_git.join("config"));
        }
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let gitdir = text.strip_prefix("gitdir:")?.trim();
        let gitdir = ancestor.join(gitdir);
        let common = std::fs::read_to_string(gitdir.join("commondir"))
            .ok()
            .map(|c| gitdir.join(c.trim()))
            .unwrap_or(gitdir);
        return Some(common.join("config"));
    }
    None
}

/// Pipe, or the terminal's width when stdout is a terminal.
pub fn output_mode() -> OutputMode {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return OutputMode::Pipe;
    }
    let width = rustix::termios::tcgetwinsize(&stdout)
        .map(|size| size.ws_col)
        .ok()
        .filter(|w| *w > 0)
        .unwrap_or(80);
    OutputMode::Tty { width }
}

/// The values of environment variables that change gh's output, as `env:NAME=value` key parts.
pub fn output_env(env: Env<'_>) -> Vec<String> {
    OUTPUT_ENV
        .iter()
        .filter_map(|name| env(name).map(|v| format!("env:{name}={v}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_token_is_the_one_gh_takes_for_the_host() {
        let env = env_of(&[
            ("GH_TOKEN", "gh"),
            ("GITHUB_TOKEN", "github"),
            ("GH_ENTERPRISE_TOKEN", "enterprise"),
            ("GH_CONFIG_DIR", "/nonexistent"),
        ]);
        for (host, token) in [
            ("github.com", "gh"),
            ("api.github.com", "gh"),
            ("github.localhost", "gh"),
            ("acme.ghe.com", "gh"),
            ("ghe.example.com", "enterprise"),
        ] {
            assert_eq!(env_token(&env, host).as_deref(), Some(token), "{host}");
            assert_eq!(
                token_hash(&env, host),
                Some(Manifest::token_hash(token)),
                "{host}"
            );
        }
        let env = env_of(&[("GITHUB_TOKEN", "github"), ("GH_TOKEN", " ")]);
        assert_eq!(env_token(&env, "github.com").as_deref(), Some("github"));
        assert_eq!(env_token(&env, "ghe.example.com"), None);
        let codespace = env_of(&[("GITHUB_TOKEN", "github"), ("CODESPACES", "true")]);
        assert_eq!(
            env_token(&codespace, "ghe.example.com").as_deref(),
            Some("github")
        );
    }

    #[test]
    fn without_a_token_in_the_environment_or_hosts_yml_it_is_not_known() {
        let env = env_of(&[("GH_CONFIG_DIR", "/nonexistent")]);
        assert_eq!(token_hash(&env, "github.com"), None);
    }

    #[test]
    fn in_actions_a_pat_in_gh_token_is_not_the_declared_job_token() {
        let declaration = context::declaration("ghs_job");
        let (_, declared) = declaration.split_once('=').unwrap_or_default();
        let mut job = vec![
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "Acme/Widgets"),
            ("GITHUB_TOKEN", "ghs_job"),
            ("GH_CACHE_JOB_TOKEN_HASH", declared),
            ("GH_CONFIG_DIR", "/nonexistent"),
        ];
        job.push(("GH_CACHE_ACTIONS_PERMISSIONS", "contents:read"));
        let shared = scope(&env_of(&job), None, "github.com");
        assert_eq!(shared, "actions:acme/widgets#perms=contents:read");
        job.push(("GH_TOKEN", "ghp_personal"));
        let pat = scope(&env_of(&job), None, "github.com");
        assert!(pat.starts_with("token:"), "{pat}");
        assert_eq!(scope(&env_of(&job), Some("team"), "github.com"), "team");
    }

    #[test]
    fn declare_needs_the_job_token() {
        let lines = declare(&env_of(&[("GITHUB_TOKEN", "ghs_job")]), None);
        let token = context::declaration("ghs_job");
        assert_eq!(lines, Ok(format!("{token}\nGH_CACHE_ACTIONS_PERMISSIONS=")));
        let missing = declare(&env_of(&[("GH_TOKEN", "ghs_job")]), None);
        assert!(
            missing.is_err_and(|e| e.starts_with("GITHUB_TOKEN is not set")),
            "a PAT in GH_TOKEN is not the job's token"
        );
    }

    #[test]
    fn declare_prints_the_permissions_canonical_or_says_what_is_wrong() {
        let env = env_of(&[("GITHUB_TOKEN", "ghs_job")]);
        let lines = declare(&env, Some("issues: read\ncontents: read\n"));
        let token = context::declaration("ghs_job");
        let expected = format!("{token}\nGH_CACHE_ACTIONS_PERMISSIONS=contents:read,issues:read");
        assert_eq!(lines, Ok(expected));
        assert_eq!(
            declare(&env, Some("contents: reed")),
            Err("--permissions: contents: \"reed\" is not read, write or none".to_owned())
        );
    }

    #[test]
    fn the_daemon_s_scope_is_the_one_the_declared_token_gets() {
        let declaration = context::declaration("ghs_job");
        let (_, declared) = declaration.split_once('=').unwrap_or_default();
        let mut job = vec![
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "Acme/Widgets"),
            (
                "GITHUB_WORKFLOW_REF",
                "Acme/Widgets/.github/workflows/ci.yml@refs/heads/main",
            ),
            ("GITHUB_WORKFLOW_SHA", "abc123"),
            ("GITHUB_JOB", "build"),
            ("GITHUB_TOKEN", "ghs_job"),
            ("GH_CACHE_JOB_TOKEN_HASH", declared),
            ("GH_CONFIG_DIR", "/nonexistent"),
        ];
        let undeclared = actions_scope(&env_of(&job));
        assert_eq!(
            undeclared.as_deref(),
            Ok("actions:acme/widgets#job=.github/workflows/ci.yml@refs/heads/main:build:abc123")
        );
        assert_eq!(undeclared, Ok(scope(&env_of(&job), None, "github.com")));
        job.push(("GH_CACHE_ACTIONS_PERMISSIONS", "contents:read"));
        let declared = actions_scope(&env_of(&job));
        assert_eq!(declared, Ok(scope(&env_of(&job), None, "github.com")));
        job.retain(|(name, _)| *name != "GITHUB_ACTIONS");
        assert!(actions_scope(&env_of(&job)).is_err_and(|e| e.starts_with("not in GitHub Actions")));
    }
}
