//! What `contrib/` ships: the keeper's systemd unit passes `systemd-analyze`, and every VS Code
//! task runs a command that ghcache accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use ghcache_tests::{ghcache_bin, run_piped, World};

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib")
        .join(path)
}

fn systemd_analyze() -> Command {
    let found = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "systemd-analyze not found: apt-get install -y systemd"
    );
    Command::new("systemd-analyze")
}

/// The unit as installed, with `ExecStart` pointing at the binary under test (`verify` checks
/// that the program exists).
fn installed_unit(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(contrib("systemd/ghcache-keeper.service"))
        .unwrap_or_else(|e| panic!("read the unit: {e}"));
    assert!(
        text.contains("ExecStart=/usr/local/bin/ghcache daemon "),
        "{text}"
    );
    let bin = ghcache_bin().display().to_string();
    let unit = dir.join("ghcache-keeper.service");
    std::fs::write(&unit, text.replace("/usr/local/bin/ghcache", &bin))
        .unwrap_or_else(|e| panic!("write the unit: {e}"));
    unit
}

#[test]
fn the_keeper_unit_passes_systemd_analyze_verify_without_a_warning() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let unit = installed_unit(dir.path());
    let run = run_piped(systemd_analyze().arg("verify").arg(&unit));
    assert_eq!(run.code, 0, "{}", run.err());
    // `verify` only warns about unknown keys and bad values: a warning is a failure here.
    assert_eq!(run.err(), "", "systemd-analyze verify warned");
    // The hardening keeps the exposure score that `systemd-analyze security` rates "OK".
    let security = run_piped(
        systemd_analyze()
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&unit),
    );
    assert_eq!(security.code, 0, "{}", security.out());
}

#[test]
fn the_keeper_unit_starts_ghcache_with_flags_it_accepts() {
    let text = std::fs::read_to_string(contrib("systemd/ghcache-keeper.service"))
        .unwrap_or_else(|e| panic!("read the unit: {e}"));
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/ghcache "))
        .unwrap_or_else(|| panic!("no ExecStart in the unit"));
    // clap rejects an unknown flag before it gets to --help.
    let run = run_piped(
        Command::new(ghcache_bin())
            .args(exec.split_whitespace())
            .arg("--help"),
    );
    assert_eq!(run.code, 0, "{}", run.err());
}

#[test]
fn every_vscode_task_runs_a_command_ghcache_accepts() {
    let text = std::fs::read_to_string(contrib("vscode/tasks.json"))
        .unwrap_or_else(|e| panic!("read tasks.json: {e}"));
    let tasks: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("tasks.json is not JSON: {e}"));
    let world = World::new();
    let mut machine = world.machine("a");
    // VS Code runs the gh tasks in a checkout of the repository; GH_REPO stands for it here.
    machine.set_env("GH_REPO", "o/r");
    let key = world.swarm_key("team");
    let _daemon = machine.daemon(&key, &[]);
    let input = |id: &str| -> String {
        let inputs = tasks["inputs"].as_array().cloned().unwrap_or_default();
        let found = inputs.iter().find(|i| i["id"] == id);
        match found.and_then(|i| i["default"].as_str()) {
            Some(default) => default.to_owned(),
            None if id == "repo" => "o/r".to_owned(),
            None => panic!("input {id} has no default"),
        }
    };
    let expand = |word: &str| -> String {
        let mut word = word.replace("${workspaceFolder}", &machine.cwd.display().to_string());
        while let Some(start) = word.find("${input:") {
            let end = word[start..].find('}').map_or(word.len(), |e| start + e);
            let value = input(&word[start + 8..end]);
            word.replace_range(start..=end, &value);
        }
        word
    };
    let list = tasks["tasks"].as_array().cloned().unwrap_or_default();
    assert!(list.len() >= 6, "{list:?}");
    let mut labels = Vec::new();
    for task in &list {
        let label = task["label"].as_str().unwrap_or_default().to_owned();
        let command = expand(task["command"].as_str().unwrap_or_default());
        let args: Vec<String> = task["args"]
            .as_array()
            .map(|a| a.iter().filter_map(|w| w.as_str()).map(&expand).collect())
            .unwrap_or_default();
        let mut run = match task["type"].as_str() {
            Some("process") => {
                assert_eq!(command, "ghcache", "{label}");
                machine.command(ghcache_bin())
            }
            Some("shell") => {
                let line = command.strip_prefix("ghcache ");
                let line = line.unwrap_or_else(|| panic!("{label}: {command}"));
                let mut cmd = machine.command("sh");
                let bin = ghcache_bin().display().to_string();
                cmd.args(["-c", &format!("\"{bin}\" {line}")]);
                cmd
            }
            other => panic!("{label}: task type {other:?}"),
        };
        let done = run_piped(run.args(&args));
        assert_eq!(done.code, 0, "{label}: {}", done.err());
        labels.push(label);
    }
    for wanted in ["statistics", "clear the cache", "pull requests"] {
        assert!(labels.iter().any(|l| l.ends_with(wanted)), "{labels:?}");
    }
}
