use std::ffi::OsString;

/// How to run gh.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The gh program: a name looked up on `PATH`, or a path.
    pub program: OsString,
}

impl Config {
    /// Runs `program` as gh.
    pub fn new(program: OsString) -> Self {
        Config { program }
    }
}
