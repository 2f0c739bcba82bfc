//! `ghcache config`'s lines and the README's settings table, drawn from the table's rows.

use std::time::Duration;

use super::effective::{Config, Source, SwarmKeySource};
use super::table::{Kind, ROWS};
use super::value::show_duration;

/// A value as `ghcache config` shows it.
pub enum Shown {
    /// Shown as it is.
    Text(String),
    /// A number of bytes, which the listing writes in binary units.
    Size(u64),
}

/// One line of `ghcache config`.
pub struct Line {
    /// The setting's name: `max_size`, `ttl.list`, `p2p.deadline`.
    pub key: &'static str,
    /// Its value.
    pub value: Shown,
    /// Where the value came from: `default`, `file PATH`, `env NAME`, `flag NAME`.
    pub source: String,
}

impl Kind {
    /// The value as `ghcache config` shows it, and where it came from; `None` for a TTL class
    /// the configuration does not hold.
    fn show<'c>(&self, config: &'c Config) -> Option<(Shown, &'c Source)> {
        let quoted = |d: Duration| Shown::Text(format!("\"{}\"", show_duration(d)));
        Some(match self {
            Kind::Switch(place) => {
                let s = (place.read)(config);
                (Shown::Text(s.value.to_string()), &s.source)
            }
            Kind::Auto(place, unset) => {
                let s = (place.read)(config);
                let text = s.value.map_or((*unset).to_owned(), |b| b.to_string());
                (Shown::Text(text), &s.source)
            }
            Kind::Size(place, _) => {
                let s = (place.read)(config);
                (Shown::Size(s.value), &s.source)
            }
            Kind::Duration(place) => {
                let s = (place.read)(config);
                (quoted(s.value), &s.source)
            }
            Kind::Count(place) => {
                let s = (place.read)(config);
                (Shown::Text(s.value.to_string()), &s.source)
            }
            Kind::Ttl(class) => {
                let s = config.ttl.get(class)?;
                (quoted(s.value), &s.source)
            }
            Kind::HeardTtl(class) => {
                let s = config.heard_ttl.get(class)?;
                (quoted(s.value), &s.source)
            }
            Kind::Path(place) => {
                let s = (place.read)(config);
                let text = format!("{:?}", s.value.display().to_string());
                (Shown::Text(text), &s.source)
            }
            Kind::Program(place) => {
                let s = (place.read)(config);
                (
                    Shown::Text(format!("{:?}", s.value.to_string_lossy())),
                    &s.source,
                )
            }
            Kind::Text(place) => {
                let s = (place.read)(config);
                (Shown::Text(format!("{:?}", s.value)), &s.source)
            }
            Kind::Optional(place, unset) => {
                let s = (place.read)(config);
                let text = s
                    .value
                    .as_ref()
                    .map_or((*unset).to_owned(), |v| format!("{v:?}"));
                (Shown::Text(text), &s.source)
            }
            Kind::List(place) => {
                let s = (place.read)(config);
                (Shown::Text(format!("{:?}", s.value)), &s.source)
            }
            Kind::Key(_) => {
                let s = &config.p2p.swarm_key;
                let text = match &s.value {
                    None => "none".to_owned(),
                    // Never print the key itself: it is the swarm's only secret.
                    Some(SwarmKeySource::Text(_)) => "(set; hidden)".to_owned(),
                    Some(SwarmKeySource::File(path)) => format!("{:?}", path.display().to_string()),
                };
                (Shown::Text(text), &s.source)
            }
        })
    }
}

/// `ghcache config`'s lines: the listed rows, each with its value and where it came from.
pub(super) fn listing(config: &Config) -> Vec<Line> {
    ROWS.iter()
        .filter(|row| row.listed)
        .filter_map(|row| {
            let (shown, source) = row.kind.show(config)?;
            let value = row.show.map_or(shown, |show| Shown::Text(show(config)));
            let source = match (&row.kind, row.env) {
                // A class's line names its variable too (`ttl.repo_view` is set by
                // GH_CACHE_TTL_REPO_VIEW), as it always has.
                (Kind::Ttl(_) | Kind::HeardTtl(_), Some(var)) => {
                    format!("{source} (env {})", var.name)
                }
                _ => source.to_string(),
            };
            Some(Line {
                key: row.key,
                value,
                source,
            })
        })
        .collect()
}

/// The README's settings table, drawn from the rows (a test compares the two).
#[cfg(test)]
pub(super) fn markdown() -> String {
    let code = |text: &str| {
        if text.is_empty() {
            String::new()
        } else {
            format!("`{text}`")
        }
    };
    let mut out = String::from(
        "| file key | environment | flag | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for row in ROWS {
        let file = match row.file.map(|key| key.split_once('.').unwrap_or(("", key))) {
            None => String::new(),
            Some(("", name)) => code(name),
            Some((section, name)) => format!("`[{section}] {name}`"),
        };
        let env = code(row.env.map_or("", |v| v.name));
        out.push('|');
        for cell in [file.as_str(), &env, row.flags, row.default, row.doc] {
            // An empty cell is `| |`, as Markdown tables are usually written by hand.
            if !cell.is_empty() {
                out.push(' ');
                out.push_str(cell);
            }
            out.push_str(" |");
        }
        out.push('\n');
    }
    out
}
