//! Fetching a read from GitHub for the chain: one request, revalidated when a stale answer is
//! stored, and what GitHub answered judged: stored, passed on, or streamed.
//!
//! GitHub computes a REST ETag over the request's `Authorization` header and the body, so a
//! stored ETag earns a 304 only under the token that obtained it (in GitHub Actions every job
//! has a new token); `If-Modified-Since` earns one whatever the token. So an answer keeps a keyed
//! hash of the token beside its ETag (never the token), and a stale one is revalidated with
//! `If-None-Match` under that token, else with `If-Modified-Since` where GitHub sent a strong
//! `Last-Modified` ([`validator`]).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::{Body as Stored, Entry, Fetched, Manifest, OriginError, Output, Request};
use hyper::body::Bytes;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, DATE,
    ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use hyper::{Method, Response, StatusCode};

use crate::body::{read_up_to, Body, Read};
use crate::budget::{Gate, Next};
use crate::stored;
use crate::upstream::{Route, Upstream};
use ghcache_core::budget::Principal;

/// One read to fetch from GitHub: what gh asked, ready to be sent again.
pub(crate) struct Forward {
    pub upstream: Arc<Upstream>,
    pub route: Route,
    pub method: Method,
    pub path_and_query: String,
    /// gh's request headers, without those of its connection.
    pub headers: HeaderMap,
    /// The request body: empty for REST, the document for GraphQL.
    pub body: Bytes,
    pub graphql: bool,
    /// [`Manifest::token_hash`] of the token gh sent, `None` when it sent none.
    pub token: Option<ghcache_core::TokenHash>,
    /// The largest body that is stored.
    pub max_body: u64,
    /// Where streamed bodies count their bytes.
    pub streamed: Arc<AtomicU64>,
    /// An answer too large to store, streamed to gh: the chain is told it was printed.
    pub handoff: Mutex<Option<Response<Body>>>,
    /// GitHub's rate limits: waited for before sending, told what GitHub answered.
    pub gate: Option<(Arc<Gate>, Principal)>,
}

impl Forward {
    /// The answer that was streamed instead of returned to the chain, if any.
    pub fn take_streamed(&self) -> Option<Response<Body>> {
        self.handoff.lock().ok().and_then(|mut h| h.take())
    }

    fn request(&self, validator: Option<&(HeaderName, HeaderValue)>) -> hyper::Request<Body> {
        let mut request = hyper::Request::new(Body::whole(self.body.clone()));
        *request.method_mut() = self.method.clone();
        if let Ok(uri) = self.path_and_query.parse() {
            *request.uri_mut() = uri;
        }
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        if !self.body.is_empty() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        }
        if let Some((name, value)) = validator {
            headers.insert(name.clone(), value.clone());
        }
        request
    }

    fn io_error(&self, reason: String) -> OriginError {
        OriginError::Io {
            program: self.route.host.clone(),
            reason,
        }
    }
}

/// What to revalidate `prior` with when gh sends the token whose [`Manifest::token_hash`] is
/// `token` (`None`: no token): its ETag under the token that obtained it, else its
/// `Last-Modified`, else nothing (an ETag of another token cannot match). A value that would
/// not make a valid header is not sent.
pub(crate) fn validator(
    prior: &Manifest,
    token: Option<ghcache_core::TokenHash>,
) -> Option<(HeaderName, HeaderValue)> {
    let etag = prior.etag.as_deref().filter(|e| !e.is_empty());
    if let Some(etag) = etag.filter(|_| prior.etag_token == token) {
        if let Ok(value) = HeaderValue::from_str(etag) {
            return Some((IF_NONE_MATCH, value));
        }
    }
    let date = prior.last_modified.as_deref().filter(|d| !d.is_empty())?;
    HeaderValue::from_str(date)
        .ok()
        .map(|value| (IF_MODIFIED_SINCE, value))
}

/// Whether `last_modified` is a strong validator by HTTP's rule (RFC 9110, section 8.8.2.2):
/// the answer's `Date` is at least a second later. Within the second the resource last changed
/// in, it may change again under the same `Last-Modified`, and `If-Modified-Since` would then
/// vouch for an answer that is out of date. GitHub sends both as IMF-fixdate, a fixed-width
/// format in which two times of the same second are the same text.
fn is_strong(last_modified: &str, date: &str) -> bool {
    let fixdate = |d: &str| d.len() == 29 && d.ends_with(" GMT") && d.as_bytes()[3] == b',';
    fixdate(last_modified) && fixdate(date) && last_modified != date
}

/// What `Cache-Control` says about storing an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// `no-store`: not to be kept at all.
    NoStore,
    /// Fresh for at most this long (`max-age`, `no-cache` = 0).
    For(Duration),
    /// Nothing said: the TTL class decides.
    Unsaid,
}

fn freshness(headers: &HeaderMap) -> Freshness {
    let mut said = Freshness::Unsaid;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" {
                return Freshness::NoStore;
            }
            if directive == "no-cache" {
                said = Freshness::For(Duration::ZERO);
            } else if let Some(seconds) = directive.strip_prefix("max-age=") {
                if let Ok(seconds) = seconds.trim_matches('"').parse::<u64>() {
                    if said == Freshness::Unsaid {
                        said = Freshness::For(Duration::from_secs(seconds));
                    }
                }
            }
        }
    }
    said
}

/// Whether GitHub failed (not the request): a stale answer may stand in.
fn is_transient(status: StatusCode, headers: &HeaderMap) -> bool {
    let spent = headers
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && spent)
}

/// Whether a GraphQL answer reports errors (`{"errors": [...]}`, with a 200): it is passed on,
/// never stored. An answer that cannot be read as JSON counts as one.
fn graphql_failed(body: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(top) => top.get("errors").is_some_and(|e| !e.is_null()),
        Err(_) => true,
    }
}

#[async_trait]
impl ghcache_core::Origin for Forward {
    /// Sends the request, conditional when `prior` can be revalidated.
    ///
    /// # Behavior
    /// - A 304 to our own condition is [`Fetched::NotModified`].
    /// - A 200 with a body within the limit, that `Cache-Control` does not forbid to store and
    ///   (GraphQL) that reports no errors, is [`Fetched::Fresh`]: fresh for the request's TTL,
    ///   or less when GitHub's `max-age` says less.
    /// - Any other answer within the limit is [`Fetched::Failed`], passed to gh as it is;
    ///   `transient` when GitHub failed (5xx, the rate limit).
    /// - An answer over the limit is streamed to gh ([`Forward::take_streamed`]) and is
    ///   [`Fetched::Printed`] without an entry.
    ///
    /// # Errors
    /// GitHub could not be reached, or its answer broke off before its end.
    async fn fetch(
        &self,
        request: &Request,
        prior: Option<&Entry>,
    ) -> Result<Fetched, OriginError> {
        let validator = prior
            .filter(|_| !self.graphql)
            .and_then(|p| validator(&p.manifest, self.token));
        let again = || self.request(validator.as_ref());
        let idempotent = self.method == Method::GET || self.method == Method::HEAD || self.graphql;
        let replay: Option<&(dyn Fn() -> hyper::Request<Body> + Send + Sync)> =
            if idempotent { Some(&again) } else { None };
        // A read that a secondary limit refused is sent once more after the pause.
        let mut retried = false;
        let (parts, read) = loop {
            let mut _slot = None;
            if let Some((gate, principal)) = &self.gate {
                gate.before_send(principal).await;
                _slot = gate.slot(principal).await;
            }
            let response = self
                .upstream
                .send(&self.route, again(), replay)
                .await
                .map_err(|e| self.io_error(e.reason))?;
            let (parts, incoming) = response.into_parts();
            if parts.status == StatusCode::NOT_MODIFIED && validator.is_some() {
                if let Some((gate, principal)) = &self.gate {
                    gate.heard(principal, 304, &parts.headers, &[]).await;
                }
                return Ok(Fetched::NotModified);
            }
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let read = if declared.is_some_and(|n| n > self.max_body) {
                // Known to be too large: streamed from its first byte.
                Read::Long(Bytes::new(), incoming)
            } else {
                read_up_to(incoming, self.max_body)
                    .await
                    .map_err(|e| self.io_error(format!("the answer broke off: {e}")))?
            };
            let next = match (&self.gate, &read) {
                (Some((gate, principal)), Read::Whole(bytes)) => {
                    gate.heard(principal, parts.status.as_u16(), &parts.headers, bytes)
                        .await
                }
                (Some((gate, principal)), Read::Long(..)) => {
                    gate.heard(principal, parts.status.as_u16(), &parts.headers, &[])
                        .await
                }
                (None, _) => Next::Pass,
            };
            if next == Next::Retry && !retried {
                retried = true;
                continue;
            }
            break (parts, read);
        };
        let bytes = match read {
            Read::Whole(bytes) => bytes,
            Read::Long(prefix, rest) => {
                let mut response =
                    Response::new(Body::streamed(prefix, rest).counting(self.streamed.clone()));
                *response.status_mut() = parts.status;
                for (name, value) in &parts.headers {
                    if !stored::is_hop_by_hop(name) {
                        response.headers_mut().append(name.clone(), value.clone());
                    }
                }
                if let Ok(mut handoff) = self.handoff.lock() {
                    *handoff = Some(response);
                }
                return Ok(Fetched::Printed {
                    entry: None,
                    output: Output {
                        stdout_printed: true,
                        ..Output::default()
                    },
                });
            }
        };
        let head = stored::encode(parts.status, &parts.headers);
        let freshness = freshness(&parts.headers);
        let encoded = parts
            .headers
            .get(CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes() != b"identity");
        let storable = parts.status == StatusCode::OK
            && freshness != Freshness::NoStore
            && !(self.graphql && (encoded || graphql_failed(&bytes)));
        if !storable {
            return Ok(Fetched::Failed {
                transient: is_transient(parts.status, &parts.headers),
                output: Output {
                    stdout: bytes.to_vec(),
                    stderr: head,
                    exit_code: i32::from(parts.status.as_u16()),
                    stdout_printed: false,
                },
            });
        }
        let ttl = match freshness {
            // A POST's answer has no HTTP freshness: the TTL class alone decides.
            Freshness::For(said) if !self.graphql => request.ttl.min(said),
            _ => request.ttl,
        };
        let header = |name: HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(ETAG).filter(|_| !self.graphql);
        let last_modified = header(LAST_MODIFIED)
            .filter(|modified| header(DATE).is_some_and(|date| is_strong(modified, &date)));
        let mut entry = Entry::new(
            request.key,
            &request.input.scope,
            &request.repo,
            ttl,
            Stored {
                stdout: bytes.to_vec(),
                stderr: head,
            },
            etag.clone(),
        );
        entry.manifest.last_modified = last_modified.filter(|_| !self.graphql);
        entry.manifest.etag_token = etag.and(self.token);
        Ok(Fetched::Fresh(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::{Body as StoredBody, CacheKey};

    fn manifest(etag: Option<&str>, token: Option<&str>, modified: Option<&str>) -> Manifest {
        let mut entry = Entry::new(
            CacheKey([1; 32]),
            "s",
            "o/r",
            Duration::from_secs(60),
            StoredBody::default(),
            etag.map(str::to_owned),
        );
        entry.manifest.etag_token = token.map(Manifest::token_hash);
        entry.manifest.last_modified = modified.map(str::to_owned);
        entry.manifest
    }

    #[test]
    fn the_etag_goes_back_only_under_its_own_token() {
        let date = "Thu, 01 Jan 2026 00:00:00 GMT";
        let same = Some(Manifest::token_hash("a"));
        let other = Some(Manifest::token_hash("b"));
        let name = |m: &Manifest, t| validator(m, t).map(|(n, _)| n);
        let tagged = manifest(Some("W/\"e\""), Some("a"), Some(date));
        assert_eq!(name(&tagged, same), Some(IF_NONE_MATCH));
        assert_eq!(name(&tagged, other), Some(IF_MODIFIED_SINCE));
        assert_eq!(
            name(&manifest(Some("W/\"e\""), Some("a"), None), other),
            None
        );
        // Without a token on either side, the ETag is the anonymous one.
        assert_eq!(
            name(&manifest(Some("\"e\""), None, None), None),
            Some(IF_NONE_MATCH)
        );
        assert_eq!(
            name(&manifest(Some("\"e\r\nX: y\""), Some("a"), None), same),
            None
        );
    }

    #[test]
    fn cache_control_says_how_long_or_not_at_all() {
        let headers = |value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(CACHE_CONTROL, HeaderValue::from_static(value));
            map
        };
        assert_eq!(
            freshness(&headers("private, max-age=60, s-maxage=60")),
            Freshness::For(Duration::from_secs(60))
        );
        assert_eq!(
            freshness(&headers("no-cache")),
            Freshness::For(Duration::ZERO)
        );
        assert_eq!(
            freshness(&headers("max-age=5, no-store")),
            Freshness::NoStore
        );
        assert_eq!(freshness(&HeaderMap::new()), Freshness::Unsaid);
    }

    #[test]
    fn graphql_errors_and_github_failures_are_told_apart() {
        assert!(graphql_failed(
            br#"{"data":null,"errors":[{"message":"x"}]}"#
        ));
        assert!(graphql_failed(b"<html>"));
        assert!(!graphql_failed(br#"{"data":{"viewer":{"login":"a"}}}"#));
        assert!(!graphql_failed(br#"{"data":{},"errors":null}"#));
        let mut spent = HeaderMap::new();
        spent.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        assert!(is_transient(StatusCode::FORBIDDEN, &spent));
        assert!(!is_transient(StatusCode::FORBIDDEN, &HeaderMap::new()));
        assert!(is_transient(StatusCode::BAD_GATEWAY, &HeaderMap::new()));
        assert!(!is_transient(StatusCode::NOT_FOUND, &HeaderMap::new()));
    }

    #[test]
    fn last_modified_within_the_second_of_the_answer_is_weak() {
        let a = "Thu, 01 Jan 2026 00:00:00 GMT";
        let b = "Thu, 01 Jan 2026 00:00:01 GMT";
        assert!(is_strong(a, b));
        assert!(!is_strong(a, a));
        assert!(!is_strong("yesterday", b));
    }
}
