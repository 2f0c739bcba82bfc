use super::*;

const CONFIG: &str = r#"
[core]
	repositoryformatversion = 0
[remote "origin"]
	url = https://github.com/Me/Fork.git
	fetch = +refs/heads/*:refs/remotes/origin/*
[remote "upstream"]
	url = git@github.com:Acme/Widgets.git
[remote "mirror"]
	url = https://gitlab.com/acme/widgets.git
[branch "main"]
	remote = origin
"#;

#[test]
fn remotes_are_parsed_with_their_urls() {
    let remotes = parse_git_remotes(CONFIG);
    let names: Vec<_> = remotes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["origin", "upstream", "mirror"]);
    assert_eq!(remotes[1].url, "git@github.com:Acme/Widgets.git");
}

#[test]
fn upstream_outranks_origin_and_other_hosts_are_ignored() {
    let remotes = parse_git_remotes(CONFIG);
    assert_eq!(
        base_repo(&remotes, "github.com").as_deref(),
        Some("acme/widgets")
    );
    assert_eq!(
        base_repo(&remotes, "gitlab.com").as_deref(),
        Some("acme/widgets")
    );
    assert_eq!(base_repo(&remotes, "ghe.example.com"), None);
}

#[test]
fn set_default_marker_wins() {
    let config = format!("{CONFIG}[remote \"origin\"]\n\tgh-resolved = base\n");
    // A second section for the same remote is how git appends keys; our parser sees a new one.
    let mut remotes = parse_git_remotes(CONFIG);
    remotes[0].gh_resolved = Some("base".into());
    assert_eq!(
        base_repo(&remotes, "github.com").as_deref(),
        Some("me/fork")
    );
    remotes[0].gh_resolved = Some("Other/Repo".into());
    assert_eq!(
        base_repo(&remotes, "github.com").as_deref(),
        Some("other/repo")
    );
    assert!(!parse_git_remotes(&config).is_empty());
}

#[test]
fn remote_url_forms() {
    let cases = [
        ("https://github.com/o/r.git", Some(("github.com", "o", "r"))),
        ("https://github.com/o/r/", Some(("github.com", "o", "r"))),
        (
            "http://user@github.localhost/o/r",
            Some(("github.localhost", "o", "r")),
        ),
        (
            "ssh://git@ssh.github.com:443/o/r.git",
            Some(("ssh.github.com", "o", "r")),
        ),
        ("git@github.com:o/r.git", Some(("github.com", "o", "r"))),
        ("git://GitHub.com/o/r", Some(("github.com", "o", "r"))),
        ("/local/path/repo", None),
        ("https://github.com/o", None),
        ("ftp://github.com/o/r", None),
    ];
    for (url, want) in cases {
        let got = parse_remote_url(url);
        let want = want.map(|(h, o, n)| (h.to_owned(), o.to_owned(), n.to_owned()));
        assert_eq!(got, want, "{url}");
    }
}

#[test]
fn repo_values_normalise() {
    assert_eq!(
        normalize_repo("Acme/Widgets").as_deref(),
        Some("acme/widgets")
    );
    assert_eq!(
        normalize_repo("github.com/acme/widgets").as_deref(),
        Some("acme/widgets")
    );
    assert_eq!(
        normalize_repo("https://github.com/acme/widgets.git").as_deref(),
        Some("acme/widgets")
    );
    assert_eq!(normalize_repo("acme"), None);
    assert_eq!(normalize_repo("a/b/c/d"), None);
    assert_eq!(normalize_repo("a b/c"), None);
}

#[test]
fn login_is_read_for_the_right_host() {
    let yml = "github.com:\n    oauth_token: gho_secret\n    user: Octocat\n    git_protocol: https\nghe.example.com:\n    user: other\n";
    assert_eq!(
        login_from_hosts_yml(yml, "github.com").as_deref(),
        Some("Octocat")
    );
    assert_eq!(
        login_from_hosts_yml(yml, "ghe.example.com").as_deref(),
        Some("other")
    );
    assert_eq!(login_from_hosts_yml(yml, "github.localhost"), None);
    assert_eq!(login_from_hosts_yml("", "github.com"), None);
}

#[test]
fn scope_order_and_token_secrecy() {
    let mut inputs = ScopeInputs {
        explicit: Some("team".into()),
        actions_repository: Some("Acme/Widgets".into()),
        env_token: Some("ghp_secret_token".into()),
        login: Some("octocat".into()),
    };
    assert_eq!(scope(&inputs), "team");
    inputs.explicit = None;
    assert_eq!(scope(&inputs), "actions:acme/widgets");
    inputs.actions_repository = None;
    let by_token = scope(&inputs);
    assert!(
        by_token.starts_with("token:") && !by_token.contains("secret"),
        "{by_token}"
    );
    inputs.env_token = Some("another".into());
    assert_ne!(
        scope(&inputs),
        by_token,
        "different tokens are different scopes"
    );
    inputs.env_token = None;
    assert_eq!(scope(&inputs), "user:octocat");
    inputs.login = Some("  ".into());
    assert_eq!(scope(&inputs), "anonymous");
}
