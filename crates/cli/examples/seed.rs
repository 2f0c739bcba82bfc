//! The seed's library usage, in Rust: a cache with IPFS and the swarm, one command, the stats.
//!
//! ```sh
//! cargo run -p ghcache --example seed -- repo list
//! ```

fn main() -> Result<(), ghcache::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = if args.is_empty() {
        vec!["repo".to_owned(), "list".to_owned()]
    } else {
        args
    };
    // `GHCache(enable_ipfs=True, enable_p2p=True)`: the swarm is used when this cache dir's
    // daemon runs (`ghcache daemon`); IPFS when switched on.
    let cache = ghcache::Cache::builder().ipfs(true).build()?;
    match cache.run(std::iter::once("gh".to_owned()).chain(args))? {
        ghcache::Answer::Answered(answer) => {
            print!("{}", String::from_utf8_lossy(&answer.stdout));
            eprint!("{}", String::from_utf8_lossy(&answer.stderr));
            println!("exit code {}, from {}", answer.exit_code, answer.source);
        }
        ghcache::Answer::RunGh { reason } => println!("gh must run directly: {reason}"),
        _ => println!("an answer this example does not know"),
    }
    // `cache.print_stats()`.
    print!("{}", cache.stats()?);
    Ok(())
}
