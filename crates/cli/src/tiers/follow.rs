//! `ghcache daemon --follow`: the daemon watches the repositories the swarm asked about lately
//! with conditional requests (see the `ghcache-follow` crate), and each change it finds is
//! dropped here and on every peer, as a webhook delivery's write is.

use std::sync::Arc;

use ghcache_follow::Follower;
use ghcache_tier_p2p as p2p;

use crate::config::Config;
use crate::error::Failure;

/// Changes found and not yet applied by the swarm task.
const WAITING_CHANGES: usize = 64;

/// The follow source the settings ask for, probing; `None` when following is off. Writes down
/// in `recent` what the swarm asks about, for it to follow.
///
/// # Errors
/// [`Failure::Usage`] when no token is set for the probes.
pub(super) fn source(
    config: &Config,
    recent: &Arc<p2p::RecentRepos>,
) -> Result<Option<p2p::WriteSource>, Failure> {
    if !config.p2p.follow.value {
        return Ok(None);
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let token = env("GH_TOKEN")
        .or_else(|| env("GITHUB_TOKEN"))
        .ok_or_else(|| {
            Failure::Usage(
            "--follow probes GitHub with the daemon's own token: set GH_TOKEN (or GITHUB_TOKEN)"
                .to_owned(),
        )
        })?;
    let every = config.p2p.follow_every.value;
    if every.is_zero() {
        return Err(Failure::Usage(
            "follow_every must be longer than 0; e.g. 1m or 30s".to_owned(),
        ));
    }
    let follow = ghcache_follow::Config {
        api: ghcache_follow::api_base(&env("GH_HOST").unwrap_or_default()),
        token,
        every,
    };
    // The proxy gh would take, as the HTTP level reaches GitHub.
    let upstream = ghcache_http::Upstream::from_env(&|name| std::env::var(name).ok());
    let repos = recent.clone();
    let (sink, writes) = tokio::sync::mpsc::channel(WAITING_CHANGES);
    let follower = Follower::new(
        follow,
        upstream,
        Arc::new(move |within, limit| repos.within(within, limit)),
        sink,
    );
    tokio::spawn(follower.clone().run());
    eprintln!(
        "ghcache daemon: following the repositories peers asked about in the last hour, every {} s",
        every.as_secs_f64()
    );
    let counting = follower.clone();
    let counts = Arc::new(move || counting.counts().named().to_vec());
    let covers = Arc::new(move || follower.covers());
    Ok(Some(p2p::WriteSource {
        name: format!("follow every {}", humane(every)),
        writes,
        counts,
        covers,
    }))
}

/// `60s`, `1.5s`: the interval as the log and status show it.
fn humane(every: std::time::Duration) -> String {
    let secs = every.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}s")
    } else {
        format!("{secs}s")
    }
}
