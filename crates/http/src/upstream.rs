//! The way to GitHub: HTTP/1.1 over TLS (rustls, the system's roots), through the proxy the
//! environment names, with connections kept for the next request.
//!
//! Hosts are reached as gh reaches them: `localhost` and `*.localhost` over plain HTTP (a local
//! GitHub, such as the tests' fake one), everything else over TLS. The request's `Host` header
//! names the host; a port in it is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, HOST, PROXY_AUTHORIZATION};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::body::Body;
use crate::proxy::{self, Proxies};

/// How long a connection to GitHub or the proxy may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle connections kept per host: gh asks a few things at once at most.
const IDLE_PER_HOST: usize = 4;

/// Where requests go: GitHub, through the environment's proxy.
pub struct Upstream {
    proxies: Proxies,
    tls: OnceLock<Result<tokio_rustls::TlsConnector, String>>,
    idle: Mutex<HashMap<Route, Vec<SendRequest<Body>>>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

/// An answer to [`Upstream::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its status code.
    pub status: u16,
    /// Its headers, names lowercase (those whose value is not text are left out).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Fetched {
    /// The value of header `name` (lowercase), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One host as a connection reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Route {
    /// `https` or `http`.
    pub tls: bool,
    /// Host name or address, lowercase.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Route {
    /// The route to the host that a request's `Host` header names (`host` or `host:port`).
    pub fn of_host_header(value: &str) -> Option<Route> {
        let value = value.trim().to_ascii_lowercase();
        let uri: hyper::http::uri::Authority = value.parse().ok()?;
        let host = uri.host().to_owned();
        if host.is_empty() {
            return None;
        }
        let bare = host.trim_end_matches('.');
        let local = bare == "localhost" || bare.ends_with(".localhost");
        Some(Route {
            tls: !local,
            port: uri.port_u16().unwrap_or(if local { 80 } else { 443 }),
            host,
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Why a request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {reason}")]
pub(crate) struct SendError {
    /// The host asked.
    pub host: String,
    /// What failed.
    pub reason: String,
}

/// Anything a connection to GitHub can run over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Upstream {
    /// The way to GitHub that gh would take in the environment `env` (its proxy variables).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Upstream {
        Upstream {
            proxies: Proxies::from_env(env),
            tls: OnceLock::new(),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// GETs `url` and returns its body if the answer is a 200 of at most `max` bytes, for the
    /// few documents ghcache reads itself (an OIDC issuer's discovery document and key set).
    ///
    /// # Errors
    /// One line: a URL that is not `https://` (or `http://` to a loopback host, such as the
    /// tests' fake issuer), a host that cannot be reached, another status, a larger body.
    pub async fn get(&self, url: &str, max: usize) -> Result<Vec<u8>, String> {
        let answer = self.fetch(url, &[], max).await?;
        if answer.status != 200 {
            return Err(format!("{url}: answered {}", answer.status));
        }
        Ok(answer.body)
    }

    /// GETs `url` with `headers` (`Authorization`, `If-None-Match`, ...) and returns the answer
    /// whatever its status, its body cut to at most `max` bytes: for the requests the daemon
    /// makes itself (follow probes, which GitHub answers with a free 304 while nothing changed).
    ///
    /// # Errors
    /// One line: a URL that is not `https://` (or `http://` to a loopback host, or a
    /// `*.localhost` one, as gh reaches a local GitHub), a host that cannot be reached, a body
    /// that breaks off or is larger.
    pub async fn fetch(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        max: usize,
    ) -> Result<Fetched, String> {
        use http_body_util::BodyExt as _;
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if loopback => false,
            _ => {
                return Err(format!(
                    "{url}: only https (or http to this machine) is used"
                ))
            }
        };
        let route = Route {
            tls,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            host,
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let authority = uri.authority().map_or("", |a| a.as_str()).to_owned();
        let mut request = Request::get(path)
            .header(HOST, authority)
            .header(hyper::header::USER_AGENT, "ghcache");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Body::empty())
            .map_err(|e| format!("{url}: {e}"))?;
        let response = self
            .send(&route, request, None)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let body = http_body_util::Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Fetched {
            status,
            headers,
            body: body.to_bytes().to_vec(),
        })
    }

    /// Sends `request` (origin-form URI, `Host` header set) to the host of `route`.
    ///
    /// # Behavior
    /// A kept connection is used when one is free; a request that fails on one before any of
    /// its answer came (the server closed it meanwhile) is sent again on a new connection when
    /// it has no body or a whole one, which can be sent twice.
    ///
    /// # Errors
    /// The host or the proxy cannot be reached, TLS fails, or the connection breaks before the
    /// answer's head.
    pub(crate) async fn send(
        &self,
        route: &Route,
        request: Request<Body>,
        again: Option<&(dyn Fn() -> Request<Body> + Send + Sync)>,
    ) -> Result<Response<Incoming>, SendError> {
        let fail = |reason: String| SendError {
            host: route.host.clone(),
            reason,
        };
        let via = self
            .proxies
            .via(route.scheme(), &route.host, route.port)
            .map_err(fail)?;
        let request = self.prepare(route, via.as_ref(), request);
        if let Some(mut sender) = self.take_idle(route) {
            match sender.send_request(request).await {
                Ok(response) => {
                    self.keep(route, sender);
                    return Ok(response);
                }
                Err(err) => match again {
                    Some(again) if err.is_canceled() || err.is_incomplete_message() => {
                        let request = self.prepare(route, via.as_ref(), again());
                        return self.send_new(route, via.as_ref(), request).await;
                    }
                    _ => return Err(fail(err.to_string())),
                },
            }
        }
        self.send_new(route, via.as_ref(), request).await
    }

    async fn send_new(
        &self,
        route: &Route,
        via: Option<&proxy::Via>,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        let fail = |reason: String| SendError {
            host: route.host.clone(),
            reason,
        };
        let mut sender = self.connect(route, via).await.map_err(fail)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        self.keep(route, sender);
        Ok(response)
    }

    /// The request as the connection of `route` takes it: absolute-form through a plain HTTP
    /// proxy, with the proxy's credentials.
    fn prepare(
        &self,
        route: &Route,
        via: Option<&proxy::Via>,
        mut request: Request<Body>,
    ) -> Request<Body> {
        if let (Some(via), false) = (via, route.tls) {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let authority = match route.port {
                80 => route.host.clone(),
                port => format!("{}:{port}", route.host),
            };
            if let Ok(uri) = format!("http://{authority}{path}").parse() {
                *request.uri_mut() = uri;
            }
            if let Some(auth) = &via.auth {
                request
                    .headers_mut()
                    .insert(PROXY_AUTHORIZATION, auth.clone());
            }
        }
        if !request.headers().contains_key(HOST) {
            if let Ok(host) = HeaderValue::from_str(&route.host) {
                request.headers_mut().insert(HOST, host);
            }
        }
        request
    }

    /// A free kept connection to `route`, if there is one; closed ones are dropped, busy ones
    /// (an answer still being read) kept.
    fn take_idle(&self, route: &Route) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().ok()?;
        let senders = idle.get_mut(route)?;
        senders.retain(|s| !s.is_closed());
        let free = senders.iter().position(SendRequest::is_ready)?;
        Some(senders.swap_remove(free))
    }

    fn keep(&self, route: &Route, sender: SendRequest<Body>) {
        if let Ok(mut idle) = self.idle.lock() {
            let senders = idle.entry(route.clone()).or_default();
            senders.retain(|s| !s.is_closed());
            // Past the bound, the connection ends once its answer has been read.
            if senders.len() < IDLE_PER_HOST {
                senders.push(sender);
            }
        }
    }

    async fn connect(
        &self,
        route: &Route,
        via: Option<&proxy::Via>,
    ) -> Result<SendRequest<Body>, String> {
        let (host, port) = match via {
            Some(via) => (via.host.as_str(), via.port),
            None => (route.host.as_str(), route.port),
        };
        let host_only = host.trim_start_matches('[').trim_end_matches(']');
        let mut tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host_only, port)))
            .await
            .map_err(|_| format!("no connection to {host}:{port} within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if route.tls {
            if let Some(via) = via {
                proxy::tunnel(&mut tcp, &route.host, route.port, via.auth.as_ref()).await?;
            }
            let connector = self.tls()?;
            let name = rustls::pki_types::ServerName::try_from(route.host.clone())
                .map_err(|e| format!("not a host name for TLS: {e}"))?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
        // The connection runs beside the requests; it ends when its last sender is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sender.ready().await.map_err(|e| e.to_string())?;
        Ok(sender)
    }

    /// The TLS client, made on first use: reading the system's roots costs milliseconds that a
    /// gh run which reaches no `https://` host (a local GitHub) need not spend.
    fn tls(&self) -> Result<tokio_rustls::TlsConnector, String> {
        self.tls.get_or_init(tls_connector).clone()
    }
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "no trusted root certificates found on this system (install ca-certificates, or \
             set SSL_CERT_FILE)"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_plain_http_and_the_rest_tls() {
        let route = |h| Route::of_host_header(h).map(|r| (r.tls, r.host, r.port));
        assert_eq!(
            route("api.github.localhost"),
            Some((false, "api.github.localhost".into(), 80))
        );
        assert_eq!(
            route("localhost:8080"),
            Some((false, "localhost".into(), 8080))
        );
        assert_eq!(
            route("API.GitHub.com"),
            Some((true, "api.github.com".into(), 443))
        );
        assert_eq!(
            route("ghe.example.com:8443"),
            Some((true, "ghe.example.com".into(), 8443))
        );
        assert_eq!(route(""), None);
        assert_eq!(route("a b"), None);
    }
}
