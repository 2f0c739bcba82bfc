//! Tests of the policy: which commands are cached, how their arguments are normalised, and
//! that writes never are.

use proptest::prelude::*;

use super::*;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn decide(line: &str) -> Decision {
    classify(&args(line))
}

fn cacheable(line: &str) -> Cacheable {
    match decide(line) {
        Decision::Cache(c) => c,
        other => panic!("{line}: expected cacheable, got {other:?}"),
    }
}

fn is_write(line: &str) -> bool {
    matches!(decide(line), Decision::Write(_))
}

fn is_passthrough(line: &str) -> bool {
    matches!(decide(line), Decision::Passthrough(_))
}

#[test]
fn allowlisted_reads_are_cached_with_their_class() {
    let cases = [
        ("repo view o/r", TtlClass::RepoView),
        ("repo view", TtlClass::RepoView),
        ("repo list o", TtlClass::List),
        ("pr list -R o/r", TtlClass::List),
        ("pr view 1 -R o/r", TtlClass::View),
        ("pr diff 1", TtlClass::View),
        ("pr checks 1", TtlClass::View),
        ("issue list --state closed", TtlClass::List),
        ("issue view 7", TtlClass::View),
        ("run list", TtlClass::List),
        ("run view 123", TtlClass::View),
        ("release list", TtlClass::Release),
        ("release view v1.0.0", TtlClass::Release),
        ("workflow list", TtlClass::List),
        ("label list", TtlClass::List),
        ("search repos foo", TtlClass::Search),
        ("search issues foo", TtlClass::Search),
        ("api repos/o/r", TtlClass::Api),
    ];
    for (line, class) in cases {
        assert_eq!(cacheable(line).class, class, "{line}");
    }
}

#[test]
fn writes_are_writes() {
    for line in [
        "pr create -R o/r -t x -b y",
        "pr merge 1",
        "pr edit 1 --title x",
        "pr comment 1 -b hi",
        "issue create -t x",
        "issue close 1 -R o/r",
        "issue delete 1",
        "repo delete o/r --yes",
        "repo edit o/r --description x",
        "release create v2",
        "run rerun 5",
        "run cancel 5",
        "workflow run ci.yml",
        "label create bug",
        "api -X POST repos/o/r/issues -f title=x",
        "api repos/o/r/issues -f title=x",
        "api repos/o/r/issues -F title=x",
        "api repos/o/r/issues --raw-field title=x",
        "api repos/o/r/issues --input body.json",
        "api --method=DELETE repos/o/r/labels/bug",
        "api -XPATCH repos/o/r",
        "api graphql -f query=mutation{addStar(input:{starrableId:\"x\"}){clientMutationId}}",
        "api graphql -F query=@q.graphql",
    ] {
        assert!(is_write(line), "{line}: {:?}", decide(line));
    }
}

#[test]
fn interactive_streaming_and_unknown_commands_pass_through() {
    for line in [
        "",
        "--version",
        "help",
        "auth status",
        "browse",
        "codespace list",
        "ssh-key list",
        "extension list",
        "alias list",
        "my-alias",
        "pr view 1 --web",
        "repo view -w",
        "pr checks 1 --watch",
        "run watch 5",
        "pr view",
        "pr status",
        "pr checkout 1",
        "repo clone o/r",
        "run view",
        "pr list --help",
        "api --verbose repos/o/r",
        "api",
        "pr",
    ] {
        assert!(is_passthrough(line), "{line:?}: {:?}", decide(line));
    }
}

#[test]
fn api_get_rules() {
    let plain = cacheable("api repos/o/r");
    assert!(plain.api_get && !plain.include_headers);
    assert_eq!(plain.named_repo.as_deref(), Some("o/r"));
    // -X GET with fields sends them as query parameters: still a read.
    assert!(cacheable("api -X GET search/issues -f q=x").api_get);
    assert!(!cacheable("api -X HEAD repos/o/r").api_get);
    let paged = cacheable("api --paginate repos/o/r/issues");
    assert!(
        !paged.api_get,
        "paginated answers are one entry, without ETags"
    );
    assert!(cacheable("api -i repos/o/r").include_headers);
    assert_eq!(cacheable("api repos/{owner}/{repo}").named_repo, None);
    let query = cacheable("api graphql -f query=query{viewer{login}}");
    assert!(!query.api_get);
    assert!(matches!(
        decide("api graphql -f query={viewer{login}}"),
        Decision::Cache(_)
    ));
}

#[test]
fn repo_flag_is_keyed_separately() {
    let a = cacheable("pr list -R O/R --state open");
    let b = cacheable("pr list --repo=o/r --state open");
    let c = cacheable("pr list -Ro/r --state open");
    assert_eq!(a.key_argv, args("pr list --state open"));
    assert_eq!(a.key_argv, b.key_argv);
    assert_eq!(b.key_argv, c.key_argv);
    assert_eq!(a.repo_flag.as_deref(), Some("O/R"));
    assert_eq!(c.repo_flag.as_deref(), Some("o/r"));
    assert_eq!(
        cacheable("repo view Acme/Widgets").named_repo.as_deref(),
        Some("acme/widgets")
    );
}

fn write(line: &str) -> Write {
    match decide(line) {
        Decision::Write(w) => w,
        other => panic!("{line}: expected a write, got {other:?}"),
    }
}

#[test]
fn reads_about_no_repository_their_request_proves_count_as_searches() {
    for line in [
        "api user",
        "api orgs/o/repos",
        "api https://api.github.com/user",
        "api graphql -f query=query{viewer{login}}",
        "api graphql -f query=query($owner:String!){repositoryOwner(login:$owner){id}} -f owner=o",
        "repo list o",
        "search issues x",
    ] {
        let read = cacheable(line);
        assert_eq!(read.resource, Resource::Search, "{line}");
        assert_eq!(read.named_repo, None, "{line}");
    }
    let named = cacheable(
        "api graphql -f query=query($owner:String!,$name:String!){repository(owner:$owner,name:$name){description}} -f owner=O -f name=R",
    );
    assert_eq!(
        (named.named_repo.as_deref(), named.resource),
        (Some("o/r"), Resource::Other)
    );
    let searched = cacheable(
        "api graphql -f query=query{search(query:\"x\",type:ISSUE){issueCount}} -f owner=o -f repo=r",
    );
    assert_eq!(searched.resource, Resource::Search);
    let placeholders = cacheable(
        "api graphql -f query=query($owner:String!,$repo:String!){repository(owner:$owner,name:$repo){id}} -F owner={owner} -F repo={repo}",
    );
    assert_eq!(
        (placeholders.named_repo, placeholders.resource),
        (None, Resource::Other),
        "gh fills them from the repository context"
    );
    let url = cacheable("api https://api.github.com/repos/O/R/issues?state=all");
    assert_eq!(
        (url.named_repo.as_deref(), url.resource),
        (Some("o/r"), Resource::Issues)
    );
    let enterprise = cacheable("api https://ghe.example/api/v3/repos/o/r/pulls");
    assert_eq!(
        (enterprise.named_repo.as_deref(), enterprise.resource),
        (Some("o/r"), Resource::PullRequests)
    );
    assert_eq!(
        cacheable("api repos/{owner}/{repo}/releases").resource,
        Resource::Releases
    );
}

#[test]
fn the_operation_that_runs_decides_whether_a_graphql_call_reads() {
    let hidden = vec![
        "api".to_owned(),
        "graphql".to_owned(),
        "-f".to_owned(),
        "query=query UserCurrent { viewer { login } }\n#\rmutation M { deleteIssue(input: {}) { clientMutationId } }".to_owned(),
        "-f".to_owned(),
        "operationName=M".to_owned(),
    ];
    assert!(matches!(classify(&hidden), Decision::Write(_)));
    assert!(is_write("api graphql -f query=query{a}mutation{b}"));
    assert!(is_write("api graphql -f query=query{a"));
    assert!(is_write("api graphql -F query=@doc.graphql"));
    assert!(is_write("api graphql -f query=query{a} -F owner=@file"));
}

#[test]
fn writes_whose_repository_is_not_proven_drop_everything() {
    for line in [
        "api graphql -f query=mutation{closeIssue(input:{issueId:\"I_1\"}){clientMutationId}}",
        "api graphql -f query=mutation{closeIssue(input:{issueId:\"I_1\"}){clientMutationId}} -f owner=o -f name=r",
        "api -X POST user/repos -f name=x",
        "api -X PUT https://api.github.com/user/starred/o/r",
        "repo fork o/r",
        "issue transfer 5",
    ] {
        assert!(write(line).unproven, "{line}");
    }
    for line in [
        "api -X POST repos/o/r/issues -f title=x",
        "api -X POST https://api.github.com/repos/o/r/issues -f title=x",
        "api -X POST repos/{owner}/{repo}/issues -f title=x",
        "issue create -t x",
    ] {
        assert!(!write(line).unproven, "{line}");
    }
    assert_eq!(
        write("api -X POST https://api.github.com/repos/O/R/labels -f name=x")
            .named_repo
            .as_deref(),
        Some("o/r")
    );
}

#[test]
fn writes_that_touch_two_repositories_name_both() {
    let transfer = write("issue transfer 5 O/Other -R o/r");
    assert_eq!(transfer.repo_flag.as_deref(), Some("o/r"));
    assert_eq!(transfer.also, Some(AlsoChanged::Repo("o/other".into())));
    let rename = write("repo rename New -R o/r");
    assert_eq!(rename.also, Some(AlsoChanged::SameOwner("new".into())));
    assert_eq!(
        rename.named_repo, None,
        "the new name is not the repository renamed"
    );
    assert!(write("repo rename a/b").unproven);
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-X".to_owned()),
        Just("--method".to_owned()),
        Just("-f".to_owned()),
        Just("-F".to_owned()),
        Just("--input".to_owned()),
        Just("--paginate".to_owned()),
        Just("-i".to_owned()),
        Just("POST".to_owned()),
        Just("GET".to_owned()),
        Just("graphql".to_owned()),
        Just("query=mutation{x}".to_owned()),
        "[a-z/=]{1,12}",
    ]
}

proptest! {
    /// gh sends a body (and so defaults to POST) when any field or input is given; unless the
    /// method is explicitly GET or HEAD, such a call is never cached.
    #[test]
    fn fields_without_an_explicit_get_are_never_cached(mut rest in proptest::collection::vec(word(), 0..8),
                                                       field in prop_oneof![Just("-f"), Just("-F"), Just("--raw-field"), Just("--field")],
                                                       at in 0usize..8) {
        rest.retain(|w| w != "-X" && w != "--method");
        let at = at.min(rest.len());
        rest.insert(at, "title=x".to_owned());
        rest.insert(at, field.to_owned());
        let mut argv = vec!["api".to_owned(), "repos/o/r/issues".to_owned()];
        argv.extend(rest);
        prop_assert!(!matches!(classify(&argv), Decision::Cache(_)), "{argv:?}");
    }

    /// Whatever the arguments, an explicit non-GET method is never cached.
    #[test]
    fn explicit_write_methods_are_never_cached(rest in proptest::collection::vec(word(), 0..8),
                                               method in prop_oneof![Just("POST"), Just("PUT"), Just("PATCH"), Just("DELETE"), Just("post")]) {
        let mut argv = vec!["api".to_owned(), "-X".to_owned(), method.to_owned()];
        argv.extend(rest.into_iter().filter(|w| w != "-X" && w != "--method"));
        prop_assert!(!matches!(classify(&argv), Decision::Cache(_)), "{argv:?}");
    }

    /// Classification never panics, whatever the input.
    #[test]
    fn classify_is_total(argv in proptest::collection::vec(".{0,12}", 0..10)) {
        let _ = classify(&argv);
    }

    /// A write subcommand is never cached, wherever flags sit.
    #[test]
    fn write_subcommands_are_never_cached(group in prop_oneof![Just("pr"), Just("issue"), Just("release"), Just("repo")],
                                          sub in prop_oneof![Just("create"), Just("edit"), Just("delete"), Just("close"), Just("merge")],
                                          flags in proptest::collection::vec(prop_oneof![Just("-R"), Just("o/r"), Just("--json"), Just("x"), Just("-w")], 0..5)) {
        let mut argv = vec![group.to_owned(), sub.to_owned()];
        argv.extend(flags.into_iter().map(str::to_owned));
        prop_assert!(!matches!(classify(&argv), Decision::Cache(_)), "{argv:?}");
    }
}
