//! Which `gh` commands may be cached, for how long, and which are writes.
//!
//! Only an explicit allowlist of read-only commands is cached; known writes run and then drop the
//! answers they can change; everything else (interactive, streaming, unknown, aliases) goes
//! straight to gh. When in doubt, a command is not cached: a wrong answer costs more than a
//! request.
//!
//! Every cacheable read shows one [`Resource`] of a repository, and every write names the
//! resources it can change ([`Changes`]): `gh issue create` drops cached issue lists and searches
//! but keeps the releases. A write whose effects are not known drops the whole repository.

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

/// What part of a repository an answer shows, and so which writes can change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Issues, their comments and the labels on them.
    Issues,
    /// Pull requests, their reviews, diffs and checks.
    PullRequests,
    /// Releases and their assets.
    Releases,
    /// Workflows, their runs, and Actions caches.
    Actions,
    /// The repository's label definitions.
    Labels,
    /// The repository itself: description, settings, rulesets.
    Metadata,
    /// Search results: they span repositories, so a write to any repository can change them.
    Search,
    /// Anything not classified (GraphQL queries, other REST paths): every write to the
    /// repository may change it.
    Other,
}

impl Resource {
    /// Every resource, in the order of their codes.
    pub const ALL: [Resource; 8] = [
        Resource::Issues,
        Resource::PullRequests,
        Resource::Releases,
        Resource::Actions,
        Resource::Labels,
        Resource::Metadata,
        Resource::Search,
        Resource::Other,
    ];

    /// Name in debug lines and docs.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Issues => "issues",
            Resource::PullRequests => "pull requests",
            Resource::Releases => "releases",
            Resource::Actions => "actions",
            Resource::Labels => "labels",
            Resource::Metadata => "metadata",
            Resource::Search => "search",
            Resource::Other => "other",
        }
    }

    /// Stable number for encodings (manifests, the index, the wire): never reuse one.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Resource::code`].
    pub fn from_code(code: u8) -> Option<Resource> {
        Resource::ALL.get(usize::from(code)).copied()
    }
}

/// A set of [`Resource`]s, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Resources(u16);

impl Resources {
    /// The set of `list`.
    pub fn of(list: &[Resource]) -> Resources {
        Resources(list.iter().fold(0, |bits, r| bits | 1 << r.code()))
    }

    /// Whether `resource` is in the set.
    pub fn contains(self, resource: Resource) -> bool {
        self.0 & 1 << resource.code() != 0
    }

    /// The resources in the set, in code order.
    pub fn iter(self) -> impl Iterator<Item = Resource> {
        Resource::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The bits, for encodings.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Inverse of [`Resources::bits`]; bits of unknown resources are an error.
    pub fn from_bits(bits: u16) -> Option<Resources> {
        (bits >> Resource::ALL.len() == 0).then_some(Resources(bits))
    }
}

/// What a write can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// Anything about the repository: a write whose effects are not known.
    Repository,
    /// These resources of the repository (and, always, what is [`Resource::Other`]).
    Resources(Resources),
}

/// A cacheable command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cacheable {
    /// TTL class.
    pub class: TtlClass,
    /// What the answer shows: which writes drop it.
    pub resource: Resource,
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

/// A command known to change GitHub state: run it, then drop the answers it can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Value of `-R/--repo`, if given.
    pub repo_flag: Option<String>,
    /// A repository named by the arguments themselves (`api repos/o/r/...`, `repo edit o/r`).
    pub named_repo: Option<String>,
    /// What it can change.
    pub changes: Changes,
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
    if let Some((class, resource)) = read_only(command, sub, operand) {
        let named_repo = match (command, sub) {
            ("repo", "view") => operand.and_then(crate::context::normalize_repo),
            _ => None,
        };
        return Decision::Cache(Cacheable {
            class,
            resource,
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
            changes: changes_of_group(command),
        });
    }
    Decision::Passthrough("not on the read-only allowlist")
}

/// The allowlist: read-only commands, their TTL class and what they show. `None` for anything
/// else, including read-only commands whose answer depends on more than the key holds (the
/// current branch, a prompt).
fn read_only(command: &str, sub: &str, operand: Option<&str>) -> Option<(TtlClass, Resource)> {
    use Resource::*;
    use TtlClass::*;
    let found = match (command, sub) {
        ("repo", "view") => (RepoView, Metadata),
        // The repositories of an owner: no write to one repository is known to change the list.
        ("repo", "list") => (List, Other),
        // Without a number these resolve the pull request from the current git branch.
        ("pr", "view" | "diff" | "checks") if operand.is_some() => (View, PullRequests),
        ("pr", "list") => (List, PullRequests),
        ("issue", "list") => (List, Issues),
        ("issue", "view") if operand.is_some() => (View, Issues),
        ("run", "list") => (List, Actions),
        // Without a run id, `run view` prompts.
        ("run", "view") if operand.is_some() => (View, Actions),
        ("release", "list" | "view") => (Release, Releases),
        ("workflow", "list") => (List, Actions),
        ("workflow", "view") if operand.is_some() => (View, Actions),
        ("label", "list") => (List, Labels),
        ("cache", "list") => (List, Actions),
        ("ruleset", "list") => (List, Metadata),
        ("ruleset", "view") if operand.is_some() => (View, Metadata),
        ("search", "repos" | "issues" | "prs" | "commits" | "code") => {
            (TtlClass::Search, Resource::Search)
        }
        _ => return None,
    };
    Some(found)
}

/// What a write of a gh command group can change. Generous where a write has side effects: a
/// merged pull request closes the issues it fixes and starts workflow runs; a rerun changes a
/// pull request's checks; a deleted label leaves the issues that had it; the repository itself
/// counts its open issues and pull requests and dates its last change.
pub fn changes_of_group(command: &str) -> Changes {
    use Resource::*;
    let resources: &[Resource] = match command {
        "issue" => &[Issues, Search, Metadata],
        "pr" => &[PullRequests, Issues, Actions, Search, Metadata],
        "release" => &[Releases, Metadata],
        "run" | "workflow" | "cache" => &[Actions, PullRequests],
        "label" => &[Labels, Issues, PullRequests, Search],
        "ruleset" => &[Metadata],
        // Secrets and variables show in no cached answer.
        "secret" | "variable" => &[],
        _ => return Changes::Repository,
    };
    Changes::Resources(Resources::of(resources))
}

/// What a REST path of a repository shows (`repos/o/r/issues/1` -> issues).
pub fn resource_of_path(endpoint: &str) -> Resource {
    let path = endpoint.split(['?', '#']).next().unwrap_or("");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["search", ..] => Resource::Search,
        ["repos", _, _] => Resource::Metadata,
        ["repos", _, _, section, ..] => match *section {
            "issues" => Resource::Issues,
            "pulls" => Resource::PullRequests,
            "releases" => Resource::Releases,
            "actions" => Resource::Actions,
            "labels" => Resource::Labels,
            _ => Resource::Other,
        },
        _ => Resource::Other,
    }
}

/// What a REST write to `endpoint` can change: as the command group of the same resource.
pub fn changes_of_path(endpoint: &str) -> Changes {
    match resource_of_path(endpoint) {
        Resource::Issues => changes_of_group("issue"),
        Resource::PullRequests => changes_of_group("pr"),
        Resource::Releases => changes_of_group("release"),
        Resource::Actions => changes_of_group("run"),
        Resource::Labels => changes_of_group("label"),
        // The repository itself (rename, default branch, visibility) or a path we do not know.
        Resource::Metadata | Resource::Search | Resource::Other => Changes::Repository,
    }
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
pub fn repo_flag(args: &[String]) -> Option<String> {
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
    let is_graphql = endpoint.trim_start_matches('/') == "graphql";
    let write = Decision::Write(Write {
        repo_flag: None,
        named_repo: named_repo.clone(),
        changes: if is_graphql {
            Changes::Repository
        } else {
            changes_of_path(endpoint)
        },
    });
    let cacheable = |class| {
        Decision::Cache(Cacheable {
            class,
            resource: if is_graphql {
                Resource::Other
            } else {
                resource_of_path(endpoint)
            },
            key_argv: std::iter::once("api".to_owned())
                .chain(args.iter().cloned())
                .collect(),
            repo_flag: None,
            named_repo: named_repo.clone(),
            api_get: method == "GET" && !paginate,
            include_headers,
        })
    };
    if is_graphql {
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
pub fn is_graphql_query(document: &str) -> bool {
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
pub fn api_repo(endpoint: &str) -> Option<String> {
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
