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

use crate::graphql::{self, Operation};

mod resource;

pub use resource::{Changes, Resource, Resources};

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

    /// Default heard TTL: how long an answer of this class may stay fresh while the writes to
    /// what it shows are heard (see [`crate::heard`]); a heard TTL shorter than the class's TTL
    /// means the TTL.
    ///
    /// Provisional, and kept here, the one place, until they are chosen again from the fleet
    /// replay's stale answers and requests with webhooks and follow. Search stays at its TTL:
    /// GitHub's search index lags writes, so hearing a write does not make a search answer
    /// current.
    pub fn default_heard_ttl(self) -> Duration {
        Duration::from_secs(match self {
            TtlClass::List => 600,
            TtlClass::View => 600,
            TtlClass::RepoView => 3600,
            TtlClass::Release => 3600,
            TtlClass::Search => 60,
            TtlClass::Api => 600,
        })
    }
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
    /// A second repository the write changes: `issue transfer`'s destination, `repo rename`'s
    /// new name.
    pub also: Option<AlsoChanged>,
    /// The arguments do not prove which repository the write changes (a GraphQL mutation names
    /// its target by node id; `api user/repos`; `repo fork` makes a repository under a login
    /// the arguments do not give): it drops every answer, wherever the command runs.
    pub unproven: bool,
    /// What it can change.
    pub changes: Changes,
}

/// The second repository of a write that touches two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlsoChanged {
    /// `owner/name`, lowercase.
    Repo(String),
    /// A repository of the same owner as the write's own, by this name (`repo rename NEW`).
    SameOwner(String),
}

impl Write {
    /// A write of `changes` to the repository the command's context proves (`-R`, `GH_REPO`,
    /// the checkout) or its arguments name.
    fn of(repo_flag: Option<String>, named_repo: Option<String>, changes: Changes) -> Write {
        Write {
            repo_flag,
            named_repo,
            also: None,
            unproven: false,
            changes,
        }
    }

    /// A write whose repository cannot be proven: it drops everything.
    fn unproven() -> Write {
        Write {
            unproven: true,
            ..Write::of(None, None, Changes::Repository)
        }
    }
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
        return Decision::Write(write_of_command(command, sub, repo_flag, &positionals[1..]));
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
        // The repositories of an owner, not of the repository context: about no repository the
        // arguments prove, so every write drops it (`repo create`, `rename`, `archive` do change it).
        ("repo", "list") => (List, Resource::Search),
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

/// The write of `gh COMMAND SUB OPERANDS...`: its repository, and the second one of the
/// commands that touch two.
fn write_of_command(
    command: &str,
    sub: &str,
    repo_flag: Option<String>,
    operands: &[String],
) -> Write {
    let operand = |i: usize| operands.get(i).map(String::as_str);
    let named_repo = match command {
        "repo" if sub != "rename" => operand(0).and_then(crate::context::normalize_repo),
        _ => None,
    };
    let mut write = Write::of(repo_flag, named_repo, changes_of_group(command));
    match (command, sub) {
        // `issue transfer <issue> <destination-repo>`: the issue leaves one and joins the other.
        ("issue", "transfer") => match operand(1).and_then(crate::context::normalize_repo) {
            Some(destination) => write.also = Some(AlsoChanged::Repo(destination)),
            None => return Write::unproven(),
        },
        // `repo rename <new-name>`: the same owner's repository under the new name.
        ("repo", "rename") => match operand(0) {
            Some(name) if !name.contains('/') && !name.is_empty() => {
                write.also = Some(AlsoChanged::SameOwner(name.to_ascii_lowercase()));
            }
            _ => return Write::unproven(),
        },
        // The fork is made under the user's login or `--org`, with a name `--fork-name` may
        // change: not proven by the arguments alone.
        ("repo", "fork") => return Write::unproven(),
        _ => {}
    }
    write
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
    let path = api_path(endpoint).split(['?', '#']).next().unwrap_or("");
    let parts: Vec<&str> = path.split('/').collect();
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
    let mut fields = Fields::default();
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
                    fields.add(value, flag == "-F" || flag == "--field");
                }
                "--input" => {
                    has_body = true;
                    fields.from_file = true;
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
    let path = api_path(endpoint);
    if path == "graphql" {
        // GraphQL is always a POST; the document says whether it reads or writes. A mutation
        // names what it changes by node id, which proves no repository.
        return match (method.as_str(), fields.operation()) {
            ("POST", Some(Operation::Query { searches })) => {
                let repo = fields.repo();
                Decision::Cache(Cacheable {
                    class: TtlClass::Api,
                    resource: match repo {
                        Some(_) if !searches => Resource::Other,
                        _ => Resource::Search,
                    },
                    key_argv: api_key_argv(args),
                    repo_flag: None,
                    named_repo: repo.flatten(),
                    api_get: false,
                    include_headers,
                })
            }
            _ => Decision::Write(Write::unproven()),
        };
    }
    let about = api_about(path);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        return Decision::Write(match about {
            About::Named(repo) => Write::of(None, Some(repo), changes_of_path(path)),
            About::Context => Write::of(None, None, changes_of_path(path)),
            About::Unknown => Write::unproven(),
        });
    }
    Decision::Cache(Cacheable {
        class: TtlClass::Api,
        resource: match about {
            About::Unknown => Resource::Search,
            About::Named(_) | About::Context => resource_of_path(path),
        },
        key_argv: api_key_argv(args),
        repo_flag: None,
        named_repo: match about {
            About::Named(repo) => Some(repo),
            About::Context | About::Unknown => None,
        },
        api_get: method == "GET" && !paginate,
        include_headers,
    })
}

fn api_key_argv(args: &[String]) -> Vec<String> {
    std::iter::once("api".to_owned())
        .chain(args.iter().cloned())
        .collect()
}

/// The fields of a `gh api` call that tell what a GraphQL request does and is about. gh sends
/// `query` and `operationName` as themselves and every other field as a variable.
#[derive(Debug, Default)]
struct Fields<'a> {
    query: Option<&'a str>,
    operation_name: Option<&'a str>,
    owner: Option<Field<'a>>,
    name: Option<Field<'a>>,
    /// The document (or the whole body) comes from a file: not read here.
    from_file: bool,
}

/// A field's value and whether gh fills `{owner}`-style placeholders in it (`-F`).
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    value: &'a str,
    typed: bool,
}

impl<'a> Fields<'a> {
    fn add(&mut self, field: &'a str, typed: bool) {
        let Some((key, value)) = field.split_once('=') else {
            return;
        };
        // `-F key=@file` reads the value from a file.
        if typed && value.starts_with('@') && matches!(key, "query" | "owner" | "name" | "repo") {
            self.from_file = true;
        }
        let field = Field { value, typed };
        match key {
            "query" => self.query = Some(value),
            "operationName" => self.operation_name = Some(value),
            "owner" => self.owner = Some(field),
            "name" | "repo" => self.name = Some(field),
            _ => {}
        }
    }

    /// What the GraphQL request does; `None` when its document is not in the arguments.
    fn operation(&self) -> Option<Operation> {
        if self.from_file {
            return None;
        }
        self.query
            .map(|document| graphql::operation(document, self.operation_name))
    }

    /// The repository the variables `owner` and `name` (or `repo`) name: `Some(None)` for the
    /// repository context (`-F owner='{owner}' -F name='{repo}'`, which gh fills from it),
    /// `None` when they name none.
    fn repo(&self) -> Option<Option<String>> {
        let (owner, name) = (self.owner?, self.name?);
        if owner.typed && name.typed && owner.value == "{owner}" && name.value == "{repo}" {
            return Some(None);
        }
        crate::context::normalize_repo(&format!("{}/{}", owner.value, name.value)).map(Some)
    }
}

/// What repository a `gh api` path is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum About {
    /// `repos/OWNER/NAME/...`.
    Named(String),
    /// `repos/{owner}/{repo}/...`: gh fills the placeholders from the repository context.
    Context,
    /// Anything else (`user`, `orgs/o/...`, `repositories/123`): no repository the path proves.
    Unknown,
}

fn api_about(path: &str) -> About {
    if let Some(repo) = api_repo(path) {
        return About::Named(repo);
    }
    let mut parts = path.split(['?', '#']).next().unwrap_or("").split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("repos"), Some("{owner}"), Some("{repo}")) => About::Context,
        _ => About::Unknown,
    }
}

/// A `gh api` endpoint as a path of the REST API: a full URL (`https://api.github.com/...`,
/// or GitHub Enterprise Server's `https://HOST/api/v3/...`) without its scheme and host, and
/// without the leading slash.
pub fn api_path(endpoint: &str) -> &str {
    let path = match endpoint.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |at| &rest[at..]),
        None => endpoint,
    };
    let path = path.strip_prefix("/api/v3/").unwrap_or(path);
    path.trim_start_matches('/')
}

/// The repository a REST path names: `repos/OWNER/NAME/...` (a full URL's path too).
pub fn api_repo(endpoint: &str) -> Option<String> {
    let path = api_path(endpoint);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut parts = path.split('/');
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
