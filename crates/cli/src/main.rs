//! `ghcache`: a multi-tier cache for the GitHub CLI.
//!
//! `ghcache gh <args>` answers read-only gh commands from the nearest tier that holds a fresh
//! copy and runs everything else through the real gh untouched. This binary is a thin shell
//! over the `ghcache` library: flags, printing, and `exec` for commands gh must run itself.

mod manual;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use ghcache::config::{self, Config, Flags};
#[cfg(feature = "p2p")]
use ghcache::tiers::daemon;
use ghcache::{context, gh, shell, stats, Failure};

/// A multi-tier cache for the GitHub CLI: read-only gh commands answered from disk in ~2 ms.
#[derive(Debug, Parser)]
#[command(name = "ghcache", version, propagate_version = true)]
struct Cli {
    /// Cache directory [env: GH_CACHE_DIR] [default: $XDG_CACHE_HOME/ghcache]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// The gh program to run [env: GH_CACHE_GH] [default: gh]
    #[arg(long, global = true, value_name = "PROGRAM")]
    gh: Option<String>,
    /// Cache scope: who is asking; entries never cross scopes [env: GH_CACHE_SCOPE]
    #[arg(long, global = true, value_name = "SCOPE")]
    scope: Option<String>,
    /// Override a TTL class, e.g. --ttl list=30s (repeatable) [env: GH_CACHE_TTL_<CLASS>]
    #[arg(long, global = true, value_name = "CLASS=DURATION")]
    ttl: Vec<String>,
    /// One line per request on stderr: tier, key prefix, milliseconds [env: GH_CACHE_DEBUG=1]
    #[arg(long, global = true)]
    debug: bool,
    /// Run gh directly, as if ghcache were not there [env: GH_CACHE_ENABLED=0]
    #[arg(long, global = true)]
    no_cache: bool,
    /// Also look for answers in IPFS and add what GitHub answered to it [env: GH_CACHE_IPFS=1]
    #[arg(long, global = true)]
    ipfs: bool,
    /// The IPFS node's Kubo RPC API [env: GH_CACHE_IPFS_API] [default: http://127.0.0.1:5001]
    #[arg(long, global = true, value_name = "URL")]
    ipfs_api: Option<String>,
    /// Encrypt bodies added to IPFS with a key from the swarm key and scope (the default when a
    /// swarm key is set) [env: GH_CACHE_IPFS_ENCRYPT=1]
    #[arg(long, global = true, conflicts_with = "no_ipfs_encrypt")]
    ipfs_encrypt: bool,
    /// Add bodies to IPFS as they are: readable by anyone who learns a CID
    #[arg(long, global = true)]
    no_ipfs_encrypt: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run gh through the cache: `ghcache gh pr list -R owner/repo`.
    ///
    /// Read-only commands on the allowlist are answered from the cache; writes run gh and then
    /// drop the repository's cached entries; everything else runs gh untouched. All arguments
    /// after `gh` go to gh, including --help.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Gh {
        /// Arguments for gh, in any encoding: words that are not UTF-8 cannot be part of a
        /// cache key, and gh then runs with them untouched.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Show statistics since the cache was created, per tier.
    Stats {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drop cached entries: everything, or one repository's.
    Clear {
        /// Drop only entries about this repository.
        #[arg(long, value_name = "OWNER/NAME")]
        repo: Option<String>,
        /// Drop everything (the default when --repo is not given).
        #[arg(long, conflicts_with = "repo")]
        all: bool,
    },
    /// Print the effective configuration and where each value came from.
    Config,
    /// Run this machine's node in the team's private swarm (foreground, logs to stderr).
    ///
    /// Peers share what any of them fetched from GitHub. Needs the swarm's pre-shared key
    /// (`ghcache swarm-key new`). `ghcache gh` asks the daemon of its cache dir after a local miss.
    #[cfg(feature = "p2p")]
    #[command(args_conflicts_with_subcommands = true)]
    Daemon {
        #[command(subcommand)]
        action: Option<DaemonAction>,
        // Boxed: the daemon's many flags would make every command as large as they are.
        #[command(flatten)]
        flags: Box<daemon::Flags>,
    },
    /// Make the swarm's pre-shared key.
    #[cfg(feature = "p2p")]
    SwarmKey {
        #[command(subcommand)]
        action: SwarmKeyAction,
    },
    /// Internal: add a stored entry to IPFS and announce it (started by `ghcache gh`).
    #[cfg(feature = "ipfs")]
    #[command(hide = true)]
    IpfsStore {
        /// The entry's cache key (hex).
        key: String,
        /// The entry's scope.
        #[arg(long)]
        scope: String,
    },
    /// Print shell functions that route `gh` through ghcache: eval "$(ghcache shell-init bash)".
    ShellInit {
        /// Which shell.
        shell: shell::Shell,
    },
    /// GitHub Actions: what a job's setup step runs.
    Actions {
        #[command(subcommand)]
        action: ActionsAction,
    },
    /// Print a shell completion script: `ghcache completions bash`, `zsh`, `fish`, ...
    ///
    /// For bash: `ghcache completions bash > ~/.local/share/bash-completion/completions/ghcache`;
    /// for zsh, a file `_ghcache` in a directory of `$fpath`; for fish,
    /// `~/.config/fish/completions/ghcache.fish`.
    Completions {
        /// Which shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `ghcache man | man -l -`.
    Man {
        /// Write one page per command into this directory instead (ghcache.1, ghcache-gh.1, ...).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ActionsAction {
    /// Print the lines that declare `GITHUB_TOKEN` to be the job's own token, and the job's
    /// permissions, for $GITHUB_ENV: `ghcache actions declare --permissions 'contents: read'
    /// >> "$GITHUB_ENV"`.
    ///
    /// Later steps that call gh with that token share answers with the repository's jobs that
    /// declare the same permissions (scope `actions:<owner/repo>#perms=...`), or, without
    /// `--permissions`, only with runs of the same job of the same workflow at the same commit;
    /// any other token (a PAT, an App token) keeps its own scope. The lines hold a hash of the
    /// token, never the token. Run it with the job's token: `env: GITHUB_TOKEN: ${{
    /// github.token }}`.
    Declare {
        /// The job's `permissions:` block, as the workflow writes it (`contents: read, issues:
        /// read`, one a line or separated by commas, `read-all`, `write-all`, `{}`): declare
        /// exactly the job's own, or nothing.
        #[arg(long, value_name = "PERMISSIONS")]
        permissions: Option<String>,
    },
    /// Print the scope that gh calls with the job's declared token get (for the runner's
    /// daemon, which is not given the token); fails when the job shares none.
    Scope,
}

#[cfg(feature = "p2p")]
#[derive(Debug, Subcommand)]
enum DaemonAction {
    /// Show the running daemon's peer id, listen addresses and connected peers.
    Status {
        /// Print one JSON object (`peer_id`, `listen_addrs`, `connected_peers`, ...).
        #[arg(long)]
        json: bool,
    },
    /// Print the peer id this cache dir's daemon has (made on first use), without starting it:
    /// the audience `ghcache:<peer id>` of the OIDC token it presents.
    Id,
}

#[cfg(feature = "p2p")]
#[derive(Debug, Subcommand)]
enum SwarmKeyAction {
    /// Make a new random key in the IPFS swarm.key format: `ghcache swarm-key new --out swarm.key`.
    New {
        /// Write it to this new file, readable by you only, instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

impl Cli {
    /// `ghcache gh <args>` with every option at its default.
    fn gh(args: Vec<OsString>) -> Cli {
        Cli {
            cache_dir: None,
            gh: None,
            scope: None,
            ttl: Vec::new(),
            debug: false,
            no_cache: false,
            ipfs: false,
            ipfs_api: None,
            ipfs_encrypt: false,
            no_ipfs_encrypt: false,
            command: Command::Gh { args },
        }
    }
}

/// gh's arguments when the command line is `ghcache gh <word> ...`, the form every cached call
/// takes; `None` for anything else, which clap parses.
///
/// Building clap's parser for all subcommands is about a tenth of a local hit. It is not needed
/// here: once `gh` is followed by a word that is not an option, clap hands that word and
/// everything after it to gh unread (trailing arguments), so the result is the same. Words
/// need not be UTF-8 (gh takes any bytes): they are passed on as they are.
fn gh_words(argv: impl IntoIterator<Item = OsString>) -> Option<Vec<OsString>> {
    let mut argv = argv.into_iter().skip(1);
    if argv.next()? != "gh" {
        return None;
    }
    let args: Vec<OsString> = argv.collect();
    match args.first() {
        Some(first) if !first.as_encoded_bytes().starts_with(b"-") => Some(args),
        _ => None,
    }
}

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(Failure::Usage(line)) => {
            let _ = writeln!(std::io::stderr(), "ghcache: error: {line}");
            2
        }
        Err(Failure::Runtime(line)) => {
            let _ = writeln!(std::io::stderr(), "ghcache: error: {line}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> Result<i32, Failure> {
    let cli = match gh_words(std::env::args_os()) {
        Some(args) => Cli::gh(args),
        None => Cli::parse(),
    };
    // Unknown `GH_CACHE_*` names and values that are not UTF-8 are errors, checked here because
    // the lookups by name below would pass over them in silence.
    config::check_env(std::env::vars_os()).map_err(|e| Failure::Usage(e.to_string()))?;
    let env = |name: &str| std::env::var(name).ok();
    let flags = Flags {
        cache_dir: cli.cache_dir,
        gh: cli.gh.map(Into::into),
        scope: cli.scope,
        debug: cli.debug,
        no_cache: cli.no_cache,
        ttl: cli.ttl,
        ipfs: cli.ipfs,
        ipfs_api: cli.ipfs_api,
        ipfs_encrypt: match (cli.ipfs_encrypt, cli.no_ipfs_encrypt) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    #[cfg_attr(not(feature = "p2p"), allow(unused_mut))]
    let mut config = Config::load(&env, &flags).map_err(|e| Failure::Usage(e.to_string()))?;
    match cli.command {
        Command::Gh { args } if args.iter().all(|a| a.to_str().is_some()) => {
            let args = args.into_iter().filter_map(|a| a.into_string().ok());
            gh::run(&config, &env, args.collect())
        }
        Command::Gh { args } => Err(gh::run_raw(&config, &args)),
        Command::Stats { json } => stats::show(&config, json),
        Command::Clear { repo, all: _ } => stats::clear(&config, repo.as_deref()),
        #[cfg(feature = "p2p")]
        Command::Daemon {
            action: Some(DaemonAction::Status { json }),
            ..
        } => daemon::status(&config, json),
        #[cfg(feature = "p2p")]
        Command::Daemon {
            action: Some(DaemonAction::Id),
            ..
        } => daemon::id(&config),
        #[cfg(feature = "p2p")]
        Command::Daemon {
            action: None,
            flags,
        } => daemon::run(&mut config, *flags),
        #[cfg(feature = "p2p")]
        Command::SwarmKey {
            action: SwarmKeyAction::New { out },
        } => daemon::new_swarm_key(out.as_deref()),
        #[cfg(feature = "ipfs")]
        Command::IpfsStore { key, scope } => gh::ipfs_store(&config, &key, &scope),
        Command::Config => {
            print!("{}", stats::describe_config(&config));
            Ok(0)
        }
        Command::ShellInit { shell } => {
            print!("{}", shell::init(shell));
            Ok(0)
        }
        Command::Actions {
            action: ActionsAction::Declare { permissions },
        } => {
            let lines = context::declare(&env, permissions.as_deref()).map_err(Failure::Usage)?;
            println!("{lines}");
            Ok(0)
        }
        Command::Actions {
            action: ActionsAction::Scope,
        } => {
            println!("{}", context::actions_scope(&env).map_err(Failure::Usage)?);
            Ok(0)
        }
        Command::Completions { shell } => manual::completions(shell),
        Command::Man { dir } => manual::man(dir.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(words: &[&str]) -> Vec<std::ffi::OsString> {
        words.iter().map(Into::into).collect()
    }

    #[test]
    fn only_gh_followed_by_a_word_skips_the_parser() {
        let yes = gh_words(os(&["ghcache", "gh", "pr", "list", "--debug", "-R", "o/r"]));
        assert_eq!(yes, Some(os(&["pr", "list", "--debug", "-R", "o/r"])));
        for no in [
            &["ghcache", "gh"][..],
            &["ghcache", "gh", "--debug", "pr", "list"],
            &["ghcache", "gh", "-R", "o/r", "pr", "list"],
            &["ghcache", "--debug", "gh", "pr", "list"],
            &["ghcache", "stats"],
            &["ghcache"],
        ] {
            assert_eq!(gh_words(os(no)), None, "{no:?}");
        }
    }

    #[test]
    fn words_that_are_not_utf8_reach_gh_as_they_are() {
        use std::os::unix::ffi::OsStringExt as _;
        let odd = OsString::from_vec(b"o/r\xff".to_vec());
        let mut argv = os(&["ghcache", "gh", "pr", "list", "-R"]);
        argv.push(odd.clone());
        let mut expected = os(&["pr", "list", "-R"]);
        expected.push(odd);
        assert_eq!(gh_words(argv.clone()), Some(expected.clone()));
        // Where the fast path does not apply, clap passes them on as well.
        argv.insert(1, "--debug".into());
        let parsed = Cli::try_parse_from(argv).map(|cli| cli.command);
        assert!(
            matches!(&parsed, Ok(Command::Gh { args }) if *args == expected),
            "{parsed:?}"
        );
    }

    /// A word of a gh command line: gh words, ghcache's own options, values, odd characters.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "pr",
                "list",
                "view",
                "api",
                "gh",
                "help",
                "--help",
                "-h",
                "--version",
                "-V",
                "--debug",
                "--cache-dir",
                "--scope",
                "--ttl",
                "--no-cache",
                "--ipfs",
                "-R",
                "o/r",
                "--",
                "-",
                "=",
                "--json",
                "name",
            ])
            .prop_map(String::from),
            "[ -~]{0,8}",
        ]
    }

    proptest! {
        /// Wherever the fast path answers, clap would have given gh the same arguments.
        #[test]
        fn the_fast_path_agrees_with_clap(first in word(), rest in prop::collection::vec(word(), 0..6)) {
            let mut argv = vec!["ghcache".to_owned(), "gh".to_owned(), first];
            argv.extend(rest);
            let argv: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
            if let Some(fast) = gh_words(argv.clone()) {
                let parsed = Cli::try_parse_from(argv).map(|cli| cli.command);
                match parsed {
                    Ok(Command::Gh { args }) => prop_assert_eq!(args, fast),
                    other => prop_assert!(false, "clap parsed {:?}", other),
                }
            }
        }
    }
}
