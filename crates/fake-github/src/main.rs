//! `fake-github [--port N]`: runs the fake GitHub until killed, for demos and manual checks.
//!
//! Prints `listening on 127.0.0.1:PORT` once it accepts connections. Point gh at it with
//! `GH_HOST=github.localhost HTTP_PROXY=http://127.0.0.1:PORT GH_TOKEN=x gh ...`.

use std::io::Write as _;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(value)) => match value.parse() {
                Ok(p) => port = p,
                Err(_) => fail(&format!("--port {value:?} is not a port number")),
            },
            _ => fail("usage: fake-github [--port N]"),
        }
    }
    let server = match fake_github::FakeGithub::start_on(port) {
        Ok(server) => server,
        Err(err) => fail(&format!("cannot listen on 127.0.0.1:{port}: {err}")),
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on 127.0.0.1:{}", server.port());
    let _ = stdout.flush();
    loop {
        std::thread::park();
    }
}

fn fail(line: &str) -> ! {
    eprintln!("fake-github: error: {line}");
    std::process::exit(2);
}
