//! Reads what the key is made of from this process's world: environment, `.git/config`,
//! gh's `hosts.yml`, the terminal. Parsing is core's; this module only finds and reads files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use ghcache_core::context::{self, ScopeInputs};
use ghcache_core::OutputMode;

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
    let enterprise = host != "github.com" && !host.ends_with("github.localhost");
    let token_vars: &[&str] = if enterprise {
        &["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"]
    } else {
        &["GH_TOKEN", "GITHUB_TOKEN"]
    };
    let env_token = token_vars
        .iter()
        .find_map(|name| env(name).filter(|t| !t.is_empty()));
    let mut inputs = ScopeInputs {
        explicit: explicit.map(str::to_owned),
        actions_repository: actions.then(|| env("GITHUB_REPOSITORY")).flatten(),
        env_token,
        login: None,
    };
    // hosts.yml is read only when nothing cheaper decides the scope.
    if inputs.explicit.is_none()
        && inputs.actions_repository.is_none()
        && inputs.env_token.is_none()
    {
        inputs.login = gh_config_dir(env)
            .and_then(|dir| std::fs::read_to_string(dir.join("hosts.yml")).ok())
            .and_then(|text| context::login_from_hosts_yml(&text, host));
    }
    context::scope(&inputs)
}

fn gh_config_dir(env: Env<'_>) -> Option<PathBuf> {
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
