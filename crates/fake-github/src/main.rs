//! `fake-github [--port N] [LIMIT FLAGS]`: runs the fake GitHub until killed, for demos and
//! manual checks.
//!
//! Prints `listening on 127.0.0.1:PORT` once it accepts connections. Point gh at it with
//! `GH_HOST=github.localhost HTTP_PROXY=http://127.0.0.1:PORT GH_TOKEN=x gh ...`. The limit
//! flags ([`LIMIT_FLAGS`]) set GitHub's rate limits as [`fake_github::Limits`] describes them;
//! without them, the defaults (GitHub's primary limits, no secondary limit).

use std::io::Write as _;
use std::time::Duration;

use fake_github::Limits;

/// Sets one field of [`Limits`] from a flag's value, or says what the value should be.
type Setter = fn(&mut Limits, &str) -> Result<(), String>;

/// The flags that set [`Limits`], one row each: name, value, setter. The usage line is drawn
/// from them.
const LIMIT_FLAGS: &[(&str, &str, Setter)] = &[
    ("--primary", "N", |l, v| {
        l.primary = count(v)?;
        Ok(())
    }),
    ("--job-primary", "N", |l, v| {
        l.job_primary = count(v)?;
        Ok(())
    }),
    ("--window-secs", "S", |l, v| {
        l.window = Duration::from_secs(seconds(v)?);
        Ok(())
    }),
    ("--points-per-minute", "N", |l, v| {
        l.points_per_minute = Some(count(v)?);
        Ok(())
    }),
    ("--concurrent", "N", |l, v| {
        let n = count(v)?;
        l.concurrent = Some(usize::try_from(n).map_err(|_| format!("{v:?} is too large"))?);
        Ok(())
    }),
    ("--content-per-minute", "N", |l, v| {
        l.content_per_minute = Some(count(v)?);
        Ok(())
    }),
    ("--content-per-hour", "N", |l, v| {
        l.content_per_hour = Some(count(v)?);
        Ok(())
    }),
    ("--secondary-status", "403|429", |l, v| {
        l.secondary_status = match v {
            "403" => 403,
            "429" => 429,
            _ => return Err(format!("{v:?} is not 403 or 429")),
        };
        Ok(())
    }),
    ("--retry-after", "S|none", |l, v| {
        l.retry_after = if v == "none" { None } else { Some(count(v)?) };
        Ok(())
    }),
];

fn count(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))
}

fn seconds(value: &str) -> Result<u64, String> {
    match value.parse() {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(format!("{value:?} is not a number of seconds above 0")),
    }
}

fn usage() -> String {
    let flags: Vec<String> = LIMIT_FLAGS
        .iter()
        .map(|(flag, value, _)| format!("[{flag} {value}]"))
        .collect();
    format!("usage: fake-github [--port N] {}", flags.join(" "))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    let mut limits = Limits::default();
    while let Some(arg) = args.next() {
        let value = args.next();
        let Some(value) = value else {
            fail(&usage());
        };
        if arg == "--port" {
            match value.parse() {
                Ok(p) => port = p,
                Err(_) => fail(&format!("--port {value:?} is not a port number")),
            }
            continue;
        }
        let Some((_, _, set)) = LIMIT_FLAGS.iter().find(|(flag, _, _)| *flag == arg) else {
            fail(&usage());
        };
        if let Err(what) = set(&mut limits, &value) {
            fail(&format!("{arg} {what}"));
        }
    }
    let server = match fake_github::FakeGithub::start_on(port) {
        Ok(server) => server,
        Err(err) => fail(&format!("cannot listen on 127.0.0.1:{port}: {err}")),
    };
    server.set_limits(limits);
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
