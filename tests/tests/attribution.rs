//! Invariant 6, by the repository a read or a write is charged to: a read whose repository its
//! own request does not prove is dropped by every write; a write whose repository cannot be
//! proven drops everything; a GraphQL document is read as GraphQL reads it. Each with the
//! real gh (Debian's and the current release), against what plain gh prints.

use std::path::Path;

use ghcache_tests::current_gh::gh_versions;
use ghcache_tests::{run_piped, Machine, Run, World};

/// A machine whose ghcache runs `gh`.
fn machine(world: &World, name: &str, gh: &Path) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_GH", &gh.display().to_string());
    m
}

fn plain(m: &Machine, gh: &Path, args: &[&str]) -> Run {
    run_piped(m.command(gh).args(args))
}

/// Runs `args` through ghcache; whether it reached GitHub.
fn asked(world: &World, m: &Machine, args: &[&str]) -> (Run, bool) {
    let before = world.requests();
    let run = m.cached(args).ok();
    (run, world.requests() > before)
}

const OPEN_ISSUES: &str = "issues(states: OPEN) { totalCount }";

#[test]
fn reads_whose_repository_their_arguments_do_not_prove_are_dropped_by_a_write() {
    for gh in gh_versions() {
        let world = World::new();
        // Outside any checkout: nothing but the request itself tells the repository.
        let m = machine(&world, "outside", &gh);
        let by_variables = format!(
            "query=query RepositoryInfo($owner: String!, $name: String!) {{ repository(owner: $owner, name: $name) {{ {OPEN_ISSUES} }} }}"
        );
        let by_literal =
            format!("query=query {{ repository(owner: \"o\", name: \"r\") {{ {OPEN_ISSUES} }} }}");
        let reads: [Vec<&str>; 3] = [
            vec![
                "api",
                "graphql",
                "-f",
                &by_variables,
                "-f",
                "owner=o",
                "-f",
                "name=r",
            ],
            vec!["api", "graphql", "-f", &by_literal],
            vec!["api", "http://api.github.localhost/repos/o/r/issues"],
        ];
        let mut before = Vec::new();
        for read in &reads {
            before.push(m.cached(read).ok().out());
            assert!(!asked(&world, &m, read).1, "{read:?} is cached first");
        }
        m.cached(&[
            "api",
            "-X",
            "POST",
            "repos/o/r/issues",
            "-f",
            "title=from elsewhere in the tree",
        ])
        .ok();
        for (read, before) in reads.iter().zip(before) {
            let (run, reached) = asked(&world, &m, read);
            assert!(reached, "{read:?} was dropped by the write ({gh:?})");
            assert_eq!(run.out(), plain(&m, &gh, read).ok().out(), "{read:?}");
            assert_ne!(run.out(), before, "{read:?} shows the new issue");
        }
    }
}

#[test]
fn a_mutation_that_names_its_target_by_node_id_drops_every_repository() {
    for gh in gh_versions() {
        let world = World::new();
        let mut m = machine(&world, "checkout", &gh);
        m.git_checkout("a", &[("origin", "https://github.localhost/o/a.git")]);
        let other = ["api", "repos/o/b/issues"];
        let before = m.cached(&other).ok();
        assert!(before.out().contains("\"number\":1"), "{}", before.out());
        assert!(!asked(&world, &m, &other).1, "cached");
        // The issue of o/b, closed by its node id from inside a checkout of o/a.
        m.cached(&[
            "api",
            "graphql",
            "-f",
            "query=mutation CloseIt { closeIssue(input: {issueId: \"I_o/b#1\"}) { clientMutationId } }",
        ])
        .ok();
        let (after, reached) = asked(&world, &m, &other);
        assert!(reached, "o/b's answer was dropped ({gh:?})");
        assert_eq!(after.out(), plain(&m, &gh, &other).ok().out());
        assert!(
            !after.out().contains("\"number\":1,"),
            "issue 1 is closed now: {}",
            after.out()
        );
    }
}

#[test]
fn an_issue_transfer_drops_both_repositories() {
    let world = World::new();
    let gh = ghcache_tests::gh_bin();
    let m = machine(&world, "transfer", &gh);
    let reads = [
        ["issue", "list", "-R", "o/from"],
        ["issue", "list", "-R", "o/to"],
    ];
    for read in &reads {
        m.cached(read).ok();
        assert!(!asked(&world, &m, read).1, "{read:?} is cached first");
    }
    // The fake GitHub does not model the transfer; what matters is what ghcache drops.
    m.cached(&["issue", "transfer", "1", "o/to", "-R", "o/from"]);
    for read in &reads {
        assert!(asked(&world, &m, read).1, "{read:?} was dropped");
    }
}

#[test]
fn a_mutation_hidden_behind_a_carriage_return_is_never_stored() {
    for gh in gh_versions() {
        let world = World::new();
        let mut m = machine(&world, "hidden", &gh);
        m.git_checkout("a", &[("origin", "https://github.localhost/o/a.git")]);
        // Read with a lexer that ends comments at LF only, the mutation is part of a comment
        // and the request a query about o/r.
        let args = [
            "api",
            "graphql",
            "-f",
            "query=query Info($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { id } }\n#\rmutation M { createIssue(input: {repositoryId: \"R_o/r\", title: \"sneaky\"}) { issue { number } } }",
            "-f",
            "operationName=M",
            "-f",
            "owner=o",
            "-f",
            "name=r",
        ];
        for run in 1..=3 {
            let (_, reached) = asked(&world, &m, &args);
            assert!(reached, "run {run} reached GitHub ({gh:?})");
        }
        let created = world
            .github
            .requests()
            .iter()
            .filter(|r| r.operation.as_deref() == Some("mutation"))
            .count();
        assert_eq!(created, 3, "GitHub ran the mutation each time");
        assert_eq!(m.stats()["entries"], 0, "nothing was stored");
    }
}
