//! `ghcache completions` and `ghcache man`: shell completions and man pages, generated from the
//! same clap definitions that parse the command line, so they cannot drift from it.
//!
//! Release archives carry their output (`cargo xtask dist`); nothing here runs on the
//! `ghcache gh` path.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;

use crate::{Cli, Failure};

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<i32, Failure> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "ghcache", &mut out);
    write_stdout(&out)
}

/// Prints the man page `ghcache(1)`, or writes one page per command into `dir`.
///
/// # Errors
/// `dir` cannot be made or written.
pub fn man(dir: Option<&Path>) -> Result<i32, Failure> {
    let command = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|e| Failure::Runtime(format!("cannot render the man page: {e}")))?;
            write_stdout(&out)
        }
        Some(dir) => {
            let failed = |e: std::io::Error| {
                Failure::Runtime(format!("cannot write man pages to {}: {e}", dir.display()))
            };
            std::fs::create_dir_all(dir).map_err(failed)?;
            clap_mangen::generate_to(command, dir).map_err(failed)?;
            Ok(0)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<i32, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        // `ghcache man | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Failure::Runtime(format!("cannot write to stdout: {e}"))),
    }
}
