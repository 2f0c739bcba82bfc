//! The way to GitHub over TLS through an `HTTPS_PROXY`: a `CONNECT` tunnel, rustls with the
//! roots the system names (`SSL_CERT_FILE`), the connection kept for the next request.
//!
//! The certificates are made by the `openssl` command, as a system's would be; without it the
//! test says so and passes.

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use ghcache_core::testkit::{skip, MemoryTier};
use ghcache_http::{Config, Level, Scope, Session, Upstream};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UnixStream};

const HOST: &str = "api.github.test";

/// Runs `openssl args` in `dir`; false when openssl is not there.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => false,
    }
}

/// A CA (`ca.pem`) and a certificate for [`HOST`] that it signed (`host.pem`, `host.key`).
fn certificates(dir: &Path) -> bool {
    let san = format!("subjectAltName=DNS:{HOST}");
    let subject = format!("/CN={HOST}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ghcache test CA",
        ],
    ) && openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "host.key", "-out", "host.csr",
            "-subj", &subject, "-addext", &san,
        ],
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "host.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "host.pem",
            "-days",
            "2",
            "-copy_extensions",
            "copy",
        ],
    )
}

/// A TLS server for [`HOST`] that answers every request with its path; its port.
async fn tls_server(dir: &Path) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("host.pem"))
        .unwrap_or_else(|e| panic!("host.pem: {e}"))
        .filter_map(Result::ok)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("host.key"))
        .unwrap_or_else(|e| panic!("host.key: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .unwrap_or_else(|e| panic!("server config: {e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|request: hyper::Request<_>| {
                    let body = format!("over TLS: {}", request.uri());
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

/// A proxy that tunnels every `CONNECT` to `127.0.0.1:to`, and records what it was asked.
async fn connect_proxy(to: u16, asked: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let asked = asked.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let Ok(byte) = client.read_u8().await else {
                        return;
                    };
                    head.push(byte);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                if let Ok(mut asked) = asked.lock() {
                    asked.push(line);
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    port
}

async fn get(socket: &Path, path: &str) -> (u16, String) {
    let stream = UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .uri(path)
        .header("host", HOST)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = sender
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn requests_reach_an_https_host_through_the_proxy_with_the_systems_roots() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    if !certificates(dir.path()) {
        skip(
            "cannot make the test certificates with the openssl command (apt-get install openssl)",
        );
        return;
    }
    // The system's roots are read from here: the test CA alone. Only this test of this binary
    // reads it.
    std::env::set_var("SSL_CERT_FILE", dir.path().join("ca.pem"));
    let server = tls_server(dir.path()).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let proxy = format!(
        "http://127.0.0.1:{}",
        connect_proxy(server, asked.clone()).await
    );
    let upstream = Upstream::from_env(&|name| (name == "HTTPS_PROXY").then(|| proxy.clone()));
    let level = Level::new(Config::new(Scope::Fixed("s".into())), Arc::new(upstream))
        .with_tier(Arc::new(MemoryTier::new("local")));
    let session = Session::start(Arc::new(level), &[dir.path()], None)
        .unwrap_or_else(|e| panic!("session: {e}"));
    // Two reads of the API: the second over the same tunnel.
    assert_eq!(
        get(&session.socket(), "/a").await,
        (200, "over TLS: /a".to_owned())
    );
    assert_eq!(
        get(&session.socket(), "/b").await,
        (200, "over TLS: /b".to_owned())
    );
    let asked = asked.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(
        asked,
        [format!("CONNECT {HOST}:443 HTTP/1.1")],
        "one tunnel, kept for the second request"
    );
    session.finish().await;
}
