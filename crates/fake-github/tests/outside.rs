//! Writes made on github.com (pushes, comments, labels, edits), seen through the real gh as a
//! CI job reads them, told as GitHub tells them (the event a job finds in `GITHUB_EVENT_PATH`,
//! the same as the webhook delivery), and the world's history, restored to ask what GitHub
//! answered at an earlier moment.

use std::process::Command;

use fake_github::FakeGithub;
use ghcache_core::testkit::skip;

fn gh_available() -> bool {
    let found = Command::new("gh")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip("the gh binary is not on PATH (apt-get install gh)");
    }
    found
}

fn start() -> FakeGithub {
    FakeGithub::start().unwrap_or_else(|e| panic!("cannot start the fake GitHub: {e}"))
}

/// `gh ARGS` piped, with a fresh config dir and home; its stdout.
fn gh(server: &FakeGithub, line: &str) -> String {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("gh")
        .args(line.split(' '))
        .envs(server.gh_env())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_REPO")
        .env_remove("GH_FORCE_TTY")
        .env("HOME", home.path())
        .env("GH_CONFIG_DIR", home.path().join("gh"))
        .env("TMPDIR", home.path())
        .output()
        .unwrap_or_else(|e| panic!("gh: {e}"));
    assert!(
        out.status.success(),
        "gh {line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn some<T>(value: Option<T>, what: &str) -> T {
    value.unwrap_or_else(|| panic!("no {what}"))
}

#[test]
fn a_push_starts_a_run_and_moves_the_pushed_time() {
    if !gh_available() {
        return;
    }
    let github = start();
    github.use_wall_clock();
    let runs = gh(&github, "run list -R acme/widgets");
    let repo = gh(&github, "api repos/acme/widgets");
    let event = some(github.push("acme/widgets"), "push event");
    assert_eq!(event.name, "push");
    let payload = &event.payload;
    assert_eq!(payload["ref"], "refs/heads/main");
    let after = some(payload["after"].as_str(), "after");
    assert_eq!(payload["head_commit"]["id"], after);
    let pushed = some(payload["repository"]["pushed_at"].as_u64(), "pushed_at");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    assert!(
        pushed + 5 >= now && pushed <= now,
        "{pushed} vs {now}: on the wall clock"
    );
    assert!(some(payload["head_commit"]["timestamp"].as_str(), "timestamp").ends_with("+00:00"));
    assert_eq!(payload["repository"]["full_name"], "acme/widgets");

    let after_push = gh(&github, "run list -R acme/widgets");
    assert_eq!(after_push.lines().count(), runs.lines().count() + 1);
    assert!(after_push.starts_with("in_progress"), "{after_push}");
    assert_ne!(gh(&github, "api repos/acme/widgets"), repo);
    assert_eq!(
        gh(&github, "run list -R acme/gadgets"),
        runs.replace("widgets", "gadgets")
    );
}

#[test]
fn a_pull_requests_changes_show_in_its_view_and_are_told_with_its_time() {
    if !gh_available() {
        return;
    }
    let github = start();
    let view = gh(&github, "pr view 2 -R acme/widgets");
    assert!(view.contains("labels:\tenhancement\n"), "{view}");
    assert!(view.contains("additions:\t1\n"), "{view}");

    // Nothing listens there: the deliveries fail, and are recorded with what they carried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    github.set_webhook(Some(&format!("http://{closed}/")), b"secret");
    let synced = some(
        github.synchronize_pr("acme/widgets", 2),
        "synchronize event",
    );
    let told = github.wait_deliveries(2, std::time::Duration::from_secs(20));
    let events: Vec<&str> = told.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(
        events,
        ["push", "pull_request"],
        "GitHub tells of the branch's push too"
    );
    assert_eq!(told[0].payload["ref"], "refs/heads/feature-2");
    assert_eq!(told[1].payload, synced.payload);
    github.set_webhook(None, b"");
    assert_eq!(
        (synced.name.as_str(), &synced.payload["action"]),
        ("pull_request", &serde_json::json!("synchronize"))
    );
    let pr = &synced.payload["pull_request"];
    assert_eq!(pr["head"]["sha"], synced.payload["after"]);
    assert!(pr["updated_at"]
        .as_str()
        .is_some_and(|t| t > "2026-01-01T00:00:00Z"));
    let pushed = gh(&github, "pr view 2 -R acme/widgets");
    assert!(pushed.contains("additions:\t2\n"), "{pushed}");
    assert!(gh(&github, "run list -R acme/widgets").contains("feature-2\tpull_request"));

    let labeled = some(github.label("acme/widgets", 2, true), "label event");
    assert_eq!(labeled.name, "pull_request");
    assert_eq!(labeled.payload["action"], "labeled");
    assert_eq!(labeled.payload["label"]["name"], "bug");
    let view = gh(&github, "pr view 2 -R acme/widgets");
    assert!(view.contains("labels:\tbug, enhancement\n"), "{view}");

    let commented = some(github.comment("acme/widgets", 2, true), "comment event");
    assert_eq!(commented.name, "issue_comment");
    assert!(commented.payload["issue"]["pull_request"]["url"].is_string());
    assert_eq!(commented.payload["issue"]["comments"], 1);
    assert!(commented.payload["comment"]["updated_at"].is_string());
    assert_eq!(
        gh(&github, "pr view 2 -R acme/widgets"),
        view,
        "comments are not shown"
    );
}

#[test]
fn an_issues_labels_comments_and_title_show_in_the_list() {
    if !gh_available() {
        return;
    }
    let github = start();
    let list = gh(&github, "issue list -R acme/widgets");
    assert!(
        list.contains("Crash on start in acme/widgets\tbug\t2026-01-01 00:00:00"),
        "{list}"
    );

    let labeled = some(github.label("acme/widgets", 1, false), "label event");
    assert_eq!(
        (labeled.name.as_str(), &labeled.payload["label"]["name"]),
        ("issues", &serde_json::json!("documentation"))
    );
    let list = gh(&github, "issue list -R acme/widgets");
    assert!(
        list.contains("\tbug, documentation\t2026-01-01 00:00:01"),
        "{list}"
    );

    let commented = some(github.comment("acme/widgets", 2, false), "comment event");
    assert_eq!(commented.payload["action"], "created");
    assert!(gh(&github, "issue list -R acme/widgets")
        .contains("Document the acme/widgets API\tdocumentation\t2026-01-01 00:00:02"));

    let edited = some(
        github.retitle_issue("acme/widgets", 2, "Document it all"),
        "edit event",
    );
    assert_eq!(
        edited.payload["changes"]["title"]["from"],
        "Document the acme/widgets API"
    );
    assert!(gh(&github, "issue list -R acme/widgets").contains("Document it all"));
    assert!(
        github.comment("acme/widgets", 9, false).is_none(),
        "no issue 9"
    );
}

#[test]
fn a_restored_world_answers_as_it_did_then() {
    if !gh_available() {
        return;
    }
    let github = start();
    github.keep_history();
    let before = gh(&github, "issue list -R acme/widgets");
    github.retitle_issue("acme/widgets", 1, "Renamed once");
    github.push("acme/gadgets");
    let after = gh(&github, "issue list -R acme/widgets");
    assert_ne!(after, before);

    let history = github.history();
    let repos: Vec<&[String]> = history.iter().map(|s| &s.repos[..]).collect();
    assert_eq!(
        repos,
        [
            &[][..],
            &["acme/widgets".to_owned()],
            &["acme/gadgets".to_owned()]
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));

    let oracle = start();
    oracle.restore(&history[0]);
    assert_eq!(gh(&oracle, "issue list -R acme/widgets"), before);
    oracle.restore(&history[1]);
    assert_eq!(gh(&oracle, "issue list -R acme/widgets"), after);
    assert_eq!(
        oracle.request_count(),
        2,
        "the restored server counts its own requests"
    );
}
