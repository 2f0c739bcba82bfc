//! The HTTP level against the fake GitHub: requests sent into the socket as gh sends them, the
//! fake GitHub's request log for what reached GitHub.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fake_github::FakeGithub;
use ghcache_core::policy::Resource;
use ghcache_core::testkit::{MemoryFence, MemoryTier};
use ghcache_core::{CacheTier, Selector};
use ghcache_http::{Config, Invalidate, Level, Scope, Session, Upstream};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use tokio::net::UnixStream;

const TOKEN: &str = "ghp_fake0123456789";

/// What gh got back.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    headers: hyper::HeaderMap,
}

/// Sends one request into the socket, as gh does: origin-form, `Host: api.github.localhost`.
async fn send(socket: &Path, method: &str, path: &str, body: &str) -> Answer {
    let stream = UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "api.github.localhost")
        .header("authorization", format!("token {TOKEN}"))
        .header("accept", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("body: {e}"))
        .to_bytes()
        .to_vec();
    Answer {
        status,
        body,
        headers,
    }
}

/// A write's invalidation as the CLI makes it: the tier drops, the fence moves.
struct Drops {
    tier: Arc<MemoryTier>,
    fence: Arc<MemoryFence>,
    seen: std::sync::Mutex<Vec<Selector>>,
}

#[async_trait]
impl Invalidate for Drops {
    async fn invalidate(&self, selector: &Selector) {
        let _ = self.tier.invalidate(selector).await;
        if let Selector::Resources { repo, .. } | Selector::Repo(repo) = selector {
            self.fence.move_for(repo);
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(selector.clone());
        }
    }
}

struct Setup {
    github: FakeGithub,
    tier: Arc<MemoryTier>,
    fence: Arc<MemoryFence>,
    drops: Arc<Drops>,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let github = FakeGithub::start().unwrap_or_else(|e| panic!("fake GitHub: {e}"));
        let tier = Arc::new(MemoryTier::new("local"));
        let fence = Arc::new(MemoryFence::default());
        let drops = Arc::new(Drops {
            tier: tier.clone(),
            fence: fence.clone(),
            seen: std::sync::Mutex::new(Vec::new()),
        });
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        Setup {
            github,
            tier,
            fence,
            drops,
            dir,
        }
    }

    /// A session whose level has `config` tweaked by `change`.
    fn session(&self, change: impl FnOnce(&mut Config)) -> Session {
        let proxy = self.github.proxy_url();
        let upstream = Upstream::from_env(&|name| (name == "HTTP_PROXY").then(|| proxy.clone()));
        let mut config = Config::new(Scope::Fixed("user:octocat".into()));
        change(&mut config);
        let level = Level::new(config, Arc::new(upstream))
            .with_tier(self.tier.clone())
            .with_fence(self.fence.clone())
            .with_invalidate(self.drops.clone());
        Session::start(Arc::new(level), &[self.dir.path()], None)
            .unwrap_or_else(|e| panic!("session: {e}"))
    }

    fn statuses(&self) -> Vec<u16> {
        self.github.requests().iter().map(|r| r.status).collect()
    }
}

#[tokio::test]
async fn a_fresh_answer_is_served_from_the_tier_and_a_stale_one_revalidated() {
    let setup = Setup::new();
    let session = setup.session(|_| {});
    let first = send(&session.socket(), "GET", "/repos/o/r", "").await;
    assert_eq!(first.status, 200);
    let again = send(&session.socket(), "GET", "/repos/o/r", "").await;
    assert_eq!(again.body, first.body);
    assert_eq!(setup.statuses(), [200], "the repeat sent nothing");
    let counts = session.finish().await;
    assert_eq!((counts.misses, counts.hits_of("local")), (1, 1));

    let stale = setup.session(|config| config.rest_ttl = Duration::ZERO);
    let revalidated = send(&stale.socket(), "GET", "/repos/o/r", "").await;
    assert_eq!((revalidated.status, revalidated.body), (200, first.body));
    assert_eq!(setup.statuses(), [200, 304], "only a 304");
    assert_eq!(stale.finish().await.revalidated, 1);
}

#[tokio::test]
async fn reads_of_a_write_command_are_revalidated_never_served_on_their_ttl() {
    let setup = Setup::new();
    let reader = setup.session(|_| {});
    let first = send(&reader.socket(), "GET", "/repos/o/r", "").await;
    reader.finish().await;
    // gh of a write command reads before it writes (labels, then set them): it must see
    // GitHub as it is, though the stored answer is well within its TTL.
    let writer = setup.session(|config| config.fresh_only = true);
    let read = send(&writer.socket(), "GET", "/repos/o/r", "").await;
    assert_eq!((read.status, read.body), (200, first.body));
    assert_eq!(setup.statuses(), [200, 304], "revalidated, a free 304");
    let graphql = r#"{"query":"query { viewer { login } }"}"#;
    send(&writer.socket(), "POST", "/graphql", graphql).await;
    send(&writer.socket(), "POST", "/graphql", graphql).await;
    assert_eq!(
        setup.statuses(),
        [200, 304, 200, 200],
        "a GraphQL query has no ETag: fetched each time"
    );
    assert_eq!(writer.finish().await.hits_of("local"), 0);
}

#[tokio::test]
async fn a_write_passes_through_and_drops_what_it_changes() {
    let setup = Setup::new();
    let session = setup.session(|_| {});
    let listed = send(&session.socket(), "GET", "/repos/o/r/issues", "").await;
    send(&session.socket(), "GET", "/repos/o/r/releases", "").await;
    assert_eq!(setup.tier.len(), 2);
    let created = send(
        &session.socket(),
        "POST",
        "/repos/o/r/issues",
        r#"{"title":"Written through the socket"}"#,
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(setup.tier.len(), 1, "the releases stay");
    let relisted = send(&session.socket(), "GET", "/repos/o/r/issues", "").await;
    assert_ne!(relisted.body, listed.body);
    assert!(String::from_utf8_lossy(&relisted.body).contains("Written through the socket"));
    let seen = setup
        .drops
        .seen
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    assert!(
        matches!(&seen[..], [Selector::Resources { repo, resources }] if repo == "o/r" && resources.contains(Resource::Issues)),
        "{seen:?}"
    );
    assert_eq!(session.finish().await.writes, 1);
}

#[tokio::test]
async fn errors_are_passed_on_and_never_stored() {
    let setup = Setup::new();
    let session = setup.session(|_| {});
    for _ in 0..2 {
        let missing = send(&session.socket(), "GET", "/repos/o/r/nothing/here", "").await;
        assert_eq!(missing.status, 404);
    }
    assert_eq!(setup.statuses(), [404, 404]);
    setup
        .github
        .set_fault(Some(fake_github::Fault::RateLimited));
    let limited = send(&session.socket(), "GET", "/repos/o/r", "").await;
    assert_eq!(limited.status, 403);
    setup.github.set_fault(None);
    assert!(setup.tier.is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_are_streamed_and_not_stored() {
    let setup = Setup::new();
    let session = setup.session(|config| config.max_body = 64);
    let first = send(&session.socket(), "GET", "/repos/o/r/issues", "").await;
    assert_eq!(first.status, 200);
    assert!(first.body.len() > 64);
    let again = send(&session.socket(), "GET", "/repos/o/r/issues", "").await;
    assert_eq!(again.body, first.body);
    assert_eq!(setup.statuses(), [200, 200], "nothing stored, asked twice");
    assert!(setup.tier.is_empty());
    let counts = session.finish().await;
    assert!(
        counts.streamed_bytes >= 2 * first.body.len() as u64,
        "{counts:?}"
    );
}

#[tokio::test]
async fn graphql_queries_are_stored_and_mutations_drop_them() {
    let setup = Setup::new();
    let session = setup.session(|config| config.context_repo = Some("o/r".into()));
    let query = r#"{"query":"query IssueList($owner: String!, $repo: String!) { repository(owner: $owner, name: $repo) { issues(first: 10, states: [OPEN]) { totalCount nodes { number title } } } }","variables":{"owner":"o","repo":"r"}}"#;
    let first = send(&session.socket(), "POST", "/graphql", query).await;
    assert_eq!(first.status, 200);
    let again = send(&session.socket(), "POST", "/graphql", query).await;
    assert_eq!(again.body, first.body);
    assert_eq!(setup.github.request_count(), 1, "the repeat sent nothing");
    let mutation = r#"{"query":"mutation IssueCreate($input: CreateIssueInput!) { createIssue(input: $input) { issue { number } } }","variables":{"input":{"repositoryId":"R_o/r","title":"By mutation"}}}"#;
    let created = send(&session.socket(), "POST", "/graphql", mutation).await;
    assert_eq!(created.status, 200);
    let after = send(&session.socket(), "POST", "/graphql", query).await;
    assert!(String::from_utf8_lossy(&after.body).contains("By mutation"));
    assert_eq!(setup.github.request_count(), 3);
}

#[tokio::test]
async fn pages_keep_their_link_headers() {
    let setup = Setup::new();
    for n in 0..40 {
        setup.github.add_issue("o/r", &format!("issue {n}"));
    }
    let session = setup.session(|_| {});
    let first = send(
        &session.socket(),
        "GET",
        "/repos/o/r/issues?per_page=30",
        "",
    )
    .await;
    let link = first.headers.get("link").cloned();
    assert!(link.is_some());
    let again = send(
        &session.socket(),
        "GET",
        "/repos/o/r/issues?per_page=30",
        "",
    )
    .await;
    assert_eq!(again.headers.get("link").cloned(), link);
    assert_eq!(setup.github.request_count(), 1);
}
