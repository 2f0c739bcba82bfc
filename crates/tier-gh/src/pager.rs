//! The pager gh would use, so a cached answer on a terminal is paged as gh pages it.

use std::path::PathBuf;

/// The pager command gh would run: `GH_PAGER` if set (even empty), else a non-empty `pager:` in
/// gh's `config.yml` (`$GH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/gh`, else `~/.config/gh`), else
/// `PAGER`. `None` when that is empty or `cat`, which gh takes as "do not page".
pub fn user_pager() -> Option<String> {
    pager_from(&|name| std::env::var(name).ok())
}

/// [`user_pager`] with the environment given as a lookup, so tests need not change the process's.
pub(crate) fn pager_from(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let chosen = env("GH_PAGER")
        .or_else(|| config_pager(env).filter(|p| !p.trim().is_empty()))
        .or_else(|| env("PAGER"))?;
    let chosen = chosen.trim();
    if chosen.is_empty() || chosen == "cat" {
        return None;
    }
    Some(chosen.to_owned())
}

fn config_pager(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let dir = match (env("GH_CONFIG_DIR"), env("XDG_CONFIG_HOME"), env("HOME")) {
        (Some(dir), _, _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg).join("gh"),
        (_, _, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".config/gh"),
        _ => return None,
    };
    let text = std::fs::read_to_string(dir.join("config.yml")).ok()?;
    config_yml_pager(&text)
}

/// The top-level `pager:` value of gh's `config.yml`.
fn config_yml_pager(text: &str) -> Option<String> {
    text.lines()
        .filter(|line| !line.starts_with(char::is_whitespace))
        .find_map(|line| line.strip_prefix("pager:"))
        .map(|value| {
            let value = value.split(" #").next().unwrap_or("").trim();
            value.trim_matches(['"', '\'']).to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn gh_pager_wins_and_cat_means_none() {
        let env = env_of(vec![
            ("GH_PAGER", "less -R".into()),
            ("PAGER", "more".into()),
        ]);
        assert_eq!(pager_from(&env).as_deref(), Some("less -R"));
        let env = env_of(vec![("GH_PAGER", "cat".into()), ("PAGER", "more".into())]);
        assert_eq!(pager_from(&env), None);
        let env = env_of(vec![("GH_PAGER", String::new()), ("PAGER", "more".into())]);
        assert_eq!(
            pager_from(&env),
            None,
            "an empty GH_PAGER switches paging off"
        );
    }

    #[test]
    fn config_yml_then_pager_env() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("config.yml"),
            "git_protocol: https\npager: \"less -FRX\"\naliases:\n    co: pr checkout\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let env = env_of(vec![
            ("GH_CONFIG_DIR", config.clone()),
            ("PAGER", "more".into()),
        ]);
        assert_eq!(pager_from(&env).as_deref(), Some("less -FRX"));
        let env = env_of(vec![("PAGER", "more".into())]);
        assert_eq!(pager_from(&env).as_deref(), Some("more"));
        assert_eq!(pager_from(&env_of(vec![])), None);
    }

    #[test]
    fn nested_pager_keys_are_not_gh_s() {
        assert_eq!(config_yml_pager("aliases:\n  pager: x\n"), None);
        assert_eq!(
            config_yml_pager("pager: less # comment\n").as_deref(),
            Some("less")
        );
    }

    fn write_config(dir: &std::path::Path, text: &str) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("config.yml"), text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn config_dir_is_found_as_gh_finds_it() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = |p: &str| root.path().join(p).display().to_string();
        write_config(&root.path().join("explicit"), "pager: explicit\n");
        write_config(&root.path().join("xdg/gh"), "pager: xdg\n");
        write_config(&root.path().join("home/.config/gh"), "pager: home\n");
        let all = vec![
            ("GH_CONFIG_DIR", path("explicit")),
            ("XDG_CONFIG_HOME", path("xdg")),
            ("HOME", path("home")),
        ];
        assert_eq!(
            pager_from(&env_of(all.clone())).as_deref(),
            Some("explicit")
        );
        assert_eq!(
            pager_from(&env_of(all[1..].to_vec())).as_deref(),
            Some("xdg")
        );
        assert_eq!(
            pager_from(&env_of(all[2..].to_vec())).as_deref(),
            Some("home")
        );
        // An empty variable counts as unset, as in gh.
        let empty_dir = vec![("GH_CONFIG_DIR", String::new()), ("HOME", path("home"))];
        assert_eq!(pager_from(&env_of(empty_dir)).as_deref(), Some("home"));
    }

    #[test]
    fn an_empty_or_missing_config_pager_falls_back_to_pager() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // What gh 2.23 writes on first run: the key, blank, under a comment.
        write_config(
            dir.path(),
            "# What pager gh should use\npager:\n# comment\nbrowser:\n",
        );
        let config = dir.path().display().to_string();
        let env = env_of(vec![("GH_CONFIG_DIR", config), ("PAGER", "most".into())]);
        assert_eq!(pager_from(&env).as_deref(), Some("most"));
        let nowhere = dir.path().join("absent").display().to_string();
        let env = env_of(vec![("GH_CONFIG_DIR", nowhere), ("PAGER", "cat".into())]);
        assert_eq!(pager_from(&env), None);
    }
}
