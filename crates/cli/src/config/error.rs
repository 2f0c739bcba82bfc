//! A configuration that cannot be used: one line that names the file, variable or flag, the
//! key, and what to write instead.

use std::path::PathBuf;

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    Toml { path: PathBuf, reason: String },
    #[error("{origin}: `{key}` {reason}")]
    Value {
        origin: String,
        key: String,
        reason: String,
    },
    #[error("cannot find a cache directory: set GH_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}
