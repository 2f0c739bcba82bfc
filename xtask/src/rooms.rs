//! `cargo xtask rooms`: the shape of the house, checked. For every crate of the workspace it
//! draws the module graph (module A names module B through a `crate::`, `super::` or child
//! path outside its tests) and fails on an import circle, on a source file longer than
//! [`MAX_LINES`], and on a tier's name written as a string outside that tier's crate.
//!
//! The crate root (`lib.rs`, `main.rs`) and `pub use` lines are left out of the graph: a root
//! declares every module and a facade re-exports what its rooms define, which are arrows of
//! the plan, not of use. Code under `#[cfg(test)]` is left out too: a test may reach anywhere.
//! The reading is lexical (comments and strings are skipped, paths are followed through the
//! re-exports of the module they name), which is what keeps it small enough to trust.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

mod graph;
mod source;

use graph::{circles, edges};
use source::read_crate;

/// Longest source file a room may be, its tests aside: past it, a file holds more than one
/// thing and a reviewer cannot find the part they look for.
pub const MAX_LINES: usize = 800;

/// Each tier's name and the crate that owns it: only that crate writes it as a string.
const TIER_NAMES: [(&str, &str); 3] = [
    (ghcache_tier_local::NAME, "crates/tier-local"),
    (ghcache_tier_p2p::NAME, "crates/tier-p2p"),
    (ghcache_tier_ipfs::NAME, "crates/tier-ipfs"),
];

/// Lines outside a tier that spell its name for something else, each with the reason: the file,
/// the line as written (trimmed), and why it is not the tier's name.
const SAME_WORD: &[(&str, &str, &str)] = &[
    (
        "crates/core/src/cache_dir.rs",
        "pub const NODE_DIR: &str = \"p2p\";",
        "a directory on disk, which must not move if the tier is renamed",
    ),
    (
        "crates/cli/src/config/table.rs",
        "name: \"p2p\",",
        "a section of the settings file, which users write",
    ),
    (
        "crates/cli/src/config/table.rs",
        "name: \"ipfs\",",
        "a section of the settings file, which users write",
    ),
    (
        "crates/cli/src/tiers.rs",
        "pub(crate) const P2P: &str = \"p2p\";",
        "a build without the tier names the cargo feature that would add it",
    ),
    (
        "crates/cli/src/tiers.rs",
        "pub(crate) const IPFS: &str = \"ipfs\";",
        "a build without the tier names the cargo feature that would add it",
    ),
    (
        "crates/tier-local/src/journal.rs",
        "for (tier, n) in [(\"local\", local), (\"p2p\", p2p), (\"ipfs\", ipfs)] {",
        "the fixed positions of the counters file's first format, read as written on disk",
    ),
];

/// `cargo xtask rooms [--graph]`: checks the workspace; `--graph` prints every crate's edges.
pub fn main(args: &[String]) -> Result<()> {
    let graph = match args {
        [] => false,
        [flag] if flag == "--graph" => true,
        _ => bail!("usage: cargo xtask rooms [--graph]"),
    };
    let root = workspace_root();
    let report = check(&root)?;
    if graph {
        print!("{}", report.graph);
    }
    if report.faults.is_empty() {
        println!(
            "rooms: {} crates, {} modules, {} edges: no import circle, no file over {MAX_LINES} lines, no tier name outside its tier",
            report.crates, report.modules, report.edges
        );
        Ok(())
    } else {
        for fault in &report.faults {
            eprintln!("rooms: {fault}");
        }
        bail!("{} fault(s) in the shape of the house", report.faults.len())
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Crates read.
    pub crates: usize,
    /// Modules (files) read, crate roots included.
    pub modules: usize,
    /// Arrows between modules.
    pub edges: usize,
    /// Each crate's arrows, one `a -> b` per line under the crate's name.
    pub graph: String,
    /// One line per circle, long file or misplaced tier name.
    pub faults: Vec<String>,
}

/// Reads every crate under `root` (`crates/*`, `xtask`, `tests`, `examples/*`).
pub fn check(root: &Path) -> Result<Report> {
    let mut report = Report::default();
    for krate in crate_dirs(root)? {
        let src = krate.join("src");
        let name = krate
            .strip_prefix(root)
            .unwrap_or(&krate)
            .display()
            .to_string();
        let modules = read_crate(&src).with_context(|| format!("reading {}", src.display()))?;
        report.crates += 1;
        report.modules += modules.len();
        let edges = edges(&modules);
        report.edges += edges.values().map(BTreeSet::len).sum::<usize>();
        let _ = writeln!(report.graph, "{name}");
        for (from, tos) in &edges {
            for to in tos {
                let _ = writeln!(report.graph, "  {} -> {}", shown(from), shown(to));
            }
        }
        for circle in circles(&edges) {
            let names: Vec<&str> = circle.iter().map(|m| shown(m)).collect();
            report
                .faults
                .push(format!("{name}: import circle among {}", names.join(", ")));
        }
        for module in modules.values() {
            let file = module.file.strip_prefix(root).unwrap_or(&module.file);
            if module.lines > MAX_LINES && !module.test_only {
                report.faults.push(format!(
                    "{}: {} lines (a room holds at most {MAX_LINES})",
                    file.display(),
                    module.lines
                ));
            }
            if module.test_only {
                continue;
            }
            let source = std::fs::read_to_string(&module.file).unwrap_or_default();
            let source: Vec<&str> = source.lines().collect();
            for (line, text) in &module.strings {
                let written = source.get(line.saturating_sub(1)).copied().unwrap_or("");
                let spelt_elsewhere = SAME_WORD
                    .iter()
                    .any(|(path, code, _)| file.ends_with(path) && written.trim() == *code);
                for (tier, owner) in TIER_NAMES {
                    if text == tier && !krate.ends_with(owner) && !spelt_elsewhere {
                        report.faults.push(format!(
                            "{}:{line}: the tier name \"{tier}\" written outside {owner} (use its NAME)",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    Ok(report)
}

fn shown(module: &str) -> &str {
    if module.is_empty() {
        "(root)"
    } else {
        module
    }
}

fn crate_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for parent in ["crates", "examples"] {
        let Ok(entries) = std::fs::read_dir(root.join(parent)) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.join("src").is_dir() {
                dirs.push(path);
            }
        }
    }
    for single in ["xtask", "tests"] {
        if root.join(single).join("src").is_dir() {
            dirs.push(root.join(single));
        }
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace holding one crate, `crates/demo`, with the given source files.
    fn krate(files: &[(&str, &str)]) -> Result<tempfile::TempDir> {
        let root = tempfile::tempdir()?;
        let src = root.path().join("crates/demo/src");
        for (path, text) in files {
            let file = src.join(path);
            std::fs::create_dir_all(file.parent().unwrap_or(&src))?;
            std::fs::write(file, text)?;
        }
        Ok(root)
    }

    #[test]
    fn a_circle_through_a_use_is_found() -> Result<()> {
        let root = krate(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "use crate::b::Thing;\npub struct Other;\n"),
            ("b.rs", "pub struct Thing(crate::a::Other);\n"),
        ])?;
        let report = check(root.path())?;
        assert_eq!(report.faults, vec!["crates/demo: import circle among a, b"]);
        Ok(())
    }

    #[test]
    fn a_circle_through_grouped_uses_and_super_is_found() -> Result<()> {
        let root = krate(&[
            ("lib.rs", "mod wire;\n"),
            (
                "wire/mod.rs",
                "mod gossip;\nmod frame;\npub use gossip::Gossip;\n",
            ),
            (
                "wire/gossip.rs",
                "use super::{frame::{Frame, MAX}};\npub struct Gossip;\n",
            ),
            (
                "wire/frame.rs",
                "pub struct Frame;\npub const MAX: usize = super::super::wire::gossip::N;\n",
            ),
        ])?;
        let report = check(root.path())?;
        assert_eq!(
            report.faults,
            vec!["crates/demo: import circle among wire::frame, wire::gossip"]
        );
        Ok(())
    }

    #[test]
    fn a_child_naming_its_parents_reexport_reaches_the_room_that_defines_it() -> Result<()> {
        let root = krate(&[
            ("lib.rs", "mod wire;\nmod node;\n"),
            ("wire/mod.rs", "mod frame;\npub use frame::Frame;\n"),
            ("wire/frame.rs", "pub struct Frame(crate::node::Id);\n"),
            ("node.rs", "use crate::wire::Frame;\npub struct Id;\n"),
        ])?;
        let report = check(root.path())?;
        assert_eq!(
            report.faults,
            vec!["crates/demo: import circle among node, wire::frame"]
        );
        Ok(())
    }

    #[test]
    fn tests_comments_strings_and_reexports_draw_no_arrow() -> Result<()> {
        let root = krate(&[
            ("lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
            (
                "a.rs",
                "//! See [`crate::b::B`].\npub struct A;\nconst S: &str = \"crate::b::B\";\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n    fn f() -> Result<()> { let _ = '{'; }\n}\n",
            ),
            ("b.rs", "use crate::a::A;\npub struct B(A);\n"),
        ])?;
        let report = check(root.path())?;
        assert!(report.faults.is_empty(), "{:?}", report.faults);
        assert!(report.graph.contains("  b -> a\n"), "{}", report.graph);
        assert!(!report.graph.contains("  a -> b"), "{}", report.graph);
        Ok(())
    }

    #[test]
    fn a_long_file_and_a_tier_name_outside_its_tier_are_faults() -> Result<()> {
        let long = "fn f() {}\n".repeat(MAX_LINES + 1);
        let root = krate(&[
            (
                "lib.rs",
                "mod big;\n#[cfg(feature = \"p2p\")]\nconst TIER: &str = \"p2p\";\n",
            ),
            ("big.rs", long.as_str()),
        ])?;
        let report = check(root.path())?;
        assert_eq!(
            report.faults,
            vec![
                "crates/demo/src/lib.rs:3: the tier name \"p2p\" written outside crates/tier-p2p (use its NAME)".to_string(),
                format!("crates/demo/src/big.rs: {} lines (a room holds at most {MAX_LINES})", MAX_LINES + 1),
            ]
        );
        Ok(())
    }

    #[test]
    fn the_workspace_keeps_its_rooms() -> Result<()> {
        let report = check(&workspace_root())?;
        assert!(report.crates >= 10, "{report:?}");
        assert!(report.faults.is_empty(), "{:#?}", report.faults);
        Ok(())
    }

    #[test]
    fn every_word_that_is_not_a_tier_name_is_still_written_where_it_is_excused() -> Result<()> {
        for (path, code, why) in SAME_WORD {
            let text = std::fs::read_to_string(workspace_root().join(path))?;
            assert!(
                text.lines().any(|line| line.trim() == *code),
                "{path} no longer has `{code}` ({why}): drop its line from SAME_WORD"
            );
        }
        Ok(())
    }
}
