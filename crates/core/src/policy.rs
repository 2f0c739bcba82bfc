//! Which `gh` commands may be cached, for how long, and which are writes.
//!
//! Only an explicit allowlist of read-only commands is cached; known writes run and then drop the
//! repository's entries; everything else (interactive, streaming, unknown, aliases) goes straight
//! to gh. When in doubt, a command is not cached: a wrong answer costs more than a request.

use std::time::Duration;

/// Freshness class of a cacheable command; each has its own TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TtlClass {
    /// `pr list`, `issue list`, `run list`, `label list`, `repo list`, `workflow list`, ...
    List,
    /// `pr view`, `issue view`, `run view`, `pr diff`, `pr checks`, `workflow view`, ...
    View,
    /// `repo view`: changes rarely.
    RepoView,
    /// `release list|view`.
    Release,
    /// `search *`.
    Search,
    /// `gh api` GET/HEAD and GraphQL queries.
    Api,
}

impl TtlClass {
    /// All classes, in config order.
    pub const ALL: [TtlClass; 6] = [
        TtlClass::List,
        TtlClass::View,
        TtlClass::RepoView,
        TtlClass::Release,
        TtlClass::Search,
        TtlClass::Api,
    ];

    /// Name used in the config file (`[ttl] list = "60s"`) and in `ghcache config`.
    pub fn name(self) -> &'static str {
        match self {
            TtlClass::List => "list",
            TtlClass::View => "view",
            TtlClass::RepoView => "repo_view",
            TtlClass::Release => "release",
            TtlClass::Search => "search",
            TtlClass::Api => "api",
        }
    }

    /// Default TTL.
    pub fn default_ttl(self) -> Duration {
        Duration::from_secs(match self {
            TtlClass::List => 60,
            TtlClass::View => 120,
            TtlClass::RepoView => 3600,
            TtlClass::Release => 600,
            TtlClass::Search => 60,
            TtlClass::Api => 60,
        })
    }
}

/// A cacheable command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cacheable {
    /// TTL class.
    pub class: TtlClass,
    /// Normalised argv for the key: the repo flag removed (the repo context is keyed separately).
    pub key_argv: Vec<String>,
    /// Value of `-R/--repo`, if given.
    pub repo_flag: Option<String>,
    /// A repository named by the arguments themselves (`repo view o/r`, `api repos/o/r/...`).
    pub named_repo: Option<String>,
    /// `gh api` GET without `--paginate`: the origin may use ETags.
    pub api_get: bool,
    /// The user passed `-i/--include` to `gh api`: headers are part of the output.
    pub include_headers: bool,
}

/// A command known to change GitHub state: run it, and on success drop the repo's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Value of `-R/--repo`, if given.
    pub repo_flag: Option<String>,
    /// A repository named by the arguments themselves (`api repos/o/r/...`, `repo edit o/r`).
    pub named_repo: Option<String>,
}

/// What to do with a `gh` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Read-only and on the allowlist: answer from the cache.
    Cache(Cacheable),
    /// A write: run gh, then invalidate.
    Write(Write),
    /// Anything else (interactive, streaming, unknown, aliases): exec gh untouched.
    Passthrough(&'static str),
}

/// Classifies gh's arguments (without the leading `gh`).
pub fn classify(argv: &[String]) -> Decision {
    let Some(first) = argv.first() else {
        return Decision::Passthrough("no command");
    };
    if matches!(
        first.as_str(),
        "help" | "version" | "--version" | "-h" | "--help"
    ) {
        return Decision::Passthrough("help or version");
    }
    if first.starts_with('-') {
        return Decision::Passthrough("flags before the command");
    }
    if first == "api" {
        return classify_api(&argv[1..]);
    }
    let args = &argv[1..];
    if args.iter().any(|a| is_web_or_watch(first, a)) {
        return Decision::Passthrough("opens a browser or follows live progress");
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Decision::Passthrough("help");
    }
    let repo_flag = repo_flag(args);
    let positionals = positionals(args);
    let Some(sub) = positionals.first().map(String::as_str) else {
        return Decision::Passthrough("command group without a subcommand");
    };
    let operand = positionals.get(1).map(String::as_str);
    let command = first.as_str();
    if let Some(class) = read_only(command, sub, operand) {
        let named_repo = match (command, sub) {
            ("repo", "view") => operand.and_then(crate::context::normalize_repo),
            _ => None,
        };
        return Decision::Cache(Cacheable {
            class,
            key_argv: without_repo_flag(argv),
            repo_flag,
            named_repo,
            api_get: false,
            include_headers: false,
        });
    }
    if is_write(command, sub) {
        let named_repo = match command {
            "repo" => operand.and_then(crate::context::normalize_repo),
            _ => None,
        };
        return Decision::Write(Write {
            repo_flag,
            named_repo,
        });
    }
    Decision::Passthrough("not on the read-only allowlist")
}

/// The allowlist: read-only commands and their TTL class. `None` for anything else, including
/// read-only commands whose answer depends on more than the key holds (the current branch, a
/// prompt).
fn read_only(command: &str, sub: &str, operand: Option<&str>) -> Option<TtlClass> {
    use TtlClass::*;
    let class = match (command, sub) {
        ("repo", "view") => RepoView,
        ("repo", "list") => List,
        // Without a number these resolve the pull request from the current git branch.
        ("pr", "view" | "diff" | "checks") if operand.is_some() => View,
        ("pr", "list") => List,
        ("issue", "list") => List,
        ("issue", "view") if operand.is_some() => View,
        ("run", "list") => List,
        // Without a run id, `run view` prompts.
        ("run", "view") if operand.is_some() => View,
        ("release", "list" | "view") => Release,
        ("workflow", "list") => List,
        ("workflow", "view") if operand.is_some() => View,
        ("label", "list") => List,
        ("cache", "list") => List,
        ("ruleset", "list") => List,
        ("ruleset", "view") if operand.is_some() => View,
        ("search", "repos" | "issues" | "prs" | "commits" | "code") => Search,
        _ => return None,
    };
    Some(class)
}

/// Subcommands that change GitHub state. They run as usual; on success the cache forgets the
/// repository they touched, so the user sees their own write.
fn is_write(command: &str, sub: &str) -> bool {
    const GROUPS: [&str; 11] = [
        "pr", "issue", "repo", "release", "run", "workflow", "label", "cache", "secret",
        "variable", "ruleset",
    ];
    const WRITES: [&str; 29] = [
        "create",
        "edit",
        "merge",
        "close",
        "reopen",
        "comment",
        "delete",
        "ready",
        "review",
        "lock",
        "unlock",
        "pin",
        "unpin",
        "transfer",
        "develop",
        "fork",
        "rename",
        "archive",
        "unarchive",
        "sync",
        "upload",
        "rerun",
        "cancel",
        "run",
        "enable",
        "disable",
        "set",
        "remove",
        "delete-asset",
    ];
    GROUPS.contains(&command) && WRITES.contains(&sub)
}

fn is_web_or_watch(command: &str, arg: &str) -> bool {
    match arg {
        "--web" | "--watch" | "--interactive" => true,
        // `-w` means --web for every command on the allowlist that has it.
        "-w" => command != "api",
        _ => arg.starts_with("--web=") || arg.starts_with("--watch="),
    }
}

/// Flags (of allowlisted commands) that take a value, so the value is not a positional.
const VALUE_FLAGS: [&str; 24] = [
    "-R",
    "--repo",
    "-q",
    "--jq",
    "-t",
    "--template",
    "--json",
    "-L",
    "--limit",
    "-s",
    "--state",
    "-l",
    "--label",
    "-a",
    "--assignee",
    "-A",
    "--author",
    "-B",
    "--base",
    "-H",
    "--head",
    "-b",
    "--branch",
    "-S",
];

/// Positional arguments, skipping flags and the values of flags known to take one.
fn positionals(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.extend(iter.by_ref().cloned());
            break;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            if VALUE_FLAGS.contains(&arg.as_str()) {
                iter.next();
            }
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// The value of `-R/--repo` in any of its spellings (`-R x`, `-Rx`, `--repo x`, `--repo=x`).
fn repo_flag(args: &[String]) -> Option<String> {
    let mut found = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg == "-R" || arg == "--repo" {
            found = iter.next().cloned();
        } else if let Some(value) = arg.strip_prefix("--repo=") {
            found = Some(value.to_owned());
        } else if let Some(value) = arg.strip_prefix("-R").filter(|v| !v.is_empty()) {
            found = Some(value.to_owned());
        }
    }
    found
}

/// The argv without the repo flag: the repository context is a key part of its own, so `-R o/r`,
/// `--repo=O/R` and `GH_REPO=o/r` share one entry.
fn without_repo_flag(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut iter = argv.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(iter.by_ref().cloned());
            break;
        }
        if arg == "-R" || arg == "--repo" {
            iter.next();
        } else if !(arg.starts_with("--repo=") || (arg.starts_with("-R") && arg.len() > 2)) {
            out.push(arg.clone());
        }
    }
    out
}

/// `gh api` flags that take a value.
const API_VALUE_FLAGS: [&str; 16] = [
    "-X",
    "--method",
    "-f",
    "--raw-field",
    "-F",
    "--field",
    "--input",
    "-H",
    "--header",
    "-q",
    "--jq",
    "-t",
    "--template",
    "-p",
    "--preview",
    "--hostname",
];

/// `gh api`: the method decides. Without `-X`, fields or `--input` make gh send a POST.
fn classify_api(args: &[String]) -> Decision {
    let mut method: Option<String> = None;
    let mut has_body = false;
    let mut endpoint: Option<&str> = None;
    let mut query: Option<&str> = None;
    let mut query_from_file = false;
    let mut paginate = false;
    let mut include_headers = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg.as_str(), None),
        };
        // Short flags may carry their value glued on: `-XPOST`, `-fquery=...`.
        let (flag, inline) = match (flag, inline) {
            (f, None) if f.len() > 2 && f.starts_with('-') && !f.starts_with("--") => {
                (&f[..2], Some(&arg[2..]))
            }
            other => other,
        };
        if API_VALUE_FLAGS.contains(&flag) {
            let Some(value) = inline.or_else(|| iter.next().map(String::as_str)) else {
                return Decision::Passthrough("gh api flag without a value");
            };
            match flag {
                "-X" | "--method" => method = Some(value.to_ascii_uppercase()),
                "-f" | "--raw-field" | "-F" | "--field" => {
                    has_body = true;
                    if let Some(q) = value.strip_prefix("query=") {
                        query_from_file = flag.ends_with('F') || flag == "--field";
                        query_from_file &= q.starts_with('@');
                        query = Some(q);
                    }
                }
                "--input" => {
                    has_body = true;
                    query_from_file = true;
                }
                _ => {}
            }
            continue;
        }
        match flag {
            "--paginate" => paginate = true,
            "-i" | "--include" => include_headers = true,
            "--verbose" => return Decision::Passthrough("gh api --verbose"),
            "-h" | "--help" => return Decision::Passthrough("help"),
            f if f.starts_with('-') && f.len() > 1 => {}
            _ => {
                if endpoint.is_none() {
                    endpoint = Some(arg.as_str());
                }
            }
        }
    }
    let Some(endpoint) = endpoint else {
        return Decision::Passthrough("gh api without an endpoint");
    };
    let method = method.unwrap_or_else(|| if has_body { "POST" } else { "GET" }.to_owned());
    let named_repo = api_repo(endpoint);
    let write = Decision::Write(Write {
        repo_flag: None,
        named_repo: named_repo.clone(),
    });
    let cacheable = |class| {
        Decision::Cache(Cacheable {
            class,
            key_argv: std::iter::once("api".to_owned())
                .chain(args.iter().cloned())
                .collect(),
            repo_flag: None,
            named_repo: named_repo.clone(),
            api_get: method == "GET" && !paginate,
            include_headers,
        })
    };
    if endpoint.trim_start_matches('/') == "graphql" {
        if method != "POST" {
            return write;
        }
        // GraphQL is always a POST; the document says whether it reads or writes.
        return match query {
            Some(q) if !query_from_file && is_graphql_query(q) => {
                let mut decision = cacheable(TtlClass::Api);
                if let Decision::Cache(c) = &mut decision {
                    c.api_get = false;
                }
                decision
            }
            // A mutation, or a document we cannot read: treat it as a write.
            _ => write,
        };
    }
    match method.as_str() {
        "GET" | "HEAD" => cacheable(TtlClass::Api),
        _ => write,
    }
}

/// Whether a GraphQL document is a query (not a mutation or subscription).
fn is_graphql_query(document: &str) -> bool {
    let mut rest = document;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, r)| r),
            None => break,
        }
    }
    if rest.starts_with('{') {
        return true;
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    // Any mutation anywhere in the document makes the whole request a write.
    word == "query"
        && !contains_operation(document, "mutation")
        && !contains_operation(document, "subscription")
}

fn contains_operation(document: &str, word: &str) -> bool {
    document.match_indices(word).any(|(i, _)| {
        let before = document[..i].chars().next_back();
        let after = document[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
    })
}

/// The repository a REST path names: `repos/OWNER/NAME/...`.
fn api_repo(endpoint: &str) -> Option<String> {
    let path = endpoint.split(['?', '#']).next().unwrap_or("");
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next() != Some("repos") {
        return None;
    }
    let owner = parts.next()?;
    let name = parts.next()?;
    if owner.starts_with('{') || name.starts_with('{') {
        return None;
    }
    crate::context::normalize_repo(&format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests;
