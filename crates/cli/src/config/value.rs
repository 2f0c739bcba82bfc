//! The text forms of settings: what a duration, a size or a switch may be written as in the
//! file and the environment, and how `ghcache config` shows a duration back.
//!
//! The hints are the second half of an error line (`` `max_size` must be a size ... ``): each
//! names a form that parses, so the line says what to write instead.

use std::time::Duration;

pub(super) const DURATION_HINT: &str =
    "must be a duration like 90s, 10m, 1h or a number of seconds";
pub(super) const SIZE_HINT: &str = "must be a size like \"512MiB\" or a number of bytes";
pub(super) const COUNT_HINT: &str = "must be a whole number, 0 or more";
pub(super) const BOOL_HINT: &str = "must be true or false";
pub(super) const STRING_HINT: &str = "must be a string (in quotes)";
pub(super) const LIST_HINT: &str = "must be a list of strings";
/// The environment's switches are written as numbers, where the file's are TOML booleans.
pub(super) const SWITCH_HINT: &str = "must be 0 or 1";

/// A switch in the environment: `1`, `true`, `yes`, `on` or their opposites; blank is off.
pub(super) fn bool_text(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// A duration in the file: a number of seconds, or a string that [`parse_duration`] reads.
pub(super) fn duration_value(v: &toml::Value) -> Option<Duration> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok().map(Duration::from_secs),
        toml::Value::String(s) => parse_duration(s),
        _ => None,
    }
}

/// A size in the file: a number of bytes, or a string that [`parse_size`] reads.
pub(super) fn size_value(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse_size(s),
        _ => None,
    }
}

/// A list of strings in the file; `None` when anything in it is not a string.
pub(super) fn strings_value(v: &toml::Value) -> Option<Vec<String>> {
    v.as_array().and_then(|items| {
        items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    })
}

/// `90`, `90s`, `10m`, `1h`, `2d`, `500ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "" | "s" | "sec" | "secs" => n.checked_mul(1000)?,
        "ms" => n,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// `1048576`, `512MiB`, `1GiB`, `100MB`, `64k`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Human form of a duration for `ghcache config`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
