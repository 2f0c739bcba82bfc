//! What a request that gh sent is: a read whose answer may be stored, a write that drops what it
//! can change, or something that is only passed on.
//!
//! The rules, as for commands (`ghcache_core::policy`): only what is known to be a read is
//! stored; every other method is a write; a write whose repository cannot be told drops
//! everything.
//!
//! - REST `GET` and `HEAD` to the API (`api.HOST`, or `/api/v3` on GitHub Enterprise Server)
//!   are reads, unless they carry a condition or a range of their own (the answer is then the
//!   caller's to judge) or ask for a fresh answer (`Cache-Control: no-cache`).
//! - `POST /graphql` is a read when its document is a query, a write otherwise.
//! - A read's answer is about the repository its path or its GraphQL variables name; one that
//!   names none, or a GraphQL query that searches (its results span repositories), counts as a
//!   search: every write drops those (see [`write_of_path`]).

use ghcache_core::graphql::{self, Operation};
use ghcache_core::policy::{self, Changes, Resource};
use ghcache_core::Selector;
use hyper::header::{HeaderMap, CACHE_CONTROL, CONTENT_LENGTH, PRAGMA, TRANSFER_ENCODING};
use hyper::Method;
use serde_json::Value as Json;

/// What a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A read whose answer may be stored.
    Read(Read),
    /// A POST to the GraphQL endpoint: its body says whether it reads ([`graphql()`]).
    Graphql,
    /// A write: passed on, then the answers that `Selector` names are dropped.
    Write(Selector),
    /// Passed on, neither stored nor dropping anything; why.
    Pass(&'static str),
}

/// What a read is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// The repository (`owner/name`, lowercase), empty for none.
    pub repo: String,
    /// What the answer shows.
    pub resource: Resource,
}

/// Request headers by which the caller judges the answer itself: a 304 or a part is its answer,
/// not one to store or to answer from the cache.
const OWN_CONDITIONS: [&str; 6] = [
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// Classifies a request by its head (a GraphQL POST also needs [`graphql()`]).
pub(crate) fn classify(
    method: &Method,
    host: &str,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Kind {
    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    let api = host.starts_with("api.") || path.starts_with("/api/");
    let graphql_endpoint = api && (path == "/graphql" || path == "/api/graphql");
    match *method {
        Method::GET | Method::HEAD => {}
        Method::POST if graphql_endpoint => return Kind::Graphql,
        Method::OPTIONS | Method::TRACE | Method::CONNECT => {
            return Kind::Pass("a method that changes nothing and is not stored")
        }
        _ => return Kind::Write(write_of_path(rest_path(path))),
    }
    if !api {
        return Kind::Pass("not an API host (a download or a redirect)");
    }
    if graphql_endpoint {
        return Kind::Pass("GraphQL without a POST");
    }
    if OWN_CONDITIONS
        .iter()
        .any(|name| headers.contains_key(*name))
    {
        return Kind::Pass("a conditional or partial request of gh's own");
    }
    if asks_fresh(headers) {
        return Kind::Pass("asks for a fresh answer");
    }
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if has_body {
        return Kind::Pass("a read with a body");
    }
    let rest = rest_path(path);
    if rest == "rate_limit" {
        // Free to ask and different at every call: storing it would only hide the quota.
        return Kind::Pass("the rate limit");
    }
    Kind::Read(read_of_path(rest))
}

/// What a read of `path` (without `/api/v3` and the leading slash) is about.
fn read_of_path(path: &str) -> Read {
    match policy::api_repo(path) {
        Some(repo) => Read {
            resource: policy::resource_of_path(path),
            repo,
        },
        // About no repository (the user, an organisation, a search): see the module doc.
        None => Read {
            repo: String::new(),
            resource: Resource::Search,
        },
    }
}

/// What a write to `path` drops: the classes that the path's resource can change in its
/// repository, and every answer that counts as a search (about no repository, or spanning
/// several, which any write may change); everything when the repository cannot be told.
fn write_of_path(path: &str) -> Selector {
    match policy::api_repo(path) {
        Some(repo) => selector(repo, policy::changes_of_path(path)),
        None => Selector::All,
    }
}

/// The selector of a write to `repo` that can change `changes` (every search too: see
/// `Selector`).
fn selector(repo: String, changes: Changes) -> Selector {
    Selector::of_write(&repo, changes)
}

/// `path` as the REST API names it: without the `/api/v3` (or `/api/uploads`) of GitHub
/// Enterprise Server and without the leading slash.
fn rest_path(path: &str) -> &str {
    let path = path
        .strip_prefix("/api/v3")
        .or_else(|| path.strip_prefix("/api/uploads"))
        .unwrap_or(path);
    path.trim_start_matches('/')
}

/// `Cache-Control: no-cache`, `no-store` or `max-age=0`, or `Pragma: no-cache`.
fn asks_fresh(headers: &HeaderMap) -> bool {
    let says = |name, directives: &[&str]| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .any(|d| directives.contains(&d.as_str()))
            })
        })
    };
    says(CACHE_CONTROL, &["no-cache", "no-store", "max-age=0"]) || says(PRAGMA, &["no-cache"])
}

/// Classifies a GraphQL request by its body (see `ghcache_core::graphql`): a query is a read,
/// about the repository its variables name; anything else is a write. A mutation names what it
/// changes by node id, so its repository is the one the command that sent it proved
/// (`context_repo`: `-R`, the checkout, the repository a gh command names), else unknown: then
/// it drops everything.
pub(crate) fn graphql(body: &[u8], context_repo: Option<&str>) -> Kind {
    let Ok(request) = serde_json::from_slice::<Json>(body) else {
        return graphql_write(context_repo, None);
    };
    let document = request.get("query").and_then(Json::as_str).unwrap_or("");
    let operation_name = request.get("operationName").and_then(Json::as_str);
    match graphql::operation(document, operation_name) {
        Operation::Query { searches } => {
            Kind::Read(match variables_repo(request.get("variables")) {
                Some(repo) if !searches => Read {
                    repo,
                    resource: Resource::Other,
                },
                _ => Read {
                    repo: String::new(),
                    resource: Resource::Search,
                },
            })
        }
        Operation::Mutation { first_field } => graphql_write(context_repo, first_field.as_deref()),
        Operation::Unknown => graphql_write(context_repo, None),
    }
}

fn graphql_write(context_repo: Option<&str>, first_field: Option<&str>) -> Kind {
    Kind::Write(match context_repo.filter(|r| !r.is_empty()) {
        Some(repo) => selector(repo.to_owned(), mutation_changes(first_field.unwrap_or(""))),
        None => Selector::All,
    })
}

/// The repository that a GraphQL request's variables name: `owner` with `repo` or `name`, as
/// gh's queries take them.
fn variables_repo(variables: Option<&Json>) -> Option<String> {
    let variables = variables?;
    let text = |name: &str| variables.get(name).and_then(Json::as_str);
    let owner = text("owner")?;
    let name = text("repo").or_else(|| text("name"))?;
    ghcache_core::context::normalize_repo(&format!("{owner}/{name}"))
}

/// What a mutation can change, from the name of its first field (`createIssue`,
/// `mergePullRequest`, `addLabelsToLabelable`): as the gh command group of the same resource;
/// anything else (`addComment`, which may be on an issue or a pull request) may change
/// anything in the repository.
fn mutation_changes(field: &str) -> Changes {
    const GROUPS: [(&str, &str); 5] = [
        ("PullRequest", "pr"),
        ("Issue", "issue"),
        ("Label", "label"),
        ("Release", "release"),
        ("Workflow", "workflow"),
    ];
    GROUPS
        .iter()
        .find(|(word, _)| field.contains(word))
        .map_or(Changes::Repository, |(_, group)| {
            policy::changes_of_group(group)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: Method, host: &str, path: &str, headers: &[(&str, &str)]) -> Kind {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                value.parse(),
            ) {
                map.append(name, value);
            }
        }
        classify(&method, host, path, &map)
    }

    fn read(repo: &str, resource: Resource) -> Kind {
        Kind::Read(Read {
            repo: repo.into(),
            resource,
        })
    }

    #[test]
    fn rest_reads_are_about_the_repository_their_path_names() {
        let api = "api.github.com";
        assert_eq!(
            head(Method::GET, api, "/repos/O/R/issues?per_page=100", &[]),
            read("o/r", Resource::Issues)
        );
        assert_eq!(
            head(Method::HEAD, api, "/repos/o/r", &[]),
            read("o/r", Resource::Metadata)
        );
        assert_eq!(
            head(
                Method::GET,
                "ghe.example.com",
                "/api/v3/repos/o/r/pulls/7",
                &[]
            ),
            read("o/r", Resource::PullRequests)
        );
        for path in ["/user", "/search/issues?q=x", "/orgs/acme/repos"] {
            assert_eq!(
                head(Method::GET, api, path, &[]),
                read("", Resource::Search),
                "{path}"
            );
        }
    }

    #[test]
    fn reads_that_are_not_for_the_cache_pass() {
        let api = "api.github.localhost";
        for (host, path, headers) in [
            ("objects.githubusercontent.com", "/logs/1", &[][..]),
            (api, "/repos/o/r", &[("If-None-Match", "W/\"x\"")][..]),
            (api, "/repos/o/r", &[("Range", "bytes=0-9")][..]),
            (api, "/repos/o/r", &[("Cache-Control", "no-cache")][..]),
            (api, "/repos/o/r", &[("Content-Length", "3")][..]),
            (api, "/rate_limit", &[][..]),
            (api, "/graphql", &[][..]),
        ] {
            let kind = head(Method::GET, host, path, headers);
            assert!(matches!(kind, Kind::Pass(_)), "{host}{path}: {kind:?}");
        }
        assert!(matches!(
            head(Method::OPTIONS, api, "/repos/o/r", &[]),
            Kind::Pass(_)
        ));
    }

    #[test]
    fn rest_writes_drop_their_classes_and_searches() {
        let kind = head(Method::POST, "api.github.com", "/repos/o/r/issues", &[]);
        let Kind::Write(Selector::Resources { repo, resources }) = kind else {
            panic!("{kind:?}");
        };
        assert_eq!(repo, "o/r");
        assert!(resources.contains(Resource::Issues) && resources.contains(Resource::Search));
        assert!(!resources.contains(Resource::Releases));
        // An upload names its repository on another host.
        let upload = head(
            Method::POST,
            "uploads.github.com",
            "/repos/o/r/releases/1/assets?name=a.zip",
            &[],
        );
        assert!(
            matches!(&upload, Kind::Write(Selector::Resources { resources, .. }) if resources.contains(Resource::Releases)),
            "{upload:?}"
        );
        assert_eq!(
            head(Method::PATCH, "api.github.com", "/repos/o/r", &[]),
            Kind::Write(Selector::Repo("o/r".into()))
        );
        assert_eq!(
            head(Method::PUT, "api.github.com", "/user/starred/o/r", &[]),
            Kind::Write(Selector::All)
        );
        assert_eq!(
            head(Method::POST, "api.github.com", "/graphql", &[]),
            Kind::Graphql
        );
    }

    #[test]
    fn graphql_queries_are_reads_about_the_repository_of_their_variables() {
        let query = br#"{"query":"query PullRequestByNumber($owner: String!, $repo: String!) { repository(owner: $owner, name: $repo) { id } }","variables":{"owner":"O","repo":"R"}}"#;
        assert_eq!(graphql(query, None), read("o/r", Resource::Other));
        let search = br#"{"query":"query PullRequestStatus($owner: String!, $repo: String!) { repository(owner: $owner, name: $repo) { id } viewerCreated: search (query: $q, type: ISSUE) { issueCount } }","variables":{"owner":"o","repo":"r","q":"x"}}"#;
        assert_eq!(graphql(search, None), read("", Resource::Search));
        let viewer = br#"{"query":"query { viewer { login } }"}"#;
        assert_eq!(graphql(viewer, None), read("", Resource::Search));
        let researched = br#"{"query":"query { repository(owner: \"o\", name: \"r\") { researchedBy } }","variables":{"owner":"o","repo":"r"}}"#;
        assert_eq!(graphql(researched, None), read("o/r", Resource::Other));
    }

    #[test]
    fn graphql_mutations_are_writes_about_the_repository_the_command_proved() {
        let create = br#"{"query":"mutation IssueCreate($input: CreateIssueInput!) { createIssue(input: $input) { issue { url } } }","variables":{"input":{"repositoryId":"R_1","title":"t"}}}"#;
        let kind = graphql(create, Some("o/r"));
        assert!(
            matches!(&kind, Kind::Write(Selector::Resources { repo, resources }) if repo == "o/r" && resources.contains(Resource::Issues) && !resources.contains(Resource::Releases)),
            "{kind:?}"
        );
        assert_eq!(graphql(create, None), Kind::Write(Selector::All));
        // A mutation names its target by node id: variables prove no repository.
        let comment = br#"{"query":"mutation { c: addComment(input: {subjectId: \"x\", body: \"y\"}) { clientMutationId } }","variables":{"owner":"o","repo":"r"}}"#;
        assert_eq!(graphql(comment, None), Kind::Write(Selector::All));
        assert_eq!(
            graphql(comment, Some("o/r")),
            Kind::Write(Selector::Repo("o/r".into()))
        );
        for unreadable in [&b"not json"[..], br#"{"query": 3}"#, br#"{}"#] {
            assert_eq!(graphql(unreadable, None), Kind::Write(Selector::All));
        }
        let smuggled = br#"{"query":"query { viewer { login } } mutation { deleteIssue(input: {}) { clientMutationId } }"}"#;
        assert!(matches!(graphql(smuggled, Some("o/r")), Kind::Write(_)));
    }

    #[test]
    fn the_operation_that_runs_decides_as_graphql_reads_it() {
        // A `#` comment ends at CR too: the mutation is a definition of its own, and it runs.
        let hidden = br#"{"query":"query UserCurrent { viewer { login } }\n#\rmutation M { deleteIssue(input: {}) { clientMutationId } }","operationName":"M"}"#;
        assert_eq!(graphql(hidden, None), Kind::Write(Selector::All));
        let named = br#"{"query":"query A { viewer { login } } query B { viewer { name } }","operationName":"B"}"#;
        assert_eq!(graphql(named, None), read("", Resource::Search));
        let unnamed = br#"{"query":"query A { viewer { login } } query B { viewer { name } }"}"#;
        assert_eq!(graphql(unnamed, None), Kind::Write(Selector::All));
        let merge = br#"{"query":"mutation M($a: X!) { m: mergePullRequest(input: $a) { x } }"}"#;
        assert!(
            matches!(graphql(merge, Some("o/r")), Kind::Write(Selector::Resources { repo, resources }) if repo == "o/r" && resources.contains(Resource::PullRequests)),
        );
    }
}
