//! The Actions scopes' tests: what a declared job token's permissions and job name make of a scope.

use proptest::prelude::*;

use super::*;

fn canonical(text: &str) -> String {
    match Permissions::parse(text) {
        Ok(Some(p)) => p.as_str().to_owned(),
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn a_block_however_written_has_one_canonical_form() {
    let block = "contents: read\nissues: read\npull-requests: read\n";
    let expected = "contents:read,issues:read,pull-requests:read";
    assert_eq!(canonical(block), expected);
    assert_eq!(
        canonical("Pull-Requests: READ, contents: read ,issues:read"),
        expected
    );
    assert_eq!(
        canonical("{ issues: 'read', contents: \"read\", pull-requests: read }"),
        expected
    );
    assert_eq!(
        canonical("contents: read   # checkout\nissues: read\npull-requests: read\nid-token: write\nchecks: none"),
        expected,
        "comments, id-token and none read nothing"
    );
    assert_eq!(canonical("contents: write"), "contents:write");
    assert_eq!(canonical(" read-all "), "read-all");
    assert_eq!(canonical("WRITE-ALL"), "write-all");
    assert_eq!(canonical("{}"), "none");
    assert_eq!(canonical("issues: none\nid-token: write"), "none");
    assert_eq!(Permissions::parse(" \n # nothing\n"), Ok(None));
}

#[test]
fn a_declaration_that_is_not_a_block_is_refused_and_says_what_is_wrong() {
    let refused = |text: &str| match Permissions::parse(text) {
        Err(e) => e.to_string(),
        other => panic!("{text:?}: {other:?}"),
    };
    assert_eq!(
        refused("contents read"),
        "\"contents read\" is not `name: read|write|none` (as in the job's `permissions:` block)"
    );
    assert_eq!(
        refused("issues: maybe"),
        "issues: \"maybe\" is not read, write or none"
    );
    assert_eq!(
        refused("issues: read, issues: write"),
        "issues is given twice"
    );
    assert_eq!(
        refused("read-all, issues: write"),
        "read-all stands alone: it is the whole `permissions:` value"
    );
    assert!(refused("{ read-all }").contains("stands alone"));
    assert!(refused("is_sues: read").starts_with("\"is_sues\" is not a permission name"));
}

fn job(permissions: Option<&str>) -> Job {
    Job {
        permissions: permissions.map(str::to_owned),
        workflow_ref: Some("Acme/Widgets/.github/workflows/ci.yml@refs/heads/main".into()),
        workflow_sha: Some("0123456789ABCDEF0123456789abcdef01234567".into()),
        job: Some("build".into()),
    }
}

#[test]
fn a_job_that_declares_shares_with_the_jobs_that_declare_the_same_set() {
    let read = scope("Acme/Widgets", &job(Some("issues: read\ncontents: read")));
    assert_eq!(
        read.as_deref(),
        Some("actions:acme/widgets#perms=contents:read,issues:read")
    );
    let mut other = job(Some("contents: read, issues: read"));
    other.job = Some("lint".into());
    other.workflow_ref = None;
    assert_eq!(scope("acme/widgets", &other), read, "whatever the job");
    let less = scope("acme/widgets", &job(Some("contents: read")));
    assert_ne!(less, read);
    let more = scope("acme/widgets", &job(Some("contents: read, issues: write")));
    assert_ne!(more, read);
}

#[test]
fn a_job_that_declares_nothing_shares_only_with_itself() {
    let build = scope("Acme/Widgets", &job(None));
    assert_eq!(
        build.as_deref(),
        Some("actions:acme/widgets#job=.github/workflows/ci.yml@refs/heads/main:build:0123456789abcdef0123456789abcdef01234567")
    );
    let mut lint = job(None);
    lint.job = Some("lint".into());
    assert_ne!(scope("acme/widgets", &lint), build);
    let mut release = job(None);
    release.workflow_ref =
        Some("acme/widgets/.github/workflows/release.yml@refs/heads/main".into());
    assert_ne!(scope("acme/widgets", &release), build);
    let mut next = job(None);
    next.workflow_sha = Some("1".repeat(40));
    assert_ne!(
        scope("acme/widgets", &next),
        build,
        "another commit may narrow the block"
    );
    let mut branch = job(None);
    branch.workflow_ref = Some("acme/widgets/.github/workflows/ci.yml@refs/heads/x".into());
    assert_ne!(scope("acme/widgets", &branch), build);
}

#[test]
fn what_cannot_be_told_shares_nothing() {
    assert_eq!(scope("acme/widgets", &job(Some("contents: reed"))), None);
    for unknown in [
        Job {
            workflow_ref: None,
            ..job(None)
        },
        Job {
            workflow_sha: Some(" ".into()),
            ..job(None)
        },
        Job {
            job: None,
            ..job(None)
        },
    ] {
        assert_eq!(scope("acme/widgets", &unknown), None, "{unknown:?}");
    }
    assert_eq!(scope(" ", &job(Some("contents: read"))), None);
}

proptest! {
    /// The name is `actions:<repository>#<suffix>` with one `#`, and distinct jobs have
    /// distinct names, whatever the runner's variables hold.
    #[test]
    fn undeclared_names_keep_their_shape_and_their_jobs_apart(
        a in ("\\PC{0,12}", "\\PC{0,6}", "[#:,%a-f0-9]{1,4}"),
        b in ("\\PC{0,12}", "\\PC{0,6}", "[#:,%a-f0-9]{1,4}"),
    ) {
        let of = |(workflow, id, sha): &(String, String, String)| Job {
            permissions: None,
            workflow_ref: Some(format!("o/r/{workflow}")),
            workflow_sha: Some(sha.clone()),
            job: Some(id.clone()),
        };
        let (name_a, name_b) = (scope("O/R", &of(&a)), scope("O/R", &of(&b)));
        let trimmed = |(w, i, s): &(String, String, String)| {
            (format!("o/r/{w}").trim().to_owned(), i.trim().to_owned(), s.trim().to_lowercase())
        };
        if let Some(name) = &name_a {
            let suffix = name.strip_prefix("actions:o/r#job=");
            prop_assert!(suffix.is_some_and(|s| !s.contains('#')), "{name}");
        }
        if name_a.is_some() && trimmed(&a) != trimmed(&b) {
            prop_assert_ne!(name_a, name_b);
        }
    }
}
