//! Reading the settings from their sources through the table's rows: the file, the
//! environment, the flags. Each value is read by its row's kind, and lands where the row says.

use std::path::Path;

use ghcache_core::policy::TtlClass;

use super::effective::{Config, Env, Flags, Source};
use super::error::ConfigError;
use super::table::{Blank, Given, Kind, Row, Section, ROWS, SECTIONS};
use super::value::{
    bool_text, duration_value, parse_duration, parse_size, size_value, strings_value, BOOL_HINT,
    COUNT_HINT, DURATION_HINT, LIST_HINT, SIZE_HINT, STRING_HINT, SWITCH_HINT,
};

impl Kind {
    /// Whether it is a TTL class's TTL or heard TTL.
    pub(super) fn is_ttl(&self) -> bool {
        matches!(self, Kind::Ttl(_) | Kind::HeardTtl(_))
    }

    /// Reads the file's value; the hint when it is not of this kind.
    fn read_file(&self, value: &toml::Value) -> Result<Given, &'static str> {
        let text = || value.as_str().map(|s| Given::Text(s.to_owned()));
        let given = match self {
            Kind::Switch(_) | Kind::Auto(..) => value.as_bool().map(Given::Switch),
            Kind::Size(..) => size_value(value).map(Given::Size),
            Kind::Count(_) => value
                .as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .map(Given::Count),
            Kind::Duration(_) | Kind::Ttl(_) | Kind::HeardTtl(_) => {
                duration_value(value).map(Given::Duration)
            }
            Kind::List(_) => strings_value(value).map(Given::List),
            Kind::Path(_)
            | Kind::Program(_)
            | Kind::Text(_)
            | Kind::Optional(..)
            | Kind::Key(_) => text(),
        };
        given.ok_or(match self {
            Kind::Switch(_) | Kind::Auto(..) => BOOL_HINT,
            Kind::Size(..) => SIZE_HINT,
            Kind::Count(_) => COUNT_HINT,
            Kind::Duration(_) | Kind::Ttl(_) | Kind::HeardTtl(_) => DURATION_HINT,
            Kind::List(_) => LIST_HINT,
            Kind::Path(_)
            | Kind::Program(_)
            | Kind::Text(_)
            | Kind::Optional(..)
            | Kind::Key(_) => STRING_HINT,
        })
    }

    /// Reads a variable's text; the hint when it is not of this kind.
    fn read_env(&self, text: String) -> Result<Given, &'static str> {
        match self {
            Kind::Switch(_) | Kind::Auto(..) => {
                bool_text(&text).map(Given::Switch).ok_or(SWITCH_HINT)
            }
            Kind::Size(_, hint) => parse_size(&text).map(Given::Size).ok_or(hint),
            Kind::Count(_) => text
                .trim()
                .parse::<u64>()
                .map(Given::Count)
                .map_err(|_| COUNT_HINT),
            Kind::Duration(_) | Kind::Ttl(_) | Kind::HeardTtl(_) => parse_duration(&text)
                .map(Given::Duration)
                .ok_or(DURATION_HINT),
            // No list is read from the environment (a test holds this).
            Kind::List(_) => Err(LIST_HINT),
            Kind::Path(_)
            | Kind::Program(_)
            | Kind::Text(_)
            | Kind::Optional(..)
            | Kind::Key(_) => Ok(Given::Text(text)),
        }
    }

    /// Puts a value where this kind of setting lands. A value of another kind lands nowhere:
    /// each source reads values of its row's kind, and a test sets every row from every source.
    fn land(&self, config: &mut Config, given: Given, source: Source) {
        match (self, given) {
            (Kind::Switch(place), Given::Switch(b)) => (place.write)(config).set(b, source),
            (Kind::Auto(place, _), Given::Switch(b)) => (place.write)(config).set(Some(b), source),
            (Kind::Size(place, _), Given::Size(n)) => (place.write)(config).set(n, source),
            (Kind::Count(place), Given::Count(n)) => (place.write)(config).set(n, source),
            (Kind::Duration(place), Given::Duration(d)) => (place.write)(config).set(d, source),
            (Kind::Ttl(class), Given::Duration(d)) => {
                if let Some(slot) = config.ttl.get_mut(class) {
                    slot.set(d, source);
                }
            }
            (Kind::HeardTtl(class), Given::Duration(d)) => {
                if let Some(slot) = config.heard_ttl.get_mut(class) {
                    slot.set(d, source);
                }
            }
            (Kind::Path(place), Given::Text(t)) => (place.write)(config).set(t.into(), source),
            (Kind::Path(place), Given::Path(p)) => (place.write)(config).set(p, source),
            (Kind::Program(place), Given::Text(t)) => (place.write)(config).set(t.into(), source),
            (Kind::Program(place), Given::Program(p)) => (place.write)(config).set(p, source),
            (Kind::Text(place), Given::Text(t)) => (place.write)(config).set(t, source),
            (Kind::Optional(place, _), Given::Text(t)) => {
                (place.write)(config).set(Some(t), source);
            }
            (Kind::List(place), Given::List(items)) => (place.write)(config).set(items, source),
            (Kind::Key(make), Given::Text(t)) => config.p2p.swarm_key.set(Some(make(t)), source),
            _ => {}
        }
    }
}

impl Section {
    /// What the error says of a key of this section that no row has.
    fn unknown(&self) -> String {
        if self.name == "ttl" || self.name == "heard_ttl" {
            unknown_class()
        } else {
            format!("is not a known {} setting", self.name)
        }
    }
}

/// The row the file's `key` (`name`, or `section.name`) sets.
fn in_file(key: &str) -> Option<&'static Row> {
    ROWS.iter().find(|row| row.file == Some(key))
}

/// Sets what the file's `table` names; the first key that is unknown or whose value is not of
/// its kind is the error.
pub(super) fn apply_file(
    config: &mut Config,
    table: &toml::Table,
    path: &Path,
) -> Result<(), ConfigError> {
    let source = Source::File(path.to_path_buf());
    let bad = |key: &str, reason: &str| ConfigError::Value {
        origin: source.to_string(),
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let mut land = |row: &Row, key: &str, value: &toml::Value| -> Result<(), ConfigError> {
        let given = row.kind.read_file(value).map_err(|hint| bad(key, hint))?;
        row.kind.land(config, given, source.clone());
        Ok(())
    };
    for (key, value) in table {
        // A quoted `"p2p.deadline"` at the top is a key of its own, not the section's.
        if let Some(row) = in_file(key).filter(|_| !key.contains('.')) {
            land(row, key, value)?;
        } else if let Some(section) = SECTIONS.iter().find(|s| s.name == key) {
            let entries = value.as_table().ok_or_else(|| bad(key, section.shape))?;
            for (name, value) in entries {
                let key = format!("{key}.{name}");
                let row = in_file(&key).ok_or_else(|| bad(&key, &section.unknown()))?;
                land(row, &key, value)?;
            }
        } else {
            return Err(bad(key, "is not a known setting (see `ghcache config`)"));
        }
    }
    Ok(())
}

/// Sets what the environment names, in the rows' order but the TTL classes' variables last
/// (the order in which a second bad value goes unnamed).
pub(super) fn apply_env(config: &mut Config, env: Env<'_>) -> Result<(), ConfigError> {
    let is_ttl = |row: &&Row| row.kind.is_ttl();
    let ordered = ROWS
        .iter()
        .filter(|row| !is_ttl(row))
        .chain(ROWS.iter().filter(is_ttl));
    for row in ordered {
        let Some(var) = row.env else { continue };
        let Some(text) = env(var.name) else { continue };
        let blank = match var.blank {
            Blank::Value => false,
            Blank::Unset => text.is_empty(),
            Blank::Whitespace => text.trim().is_empty(),
        };
        if blank {
            continue;
        }
        let given = row.kind.read_env(text).map_err(|hint| ConfigError::Value {
            origin: Source::Env(var.name).to_string(),
            key: var.name.to_owned(),
            reason: hint.to_owned(),
        })?;
        row.kind.land(config, given, Source::Env(var.name));
    }
    Ok(())
}

/// Sets what the flags name; `--ttl CLASS=DURATION` last.
pub(super) fn apply_flags(config: &mut Config, flags: &Flags) -> Result<(), ConfigError> {
    for row in ROWS {
        if let Some((given, name)) = row.from_flags.and_then(|read| read(flags)) {
            row.kind.land(config, given, Source::Flag(name));
        }
    }
    for spec in &flags.ttl {
        let bad = |reason: &str| ConfigError::Value {
            origin: Source::Flag("--ttl").to_string(),
            key: spec.clone(),
            reason: reason.to_owned(),
        };
        let (class, value) = spec
            .split_once('=')
            .ok_or_else(|| bad("must look like CLASS=DURATION, e.g. list=30s"))?;
        let d = parse_duration(value).ok_or_else(|| bad(DURATION_HINT))?;
        let class = TtlClass::ALL
            .into_iter()
            .find(|c| c.name() == class)
            .ok_or_else(|| bad(&unknown_class()))?;
        if let Some(slot) = config.ttl.get_mut(&class) {
            slot.set(d, Source::Flag("--ttl"));
        }
    }
    Ok(())
}

/// The error's reason for a name that is no TTL class.
fn unknown_class() -> String {
    let names: Vec<_> = TtlClass::ALL.iter().map(|c| c.name()).collect();
    format!("names no TTL class; known: {}", names.join(", "))
}
