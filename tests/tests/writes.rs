//! Invariant 2: writes are never cached, always reach GitHub, and drop the repo's entries.

use ghcache_tests::World;

fn posts(world: &World) -> usize {
    world
        .github
        .requests()
        .iter()
        .filter(|r| {
            r.method != "GET" && r.method != "HEAD" && r.operation.as_deref() != Some("query")
        })
        .count()
}

#[test]
fn every_write_reaches_github_and_invalidates_the_repository() {
    let world = World::new();
    let machine = world.machine("writes");
    let list = ["issue", "list", "-R", "o/r"];
    let other = ["issue", "list", "-R", "o/other"];
    let writes: [&[&str]; 4] = [
        &[
            "api",
            "-X",
            "POST",
            "repos/o/r/issues",
            "-f",
            "title=via -X POST",
        ],
        &["api", "repos/o/r/issues", "-f", "title=via -f"],
        &[
            "issue",
            "create",
            "-R",
            "o/r",
            "-t",
            "via issue create",
            "-b",
            "body",
        ],
        &["issue", "close", "1", "-R", "o/r"],
    ];
    for write in writes {
        machine.cached(&list).ok();
        machine.cached(&other).ok();
        let before = world.requests();
        machine.cached(&list).ok();
        assert_eq!(world.requests(), before, "list is cached before the write");

        let writes_before = world.requests();
        let plain_like = machine.cached(write).ok();
        assert!(world.requests() > writes_before, "{write:?} reached GitHub");
        let again = world.requests();
        machine.cached(write).ok();
        assert!(
            world.requests() > again,
            "{write:?} is never answered from the cache"
        );
        drop(plain_like);

        let before = world.requests();
        let after = machine.cached(&list).ok();
        assert!(
            world.requests() > before,
            "{write:?} dropped o/r's cached list"
        );
        assert_eq!(
            after.stdout,
            machine.gh(&list).ok().stdout,
            "the user sees their own write"
        );
        let before = world.requests();
        machine.cached(&other).ok();
        assert_eq!(
            world.requests(),
            before,
            "{write:?} kept other repositories' entries"
        );
    }
    // Each write ran twice; the second `issue close` finds the issue closed and, as gh does,
    // sends no mutation: 2 + 2 REST posts, 2 createIssue and 1 closeIssue mutations.
    assert!(
        posts(&world) >= 7,
        "writes were sent as writes: {:?}",
        world.github.requests()
    );
    let listed = machine.cached(&list).ok().out();
    assert!(listed.contains("via issue create"), "{listed}");
}

#[test]
fn a_graphql_mutation_is_a_write() {
    let world = World::new();
    let machine = world.machine("mutation");
    let args = [
        "api",
        "graphql",
        "-f",
        "query=mutation { addStar(input:{starrableId:\"x\"}) { clientMutationId } }",
    ];
    machine.cached(&args);
    let before = world.requests();
    machine.cached(&args);
    assert_eq!(
        world.requests(),
        before + 1,
        "mutations always reach GitHub"
    );
    assert_eq!(machine.stats()["entries"], 0);
}

#[test]
fn a_write_drops_only_what_it_can_change() {
    let world = World::new();
    let machine = world.machine("by-resource");
    let issues = ["issue", "list", "-R", "o/r"];
    let releases = ["release", "list", "-R", "o/r"];
    let repo = ["repo", "view", "o/r"];
    let workflows = ["workflow", "list", "-R", "o/r"];
    for read in [&issues[..], &releases, &repo, &workflows] {
        machine.cached(read).ok();
    }
    machine
        .cached(&[
            "issue",
            "create",
            "-R",
            "o/r",
            "-t",
            "a new issue",
            "-b",
            "x",
        ])
        .ok();
    // The repository counts its open issues: its metadata goes too.
    let expected = [
        (&issues[..], true),
        (&releases, false),
        (&repo, true),
        (&workflows, false),
    ];
    for (read, refetched) in expected {
        let before = world.requests();
        let run = machine.cached(read).ok();
        let asked = world.requests() > before;
        assert_eq!(asked, refetched, "{read:?} after `issue create`");
        assert_eq!(run.stdout, machine.gh(read).ok().stdout, "{read:?}");
    }
    // A write of unknown effect still drops everything about the repository.
    machine
        .cached(&[
            "api",
            "-X",
            "PATCH",
            "repos/o/r",
            "-f",
            "description=changed",
        ])
        .ok();
    let before = world.requests();
    machine.cached(&releases).ok();
    assert!(
        world.requests() > before,
        "releases dropped by a repository edit"
    );
}

#[test]
fn a_write_s_debug_lines_say_what_it_dropped() {
    let world = World::new();
    let mut machine = world.machine("dropped");
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    let entries = machine.stats()["entries"].as_u64().unwrap_or(0);
    assert!(entries >= 1, "{}", machine.stats());
    machine.set_env("GH_CACHE_DEBUG", "1");
    let write = machine
        .cached(&["issue", "create", "-R", "o/r", "-t", "t", "-b", "b"])
        .ok();
    // gh's own write request passes the HTTP level first, which drops what it changes: the
    // command's invalidation afterwards finds nothing left, and the first line says what went.
    let said: u64 = write
        .err()
        .lines()
        .find_map(|line| {
            let rest = line.split("gh's write requests; dropped ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no line says what gh's writes dropped: {}", write.err()));
    assert!(said >= 1, "{}", write.err());
    // gh's own read before its write (the repository's id) was stored, then dropped with the rest.
    let left = machine.stats()["entries"].as_u64().unwrap_or(0);
    assert!(said >= entries - left, "{}", write.err());
}
