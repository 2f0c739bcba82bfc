//! The receiver as GitHub and an attacker meet it: real TCP connections, raw HTTP/1.1.

use std::sync::Arc;
use std::time::Duration;

use ghcache_core::event::HeardWrite;
use ghcache_core::policy::{Changes, Resource};
use ghcache_webhook::{Receiver, Secret};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const SECRET: &str = "s3cret-of-the-webhook";

struct Endpoint {
    addr: std::net::SocketAddr,
    receiver: Arc<Receiver>,
    heard: mpsc::Receiver<HeardWrite>,
}

async fn endpoint() -> Result<Endpoint> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (sink, heard) = mpsc::channel(8);
    let receiver = Receiver::new(Secret::from_text(SECRET)?, sink);
    tokio::spawn(receiver.clone().serve(listener));
    Ok(Endpoint {
        addr,
        receiver,
        heard,
    })
}

/// Sends a request with `headers` and `body`, and returns the status code and the answer's text.
async fn post(
    addr: std::net::SocketAddr,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!(
        "POST /hook HTTP/1.1\r\nhost: keeper\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Result<(u16, String)> {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    Ok((status, text))
}

fn delivery(
    event: &str,
    id: &str,
    body: &[u8],
    secret: &str,
) -> Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", "GitHub-Hookshot/044aadd".to_owned()),
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", id.to_owned()),
        ("x-hub-signature-256", Secret::from_text(secret)?.sign(body)),
    ])
}

const EDITED: &[u8] = br#"{"action":"edited","number":7,"pull_request":{"number":7,"updated_at":"2026-12-07T12:00:00Z","head":{"repo":{"full_name":"fork/R"}}},"repository":{"full_name":"O/R"}}"#;

#[tokio::test]
async fn a_signed_delivery_is_handed_on_once_and_its_replay_ignored() -> Result {
    let mut end = endpoint().await?;
    let headers = delivery(
        "pull_request",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        EDITED,
        SECRET,
    )?;
    let (status, text) = post(end.addr, &headers, EDITED).await?;
    assert_eq!(status, 202, "{text}");
    let heard = end.heard.try_recv()?;
    assert_eq!(heard.trigger.repos, ["o/r", "fork/r"]);
    let Changes::Resources(resources) = heard.trigger.changes else {
        return Err("a pull request changes known resources".into());
    };
    assert!(resources.contains(Resource::PullRequests));
    assert_eq!(
        heard.trigger.at_ms,
        ghcache_core::event::rfc3339_ms("2026-12-07T12:00:00Z")
    );
    assert!(
        heard.what.contains("pull_request delivery 72d3162e"),
        "{}",
        heard.what
    );

    let (status, text) = post(end.addr, &headers, EDITED).await?;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("taken before"), "{text}");
    assert!(end.heard.try_recv().is_err(), "a replay is not handed on");
    let counts = end.receiver.counts();
    assert_eq!((counts.deliveries, counts.replayed), (1, 1));
    Ok(())
}

#[tokio::test]
async fn a_missing_or_wrong_signature_gets_401_and_hands_nothing_on() -> Result {
    let mut end = endpoint().await?;
    let wrong = delivery("pull_request", "a", EDITED, "another secret")?;
    let (status, text) = post(end.addr, &wrong, EDITED).await?;
    assert_eq!(status, 401, "{text}");
    let mut missing = delivery("pull_request", "b", EDITED, SECRET)?;
    missing.retain(|(name, _)| *name != "x-hub-signature-256");
    assert_eq!(post(end.addr, &missing, EDITED).await?.0, 401);
    // Signed for another body: the signature covers every byte.
    let other = delivery("pull_request", "c", b"{}", SECRET)?;
    assert_eq!(post(end.addr, &other, EDITED).await?.0, 401);
    assert!(end.heard.try_recv().is_err());
    assert_eq!(end.receiver.counts().bad_signatures, 3);
    // A refused id is not remembered: GitHub's own delivery of it is still taken.
    let right = delivery("pull_request", "a", EDITED, SECRET)?;
    assert_eq!(post(end.addr, &right, EDITED).await?.0, 202);
    assert!(end.heard.try_recv().is_ok());
    Ok(())
}

#[tokio::test]
async fn a_body_declared_over_25_mb_is_refused_before_it_is_sent() -> Result {
    let end = endpoint().await?;
    let mut stream = TcpStream::connect(end.addr).await?;
    let head = format!(
        "POST /hook HTTP/1.1\r\nhost: keeper\r\ncontent-type: application/json\r\n\
         x-github-event: push\r\nx-github-delivery: big\r\nx-hub-signature-256: sha256=00\r\n\
         content-length: {}\r\n\r\n",
        25 * 1024 * 1024 + 1
    );
    stream.write_all(head.as_bytes()).await?;
    // Not a byte of the body is sent: the answer comes from the head alone.
    let (status, text) = read_answer(&mut stream).await?;
    assert_eq!(status, 413, "{text}");
    assert_eq!(end.receiver.counts().oversized, 1);
    Ok(())
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_at_25_mb() -> Result {
    let end = endpoint().await?;
    let mut stream = TcpStream::connect(end.addr).await?;
    let head = "POST /hook HTTP/1.1\r\nhost: keeper\r\ncontent-type: application/json\r\n\
                x-github-event: push\r\nx-github-delivery: big\r\nx-hub-signature-256: sha256=00\r\n\
                transfer-encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b' '; 1 << 20];
    let mut sent = 0u64;
    // 40 MB offered; the receiver stops reading past 25 MB and answers, and the writes fail.
    while sent < 40 << 20 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
        sent += chunk.len() as u64;
    }
    let (status, text) = read_answer(&mut stream).await?;
    assert_eq!(status, 413, "{text}");
    assert_eq!(end.receiver.counts().oversized, 1);
    Ok(())
}

#[tokio::test]
async fn pings_other_methods_and_bodies_that_are_not_json() -> Result {
    let mut end = endpoint().await?;
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let (status, text) = post(end.addr, &delivery("ping", "p", ping, SECRET)?, ping).await?;
    assert_eq!(
        (status, text.trim_end().ends_with("pong")),
        (200, true),
        "{text}"
    );

    let mut stream = TcpStream::connect(end.addr).await?;
    stream
        .write_all(b"GET /hook HTTP/1.1\r\nhost: keeper\r\nconnection: close\r\n\r\n")
        .await?;
    assert_eq!(read_answer(&mut stream).await?.0, 405);

    let form = b"payload=%7B%7D";
    let mut headers = delivery("push", "f", form, SECRET)?;
    headers[0].1 = "application/x-www-form-urlencoded".into();
    let (status, text) = post(end.addr, &headers, form).await?;
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("application/json"), "{text}");

    let unnamed = delivery("push", "u", b"{}", SECRET)?;
    let unnamed: Vec<_> = unnamed
        .into_iter()
        .filter(|(n, _)| *n != "x-github-event")
        .collect();
    assert_eq!(post(end.addr, &unnamed, b"{}").await?.0, 400);
    assert!(end.heard.try_recv().is_err());
    let counts = end.receiver.counts();
    assert_eq!(
        (counts.pings, counts.malformed, counts.deliveries),
        (1, 3, 0)
    );
    Ok(())
}

#[tokio::test]
async fn a_delivery_the_daemon_cannot_take_is_503_and_can_be_redelivered() -> Result {
    let end = endpoint().await?;
    let Endpoint {
        addr,
        receiver,
        heard,
    } = end;
    drop(heard);
    let headers = delivery(
        "issues",
        "gone",
        b"{\"repository\":{\"full_name\":\"o/r\"}}",
        SECRET,
    )?;
    let body = b"{\"repository\":{\"full_name\":\"o/r\"}}";
    assert_eq!(post(addr, &headers, body).await?.0, 503);
    // Still not taken the second time, not "taken before".
    let (status, text) = post(addr, &headers, body).await?;
    assert_eq!(status, 503, "{text}");
    assert_eq!(receiver.counts().replayed, 0);
    Ok(())
}
