//! Writes GitHub tells the daemon of, from outside ghcache: what a webhook delivery or a follow
//! probe says changed becomes an invalidation here and on every scope the daemon follows, as
//! one of this machine's own writes does (DESIGN.md, "GitHub's own writes").

use std::sync::Arc;

use ghcache_core::event::HeardWrite;
use ghcache_core::heard::Cover;
use ghcache_core::{now_ms, Selector};
use tokio::sync::mpsc;

use crate::daemon::Command;
use crate::status::SourceStatus;

/// Reads a source's own counts, by name.
pub type CountsOf = Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// Reads what a source hears now (empty while it is paused): see `ghcache_core::heard`.
pub type CoversOf = Arc<dyn Fn() -> Vec<Cover> + Send + Sync>;

/// A source of GitHub's own writes that the daemon is connected to.
pub struct WriteSource {
    /// What it is, for the log and `daemon status`: `webhook on 127.0.0.1:8090`.
    pub name: String,
    /// The writes it hears.
    pub writes: mpsc::Receiver<HeardWrite>,
    /// Its own counts (deliveries taken, refused, ...), named, for `daemon status` and metrics.
    pub counts: CountsOf,
    /// What it hears now: the writes it tells of, each since when it has heard them without a
    /// pause. This node's commands, and its peers, serve answers longer on its word.
    pub covers: CoversOf,
}

impl std::fmt::Debug for WriteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The sources as the node keeps them: their status, and how to read their counts.
pub(crate) struct Sources {
    sources: Vec<(SourceStatus, CountsOf, CoversOf)>,
}

impl Sources {
    /// Starts forwarding each source's writes to the swarm task as [`Command::HeardWrite`]s.
    pub(crate) fn start(sources: Vec<WriteSource>, commands: &mpsc::Sender<Command>) -> Sources {
        let since_ms = now_ms();
        let sources = sources
            .into_iter()
            .enumerate()
            .map(|(index, mut source)| {
                let commands = commands.clone();
                tokio::spawn(async move {
                    while let Some(write) = source.writes.recv().await {
                        let command = Command::HeardWrite {
                            source: index,
                            write,
                        };
                        if commands.send(command).await.is_err() {
                            return;
                        }
                    }
                });
                let status = SourceStatus {
                    name: source.name,
                    since_ms,
                    ..SourceStatus::default()
                };
                (status, source.counts, source.covers)
            })
            .collect();
        Sources { sources }
    }

    /// Records that source `index` told of a write; its name.
    pub(crate) fn heard(&mut self, index: usize) -> &str {
        match self.sources.get_mut(index) {
            Some((status, ..)) => {
                status.writes += 1;
                status.last_write_ms = Some(now_ms());
                &status.name
            }
            None => "a source of writes",
        }
    }

    /// What the sources hear now, together.
    pub(crate) fn covers(&self) -> Vec<Cover> {
        self.sources
            .iter()
            .flat_map(|(_, _, covers)| covers())
            .collect()
    }

    /// Each source's status now.
    pub(crate) fn status(&self) -> Vec<SourceStatus> {
        self.sources
            .iter()
            .map(|(status, counts, _)| SourceStatus {
                counts: counts()
                    .into_iter()
                    .map(|(name, n)| (name.to_owned(), n))
                    .collect(),
                ..status.clone()
            })
            .collect()
    }
}

/// What `write` makes out of date: each repository's changed classes, or everything when it
/// names no repository.
pub(crate) fn selectors(write: &HeardWrite) -> Vec<Selector> {
    match write.trigger.repos.as_slice() {
        [] => vec![Selector::All],
        repos => repos
            .iter()
            .map(|repo| Selector::of_write(repo, write.trigger.changes))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use ghcache_core::event::Trigger;
    use ghcache_core::policy::{Changes, Resource, Resources};

    use super::*;

    fn write(repos: &[&str], changes: Changes) -> HeardWrite {
        HeardWrite {
            trigger: Trigger {
                repos: repos.iter().map(|r| r.to_string()).collect(),
                changes,
                at_ms: None,
            },
            what: "push delivery 1".into(),
        }
    }

    #[test]
    fn a_heard_write_drops_what_it_changed_of_each_repository_or_everything() {
        let two = selectors(&write(&["o/r", "fork/r"], Changes::Repository));
        assert_eq!(
            two,
            [
                Selector::Repo("o/r".into()),
                Selector::Repo("fork/r".into())
            ]
        );
        let issues = Resources::of(&[Resource::Issues]);
        assert_eq!(
            selectors(&write(&["o/r"], Changes::Resources(issues))),
            [Selector::Resources {
                repo: "o/r".into(),
                resources: issues
            }]
        );
        assert_eq!(selectors(&write(&[], Changes::Repository)), [Selector::All]);
    }
}
