//! The payloads GitHub sends for the changes of the fake's world, with the fields GitHub's
//! documentation ("Webhook events and payloads") gives them: `issues` (`opened`, `closed`,
//! `reopened`, `edited`, `labeled`, `unlabeled`), `issue_comment` (`created`), `pull_request`
//! (`edited`, `synchronize`, `labeled`, `unlabeled`) and `push`. Their times are on the world's
//! clock, the one of `Last-Modified`.

use serde_json::{json, Value as Json};

use super::SENDER;
use crate::data::{Change, World, LABELS, SHA, TIME, TIME_SECS};
use crate::date;

/// A repository as webhook payloads describe it. Its `id` (also the delivery's
/// `X-GitHub-Hook-Installation-Target-ID`) is derived from the name, so that two repositories
/// differ; its `node_id` is the one the API gives.
pub fn repository(full_name: &str) -> Json {
    let (owner, name) = full_name.split_once('/').unwrap_or((SENDER, full_name));
    json!({
        "id": repository_id(full_name),
        "node_id": format!("R_{}", full_name.to_ascii_lowercase()),
        "name": name, "full_name": full_name, "private": false, "owner": user(owner),
        "html_url": format!("https://github.com/{full_name}"),
        "url": format!("https://api.github.com/repos/{full_name}"),
        "description": format!("The {full_name} repository, served by the fake GitHub"),
        "fork": false, "visibility": "public", "default_branch": "main",
        "created_at": TIME, "updated_at": TIME, "pushed_at": TIME
    })
}

/// A user as webhook payloads describe it (`sender`, `owner`, `user`).
pub fn user(login: &str) -> Json {
    json!({"login": login, "id": 1, "node_id": format!("U_{login}"), "type": "User",
           "html_url": format!("https://github.com/{login}"), "site_admin": false})
}

/// A stable nine-digit id of a repository, from its lowercase name (FNV-1a).
fn repository_id(full_name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in full_name.to_ascii_lowercase().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    100_000_000 + hash % 900_000_000
}

/// The event and payload GitHub sends for a change of the world.
pub(crate) fn payload(world: &mut World, change: &Change) -> (&'static str, Json) {
    let about = |repo: &str, fields: Json| {
        let mut payload = fields;
        payload["repository"] = repository(repo);
        payload["sender"] = user(SENDER);
        payload
    };
    match change {
        Change::IssueOpened { repo, number, at } => (
            "issues",
            about(
                repo,
                json!({"action": "opened", "issue": issue(world, repo, *number, *at)}),
            ),
        ),
        Change::IssueState {
            repo,
            number,
            open,
            at,
        } => {
            let action = if *open { "reopened" } else { "closed" };
            let issue = issue(world, repo, *number, *at);
            (
                "issues",
                about(repo, json!({"action": action, "issue": issue})),
            )
        }
        Change::IssueRetitled {
            repo,
            number,
            from,
            at,
        } => (
            "issues",
            about(
                repo,
                json!({"action": "edited", "issue": issue(world, repo, *number, *at),
                       "changes": {"title": {"from": from}}}),
            ),
        ),
        Change::PrRetitled {
            repo,
            number,
            from,
            at,
        } => (
            "pull_request",
            about(
                repo,
                json!({"action": "edited", "number": number,
                       "changes": {"title": {"from": from}},
                       "pull_request": pull_request(world, repo, *number, *at)}),
            ),
        ),
        Change::PrSynchronized {
            repo,
            number,
            before,
            after,
            at,
        } => (
            "pull_request",
            about(
                repo,
                json!({"action": "synchronize", "number": number, "before": before,
                       "after": after, "pull_request": pull_request(world, repo, *number, *at)}),
            ),
        ),
        Change::Pushed {
            repo,
            branch,
            before,
            after,
            at,
        } => ("push", push(repo, branch, before, after, *at)),
        Change::Commented {
            repo,
            number,
            pr,
            id,
            at,
        } => {
            let issue = match pr {
                true => pr_as_issue(world, repo, *number, *at),
                false => issue(world, repo, *number, *at),
            };
            let comment = json!({
                "id": id, "node_id": format!("IC_{id}"),
                "url": format!("https://api.github.com/repos/{repo}/issues/comments/{id}"),
                "html_url": format!("https://github.com/{repo}/issues/{number}#issuecomment-{id}"),
                "body": "A comment made on github.com.", "user": user(SENDER),
                "created_at": date::rfc3339(*at), "updated_at": date::rfc3339(*at),
                "author_association": "OWNER"
            });
            (
                "issue_comment",
                about(
                    repo,
                    json!({"action": "created", "issue": issue, "comment": comment}),
                ),
            )
        }
        Change::Labeled {
            repo,
            number,
            pr,
            label: name,
            added,
            at,
        } => {
            let action = if *added { "labeled" } else { "unlabeled" };
            let (event, fields) = match pr {
                true => (
                    "pull_request",
                    json!({"action": action, "number": number,
                           "pull_request": pull_request(world, repo, *number, *at)}),
                ),
                false => (
                    "issues",
                    json!({"action": action, "issue": issue(world, repo, *number, *at)}),
                ),
            };
            let mut payload = about(repo, fields);
            payload["label"] = label(repo, name);
            (event, payload)
        }
    }
}

/// A time as a commit's `timestamp` shows it: RFC 3339 with an offset.
fn commit_time(at: u64) -> String {
    date::rfc3339(at).replace('Z', "+00:00")
}

/// A `push` to `branch`: one commit, `before` to `after`, at `at`. As in GitHub's push
/// payloads, the repository's `created_at` and `pushed_at` are seconds since the Unix epoch.
fn push(repo: &str, branch: &str, before: &str, after: &str, at: u64) -> Json {
    let commit = json!({
        "id": after, "tree_id": SHA, "distinct": true,
        "message": format!("A change pushed to {branch}"),
        "timestamp": commit_time(at),
        "url": format!("https://github.com/{repo}/commit/{after}"),
        "author": {"name": SENDER, "email": format!("{SENDER}@github.com"), "username": SENDER},
        "committer": {"name": SENDER, "email": format!("{SENDER}@github.com"), "username": SENDER},
        "added": [], "removed": [], "modified": ["README.md"]
    });
    let mut repository = repository(repo);
    repository["created_at"] = json!(TIME_SECS);
    repository["pushed_at"] = json!(at);
    json!({
        "ref": format!("refs/heads/{branch}"), "before": before, "after": after,
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "compare": format!("https://github.com/{repo}/compare/{}...{}", &before[..12.min(before.len())], &after[..12.min(after.len())]),
        "commits": [commit.clone()], "head_commit": commit,
        "pusher": {"name": SENDER, "email": format!("{SENDER}@github.com")},
        "repository": repository, "sender": user(SENDER)
    })
}

/// A label of the repository, as payloads describe it.
fn label(repo: &str, name: &str) -> Json {
    let (color, description) = LABELS
        .iter()
        .find(|(n, ..)| *n == name)
        .map_or(("ededed", ""), |(_, color, description)| {
            (*color, *description)
        });
    json!({"id": 208_045_946, "node_id": format!("LA_{name}"),
           "url": format!("https://api.github.com/repos/{repo}/labels/{name}"),
           "name": name, "color": color, "default": true, "description": description})
}

/// An issue as payloads describe it, last changed at `at` (seconds since the Unix epoch).
fn issue(world: &mut World, repo: &str, number: u64, at: u64) -> Json {
    let key = repo.to_ascii_lowercase();
    let found = world.issue(repo, number);
    let (title, body, open) = found
        .as_ref()
        .map_or((String::new(), String::new(), true), |i| {
            (i.title.clone(), i.body.clone(), i.open)
        });
    let labels: Vec<Json> = found
        .as_ref()
        .map_or(&[][..], |i| &i.labels[..])
        .iter()
        .map(|name| label(repo, name))
        .collect();
    json!({
        "url": format!("https://api.github.com/repos/{repo}/issues/{number}"),
        "repository_url": format!("https://api.github.com/repos/{repo}"),
        "html_url": format!("https://github.com/{repo}/issues/{number}"),
        "id": number, "node_id": format!("I_{key}#{number}"), "number": number,
        "title": title, "body": body, "user": user(SENDER), "labels": labels,
        "state": if open { "open" } else { "closed" }, "locked": false, "assignees": [],
        "comments": found.as_ref().map_or(0, |i| i.comments),
        "created_at": date::rfc3339(world.issue_created(repo, number)),
        "updated_at": date::rfc3339(at),
        "closed_at": if open { Json::Null } else { json!(date::rfc3339(at)) },
        "author_association": "OWNER"
    })
}

/// A pull request as an `issue_comment` payload's `issue` describes it.
fn pr_as_issue(world: &World, repo: &str, number: u64, at: u64) -> Json {
    let pr = world.pr(repo, number);
    let labels: Vec<Json> = pr.labels.iter().map(|name| label(repo, name)).collect();
    json!({
        "url": format!("https://api.github.com/repos/{repo}/issues/{number}"),
        "repository_url": format!("https://api.github.com/repos/{repo}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}"),
        "id": number, "node_id": format!("PR_{}#{number}", repo.to_ascii_lowercase()),
        "number": number, "title": pr.title, "user": user(SENDER), "labels": labels,
        "state": "open", "locked": false, "assignees": [], "comments": pr.comments,
        "created_at": TIME, "updated_at": date::rfc3339(at), "closed_at": null,
        "author_association": "OWNER",
        "pull_request": {
            "url": format!("https://api.github.com/repos/{repo}/pulls/{number}"),
            "html_url": format!("https://github.com/{repo}/pull/{number}"),
            "merged_at": null
        }
    })
}

/// A pull request as payloads describe it, last changed at `at`.
fn pull_request(world: &World, repo: &str, number: u64, at: u64) -> Json {
    let key = repo.to_ascii_lowercase();
    let pr = world.pr(repo, number);
    let owner = repo.split_once('/').map_or(SENDER, |(owner, _)| owner);
    let repository = repository(repo);
    let branch = |name: &str, sha: &str| {
        json!({"label": format!("{owner}:{name}"), "ref": name, "sha": sha,
               "user": user(owner), "repo": repository})
    };
    let labels: Vec<Json> = pr.labels.iter().map(|name| label(repo, name)).collect();
    json!({
        "url": format!("https://api.github.com/repos/{repo}/pulls/{number}"),
        "id": number, "node_id": format!("PR_{key}#{number}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}"),
        "number": number, "state": "open", "locked": false, "title": pr.title,
        "user": user(SENDER), "body": format!("This change improves things ({number})."),
        "labels": labels, "created_at": TIME, "updated_at": date::rfc3339(at),
        "closed_at": null, "merged_at": null, "draft": false, "merged": false,
        "comments": pr.comments, "commits": pr.commits, "additions": pr.commits,
        "deletions": 1, "changed_files": 1,
        "head": branch(&format!("feature-{number}"), &pr.head), "base": branch("main", SHA),
        "author_association": "OWNER"
    })
}
