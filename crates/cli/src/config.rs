//! The effective configuration: defaults, then the TOML file, then the environment, then flags.
//! Every value remembers where it came from, for `ghcache config`.
//!
//! ```text
//! config.rs        load: defaults < file < environment < flags; check_env
//!   effective.rs   Config, Setting, Source, Flags: the value, and its defaults
//!   table.rs       ROWS: one row per setting (key, variable, flag, kind, place, doc)
//!   read.rs        the file, the environment and the flags, read through the rows
//!   listing.rs     `ghcache config`'s lines and the README's table, drawn from the rows
//!   value.rs       the text forms: durations, sizes, switches
//!   error.rs       ConfigError
//!
//! Arrows run down and sideways only: `read` and `listing` use `table`, which uses
//! `effective` and `value`; nothing below names `config.rs`.
//! ```

mod effective;
mod error;
mod listing;
mod read;
mod table;
mod value;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use effective::{Config, Env, Flags, Http, Ipfs, P2p, Setting, Source, SwarmKeySource};
pub use error::ConfigError;
pub use listing::{Line, Shown};
pub use value::{parse_duration, parse_size, show_duration};

impl Config {
    /// Loads the configuration from `env` and `flags`; the file is `GH_CACHE_CONFIG`, else
    /// `$XDG_CONFIG_HOME/ghcache/config.toml`, else `~/.config/ghcache/config.toml`.
    pub fn load(env: Env<'_>, flags: &Flags) -> Result<Config, ConfigError> {
        let mut config = Config::defaults(env);
        let file = config_file(env);
        if let Some(path) = file.as_deref().filter(|p| p.is_file()) {
            read::apply_file(&mut config, &file_table(path)?, path)?;
            config.file = Some(path.to_path_buf());
        } else {
            config.file = file;
        }
        read::apply_env(&mut config, env)?;
        read::apply_flags(&mut config, flags)?;
        Ok(config)
    }

    /// `ghcache config`'s lines: each listed setting's value and where it came from, in the
    /// order of the settings' table.
    pub fn listing(&self) -> Vec<Line> {
        listing::listing(self)
    }
}

/// The config file as a TOML table.
fn file_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml {
            path: path.to_path_buf(),
            reason: e.message().to_owned(),
        })
}

/// Variables that ghcache reads outside the configuration: where the scope is derived
/// (`context::scope`), like `GITHUB_ACTIONS`, rather than settings of their own.
const SCOPE_VARS: [&str; 2] = [
    ghcache_core::context::JOB_TOKEN_HASH_VAR,
    ghcache_core::actions::PERMISSIONS_VAR,
];

/// Checks the `GH_CACHE_*` variables among `vars` (the process's environment) before any is
/// read, as the config file's keys are checked: a variable that ghcache does not read (a typo,
/// `GH_CACHE_TTL_BOGUS`) or whose value is not UTF-8 is an error that names it, where reading
/// the environment by name would pass over it in silence.
///
/// # Errors
/// The first such variable.
pub fn check_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<(), ConfigError> {
    for (name, value) in vars {
        if !name.as_encoded_bytes().starts_with(b"GH_CACHE_") {
            continue;
        }
        let shown = name.to_string_lossy().into_owned();
        let bad = |reason: String| ConfigError::Value {
            origin: format!("env {shown}"),
            key: shown.clone(),
            reason,
        };
        let known = name.to_str().is_some_and(|n| {
            table::setting_vars().any(|v| v == n)
                || SCOPE_VARS.contains(&n)
                || table::ttl_vars().any(|t| t == n)
        });
        if !known {
            if shown.starts_with("GH_CACHE_TTL_") || shown.starts_with("GH_CACHE_HEARD_TTL_") {
                let names: Vec<_> = table::ttl_vars().collect();
                return Err(bad(format!(
                    "names no TTL class (known: {}); unset it",
                    names.join(", ")
                )));
            }
            let names: Vec<_> = table::setting_vars().collect();
            return Err(bad(format!(
                "is not a variable that ghcache reads ({}, GH_CACHE_TTL_<CLASS>, \
                 GH_CACHE_HEARD_TTL_<CLASS>); unset it",
                names.join(", ")
            )));
        }
        if value.to_str().is_none() {
            return Err(bad(
                "is not valid UTF-8: set it to UTF-8 text, or unset it".to_owned()
            ));
        }
    }
    Ok(())
}

/// The config file's path: `GH_CACHE_CONFIG`, else under `XDG_CONFIG_HOME`, else under `HOME`.
fn config_file(env: Env<'_>) -> Option<PathBuf> {
    if let Some(path) = env(table::CONFIG_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    match (env("XDG_CONFIG_HOME"), env("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => Some(PathBuf::from(xdg).join("ghcache/config.toml")),
        (_, Some(home)) if !home.is_empty() => {
            Some(PathBuf::from(home).join(".config/ghcache/config.toml"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
