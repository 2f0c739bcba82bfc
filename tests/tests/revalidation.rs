//! ETag revalidation (a 304 is free) and stale-if-error.

use ghcache_tests::{Fault, World};

#[test]
fn a_stale_api_entry_costs_one_free_304_and_prints_the_stored_body() {
    let world = World::new();
    let mut machine = world.machine("etag");
    let args = ["api", "repos/o/r"];
    let first = machine.cached(&args).ok();
    assert_eq!(
        first.stdout,
        machine.gh(&args).ok().stdout,
        "no header block leaks into stdout"
    );
    machine.set_env("GH_CACHE_TTL_API", "0");
    world.github.clear_log();
    let revalidated = machine.cached(&args).ok();
    assert_eq!(revalidated.stdout, first.stdout);
    assert_eq!(
        revalidated.stderr, first.stderr,
        "the 304 is not shown to the user"
    );
    let log = world.github.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].status, 304);
    assert_eq!(
        world.github.charged_count(),
        0,
        "a 304 is free against the rate limit"
    );
    assert_eq!(machine.stats()["revalidated"], 1);
}

#[test]
fn include_flag_keeps_headers_as_plain_gh_prints_them() {
    let world = World::new();
    let machine = world.machine("include");
    let args = ["api", "-i", "repos/o/r"];
    let first = machine.cached(&args).ok();
    assert!(
        first.out().to_ascii_lowercase().contains("etag:"),
        "{}",
        first.out()
    );
    let before = world.requests();
    assert_eq!(machine.cached(&args).ok().stdout, first.stdout);
    assert_eq!(world.requests(), before);
}

#[test]
fn github_errors_serve_the_stale_entry_with_a_warning() {
    for fault in [Fault::ServerError, Fault::RateLimited] {
        let world = World::new();
        let mut machine = world.machine("stale");
        let args = ["release", "list", "-R", "o/r"];
        let fresh = machine.cached(&args).ok();
        machine.set_env("GH_CACHE_TTL_RELEASE", "0");
        world.github.set_fault(Some(fault));
        let plain = machine.gh(&args);
        assert_ne!(plain.code, 0, "the fault is real for plain gh");
        let stale = machine.cached(&args);
        assert_eq!(stale.code, 0, "{}", stale.err());
        assert_eq!(stale.stdout, fresh.stdout);
        assert!(
            stale.err().contains("showing a cached answer"),
            "{}",
            stale.err()
        );
        assert_eq!(machine.stats()["stale_served"], 1);
        // Beyond max-stale, the error is shown as gh shows it.
        machine.set_env("GH_CACHE_MAX_STALE", "0");
        let failed = machine.cached(&args);
        assert_eq!((failed.code, failed.out()), (plain.code, plain.out()));
    }
}
