//! What is cached, for how long, and for whom.

use ghcache_tests::World;

#[test]
fn second_call_is_free_and_after_the_ttl_github_is_asked_again() {
    let world = World::new();
    let mut machine = world.machine("ttl");
    let args = ["issue", "list", "-R", "acme/widgets"];
    let first = machine.cached(&args).ok();
    assert!(world.requests() >= 1);
    let before = world.requests();
    let second = machine.cached(&args).ok();
    assert_eq!(
        world.requests(),
        before,
        "second identical call makes zero requests"
    );
    assert_eq!(second.stdout, first.stdout);

    world.github.add_issue("acme/widgets", "a brand new issue");
    let cached = machine.cached(&args).ok();
    assert!(
        !cached.out().contains("a brand new issue"),
        "within the TTL the cached answer stands"
    );

    // A TTL of zero makes the stored entry stale: the next call goes to GitHub once.
    machine.set_env("GH_CACHE_TTL_LIST", "0");
    let before = world.requests();
    let refreshed = machine.cached(&args).ok();
    assert_eq!(
        world.requests(),
        before + 1,
        "after the TTL exactly one request"
    );
    assert!(
        refreshed.out().contains("a brand new issue"),
        "{}",
        refreshed.out()
    );
    assert_eq!(refreshed.stdout, machine.gh(&args).stdout);
}

#[test]
fn scopes_never_see_each_others_entries() {
    let world = World::new();
    let mut machine = world.machine("scopes");
    let args = ["pr", "list", "-R", "o/r"];
    machine.set_env("GH_CACHE_SCOPE", "a");
    machine.cached(&args).ok();
    let before = world.requests();
    machine.cached(&args).ok();
    assert_eq!(world.requests(), before, "same scope hits");
    machine.set_env("GH_CACHE_SCOPE", "b");
    machine.cached(&args).ok();
    assert!(
        world.requests() > before,
        "scope b must not get scope a's entry"
    );
    // Without an explicit scope, a different token is a different scope.
    machine.unset_env("GH_CACHE_SCOPE");
    machine.set_env("GH_TOKEN", "token-one");
    machine.cached(&args).ok();
    let before = world.requests();
    machine.set_env("GH_TOKEN", "token-two");
    machine.cached(&args).ok();
    assert!(world.requests() > before, "another token is another scope");
}

#[test]
fn working_directories_with_different_remotes_get_their_own_answers() {
    let world = World::new();
    let mut widgets = world.machine("remotes");
    let mut gadgets = widgets.clone();
    widgets.git_checkout(
        "widgets",
        &[("origin", "https://github.localhost/acme/widgets.git")],
    );
    gadgets.git_checkout(
        "gadgets",
        &[("origin", "git@github.localhost:acme/gadgets.git")],
    );
    let args = ["pr", "list"];
    let w = widgets.cached(&args).ok();
    let g = gadgets.cached(&args).ok();
    assert_ne!(
        w.stdout, g.stdout,
        "each checkout gets its own repository's answer"
    );
    assert_eq!(w.stdout, widgets.gh(&args).ok().stdout);
    assert_eq!(g.stdout, gadgets.gh(&args).ok().stdout);
    let before = world.requests();
    assert_eq!(widgets.cached(&args).ok().stdout, w.stdout);
    assert_eq!(gadgets.cached(&args).ok().stdout, g.stdout);
    assert_eq!(world.requests(), before, "both are cached, separately");
}

#[test]
fn gh_repo_env_is_the_repository_context() {
    let world = World::new();
    let mut machine = world.machine("gh-repo");
    machine.set_env("GH_REPO", "acme/widgets");
    let w = machine.cached(&["issue", "list"]).ok();
    machine.set_env("GH_REPO", "acme/gadgets");
    let g = machine.cached(&["issue", "list"]).ok();
    assert_ne!(w.stdout, g.stdout);
    assert_eq!(g.stdout, machine.gh(&["issue", "list"]).ok().stdout);
}

#[test]
fn disabled_cache_is_plain_passthrough() {
    let world = World::new();
    let mut machine = world.machine("disabled");
    machine.set_env("GH_CACHE_ENABLED", "0");
    let args = ["repo", "view", "o/r"];
    machine.cached(&args).ok();
    let before = world.requests();
    let again = machine.cached(&args).ok();
    assert!(
        world.requests() > before,
        "with GH_CACHE_ENABLED=0 every call reaches GitHub"
    );
    assert_eq!(again.stdout, machine.gh(&args).ok().stdout);
    assert!(!machine.cache_dir().join("index.db").exists() || machine.stats()["requests"] == 0);
}

#[test]
fn interactive_and_unknown_commands_pass_through_untouched() {
    let world = World::new();
    let machine = world.machine("passthrough");
    for args in [
        &["--version"][..],
        &["pr", "list", "-R", "o/r", "--help"],
        &["no-such-command"],
        &["auth", "status"],
    ] {
        let plain = machine.gh(args);
        let cached = machine.cached(args);
        assert_eq!(
            (cached.code, cached.out(), cached.err()),
            (plain.code, plain.out(), plain.err()),
            "{args:?}"
        );
    }
    assert_eq!(machine.stats()["bypassed"], 4);
    assert_eq!(machine.stats()["entries"], 0);
}
