//! `cargo xtask demo`: ghcache's main job end to end, on the fake GitHub, no account needed.
//!
//! Three CI runners (each its own cache dir and `ghcache daemon`, in one private swarm on
//! loopback, sharing a local IPFS node) run a short scripted session through `ghcache gh`; then
//! a fourth runner, started when the others' work is done and in no swarm, runs it with only the
//! IPFS node to help. Every call prints where its answer came from (this machine's disk, a peer,
//! IPFS, GitHub), how long it took, and how many requests reached GitHub. The same session
//! through plain gh is the baseline.

use anyhow::{bail, Context as _, Result};

use crate::sandbox::{self, Listen, Machine};

const SESSION: &[&[&str]] = &[
    &["repo", "view", "acme/widgets", "--json", "name,description"],
    &["pr", "list", "-R", "acme/widgets"],
    &["issue", "list", "-R", "acme/widgets"],
    &["release", "list", "-R", "acme/widgets"],
    &["api", "repos/acme/widgets"],
    &["pr", "list", "-R", "acme/widgets"],
    &["issue", "list", "-R", "acme/widgets"],
];

/// Runs the demo (under the interrupt guard, which stops its daemons and IPFS node and removes
/// its dir on Ctrl-C or SIGTERM).
pub fn run(args: &[String]) -> Result<()> {
    if let Some(bad) = args.first() {
        bail!("`cargo xtask demo` takes no arguments (got `{bad}`)");
    }
    let gh = sandbox::require_gh()?;
    let ghcache = sandbox::build_release()?;
    let github = fake_github::FakeGithub::start()?;
    // A real GitHub round trip costs tens of milliseconds; so does the fake one here.
    github.set_latency(std::time::Duration::from_millis(80));
    let root = sandbox::scratch()?;
    println!(
        "fake GitHub on {} (gh reaches it as github.localhost; 80 ms per request)",
        github.proxy_url()
    );
    ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
    // Like every child of this process, the node is stopped on an interrupt.
    let node = ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?;
    println!(
        "IPFS node (js-ipfs, Kubo RPC API) on {}, shared by the runners\n",
        node.api_url()
    );

    let key = sandbox::new_swarm_key(&ghcache, root.path())?;
    let mut runners = Vec::new();
    for i in 1..=4 {
        let mut m = Machine::new(root.path(), &format!("runner-{i}"), &github, &ghcache)?;
        m.set_env("GH_CACHE_DEBUG", "1");
        m.set_env("GH_CACHE_IPFS", "1");
        m.set_env("GH_CACHE_IPFS_API", &node.api_url());
        // Bodies are sealed with a key from the swarm key before they go to IPFS.
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
        runners.push(m);
    }
    let late = runners.pop().context("four runners")?;
    let seed = runners[0].start_daemon(&key, Listen::Loopback, &[])?;
    let mut daemons = Vec::new();
    for runner in &runners[1..] {
        let daemon = runner.start_daemon(&key, Listen::Loopback, &["--bootstrap", &seed.addr])?;
        daemon.expect_peers(1)?;
        daemons.push(daemon);
    }
    println!("swarm: runner-1 is the seed peer, runner-2 and runner-3 bootstrap from it\n");
    println!(
        "{:<9} {:<48} {:<30} {:>8} {:>9}",
        "runner", "command", "answered by", "ms", "requests"
    );
    for runner in &runners {
        for args in SESSION {
            call(runner, args, &github)?;
        }
    }
    println!(
        "\nrunner-4 starts after the others' jobs are done, in no swarm; what they fetched \
         is in the IPFS node:"
    );
    for args in SESSION {
        call(&late, args, &github)?;
    }
    println!(
        "\na write through ghcache drops the repository's cached answers on every peer, \
         so everyone sees it; the first to read again fetches, and the others take its answer, \
         which names the write as seen:"
    );
    call(
        &runners[0],
        &[
            "issue",
            "create",
            "-R",
            "acme/widgets",
            "-t",
            "Demo issue",
            "-b",
            "from the demo",
        ],
        &github,
    )?;
    // Invalidations travel by gossip; give them a moment to arrive.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for runner in [&runners[0], &runners[1], &runners[2], &runners[0]] {
        call(runner, &["issue", "list", "-R", "acme/widgets"], &github)?;
    }
    let with_cache = github.request_count();

    github.clear_log();
    let plain = Machine::new(root.path(), "plain-gh", &github, &ghcache)?;
    for _ in 0..=runners.len() {
        for args in SESSION {
            plain.time(&gh, args)?;
        }
    }
    let without_cache = github.request_count();
    // While its daemon and the IPFS node still run, so that the report shows them.
    println!("\nfinal stats of runner-2 (`ghcache stats`):");
    let (out, _) = runners[1].time(&ghcache, &["stats"])?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    drop(daemons);
    drop(seed);
    drop(node);
    println!(
        "\nthe same {} read calls: plain gh sent {without_cache} requests to GitHub; \
         through ghcache, {with_cache} (including the write and the re-reads after it)",
        (runners.len() + 1) * SESSION.len()
    );
    Ok(())
}

fn call(runner: &Machine, args: &[&str], github: &fake_github::FakeGithub) -> Result<()> {
    let before = github.request_count();
    let (out, took) = runner.time_cached(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let source = sandbox::answer_line(&stderr)
        .map(|l| l.split(" key=").next().unwrap_or(l).to_owned())
        .unwrap_or_else(|| "?".into());
    if !out.status.success() {
        bail!("gh {} failed: {stderr}", args.join(" "));
    }
    let mut command = format!("gh {}", args.join(" "));
    if command.len() > 47 {
        command.truncate(44);
        command.push_str("...");
    }
    println!(
        "{:<9} {:<48} {:<30} {:>8.1} {:>9}",
        runner.name,
        command,
        source,
        crate::stats::ms(took),
        github.request_count() - before
    );
    Ok(())
}
