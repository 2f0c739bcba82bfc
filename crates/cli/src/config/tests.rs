//! The configuration's tests: precedence, the errors' wording, the variables known, and the
//! settings' table against what the README says of it.

use std::ffi::OsString;
use std::time::Duration;

use ghcache_core::policy::TtlClass;

use super::listing;
use super::table::{self, ROWS, SECTIONS};
use super::*;

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn durations_and_sizes_parse() {
    assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("soon"), None);
    assert_eq!(parse_size("512MiB"), Some(512 << 20));
    assert_eq!(parse_size("1GB"), Some(1_000_000_000));
    assert_eq!(parse_size("lots"), None);
}

#[test]
fn file_then_env_then_flags() {
    let dir = std::env::temp_dir().join(format!("ghcache-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let file = dir.join("config.toml");
    std::fs::write(&file, "[ttl]\nlist = \"5m\"\nview = 30\n").ok();
    let file_str: &'static str = Box::leak(file.display().to_string().into_boxed_str());
    let env: &'static [(&str, &str)] = Box::leak(Box::new([
        ("GH_CACHE_CONFIG", file_str),
        ("HOME", "/home/u"),
        ("GH_CACHE_TTL_VIEW", "45s"),
    ]));
    let env = env_of(env);
    let flags = Flags {
        ttl: vec!["view=1m".into()],
        ..Flags::default()
    };
    let config = Config::load(&env, &Flags::default()).ok();
    let config = config.as_ref();
    assert_eq!(
        config.map(|c| c.ttl(TtlClass::List)),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        config.map(|c| c.ttl(TtlClass::View)),
        Some(Duration::from_secs(45))
    );
    let flagged = Config::load(&env, &flags).ok();
    assert_eq!(
        flagged.map(|c| c.ttl(TtlClass::View)),
        Some(Duration::from_secs(60))
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Loads a config file with `text`; the error line, if any.
fn file_error(name: &str, text: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("ghcache-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let file = dir.join("config.toml");
    std::fs::write(&file, text).ok();
    let path = file.display().to_string();
    let env = move |name: &str| (name == "GH_CACHE_CONFIG").then(|| path.clone());
    let err = Config::load(&env, &Flags::default())
        .err()
        .map(|e| e.to_string());
    std::fs::remove_dir_all(&dir).ok();
    err
}

#[test]
fn a_known_key_of_the_wrong_type_says_which_type() {
    for (text, key, wanted) in [
        ("enabled = \"yes\"\n", "`enabled`", "true or false"),
        ("cache_dir = 3\n", "`cache_dir`", "a string"),
        ("max_entry_size = true\n", "`max_entry_size`", "a size"),
        ("ttl = \"5m\"\n", "`ttl`", "a table"),
        ("p2p = 1\n", "`p2p`", "a table"),
        ("[p2p]\nmdns = \"no\"\n", "`p2p.mdns`", "true or false"),
        ("[ipfs]\napi = 5001\n", "`ipfs.api`", "a string"),
    ] {
        let err = file_error("types", text).unwrap_or_default();
        assert!(err.contains(key) && err.contains(wanted), "{text:?}: {err}");
        assert!(!err.contains("not a known"), "{text:?}: {err}");
    }
    assert_eq!(file_error("sizes", "max_entry_size = \"8MiB\"\n"), None);
}

fn vars(pairs: &[(&str, &[u8])]) -> Vec<(OsString, OsString)> {
    use std::os::unix::ffi::OsStringExt as _;
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from_vec(v.to_vec())))
        .collect()
}

#[test]
fn unknown_variables_and_values_that_are_not_utf8_are_errors_that_name_them() {
    let ok = vars(&[
        ("GH_CACHE_DIR", b"/tmp/c"),
        ("GH_CACHE_TTL_LIST", b"5m"),
        ("GH_CACHE_MAX_ENTRY_SIZE", b"8MiB"),
        ("PATH", b"/bin"),
        ("OTHER", b"\xff"),
    ]);
    assert!(check_env(ok).is_ok());
    for (name, value, said) in [
        ("GH_CACHE_TTL_BOGUS", &b"1m"[..], "names no TTL class"),
        (
            "GH_CACHE_DIRR",
            b"/tmp/c",
            "not a variable that ghcache reads",
        ),
        ("GH_CACHE_DIR", b"/tmp/\xff", "not valid UTF-8"),
        ("GH_CACHE_SCOPE", b"\xff", "not valid UTF-8"),
        ("GH_CACHE_ENABLED", b"\xff", "not valid UTF-8"),
    ] {
        let err = check_env(vars(&[(name, value)]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(name) && err.contains(said), "{name}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn the_known_variables_are_exactly_those_that_are_read() {
    let asked = std::cell::RefCell::new(Vec::new());
    let env = |name: &str| {
        asked.borrow_mut().push(name.to_owned());
        None
    };
    let _ = Config::load(&env, &Flags::default());
    let mut read: Vec<String> = asked
        .into_inner()
        .into_iter()
        .filter(|n| n.starts_with("GH_CACHE_"))
        .filter(|n| !n.starts_with("GH_CACHE_TTL_") && !n.starts_with("GH_CACHE_HEARD_TTL_"))
        .collect();
    read.sort();
    read.dedup();
    let mut known: Vec<String> = table::setting_vars().map(|n| n.to_string()).collect();
    known.sort();
    assert_eq!(read, known);
}

#[test]
fn unknown_keys_are_rejected_with_the_key_named() {
    let dir = std::env::temp_dir().join(format!("ghcache-config-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let file = dir.join("config.toml");
    std::fs::write(&file, "colour = true\n").ok();
    let file_str: &'static str = Box::leak(file.display().to_string().into_boxed_str());
    let env: &'static [(&str, &str)] = Box::leak(Box::new([("GH_CACHE_CONFIG", file_str)]));
    let err = Config::load(&env_of(env), &Flags::default())
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("`colour`")));
    std::fs::remove_dir_all(&dir).ok();
}

/// The file that sets every key a row reads from the file, each to a value of its kind.
const EVERY_KEY: &str = r#"
enabled = false
debug = true
cache_dir = "/tmp/c"
gh = "/usr/bin/gh"
scope = "team"
max_size = "1GiB"
max_entry_size = 1000
max_stale = "2h"
rate_limit_reserve = 20
rate_limit_wait = "30s"
rate_limit_in_flight = 10
clock_skew = 5
lock_timeout = "1m"
[ttl]
list = "1m"
view = "2m"
repo_view = "3m"
release = "4m"
search = "5m"
api = "6m"
[heard_ttl]
list = "11m"
view = "12m"
repo_view = "2h"
release = "3h"
search = "2m"
api = "20m"
[p2p]
enabled = true
deadline = "200ms"
swarm_key_file = "/tmp/swarm.key"
listen = ["/ip4/127.0.0.1/tcp/1"]
bootstrap = ["/ip4/10.0.0.1/tcp/1"]
mdns = false
read_only = true
trusted_peers = ["12D3KooW"]
metrics = "127.0.0.1:9000"
keep = true
keep_max_size = "1GiB"
webhook = "127.0.0.1:8090"
webhook_secret_file = "/etc/ghcache/webhook.secret"
follow = true
follow_every = "30s"
[ipfs]
enabled = true
api = "http://127.0.0.1:5002"
gateway = "http://127.0.0.1:8080"
deadline = "1s"
encrypt = false
[http]
enabled = false
"#;

/// Loads `file` (when given) under `vars` and `flags`.
fn load(name: &str, file: Option<&str>, vars: &[(&str, &str)], flags: &Flags) -> Config {
    let dir = std::env::temp_dir().join(format!("ghcache-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let path = dir.join("config.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).ok();
    }
    let path = path.display().to_string();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let env = move |name: &str| {
        if name == "GH_CACHE_CONFIG" {
            return Some(path.clone());
        }
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let config = Config::load(&env, flags);
    std::fs::remove_dir_all(&dir).ok();
    config.unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Each listed line's source, by key.
fn sources(config: &Config) -> Vec<(&'static str, String)> {
    config
        .listing()
        .into_iter()
        .map(|line| (line.key, line.source))
        .collect()
}

#[test]
fn the_file_sets_every_row_that_has_a_key() {
    let config = load("every-key", Some(EVERY_KEY), &[], &Flags::default());
    for (key, source) in sources(&config) {
        assert!(source.starts_with("file "), "{key}: {source}");
    }
    // The keeper's rows are not listed: their values show they were read.
    assert!(config.p2p.keep.value);
    assert_eq!(config.p2p.keep_max_size.value, 1 << 30);
    assert_eq!(config.p2p.webhook.value.as_deref(), Some("127.0.0.1:8090"));
    assert_eq!(
        config.p2p.webhook_secret_file.value.as_deref(),
        Some("/etc/ghcache/webhook.secret")
    );
    assert!(config.p2p.follow.value);
    assert_eq!(config.p2p.follow_every.value, Duration::from_secs(30));
    let in_file = ROWS.iter().filter(|row| row.file.is_some()).count();
    let keys = EVERY_KEY.lines().filter(|l| l.contains(" = ")).count();
    assert_eq!(in_file, keys, "one key of the file above per row");
}

#[test]
fn the_environment_sets_every_row_that_has_a_variable() {
    let vars = [
        ("GH_CACHE_ENABLED", "0"),
        ("GH_CACHE_DEBUG", "1"),
        ("GH_CACHE_DIR", "/tmp/c"),
        ("GH_CACHE_GH", "/usr/bin/gh"),
        ("GH_CACHE_SCOPE", "team"),
        ("GH_CACHE_MAX_SIZE", "1GiB"),
        ("GH_CACHE_MAX_ENTRY_SIZE", "1MiB"),
        ("GH_CACHE_MAX_STALE", "2h"),
        ("GH_CACHE_RATE_LIMIT_RESERVE", "20"),
        ("GH_CACHE_RATE_LIMIT_WAIT", "30s"),
        ("GH_CACHE_RATE_LIMIT_IN_FLIGHT", "10"),
        ("GH_CACHE_CLOCK_SKEW", "5s"),
        ("GH_CACHE_TTL_LIST", "1m"),
        ("GH_CACHE_TTL_VIEW", "1m"),
        ("GH_CACHE_TTL_REPO_VIEW", "1m"),
        ("GH_CACHE_TTL_RELEASE", "1m"),
        ("GH_CACHE_TTL_SEARCH", "1m"),
        ("GH_CACHE_TTL_API", "1m"),
        ("GH_CACHE_HEARD_TTL_LIST", "20m"),
        ("GH_CACHE_HEARD_TTL_VIEW", "20m"),
        ("GH_CACHE_HEARD_TTL_REPO_VIEW", "2h"),
        ("GH_CACHE_HEARD_TTL_RELEASE", "2h"),
        ("GH_CACHE_HEARD_TTL_SEARCH", "1m"),
        ("GH_CACHE_HEARD_TTL_API", "20m"),
        ("GH_CACHE_P2P", "1"),
        ("GH_CACHE_P2P_DEADLINE", "1s"),
        ("GH_CACHE_SWARM_KEY", "text"),
        ("GH_CACHE_IPFS", "1"),
        ("GH_CACHE_IPFS_API", "http://127.0.0.1:5002"),
        ("GH_CACHE_IPFS_GATEWAY", "http://127.0.0.1:8080"),
        ("GH_CACHE_IPFS_DEADLINE", "1s"),
        ("GH_CACHE_IPFS_ENCRYPT", "0"),
        ("GH_CACHE_HTTP", "0"),
        ("GH_CACHE_WEBHOOK_SECRET", "s3cret"),
    ];
    let config = load("every-var", None, &vars, &Flags::default());
    for (key, source) in sources(&config) {
        let by_env = source.starts_with("env ");
        let row = ROWS.iter().find(|row| row.key == key);
        assert_eq!(
            by_env,
            row.is_some_and(|r| r.env.is_some()),
            "{key}: {source}"
        );
    }
    // The key's text is read over its file, both from the environment.
    let file = load(
        "key-file",
        None,
        &[("GH_CACHE_SWARM_KEY_FILE", "/tmp/k")],
        &Flags::default(),
    );
    assert_eq!(
        file.p2p.swarm_key.value,
        Some(SwarmKeySource::File("/tmp/k".into()))
    );
    assert_eq!(
        config.p2p.swarm_key.source,
        Source::Env("GH_CACHE_SWARM_KEY")
    );
    // Not listed, as the keeper's settings: its value shows it was read.
    assert_eq!(config.p2p.webhook_secret.value.as_deref(), Some("s3cret"));
    let set: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
    for row in ROWS.iter().filter_map(|row| row.env) {
        assert!(
            set.contains(&row.name) || row.name == "GH_CACHE_SWARM_KEY_FILE",
            "{} is set above",
            row.name
        );
    }
}

#[test]
fn the_flags_set_every_row_that_has_one() {
    let flags = Flags {
        cache_dir: Some("/tmp/c".into()),
        gh: Some("/usr/bin/gh".into()),
        scope: Some("team".into()),
        debug: true,
        no_cache: true,
        ttl: TtlClass::ALL
            .iter()
            .map(|c| format!("{}=1m", c.name()))
            .collect(),
        ipfs: true,
        ipfs_api: Some("http://127.0.0.1:5002".into()),
        ipfs_encrypt: Some(false),
    };
    let config = load("every-flag", None, &[], &flags);
    for (key, source) in sources(&config) {
        let row = ROWS.iter().find(|row| row.key == key);
        let flagged = row.is_some_and(|r| r.has_flag() || r.ttl_class().is_some());
        assert_eq!(source.starts_with("flag "), flagged, "{key}: {source}");
        if let Some(row) = row.filter(|_| flagged) {
            let name = source.trim_start_matches("flag ").split(' ').next();
            let documented = name.is_some_and(|n| row.flags.contains(n));
            assert!(documented, "{key}: {source} not in {:?}", row.flags);
        }
    }
}

#[test]
fn every_ttl_class_has_one_row_in_class_order() {
    let classes: Vec<TtlClass> = ROWS.iter().filter_map(|row| row.ttl_class()).collect();
    assert_eq!(classes, TtlClass::ALL.to_vec());
    for row in ROWS {
        if let Some(class) = row.ttl_class() {
            assert_eq!(row.key, format!("ttl.{}", class.name()));
        }
    }
}

#[test]
fn every_ttl_class_has_one_heard_ttl_row_in_class_order() {
    let classes: Vec<TtlClass> = ROWS
        .iter()
        .filter_map(|row| row.heard_ttl_class())
        .collect();
    assert_eq!(classes, TtlClass::ALL.to_vec());
    for row in ROWS {
        if let Some(class) = row.heard_ttl_class() {
            assert_eq!(row.key, format!("heard_ttl.{}", class.name()));
            let var = format!("GH_CACHE_HEARD_TTL_{}", class.name().to_uppercase());
            assert_eq!(row.env.map(|v| v.name), Some(var.as_str()));
        }
    }
}

#[test]
fn a_heard_ttl_shorter_than_the_ttl_means_the_ttl() {
    let config = load(
        "heard",
        Some("[ttl]\nlist = \"30m\"\n[heard_ttl]\nview = \"45m\"\n"),
        &[("GH_CACHE_HEARD_TTL_LIST", "20m")],
        &Flags::default(),
    );
    assert_eq!(config.heard_ttl(TtlClass::List), Duration::from_secs(1800));
    assert_eq!(config.heard_ttl(TtlClass::View), Duration::from_secs(2700));
    assert_eq!(config.heard_ttl(TtlClass::Search), Duration::from_secs(60));
    let defaults = load("heard-defaults", None, &[], &Flags::default());
    for class in TtlClass::ALL {
        assert_eq!(defaults.heard_ttl(class), class.default_heard_ttl());
    }
    let listed: Vec<(&str, String)> = config
        .listing()
        .into_iter()
        .filter(|line| line.key.starts_with("heard_ttl."))
        .map(|line| (line.key, line.source))
        .collect();
    assert_eq!(listed.len(), TtlClass::ALL.len());
    assert!(
        listed.contains(&(
            "heard_ttl.list",
            "env GH_CACHE_HEARD_TTL_LIST (env GH_CACHE_HEARD_TTL_LIST)".into()
        )),
        "{listed:?}"
    );
    let err = check_env(vars(&[("GH_CACHE_HEARD_TTL_BOGUS", b"1m")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("names no TTL class"), "{err}");
}

#[test]
fn every_key_of_a_section_has_its_section_and_no_list_is_a_variable() {
    for row in ROWS {
        if let Some((section, _)) = row.file.and_then(|key| key.split_once('.')) {
            assert!(SECTIONS.iter().any(|s| s.name == section), "{}", row.key);
        }
        assert!(!(row.is_list() && row.env.is_some()), "{}", row.key);
    }
}

#[test]
fn the_readme_settings_table_is_the_rows() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Configuration\n"))
        .unwrap_or_default();
    let shown: String = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        shown,
        listing::markdown(),
        "README.md's table under \"## Configuration\" is drawn from the rows of config/table.rs"
    );
}

#[test]
fn the_readme_defaults_of_switches_and_durations_are_the_defaults() {
    let config = load("defaults", None, &[("HOME", "/home/u")], &Flags::default());
    for line in config.listing() {
        let Some(row) = ROWS.iter().find(|row| row.key == line.key) else {
            continue;
        };
        if let (true, Shown::Text(value)) = (row.default_is_listed_form(), &line.value) {
            assert_eq!(
                row.default.trim_matches('`'),
                value.trim_matches('"'),
                "{}",
                row.key
            );
        }
    }
}

/// The daemon's flags that the rows name (for the README) are flags `ghcache daemon` takes:
/// they are applied there, so only this test ties the two.
#[cfg(feature = "p2p")]
#[test]
fn the_daemon_flags_the_rows_name_are_the_daemons() {
    use clap::Args as _;
    let daemon = crate::tiers::daemon::Flags::augment_args(clap::Command::new("daemon"));
    let longs: Vec<String> = daemon
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    let named = ROWS
        .iter()
        .filter(|row| row.flags.starts_with("`daemon "))
        .flat_map(|row| row.flags.split(['`', ' ', ',']))
        .filter(|word| word.starts_with("--"));
    let mut count = 0;
    for flag in named {
        assert!(longs.iter().any(|l| l == flag), "{flag} not in {longs:?}");
        count += 1;
    }
    assert!(count >= 9, "the p2p rows name the daemon's flags");
}
