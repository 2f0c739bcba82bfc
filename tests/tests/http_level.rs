//! The HTTP level with the real gh, Debian's 2.23 and the current release: gh's own API requests
//! go through ghcache's socket, for commands on the allowlist and for every other command, and
//! what the user sees is what plain gh shows. The fake GitHub's request log says what reached
//! GitHub.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ghcache_tests::current_gh::gh_versions;
use ghcache_tests::{ghcache_bin, run_piped, spawn_piped, wait_until, Machine, Run, World};
use rustix::process::{kill_process_group, Pid, Signal};

/// How long a test waits for something that takes a fraction of a second.
const DEADLINE: Duration = Duration::from_secs(30);

/// The acceptance commands: on the allowlist (`pr checks 7`, `run view 5`, `api --paginate`)
/// and not (`pr status`, `issue status`: what they show depends on the checkout).
const COMMANDS: [&[&str]; 5] = [
    &["pr", "status"],
    &["pr", "checks", "7"],
    &["run", "view", "5"],
    &["api", "--paginate", "repos/o/r/issues"],
    &["issue", "status"],
];

/// The TTL classes' variables: all zero makes every stored answer stale.
const TTL_VARS: [&str; 6] = [
    "GH_CACHE_TTL_LIST",
    "GH_CACHE_TTL_VIEW",
    "GH_CACHE_TTL_REPO_VIEW",
    "GH_CACHE_TTL_RELEASE",
    "GH_CACHE_TTL_SEARCH",
    "GH_CACHE_TTL_API",
];

/// A machine whose ghcache runs `gh`, in a checkout of `o/r`.
fn machine(world: &World, name: &str, gh: &Path) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_GH", &gh.display().to_string());
    m.git_checkout(
        "checkout",
        &[("origin", "https://github.localhost/o/r.git")],
    );
    m
}

/// Plain `gh` (the version under test) on `m`.
fn plain(m: &Machine, gh: &Path, args: &[&str]) -> Run {
    run_piped(m.command(gh).args(args))
}

fn name(gh: &Path) -> String {
    ghcache_tests::current_gh::installed_version(gh).unwrap_or_else(|| gh.display().to_string())
}

#[test]
fn commands_print_what_plain_gh_prints_and_repeats_cost_nothing_then_304s() {
    for gh in gh_versions() {
        let world = World::new();
        // Two pages at gh's 100 a page.
        for n in 0..120 {
            world.github.add_issue("o/r", &format!("Issue number {n}"));
        }
        let m = machine(&world, "m", &gh);
        let mut expected = Vec::new();
        for args in COMMANDS {
            // Plain gh first: it fills gh's own cache (schema questions) as ghcache's gh finds it.
            let want = plain(&m, &gh, args).ok();
            let got = m.cached(args);
            assert_eq!(got, want, "gh {} {args:?}", name(&gh));
            expected.push(want);
        }
        world.github.clear_log();
        for (args, want) in COMMANDS.iter().zip(&expected) {
            assert_eq!(&m.cached(args), want, "repeat of gh {} {args:?}", name(&gh));
        }
        assert_eq!(
            world.github.requests(),
            [],
            "gh {}: a repeat within freshness sends nothing",
            name(&gh)
        );
        let mut stale = m.clone();
        for var in TTL_VARS {
            stale.set_env(var, "0");
        }
        for (args, want) in COMMANDS.iter().zip(&expected) {
            assert_eq!(&stale.cached(args), want, "stale gh {} {args:?}", name(&gh));
        }
        let requests = world.github.requests();
        let rest: Vec<_> = requests.iter().filter(|r| r.operation.is_none()).collect();
        assert!(!rest.is_empty(), "gh {}: REST was asked again", name(&gh));
        assert!(
            rest.iter().all(|r| r.status == 304 && !r.charged),
            "gh {}: after freshness REST costs only 304s: {rest:?}",
            name(&gh)
        );
        let stats = m.stats();
        let http = &stats["http"];
        assert!(http["hits"]["local"].as_u64() > Some(0), "{stats}");
        assert!(
            http["revalidated"].as_u64() >= Some(rest.len() as u64),
            "{stats}"
        );
    }
}

#[test]
fn writes_reach_github_and_drop_what_they_change() {
    for gh in gh_versions() {
        let world = World::new();
        let m = machine(&world, "m", &gh);
        let before = m.cached(&["issue", "status"]).ok();
        // A write that ghcache knows as one: its GraphQL mutation goes through the socket.
        let created = m
            .cached(&[
                "issue",
                "create",
                "-R",
                "o/r",
                "--title",
                "Written through ghcache",
                "--body",
                "b",
            ])
            .ok();
        assert!(created.out().contains("/o/r/issues/3"), "{}", created.out());
        assert!(world
            .github
            .requests()
            .iter()
            .any(|r| r.operation.as_deref() == Some("mutation") && r.status == 200));
        let after = m.cached(&["issue", "status"]).ok();
        assert_ne!(after, before);
        assert!(after.out().contains("Written through ghcache"));
        assert_eq!(after, plain(&m, &gh, &["issue", "status"]));

        // A write that only the HTTP level sees: `gh label clone` is on no list of ghcache's.
        world.github.clear_log();
        m.cached(&["issue", "status"]).ok();
        assert_eq!(world.github.request_count(), 0, "stored again");
        m.cached(&["label", "clone", "o/src", "-R", "o/r"]).ok();
        assert!(world
            .github
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/repos/o/r/labels"));
        world.github.clear_log();
        assert_eq!(m.cached(&["issue", "status"]), after);
        assert!(
            world.github.request_count() > 0,
            "gh {}: the label write dropped what it may have changed",
            name(&gh)
        );
    }
}

#[test]
fn ctrl_c_during_a_command_ends_gh_as_it_does_plain_gh() {
    for gh in gh_versions() {
        let world = World::new();
        let m = machine(&world, "m", &gh);
        // A GitHub that does not answer in time: the command is waiting for it when ^C comes.
        world.github.set_latency(Duration::from_secs(120));
        let mut codes = Vec::new();
        for (program, args) in [
            (gh.clone(), vec!["issue", "status"]),
            (ghcache_bin(), vec!["gh", "issue", "status"]),
        ] {
            let arrived = world.github.arrived();
            let mut command = m.command(&program);
            // Its own process group, as a terminal's foreground job: ^C reaches all of it.
            command.args(&args).process_group(0);
            let mut child = spawn_piped(&mut command);
            assert!(
                wait_until(DEADLINE, || world.github.arrived() > arrived),
                "{program:?} asked nothing"
            );
            let group = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
            let sent = group.map(|g| kill_process_group(g, Signal::INT));
            assert!(matches!(sent, Some(Ok(()))), "{sent:?}");
            let interrupted = Instant::now();
            let ended = wait_until(DEADLINE, || child.try_wait().ok().flatten().is_some());
            assert!(ended, "{program:?} was still running after ^C");
            assert!(interrupted.elapsed() < Duration::from_secs(10));
            let run = ghcache_tests::wait_piped(child);
            // Nothing of the job is left: gh ended with ghcache.
            let left = group.map(|g| rustix::process::test_kill_process_group(g).is_ok());
            assert_eq!(left, Some(false), "{program:?} left a process behind");
            codes.push(run.code);
        }
        assert_eq!(
            codes[1],
            codes[0],
            "gh {}: the exit code of plain gh",
            name(&gh)
        );
        assert_ne!(codes[0], 0);
    }
}

/// tmux on a server of its own, with the machine's environment.
struct Tmux {
    machine: Machine,
    server: String,
    conf: PathBuf,
}

impl Tmux {
    fn start(machine: &Machine, script: &str) -> Tmux {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The pane stays when its command exits, so its last words can be read.
        let conf = machine.home.join("tmux.conf");
        std::fs::write(&conf, "set -g remain-on-exit on\n")
            .unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let tmux = Tmux {
            machine: machine.clone(),
            server: format!("ghcache-test-{}-{n}", std::process::id()),
            conf,
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "50",
            "sh",
            "-c",
            script,
        ])
        .ok();
        tmux
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut command = self.machine.command("tmux");
        command
            .env("TERM", "xterm-256color")
            .args(["-L", &self.server, "-f"])
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::null());
        run_piped(&mut command)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-100"]).out()
    }

    fn wait_for(&self, text: &str) {
        let mut screen = String::new();
        let shown = wait_until(DEADLINE, || {
            screen = self.screen();
            screen.contains(text)
        });
        assert!(shown, "waited for {text:?}; the terminal shows:\n{screen}");
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.run(&args).ok();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn an_interactive_command_still_prompts_on_a_terminal() {
    for gh in gh_versions() {
        let world = World::new();
        let mut m = machine(&world, "m", &gh);
        m.unset_env("GH_PROMPT_DISABLED");
        let exit = m.home.join("exit-code");
        let script = format!(
            "{} gh issue create -R o/r; echo $? > {}",
            ghcache_bin().display(),
            exit.display()
        );
        let tmux = Tmux::start(&m, &script);
        tmux.wait_for("Title");
        tmux.keys(&["-l", "Typed at the prompt"]);
        tmux.keys(&["Enter"]);
        tmux.wait_for("Body");
        tmux.keys(&["Enter"]);
        tmux.wait_for("What's next");
        tmux.keys(&["Enter"]);
        let done = wait_until(DEADLINE, || {
            std::fs::read_to_string(&exit).is_ok_and(|t| t.ends_with('\n'))
        });
        assert!(done, "gh {} did not finish:\n{}", name(&gh), tmux.screen());
        assert_eq!(std::fs::read_to_string(&exit).ok().as_deref(), Some("0\n"));
        tmux.wait_for("/o/r/issues/3");
        let issue = plain(&m, &gh, &["api", "repos/o/r/issues/3", "--jq", ".title"]).ok();
        assert_eq!(issue.out(), "Typed at the prompt\n");
    }
}

#[test]
fn switched_off_every_run_asks_github() {
    let world = World::new();
    let gh = ghcache_tests::gh_bin();
    let mut m = machine(&world, "m", &gh);
    m.cached(&["issue", "status"]).ok();
    let asked = world.github.request_count();
    m.cached(&["issue", "status"]).ok();
    assert_eq!(
        world.github.request_count(),
        asked,
        "on: answered by the HTTP level"
    );
    m.set_env("GH_CACHE_HTTP", "0");
    m.cached(&["issue", "status"]).ok();
    assert_eq!(
        world.github.request_count(),
        2 * asked,
        "off: gh asks GitHub itself"
    );
    assert_eq!(
        m.ghcache(&["config"])
            .out()
            .lines()
            .find(|l| l.starts_with("http.enabled"))
            .map(|l| l.contains("false") && l.contains("GH_CACHE_HTTP")),
        Some(true)
    );
}

#[test]
fn commands_that_change_gh_config_change_the_users_own() {
    let world = World::new();
    let gh = ghcache_tests::gh_bin();
    let m = machine(&world, "m", &gh);
    let shown = m.cached(&["config", "get", "http_unix_socket"]);
    assert_eq!(
        shown,
        plain(&m, &gh, &["config", "get", "http_unix_socket"])
    );
    m.cached(&["config", "set", "editor", "vim"]).ok();
    assert_eq!(
        plain(&m, &gh, &["config", "get", "editor"]).ok().out(),
        "vim\n"
    );
    // And the socket's directory is gone once gh is.
    m.cached(&["issue", "status"]).ok();
    let left: Vec<PathBuf> = std::fs::read_dir(m.home.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("ghcache-"))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new());
}

#[test]
fn bodies_over_the_size_cap_are_streamed_and_not_stored() {
    let world = World::new();
    for n in 0..40 {
        world
            .github
            .add_issue("o/r", &format!("A long enough issue title, number {n}"));
    }
    let gh = ghcache_tests::gh_bin();
    let mut m = machine(&world, "m", &gh);
    m.set_env("GH_CACHE_MAX_ENTRY_SIZE", "2KiB");
    let want = plain(&m, &gh, &["api", "repos/o/r/issues", "--paginate"]).ok();
    assert!(want.stdout.len() > 4096);
    world.github.clear_log();
    for _ in 0..2 {
        assert_eq!(m.cached(&["api", "repos/o/r/issues", "--paginate"]), want);
    }
    assert_eq!(
        world.github.request_count(),
        2,
        "stored nowhere: asked each time"
    );
    let stats = m.stats();
    assert!(
        stats["http"]["streamed_bytes"].as_u64() >= Some(2 * want.stdout.len() as u64),
        "{stats}"
    );
}

#[test]
fn answers_to_gh_s_requests_travel_through_the_swarm_and_writes_reach_the_peers() {
    let world = World::new();
    let gh = ghcache_tests::gh_bin();
    let key = world.swarm_key("team");
    let (a, b) = (machine(&world, "a", &gh), machine(&world, "b", &gh));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    // `issue status` is not cached as a command: only its requests are.
    let heard = db.counters().announcements_received;
    let fetched = a.cached(&["issue", "status"]).ok();
    assert!(
        wait_until(DEADLINE, || db.counters().announcements_received
            >= heard + 2),
        "B heard of A's answers: {}",
        db.log()
    );
    let before = world.requests();
    assert_eq!(b.cached(&["issue", "status"]), fetched);
    assert_eq!(world.requests(), before, "B's gh was answered by A");
    assert!(b.stats()["http"]["hits"]["p2p"].as_u64() >= Some(1));

    // A write on A: B's next answer comes from GitHub, with the write in it.
    let invalidations = db.counters().invalidations_received;
    a.cached(&[
        "issue",
        "create",
        "-R",
        "o/r",
        "--title",
        "Written on A",
        "--body",
        "b",
    ])
    .ok();
    assert!(
        wait_until(DEADLINE, || db.counters().invalidations_received
            > invalidations),
        "B heard of the write: {}",
        db.log()
    );
    let after = b.cached(&["issue", "status"]).ok();
    assert!(after.out().contains("Written on A"), "{}", after.out());
}

#[test]
fn answers_to_gh_s_requests_travel_through_ipfs() {
    let world = World::new();
    let gh = ghcache_tests::gh_bin();
    let node = ghcache_tests::ipfs::IpfsNode::start();
    // Members of one swarm: without its key (or trusted producers) IPFS entries of other
    // machines are not used.
    let key = world.swarm_key("team");
    let with_ipfs = |name| {
        let mut m = machine(&world, name, &gh);
        m.set_env("GH_CACHE_IPFS", "1");
        m.set_env("GH_CACHE_IPFS_API", &node.api_url());
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
        m
    };
    let (a, b) = (with_ipfs("a"), with_ipfs("b"));
    let fetched = a.cached(&["issue", "status"]).ok();
    let requests = world.requests();
    // Each answer is added by a `ghcache ipfs-store` of its own once gh is done.
    assert!(
        wait_until(DEADLINE, || a.stats()["ipfs_entries"].as_u64()
            >= Some(requests as u64)),
        "{}",
        a.stats()
    );
    assert_eq!(b.cached(&["issue", "status"]), fetched);
    assert_eq!(world.requests(), requests, "B's gh was answered from IPFS");
    assert!(b.stats()["http"]["hits"]["ipfs"].as_u64() >= Some(1));
}

#[test]
fn a_login_kept_in_gh_s_hosts_yml_keeps_working() {
    for gh in gh_versions() {
        let world = World::new();
        let mut m = machine(&world, "m", &gh);
        m.unset_env("GH_TOKEN");
        let hosts = "github.localhost:\n    oauth_token: ghp_fromhostsyml\n    user: octocat\n";
        std::fs::write(m.home.join("gh-config/hosts.yml"), hosts)
            .unwrap_or_else(|e| panic!("hosts.yml: {e}"));
        let want = plain(&m, &gh, &["issue", "status"]).ok();
        world.github.clear_log();
        assert_eq!(m.cached(&["issue", "status"]), want);
        let tokens: Vec<Option<String>> = world
            .github
            .requests()
            .into_iter()
            .map(|r| r.token)
            .collect();
        assert!(!tokens.is_empty());
        assert!(
            tokens
                .iter()
                .all(|t| t.as_deref() == Some("ghp_fromhostsyml")),
            "gh {}: {tokens:?}",
            name(&gh)
        );
        assert_eq!(
            std::fs::read_to_string(m.home.join("gh-config/hosts.yml"))
                .ok()
                .as_deref(),
            Some(hosts),
            "the user's own file, untouched"
        );
    }
}
