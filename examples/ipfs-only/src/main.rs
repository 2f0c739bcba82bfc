//! Runs one gh command twice through ghcache, as a library built with the IPFS tier and without
//! the p2p tier, and says where each answer came from:
//!
//! ```sh
//! cargo run -p ghcache-example-ipfs-only -- repo view cli/cli --json name
//! ```
//!
//! The second answer comes from this machine's cache without asking GitHub. Exits 1 when it
//! does not, 2 when ghcache says gh must run directly.

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ghcache-example: {err}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> Result<i32, ghcache::Error> {
    let cache = ghcache::Cache::from_env()?;
    let mut sources = Vec::new();
    for _ in 0..2 {
        match cache.run(args.iter().cloned())? {
            ghcache::Answer::Answered(answer) => {
                let _ = std::io::stdout().write_all(&answer.stdout);
                for line in &answer.warnings {
                    eprintln!("ghcache: warning: {line}");
                }
                eprintln!("answered by {}", answer.source);
                sources.push(answer.source);
            }
            ghcache::Answer::RunGh { reason } => {
                eprintln!("gh must run directly: {reason}");
                return Ok(2);
            }
            // A kind of answer this example does not know.
            _ => return Ok(2),
        }
    }
    print!("{}", cache.stats()?);
    let second_was_local = sources.get(1) == Some(&ghcache::AnsweredBy::LOCAL);
    Ok(if second_was_local { 0 } else { 1 })
}
