//! The `fake-github` binary's limit flags: they set the limits it enforces, and a bad value is
//! one line of error.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_fake-github");

/// The binary started with `args`, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on a free port with `args`; it and its port.
fn start(args: &[&str]) -> (Running, u16) {
    let child = Command::new(BINARY)
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut running = Running(child);
    let mut line = String::new();
    if let Some(stdout) = running.0.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let port = line
        .trim_end()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port announced: {line:?}"));
    (running, port)
}

/// `GET /repos/o/r` under token `t`: status and head (lowercase).
fn get(port: u16) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let request = "GET /repos/o/r HTTP/1.1\r\nHost: api.github.localhost\r\n\
                   Authorization: token t\r\nConnection: close\r\n\r\n";
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("{e}"));
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase())
}

fn refused(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_limit_flags_set_the_limits_it_enforces() {
    let (_running, port) = start(&[
        "--primary",
        "1",
        "--window-secs",
        "600",
        "--secondary-status",
        "429",
        "--retry-after",
        "none",
    ]);
    let (status, head) = get(port);
    assert_eq!(status, 200);
    assert!(head.contains("x-ratelimit-limit: 1\r\n"), "{head}");
    let (status, head) = get(port);
    assert_eq!(status, 403, "the primary limit of 1 is spent");
    assert!(head.contains("x-ratelimit-remaining: 0\r\n"), "{head}");

    let (_running, port) = start(&["--points-per-minute", "1", "--retry-after", "3"]);
    assert_eq!(get(port).0, 200);
    let (status, head) = get(port);
    assert_eq!(
        status, 403,
        "a secondary limit, answered with 403 by default"
    );
    assert!(head.contains("retry-after: 3\r\n"), "{head}");
}

#[test]
fn a_bad_limit_is_one_line_of_error() {
    for (args, says) in [
        (
            &["--secondary-status", "500"][..],
            "--secondary-status \"500\" is not 403 or 429",
        ),
        (
            &["--primary", "many"],
            "--primary \"many\" is not a whole number",
        ),
        (
            &["--window-secs", "0"],
            "--window-secs \"0\" is not a number of seconds above 0",
        ),
        (&["--retry-after", "soon"], "--retry-after \"soon\""),
        (
            &["--concurrent"],
            "usage: fake-github [--port N] [--primary N]",
        ),
        (&["--bursts", "3"], "[--retry-after S|none]"),
    ] {
        let out = refused(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("fake-github: error: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
}
