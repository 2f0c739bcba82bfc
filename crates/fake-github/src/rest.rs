//! The REST endpoints gh uses for the commands ghcache caches, and the writes its tests make.

use serde_json::{json, Value as Json};

use crate::data::{base64, repo_key, Issue, Run, World, LABELS, SHA, TIME, TIME_SECS};
use crate::date;

/// A REST answer.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// `content-type`.
    pub content_type: &'static str,
    /// When the resource last changed (seconds since the Unix epoch), for `Last-Modified`: set
    /// on single resources, as GitHub sends it, and not on lists.
    pub modified: Option<u64>,
    /// The `Link` header of one page of a list, when there are others.
    pub link: Option<String>,
}

impl Reply {
    fn json(status: u16, value: Json) -> Self {
        Reply {
            status,
            body: value.to_string().into_bytes(),
            content_type: "application/json; charset=utf-8",
            modified: None,
            link: None,
        }
    }

    fn text(body: String, content_type: &'static str) -> Self {
        Reply {
            status: 200,
            body: body.into_bytes(),
            content_type,
            modified: None,
            link: None,
        }
    }

    /// This answer, about a resource that last changed at `secs`.
    fn modified(mut self, secs: u64) -> Self {
        self.modified = Some(secs);
        self
    }

    fn not_found() -> Self {
        Reply::json(
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        )
    }
}

/// Answers `method path?query` with the request's `accept` header and body.
pub fn answer(
    method: &str,
    path: &str,
    query: &str,
    accept: &str,
    body: &[u8],
    world: &mut World,
) -> Reply {
    let path = path.trim_matches('/');
    let path = path.strip_prefix("api/v3/").unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    let read = method == "GET" || method == "HEAD";
    match (read, parts.as_slice()) {
        (true, ["user"]) => Reply::json(200, user("octocat")),
        (true, ["users", login]) => Reply::json(200, user(login)),
        (true, ["repos", owner, name]) => {
            let mut found = repository(owner, name);
            let repo = repo_key(owner, name);
            found["open_issues_count"] = json!(world.listed(&repo, Some(true)).len());
            found["pushed_at"] = json!(date::rfc3339(world.pushed(&repo).1));
            Reply::json(200, found).modified(world.repo_modified(&repo))
        }
        (true, ["repos", owner, name, "readme"]) => {
            let text = format!("# {owner}/{name}\n\nThis is the readme of {owner}/{name}.\n");
            Reply::json(
                200,
                json!({"name": "README.md", "path": "README.md", "encoding": "base64",
                       "content": base64(text.as_bytes()),
                       "html_url": format!("https://github.com/{owner}/{name}/blob/main/README.md")}),
            )
        }
        (true, ["repos", owner, name, "issues"]) => {
            let repo = repo_key(owner, name);
            let open = match param(query, "state").as_deref() {
                Some("closed") => Some(false),
                Some("all") => None,
                _ => Some(true),
            };
            let mut listed = world.listed(&repo, open);
            if param(query, "sort").as_deref() == Some("updated") {
                // Most recently changed first, as GitHub sorts them (`direction=desc`).
                listed.sort_by_key(|i| {
                    std::cmp::Reverse((world.issue_modified(&repo, i.number), i.number))
                });
            }
            let (range, link) =
                page_of(listed.len(), &format!("repos/{owner}/{name}/issues"), query);
            let issues: Vec<Json> = listed[range]
                .iter()
                .map(|i| issue(&repo, i, world.issue_modified(&repo, i.number)))
                .collect();
            let mut reply = Reply::json(200, Json::Array(issues));
            reply.link = link;
            reply
        }
        (false, ["repos", owner, name, "issues"]) if method == "POST" => {
            let repo = repo_key(owner, name);
            let fields: Json = serde_json::from_slice(body).unwrap_or_default();
            let title = fields
                .get("title")
                .and_then(Json::as_str)
                .unwrap_or("untitled");
            let text = fields.get("body").and_then(Json::as_str).unwrap_or("");
            let number = world.add_issue(&repo, title, text);
            match world.issue(&repo, number) {
                Some(created) => {
                    let at = world.issue_modified(&repo, number);
                    Reply::json(201, issue(&repo, &created, at))
                }
                None => Reply::not_found(),
            }
        }
        (true, ["repos", owner, name, "issues", number]) => {
            let repo = repo_key(owner, name);
            match number.parse().ok().and_then(|n| world.issue(&repo, n)) {
                Some(found) => {
                    let at = world.issue_modified(&repo, found.number);
                    Reply::json(200, issue(&repo, &found, at)).modified(at)
                }
                None => Reply::not_found(),
            }
        }
        (true, ["repos", owner, name, "pulls"]) => {
            // The three open pull requests, most recently changed first (as `sort=updated`
            // asks; their titles as the world has them).
            let repo = repo_key(owner, name);
            let mut pulls: Vec<(u64, u64)> =
                (1..=3).map(|n| (world.pr_modified(&repo, n), n)).collect();
            pulls.sort_by_key(|p| std::cmp::Reverse(*p));
            let listed: Vec<Json> = pulls
                .iter()
                .map(|(at, n)| {
                    let pr = world.pr(&repo, *n);
                    json!({"number": n, "title": pr.title, "state": "open",
                           "labels": labels(&pr.labels), "updated_at": date::rfc3339(*at),
                           "head": {"ref": format!("feature-{n}"), "sha": pr.head},
                           "html_url": format!("https://github.com/{repo}/pull/{n}")})
                })
                .collect();
            let (range, link) =
                page_of(listed.len(), &format!("repos/{owner}/{name}/pulls"), query);
            let mut reply = Reply::json(200, Json::Array(listed[range].to_vec()));
            reply.link = link;
            reply
        }
        (true, ["repos", owner, name, "pulls", number]) if accept.contains("diff") => {
            Reply::text(diff(owner, name, number), "text/plain; charset=utf-8").modified(TIME_SECS)
        }
        (true, ["repos", owner, name, "pulls", number]) => Reply::json(
            200,
            json!({"number": number.parse::<u64>().unwrap_or(1),
                "title": format!("Improve {owner}/{name}"), "state": "open",
                "html_url": format!("https://github.com/{owner}/{name}/pull/{number}")}),
        )
        .modified(TIME_SECS),
        (true, ["repos", owner, name, "releases"]) => Reply::json(
            200,
            json!([
                release(owner, name, "v1.0.0", true),
                release(owner, name, "v0.9.0", false)
            ]),
        ),
        (true, ["repos", owner, name, "releases", "latest"]) => {
            Reply::json(200, release(owner, name, "v1.0.0", true)).modified(TIME_SECS)
        }
        (true, ["repos", owner, name, "releases", "tags", tag]) => match *tag {
            "v1.0.0" | "v0.9.0" => {
                Reply::json(200, release(owner, name, tag, *tag == "v1.0.0")).modified(TIME_SECS)
            }
            _ => Reply::not_found(),
        },
        (true, ["repos", owner, name, "labels"]) => Reply::json(
            200,
            json!([{"name": "bug", "color": "d73a4a", "description": format!("Something isn't working in {owner}/{name}")}]),
        ),
        (true, ["repos", owner, name, "actions", "runs"]) => {
            let runs = world.runs(&repo_key(owner, name));
            let (range, link) = page_of(
                runs.len(),
                &format!("repos/{owner}/{name}/actions/runs"),
                query,
            );
            let listed: Vec<Json> = runs[range].iter().map(|r| run(owner, name, r)).collect();
            let mut reply = Reply::json(
                200,
                json!({"total_count": runs.len(), "workflow_runs": listed}),
            );
            reply.link = link;
            reply
        }
        (true, ["repos", owner, name, "actions", "runs", id]) => {
            let id = id.parse().unwrap_or(1);
            // Any other id is a completed run of `main` from before any push, as every run was
            // before runs could be added.
            let found = world
                .runs(&repo_key(owner, name))
                .into_iter()
                .find(|r| r.id == id)
                .unwrap_or_else(|| Run {
                    id,
                    event: "push",
                    branch: "main".to_owned(),
                    sha: SHA.to_owned(),
                    at: TIME_SECS,
                    conclusion: Some("success"),
                });
            Reply::json(200, run(owner, name, &found)).modified(found.at)
        }
        (true, ["repos", owner, name, "actions", "runs", id, "jobs"])
        | (true, ["repos", owner, name, "actions", "runs", id, "attempts", _, "jobs"]) => {
            let id = id.parse().unwrap_or(1);
            Reply::json(
                200,
                json!({"total_count": 1, "jobs": [job(owner, name, id)]}),
            )
        }
        (true, ["repos", _, _, "actions", "runs", _, "artifacts"]) => {
            Reply::json(200, json!({"total_count": 0, "artifacts": []}))
        }
        (true, ["repos", _, _, "check-runs", _, "annotations"]) => Reply::json(200, json!([])),
        (true, ["repos", _, _, "actions", "workflows"]) => Reply::json(
            200,
            json!({"total_count": 2, "workflows": [workflow(7, "CI", "ci.yml"), workflow(8, "Release", "release.yml")]}),
        ),
        (true, ["repos", _, _, "actions", "workflows", id]) => {
            Reply::json(200, workflow(id.parse().unwrap_or(7), "CI", "ci.yml"))
        }
        (true, ["search", "repositories"]) => {
            let q = param(query, "q").unwrap_or_default();
            let items: Vec<Json> = ["widgets", "gadgets"]
                .iter()
                .map(|name| {
                    let mut r = repository("octo", &format!("{q}-{name}"));
                    r["score"] = json!(1.0);
                    r
                })
                .collect();
            Reply::json(
                200,
                json!({"total_count": items.len(), "incomplete_results": false, "items": items}),
            )
        }
        (true, ["search", "issues"]) => {
            let q = param(query, "q").unwrap_or_default();
            let repo = "octo/search";
            let items: Vec<Json> = (1..=2)
                .map(|n| {
                    let found = Issue::new(n, format!("Issue {n} matching {q}"), String::new());
                    issue(repo, &found, TIME_SECS)
                })
                .collect();
            Reply::json(
                200,
                json!({"total_count": items.len(), "incomplete_results": false, "items": items}),
            )
        }
        (true, _) => Reply::not_found(),
        // Other writes are accepted and change nothing in the fake world.
        (false, _) if method == "DELETE" => Reply {
            status: 204,
            body: Vec::new(),
            content_type: "application/json; charset=utf-8",
            modified: None,
            link: None,
        },
        (false, _) => Reply::json(200, json!({"ok": true})),
    }
}

/// Which items of a list of `total` the page that `query` asks for holds (`per_page`, 30 by
/// default and at most 100, and `page`, from 1, as GitHub reads them), and the `Link` header
/// that names the other pages, as GitHub writes it.
fn page_of(total: usize, path: &str, query: &str) -> (std::ops::Range<usize>, Option<String>) {
    let number = |name: &str| param(query, name).and_then(|v| v.parse::<usize>().ok());
    let per_page = number("per_page").unwrap_or(30).clamp(1, 100);
    let pages = total.div_ceil(per_page).max(1);
    let page = number("page").unwrap_or(1).max(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    let range = start..(start + per_page).min(total);
    if pages == 1 {
        return (range, None);
    }
    let others: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            !pair.is_empty() && !pair.starts_with("page=") && !pair.starts_with("per_page=")
        })
        .collect();
    let url = |page: usize| {
        let mut params = others.clone();
        let per_page = format!("per_page={per_page}");
        let page = format!("page={page}");
        params.push(&per_page);
        params.push(&page);
        format!("<https://api.github.com/{path}?{}>", params.join("&"))
    };
    let mut rels = Vec::new();
    if page > 1 {
        rels.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < pages {
        rels.push(format!("{}; rel=\"next\"", url(page + 1)));
        rels.push(format!("{}; rel=\"last\"", url(pages)));
    }
    if page > 1 {
        rels.push(format!("{}; rel=\"first\"", url(1)));
    }
    (range, Some(rels.join(", ")))
}

/// A query-string parameter, percent-decoded.
pub fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn user(login: &str) -> Json {
    json!({"login": login, "id": 1, "node_id": format!("U_{login}"), "type": "User",
           "name": format!("{login} (fake)"), "html_url": format!("https://github.com/{login}"),
           "site_admin": false, "created_at": TIME, "updated_at": TIME})
}

fn owner(login: &str) -> Json {
    json!({"login": login, "id": 1, "type": "User", "html_url": format!("https://github.com/{login}")})
}

fn repository(owner_login: &str, name: &str) -> Json {
    let full = format!("{owner_login}/{name}");
    json!({
        "id": 1, "node_id": format!("R_{}", full.to_ascii_lowercase()), "name": name,
        "full_name": full, "private": false, "owner": owner(owner_login),
        "html_url": format!("https://github.com/{full}"),
        "description": format!("The {full} repository, served by the fake GitHub"),
        "fork": false, "url": format!("https://api.github.com/repos/{full}"),
        "created_at": TIME, "updated_at": TIME, "pushed_at": TIME, "homepage": "",
        "size": 1, "stargazers_count": 42, "watchers_count": 42, "language": "Rust",
        "has_issues": true, "has_projects": true, "has_wiki": true, "archived": false,
        "disabled": false, "open_issues_count": 2, "forks_count": 3, "visibility": "public",
        "default_branch": "main", "topics": ["cache", "github"],
        "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"}
    })
}

/// Labels as REST answers list them.
fn labels(names: &[String]) -> Json {
    let listed: Vec<Json> = names
        .iter()
        .map(|name| {
            let (color, description) = LABELS
                .iter()
                .find(|(n, ..)| n == name)
                .map_or(("ededed", ""), |(_, c, d)| (*c, *d));
            json!({"name": name, "color": color, "description": description, "default": true})
        })
        .collect();
    Json::Array(listed)
}

/// An issue that last changed at `updated` (seconds since the Unix epoch).
fn issue(repo: &str, issue: &Issue, updated: u64) -> Json {
    json!({
        "id": issue.number, "node_id": format!("I_{repo}#{}", issue.number),
        "number": issue.number, "title": issue.title, "body": issue.body,
        "state": if issue.open { "open" } else { "closed" }, "locked": false,
        "user": owner("octocat"), "labels": labels(&issue.labels), "assignees": [],
        "comments": issue.comments, "created_at": TIME, "updated_at": date::rfc3339(updated),
        "closed_at": if issue.open { Json::Null } else { json!(TIME) },
        "html_url": format!("https://github.com/{repo}/issues/{}", issue.number),
        "repository_url": format!("https://api.github.com/repos/{repo}"),
        "author_association": "OWNER"
    })
}

fn release(owner_login: &str, name: &str, tag: &str, latest: bool) -> Json {
    let full = format!("{owner_login}/{name}");
    json!({
        "id": 1, "tag_name": tag, "name": format!("{full} {tag}"), "draft": false,
        "prerelease": false, "created_at": TIME, "published_at": TIME,
        "body": format!("Release notes of {full} {tag}{}.", if latest { " (latest)" } else { "" }),
        "author": owner("octocat"), "html_url": format!("https://github.com/{full}/releases/tag/{tag}"),
        "url": format!("https://api.github.com/repos/{full}/releases/1"),
        "tarball_url": format!("https://api.github.com/repos/{full}/tarball/{tag}"),
        "zipball_url": format!("https://api.github.com/repos/{full}/zipball/{tag}"),
        "target_commitish": "main", "assets": []
    })
}

fn run(owner_login: &str, name: &str, run: &Run) -> Json {
    let full = format!("{owner_login}/{name}");
    let id = run.id;
    let at = date::rfc3339(run.at);
    let status = if run.conclusion.is_some() {
        "completed"
    } else {
        "in_progress"
    };
    json!({
        "id": id, "name": "CI", "display_title": format!("Build {full} #{id}"),
        "head_branch": run.branch, "head_sha": run.sha, "run_number": id, "run_attempt": 1,
        "event": run.event, "status": status, "conclusion": run.conclusion, "workflow_id": 7,
        "created_at": at, "updated_at": at, "run_started_at": at,
        "html_url": format!("https://github.com/{full}/actions/runs/{id}"),
        "jobs_url": format!("https://api.github.com/repos/{full}/actions/runs/{id}/jobs"),
        "head_commit": {"id": run.sha, "message": "A commit", "author": {"name": "octocat"}},
        "actor": owner("octocat"), "triggering_actor": owner("octocat"),
        "repository": {"full_name": full}, "head_repository": {"full_name": full}
    })
}

/// The one job of run `id`: its id is the run's times ten.
fn job(owner_login: &str, name: &str, run_id: u64) -> Json {
    let full = format!("{owner_login}/{name}");
    let id = run_id * 10;
    let step = |number: u64, step: &str| {
        json!({"name": step, "status": "completed", "conclusion": "success", "number": number,
               "started_at": TIME, "completed_at": TIME})
    };
    json!({
        "id": id, "run_id": run_id, "node_id": format!("J_{id}"), "head_sha": SHA,
        "run_url": format!("https://api.github.com/repos/{full}/actions/runs/{run_id}"),
        "url": format!("https://api.github.com/repos/{full}/actions/jobs/{id}"),
        "html_url": format!("https://github.com/{full}/actions/runs/{run_id}/job/{id}"),
        "check_run_url": format!("https://api.github.com/repos/{full}/check-runs/{id}"),
        "status": "completed", "conclusion": "success", "name": "build",
        "started_at": TIME, "completed_at": TIME, "workflow_name": "CI", "head_branch": "main",
        "steps": [step(1, "Set up job"), step(2, "Run tests"), step(3, "Complete job")],
        "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "runner 1",
        "runner_group_id": 1, "runner_group_name": "GitHub Actions"
    })
}

fn workflow(id: u64, name: &str, file: &str) -> Json {
    json!({"id": id, "node_id": format!("W_{id}"), "name": name,
           "path": format!(".github/workflows/{file}"), "state": "active",
           "created_at": TIME, "updated_at": TIME})
}

fn diff(owner_login: &str, name: &str, number: &str) -> String {
    format!(
        "diff --git a/README.md b/README.md\nindex 0000001..0000002 100644\n--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # {owner_login}/{name}\n+Change from pull request {number}.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            param("q=foo+bar%21&per_page=30", "q").as_deref(),
            Some("foo bar!")
        );
        assert_eq!(param("q=a", "page"), None);
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
    }

    #[test]
    fn repositories_differ_by_name() {
        let mut world = World::default();
        let a = answer("GET", "/repos/acme/widgets", "", "", b"", &mut world);
        let b = answer("GET", "/repos/acme/gadgets", "", "", b"", &mut world);
        assert_eq!(a.status, 200);
        assert_ne!(a.body, b.body);
        assert!(String::from_utf8_lossy(&a.body).contains("acme/widgets"));
    }

    #[test]
    fn posted_issues_are_listed() {
        let mut world = World::default();
        let created = answer(
            "POST",
            "/repos/o/r/issues",
            "",
            "",
            br#"{"title":"hello"}"#,
            &mut world,
        );
        assert_eq!(created.status, 201);
        let listed = answer("GET", "/repos/o/r/issues", "", "", b"", &mut world);
        assert!(String::from_utf8_lossy(&listed.body).contains("hello"));
    }

    #[test]
    fn single_resources_say_when_they_changed_and_lists_do_not() {
        let mut world = World::default();
        let modified =
            |world: &mut World, path: &str| answer("GET", path, "", "", b"", world).modified;
        for path in [
            "/repos/o/r",
            "/repos/o/r/issues/1",
            "/repos/o/r/pulls/1",
            "/repos/o/r/releases/latest",
            "/repos/o/r/releases/tags/v1.0.0",
            "/repos/o/r/actions/runs/2",
        ] {
            assert_eq!(modified(&mut world, path), Some(TIME_SECS), "{path}");
        }
        for path in ["/repos/o/r/issues", "/repos/o/r/releases", "/user"] {
            assert_eq!(modified(&mut world, path), None, "{path}");
        }
        answer(
            "POST",
            "/repos/o/r/issues",
            "",
            "",
            br#"{"title":"t"}"#,
            &mut world,
        );
        let repo = modified(&mut world, "/repos/o/r");
        assert!(repo > Some(TIME_SECS));
        assert_eq!(modified(&mut world, "/repos/o/r/issues/3"), repo);
        assert_eq!(modified(&mut world, "/repos/o/r/issues/1"), Some(TIME_SECS));
        assert_eq!(modified(&mut world, "/repos/o/other"), Some(TIME_SECS));
    }
}
