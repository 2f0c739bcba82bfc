//! Tests of the request context read from the environment, gh's config and `.git/config`.

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
        job_token_hash: Some(declared("ghp_secret_token")),
        actions_job: crate::actions::Job {
            permissions: Some("contents: read".into()),
            ..crate::actions::Job::default()
        },
        env_token: Some("ghp_secret_token".into()),
        login: Some("octocat".into()),
        config_token: Some("gho_from_the_file".into()),
    };
    assert_eq!(scope(&inputs), "team");
    inputs.explicit = None;
    assert_eq!(scope(&inputs), "actions:acme/widgets#perms=contents:read");
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
    let by_file_token = scope(&inputs);
    assert!(by_file_token.starts_with("token:"), "{by_file_token}");
    inputs.config_token = None;
    assert_eq!(scope(&inputs), "anonymous");
}

/// The value `ghcache actions declare` puts in the job's environment for `token`.
fn declared(token: &str) -> String {
    let line = declaration(token);
    let value = line.strip_prefix("GH_CACHE_JOB_TOKEN_HASH=");
    value.unwrap_or_else(|| panic!("{line}")).to_owned()
}

fn in_actions(env_token: Option<&str>, declared_for: Option<&str>) -> ScopeInputs {
    ScopeInputs {
        actions_repository: Some("acme/widgets".into()),
        job_token_hash: declared_for.map(declared),
        actions_job: crate::actions::Job {
            permissions: Some("contents: read".into()),
            ..crate::actions::Job::default()
        },
        env_token: env_token.map(str::to_owned),
        ..ScopeInputs::default()
    }
}

#[test]
fn in_actions_only_the_declared_job_token_shares_the_repository_s_scope() {
    let shared = "actions:acme/widgets#perms=contents:read";
    assert_eq!(scope(&in_actions(Some("ghs_job"), Some("ghs_job"))), shared);
    // Another job, another token, its own declaration: the same scope.
    assert_eq!(
        scope(&in_actions(Some("ghs_next"), Some("ghs_next"))),
        shared
    );
    // A PAT in GH_TOKEN while the job declared its own token: the PAT's own scope.
    let pat = scope(&in_actions(Some("ghp_personal"), Some("ghs_job")));
    assert_eq!(pat, scope(&in_actions(Some("ghp_personal"), None)));
    assert!(pat.starts_with("token:"), "{pat}");
    // Without a declaration, even the job token keeps to itself.
    let undeclared = scope(&in_actions(Some("ghs_job"), None));
    assert!(undeclared.starts_with("token:"), "{undeclared}");
    assert_ne!(undeclared, scope(&in_actions(Some("ghs_next"), None)));
    // A declaration that is not a hash, or no token at all, shares nothing.
    let mut garbled = in_actions(Some("ghs_job"), None);
    garbled.job_token_hash = Some("ghs_job".into());
    assert_eq!(scope(&garbled), undeclared);
    assert_eq!(scope(&in_actions(None, Some("ghs_job"))), "anonymous");
    // The declaration counts only in Actions.
    let mut outside = in_actions(Some("ghs_job"), Some("ghs_job"));
    outside.actions_repository = None;
    assert_eq!(scope(&outside), undeclared);
    // A job that logged gh in with its own token in hosts.yml shares too.
    let mut file = in_actions(None, Some("ghs_job"));
    file.config_token = Some("ghs_job".into());
    file.login = Some("someone".into());
    assert_eq!(scope(&file), shared);
}

#[test]
fn a_declared_job_token_whose_share_cannot_be_told_keeps_a_scope_of_its_own() {
    let undeclared = scope(&in_actions(Some("ghs_job"), None));
    // Neither permissions nor the job's identity: nothing to share by.
    let mut unknown = in_actions(Some("ghs_job"), Some("ghs_job"));
    unknown.actions_job = crate::actions::Job::default();
    assert_eq!(scope(&unknown), undeclared);
    // Permissions that do not parse are not a declaration of anything.
    unknown.actions_job.permissions = Some("contents: everything".into());
    assert_eq!(scope(&unknown), undeclared);
}

#[test]
fn the_declaration_names_no_token() {
    let line = declaration("ghs_0123456789abcdef");
    let value = declared("ghs_0123456789abcdef");
    assert_eq!(value.len(), 64);
    assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!line.contains("ghs_"), "{line}");
    assert_ne!(
        job_token_hash("ghs_0123456789abcdef").0,
        crate::Manifest::token_hash("ghs_0123456789abcdef").0,
        "not the hash that manifests carry"
    );
}

#[test]
fn the_host_s_own_token_is_read_not_another_account_s() {
    // gh 2.40 and later: the active account's keys on the host, every account under `users:`.
    let yml = "github.com:\n    users:\n        hubot:\n            oauth_token: gho_hubot\n        octocat:\n            oauth_token: gho_octocat\n    git_protocol: https\n    user: octocat\n    oauth_token: gho_octocat\nghe.example.com:\n    user: other\n";
    assert_eq!(
        hosts_entry(yml, "github.com"),
        HostsEntry {
            user: Some("octocat".into()),
            oauth_token: Some("gho_octocat".into()),
        }
    );
    // A login kept in the keyring: the file names the user and no token.
    assert_eq!(
        hosts_entry(yml, "ghe.example.com"),
        HostsEntry {
            user: Some("other".into()),
            oauth_token: None,
        }
    );
    let keyring_only = "github.com:\n    users:\n        octocat:\n    user: octocat\n";
    assert_eq!(hosts_entry(keyring_only, "github.com").oauth_token, None);
    assert_eq!(hosts_entry("", "github.com"), HostsEntry::default());
}
