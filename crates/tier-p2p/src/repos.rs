//! The repositories the swarm asked about lately, as this daemon saw them: what a follow
//! source watches (DESIGN.md, "GitHub's own writes"), and nothing else.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Repositories remembered at once: past this, the one asked about longest ago goes.
const REMEMBERED: usize = 1024;

/// Repositories (`owner/name`, lowercase) and when an answer about each was last fetched or
/// announced here: by this machine, by a peer on a followed scope, or kept for the swarm.
#[derive(Debug, Default)]
pub struct RecentRepos {
    seen: Mutex<HashMap<String, Instant>>,
}

impl RecentRepos {
    /// Notes that `repo` was asked about now; an empty one (an answer that spans repositories)
    /// is not a repository to watch.
    pub fn note(&self, repo: &str) {
        if repo.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= REMEMBERED && !seen.contains_key(repo) {
            if let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(r, _)| r.clone())
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(repo.to_owned(), now);
    }

    /// Those asked about within `within`, most recent first, at most `limit`.
    pub fn within(&self, within: Duration, limit: usize) -> Vec<String> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, at| now.duration_since(*at) <= within);
        let mut repos: Vec<(&String, &Instant)> = seen.iter().collect();
        repos.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        repos
            .into_iter()
            .take(limit)
            .map(|(r, _)| r.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_come_most_recent_first_and_go_when_not_asked_about() {
        let repos = RecentRepos::default();
        repos.note("o/a");
        repos.note("");
        repos.note("o/b");
        assert_eq!(repos.within(Duration::from_secs(60), 10), ["o/b", "o/a"]);
        assert_eq!(repos.within(Duration::from_secs(60), 1), ["o/b"]);
        assert!(repos.within(Duration::ZERO, 10).len() <= 2);
        std::thread::sleep(Duration::from_millis(5));
        assert!(repos.within(Duration::from_millis(1), 10).is_empty());
        for n in 0..REMEMBERED + 5 {
            repos.note(&format!("o/{n}"));
        }
        assert_eq!(
            repos.within(Duration::from_secs(60), usize::MAX).len(),
            REMEMBERED
        );
    }
}
