//! The origin against a scripted stand-in for gh: what it runs, what it stores, what it reports.
//!
//! The script prints what gh 2.23 prints in each case: for `api -i` the status line (`\n`), the
//! headers (`\r\n`, names coloured on a forced terminal) and a blank `\r\n` line; on an HTTP
//! error the JSON body on stdout and `gh: <message> (HTTP <code>)` on stderr; for a 304
//! `gh: HTTP 304` and exit 1. Every call is appended to `calls.log` next to the script.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghcache_core::{Entry, Fetched, KeyInput, Manifest, Origin as _, Output, OutputMode, Request};
use ghcache_tier_gh::{Config, Origin, Sink};

const SCRIPT: &str = r#"#!/bin/sh
here=$(dirname "$0")
printf '%s\n' "$*" >> "$here/calls.log"
current=$(cat "$here/etag" 2>/dev/null || printf '"v1"')
modified=$(cat "$here/modified" 2>/dev/null)
date=$(cat "$here/date" 2>/dev/null || printf 'Tue, 01 Dec 2026 05:44:06 GMT')
include=0; inm=""; ims=""; prev=""
for a in "$@"; do
  [ "$a" = "-i" ] && include=1
  if [ "$prev" = "-H" ]; then
    case "$a" in
      If-None-Match:*) inm="${a#If-None-Match: }" ;;
      If-Modified-Since:*) ims="${a#If-Modified-Since: }" ;;
    esac
  fi
  prev="$a"
done
head() {
  [ $include = 1 ] || return 0
  printf 'HTTP/2.0 %s\n' "$1"
  if [ -n "$GH_FORCE_TTY" ]; then
    printf '\033[1;34mContent-Type\033[m: application/json\r\n'
    [ -n "$2" ] && printf '\033[1;34mEtag\033[m: %s\r\n' "$2"
  else
    printf 'Content-Type: application/json\r\n'
    [ -n "$2" ] && printf 'Etag: %s\r\n' "$2"
  fi
  if [ -n "$modified" ]; then
    printf 'Date: %s\r\nLast-Modified: %s\r\n' "$date" "$modified"
  fi
  printf '\r\n'
}
case " $* " in
  *" e404 "*) head "404 Not Found" ""; printf '{"message":"Not Found"}'
    echo "gh: Not Found (HTTP 404)" >&2; exit 1 ;;
  *" e502 "*) head "502 Bad Gateway" ""; printf '{"message":"Server Error"}'
    echo "gh: Server Error (HTTP 502)" >&2; exit 1 ;;
  *" e503 "*) head "503 Service Unavailable" ""; printf '<html>down</html>'
    echo "gh: HTTP 503" >&2; exit 1 ;;
  *" rate "*) head "403 Forbidden" ""; printf '{"message":"API rate limit exceeded"}'
    echo "gh: API rate limit exceeded for 1.2.3.4. (HTTP 403)" >&2; exit 1 ;;
  *" e429 "*) echo "gh: Too Many Requests (HTTP 429)" >&2; exit 1 ;;
  *" graphql-502 "*) echo "HTTP 502: Server Error (https://api.github.com/graphql)" >&2; exit 1 ;;
  *" offline "*) printf 'error connecting to api.github.com\ncheck your internet connection or https://githubstatus.com\n' >&2; exit 1 ;;
  *" refused "*) echo 'Post "https://api.github.com/graphql": dial tcp 127.0.0.1:9: connect: connection refused' >&2; exit 1 ;;
  *" always-304 "*) head "304 Not Modified" "$current"; echo "gh: HTTP 304" >&2; exit 1 ;;
  *" garbled "*) [ $include = 1 ] && printf 'HTTP/2.0 200 OK\nnot a header\n\n'
    printf 'plain body\n'; exit 0 ;;
  *" exit-3 "*) echo "some checks failed"; echo "X build" >&2; exit 3 ;;
  *" --paginate "*)
    head "200 OK" '"p1"'; printf '[1]'; [ $include = 1 ] && printf '\n'
    head "200 OK" '"p2"'; printf '[2]'; exit 0 ;;
esac
if { [ -n "$inm" ] && [ "$inm" = "$current" ]; } || { [ -n "$ims" ] && [ "$ims" = "$modified" ]; }; then
  head "304 Not Modified" "$current"
  echo "gh: HTTP 304" >&2
  exit 1
fi
head "200 OK" "$current"
echo "args: $*"
echo "tty=${GH_FORCE_TTY:-none} pager=${GH_PAGER:-unset}"
echo "a notice" >&2
"#;

/// A directory holding the scripted gh.
struct FakeGh {
    dir: tempfile::TempDir,
}

impl FakeGh {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("gh");
        std::fs::write(&path, SCRIPT).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        FakeGh { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("gh")
    }

    /// Makes the resource's current ETag `etag`, as if it changed on GitHub.
    fn set_etag(&self, etag: &str) {
        std::fs::write(self.dir.path().join("etag"), etag).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Makes the resource send `Last-Modified: <date>` (and a `Date`), as a single resource
    /// on GitHub does.
    fn set_modified(&self, date: &str) {
        std::fs::write(self.dir.path().join("modified"), date).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Makes the answers' `Date` header `date`.
    fn set_date(&self, date: &str) {
        std::fs::write(self.dir.path().join("date"), date).unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`FakeGh::fetch`] by an origin that knows gh sends `token`.
    fn fetch_as(&self, token: &str, request: &Request, prior: Option<&Entry>) -> Fetched {
        let config = Config::new(self.path().into()).with_token(Manifest::token_hash(token));
        run(Origin::new(config), request, prior)
    }

    /// The argument lists gh was run with, one per call.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn fetch(&self, request: &Request, prior: Option<&Entry>) -> Fetched {
        fetch_with(&self.path(), request, prior)
    }
}

fn fetch_with(gh: &Path, request: &Request, prior: Option<&Entry>) -> Fetched {
    run(Origin::new(Config::new(gh.into())), request, prior)
}

fn run(origin: Origin, request: &Request, prior: Option<&Entry>) -> Fetched {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(origin.fetch(request, prior))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn request(argv: &str, output: OutputMode, revalidate: bool) -> Request {
    let argv: Vec<String> = argv.split_whitespace().map(str::to_owned).collect();
    let input = KeyInput {
        host: "github.com".into(),
        scope: "anonymous".into(),
        repo: "o/r".into(),
        argv: argv.clone(),
        output,
    };
    let mut request = Request::new(argv, input, "o/r".into(), Duration::from_secs(60));
    request.revalidate = revalidate;
    request
}

fn api(argv: &str) -> Request {
    request(argv, OutputMode::Pipe, true)
}

fn fresh(fetched: Fetched) -> Entry {
    match fetched {
        Fetched::Fresh(entry) => entry,
        other => panic!("expected a fresh entry, got {other:?}"),
    }
}

fn failed(fetched: Fetched) -> (Output, bool) {
    match fetched {
        Fetched::Failed { output, transient } => (output, transient),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn pipe_mode_runs_gh_as_given_and_stores_both_streams() {
    let gh = FakeGh::new();
    let entry = fresh(gh.fetch(&request("pr list", OutputMode::Pipe, false), None));
    assert_eq!(
        text(&entry.body.stdout),
        "args: pr list\ntty=none pager=unset\n"
    );
    assert_eq!(entry.body.stderr, b"a notice\n");
    assert_eq!(entry.manifest.exit_code, 0);
    assert_eq!(entry.manifest.repo, "o/r");
    assert_eq!(entry.manifest.ttl_ms, 60_000);
    assert_eq!(entry.manifest.etag, None);
    assert!(entry.verify_body());
    assert_eq!(gh.calls(), ["pr list"]);
}

#[test]
fn terminal_mode_forces_gh_s_tty_output_without_its_pager() {
    let gh = FakeGh::new();
    let entry = fresh(gh.fetch(
        &request("pr list", OutputMode::Tty { width: 123 }, false),
        None,
    ));
    assert!(text(&entry.body.stdout).contains("tty=123 pager=cat"));
}

#[test]
fn etag_is_recorded_and_the_header_block_is_not_stored() {
    let gh = FakeGh::new();
    let entry = fresh(gh.fetch(&api("api repos/o/r --jq .name"), None));
    assert_eq!(entry.manifest.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        text(&entry.body.stdout),
        "args: api -i repos/o/r --jq .name\ntty=none pager=unset\n"
    );
    assert_eq!(entry.body.stderr, b"a notice\n");
}

#[test]
fn coloured_headers_on_a_terminal_are_stripped_too() {
    let gh = FakeGh::new();
    let entry = fresh(gh.fetch(
        &request("api repos/o/r", OutputMode::Tty { width: 90 }, true),
        None,
    ));
    assert_eq!(entry.manifest.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        text(&entry.body.stdout),
        "args: api -i repos/o/r\ntty=90 pager=cat\n"
    );
}

#[test]
fn a_user_include_keeps_the_headers() {
    let gh = FakeGh::new();
    let entry = fresh(gh.fetch(&api("api -i repos/o/r"), None));
    let stdout = text(&entry.body.stdout);
    assert!(
        stdout.starts_with("HTTP/2.0 200 OK\nContent-Type: application/json\r\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("args: api -i repos/o/r\n"),
        "-i is not added twice: {stdout}"
    );
    assert_eq!(entry.manifest.etag.as_deref(), Some("\"v1\""));
}

#[test]
fn a_matching_etag_is_not_modified() {
    let gh = FakeGh::new();
    let request = api("api -X GET repos/o/r");
    let prior = fresh(gh.fetch(&request, None));
    assert_eq!(gh.fetch(&request, Some(&prior)), Fetched::NotModified);
    assert_eq!(
        gh.calls(),
        [
            "api -i -X GET repos/o/r",
            "api -i -H If-None-Match: \"v1\" -X GET repos/o/r"
        ]
    );
}

#[test]
fn a_changed_resource_is_fetched_again_with_its_new_etag() {
    let gh = FakeGh::new();
    let request = api("api repos/o/r");
    let prior = fresh(gh.fetch(&request, None));
    gh.set_etag("W/\"v2\"");
    let entry = fresh(gh.fetch(&request, Some(&prior)));
    assert_eq!(entry.manifest.etag.as_deref(), Some("W/\"v2\""));
    assert!(text(&entry.body.stdout).starts_with("args: api -i -H If-None-Match: \"v1\""));
}

const MODIFIED: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

#[test]
fn the_etag_s_token_and_last_modified_are_recorded() {
    let gh = FakeGh::new();
    gh.set_modified(MODIFIED);
    let entry = fresh(gh.fetch_as("job one", &api("api repos/o/r"), None));
    assert_eq!(entry.manifest.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        entry.manifest.etag_token,
        Some(Manifest::token_hash("job one"))
    );
    assert_eq!(entry.manifest.last_modified.as_deref(), Some(MODIFIED));
    assert_eq!(
        text(&entry.body.stdout),
        "args: api -i repos/o/r\ntty=none pager=unset\n",
        "no header of theirs is stored"
    );
    // Without a known token, the ETag is recorded for no token.
    let entry = fresh(gh.fetch(&api("api repos/o/r"), None));
    assert_eq!(entry.manifest.etag_token, None);
}

#[test]
fn a_last_modified_of_the_second_it_was_fetched_in_is_not_kept() {
    let gh = FakeGh::new();
    gh.set_modified(MODIFIED);
    gh.set_date(MODIFIED);
    let entry = fresh(gh.fetch_as("job one", &api("api repos/o/r"), None));
    assert_eq!(entry.manifest.last_modified, None);
    assert_eq!(entry.manifest.etag.as_deref(), Some("\"v1\""));
}

#[test]
fn the_same_token_sends_the_etag() {
    let gh = FakeGh::new();
    gh.set_modified(MODIFIED);
    let request = api("api repos/o/r");
    let prior = fresh(gh.fetch_as("job one", &request, None));
    assert_eq!(
        gh.fetch_as("job one", &request, Some(&prior)),
        Fetched::NotModified
    );
    assert_eq!(
        gh.calls().last().map(String::as_str),
        Some("api -i -H If-None-Match: \"v1\" repos/o/r")
    );
}

#[test]
fn another_token_sends_if_modified_since() {
    let gh = FakeGh::new();
    gh.set_modified(MODIFIED);
    let request = api("api repos/o/r");
    let prior = fresh(gh.fetch_as("job one", &request, None));
    assert_eq!(
        gh.fetch_as("job two", &request, Some(&prior)),
        Fetched::NotModified
    );
    assert_eq!(
        gh.calls().last().map(String::as_str),
        Some(format!("api -i -H If-Modified-Since: {MODIFIED} repos/o/r").as_str())
    );
    // Changed since: the new answer, with the new token's ETag.
    gh.set_modified("Thu, 01 Jan 2026 00:00:05 GMT");
    gh.set_etag("W/\"v2\"");
    let entry = fresh(gh.fetch_as("job two", &request, Some(&prior)));
    assert_eq!(
        (entry.manifest.etag.as_deref(), entry.manifest.etag_token),
        (Some("W/\"v2\""), Some(Manifest::token_hash("job two")))
    );
}

#[test]
fn another_token_without_last_modified_asks_without_a_condition() {
    let gh = FakeGh::new();
    let request = api("api repos/o/r");
    let prior = fresh(gh.fetch_as("job one", &request, None));
    fresh(gh.fetch_as("job two", &request, Some(&prior)));
    assert_eq!(gh.calls(), ["api -i repos/o/r", "api -i repos/o/r"]);
}

#[test]
fn a_304_without_our_if_none_match_is_a_failure() {
    let gh = FakeGh::new();
    // No prior entry, so no If-None-Match was sent: the 304 is not ours to interpret.
    let (output, transient) = failed(gh.fetch(&api("api always-304"), None));
    assert_eq!((output.exit_code, transient), (1, false));
    assert_eq!(output.stdout, b"", "our header block is stripped");
    assert_eq!(output.stderr, b"gh: HTTP 304\n");
    // Nor when the request is not a revalidating one, even with a prior entry.
    let prior = fresh(gh.fetch(&api("api repos/o/r"), None));
    let plain = request("api always-304", OutputMode::Pipe, false);
    let (output, _) = failed(gh.fetch(&plain, Some(&prior)));
    assert_eq!(output.stderr, b"gh: HTTP 304\n");
    assert_eq!(
        gh.calls().last().map(String::as_str),
        Some("api always-304")
    );
}

#[test]
fn a_prior_without_etag_sends_no_condition() {
    let gh = FakeGh::new();
    let prior = fresh(gh.fetch(&request("api repos/o/r", OutputMode::Pipe, false), None));
    assert_eq!(prior.manifest.etag, None);
    fresh(gh.fetch(&api("api repos/o/r"), Some(&prior)));
    assert_eq!(gh.calls(), ["api repos/o/r", "api -i repos/o/r"]);
}

#[test]
fn paginated_calls_are_run_as_given_and_store_no_etag() {
    let gh = FakeGh::new();
    let prior = fresh(gh.fetch(&api("api repos/o/r"), None));
    let entry = fresh(gh.fetch(&api("api --paginate repos/o/r/issues"), Some(&prior)));
    assert_eq!(entry.body.stdout, b"[1][2]");
    assert_eq!(entry.manifest.etag, None);
    assert_eq!(
        gh.calls().last().map(String::as_str),
        Some("api --paginate repos/o/r/issues")
    );
}

#[test]
fn unreadable_headers_make_gh_run_again_without_them() {
    let gh = FakeGh::new();
    let entry = fresh(gh.fetch(&api("api garbled"), None));
    assert_eq!(entry.body.stdout, b"plain body\n");
    assert_eq!(entry.manifest.etag, None);
    assert_eq!(gh.calls(), ["api -i garbled", "api garbled"]);
}

#[test]
fn http_errors_print_what_plain_gh_prints() {
    let gh = FakeGh::new();
    let (output, transient) = failed(gh.fetch(&api("api e404"), None));
    assert_eq!(output.exit_code, 1);
    assert_eq!(output.stdout, br#"{"message":"Not Found"}"#);
    assert_eq!(output.stderr, b"gh: Not Found (HTTP 404)\n");
    assert!(!transient);
}

#[test]
fn github_failures_are_transient_and_request_failures_are_not() {
    let gh = FakeGh::new();
    for (argv, revalidate) in [
        ("api e502", true),
        ("api e503", true),
        ("api rate", true),
        ("api e429", true),
        ("pr list graphql-502", false),
        ("pr list offline", false),
        ("pr list refused", false),
    ] {
        let (output, transient) =
            failed(gh.fetch(&request(argv, OutputMode::Pipe, revalidate), None));
        assert!(transient, "{argv}: {}", text(&output.stderr));
        assert_eq!(output.exit_code, 1);
    }
    let (output, transient) =
        failed(gh.fetch(&request("pr checks exit-3", OutputMode::Pipe, false), None));
    assert!(!transient);
    assert_eq!(
        output,
        Output {
            stdout: b"some checks failed\n".to_vec(),
            stderr: b"X build\n".to_vec(),
            exit_code: 3,
            stdout_printed: false,
        }
    );
}

#[test]
fn a_missing_gh_is_a_spawn_error_that_names_it() {
    let err = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(
            Origin::new(Config::new(OsString::from("/nonexistent/gh-for-test")))
                .fetch(&request("pr list", OutputMode::Pipe, false), None),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("/nonexistent/gh-for-test") && err.contains("GH_CACHE_GH"),
        "{err}"
    );
}

#[test]
fn large_outputs_on_both_streams_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("gh");
    // Far more than a pipe buffer on each stream, written alternately.
    let script = "#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do\n  echo \"out line $i padded to make it longer than a pipe buffer overall\"\n  echo \"err line $i padded to make it longer than a pipe buffer overall\" >&2\n  i=$((i+1))\ndone\n";
    std::fs::write(&path, script).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let entry = fresh(fetch_with(
        &path,
        &request("pr list", OutputMode::Pipe, false),
        None,
    ));
    assert_eq!(text(&entry.body.stdout).lines().count(), 2000);
    assert_eq!(text(&entry.body.stderr).lines().count(), 2000);
}

/// An origin that prints gh's stdout into a file, through a pager that copies it there.
struct Printing {
    gh: FakeGh,
    printed: PathBuf,
    origin: Origin,
}

impl Printing {
    fn new(max_entry_size: u64) -> Self {
        let gh = FakeGh::new();
        let printed = gh.dir.path().join("printed");
        let sink = Sink::Pager(format!("cat > '{}'", printed.display()));
        let config = Config::new(gh.path().into())
            .printing_to(sink)
            .with_max_entry_size(max_entry_size);
        Printing {
            gh,
            printed,
            origin: Origin::new(config),
        }
    }

    fn fetch(&self, request: &Request, prior: Option<&Entry>) -> Fetched {
        let _ = std::fs::remove_file(&self.printed);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(self.origin.fetch(request, prior))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// What reached the pager; `None` when no pager was started.
    fn printed(&self) -> Option<String> {
        std::fs::read(&self.printed).ok().map(|b| text(&b))
    }
}

fn printed(fetched: Fetched) -> (Option<Entry>, Output) {
    match fetched {
        Fetched::Printed { entry, output } => (entry, output),
        other => panic!("expected a printed answer, got {other:?}"),
    }
}

#[test]
fn printing_stores_exactly_what_was_printed_and_leaves_stderr_to_the_caller() {
    let printing = Printing::new(Config::DEFAULT_MAX_ENTRY_SIZE);
    let (entry, output) = printed(printing.fetch(&api("api repos/o/r"), None));
    let entry = entry.unwrap_or_else(|| panic!("stored"));
    let expected = "args: api -i repos/o/r\ntty=none pager=unset\n";
    assert_eq!(
        printing.printed().as_deref(),
        Some(expected),
        "no header block"
    );
    assert_eq!(text(&entry.body.stdout), expected);
    assert_eq!(entry.manifest.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        output,
        Output {
            stdout: Vec::new(),
            stderr: b"a notice\n".to_vec(),
            exit_code: 0,
            stdout_printed: true,
        }
    );
}

#[test]
fn an_answer_over_the_largest_entry_is_printed_and_not_stored() {
    let printing = Printing::new(10);
    let (entry, output) = printed(printing.fetch(&api("api repos/o/r"), None));
    assert!(entry.is_none());
    assert_eq!(
        printing.printed().as_deref(),
        Some("args: api -i repos/o/r\ntty=none pager=unset\n")
    );
    assert_eq!(output.stderr, b"a notice\n");
}

#[test]
fn a_failure_of_github_is_held_back_so_a_stale_answer_can_stand_in() {
    let printing = Printing::new(Config::DEFAULT_MAX_ENTRY_SIZE);
    let (output, transient) = failed(printing.fetch(&api("api e502"), None));
    assert!(transient);
    assert_eq!(
        printing.printed(),
        None,
        "nothing printed, no pager started"
    );
    assert!(!output.stdout_printed);
    assert_eq!(
        output.stdout, br#"{"message":"Server Error"}"#,
        "for the caller"
    );
    let (output, transient) = failed(printing.fetch(&api("api e404"), None));
    assert!(!transient);
    assert_eq!(output.stdout, br#"{"message":"Not Found"}"#);
}

#[test]
fn a_304_prints_nothing() {
    let printing = Printing::new(Config::DEFAULT_MAX_ENTRY_SIZE);
    let request = api("api repos/o/r");
    let (prior, _) = printed(printing.fetch(&request, None));
    let prior = prior.unwrap_or_else(|| panic!("stored"));
    assert_eq!(printing.fetch(&request, Some(&prior)), Fetched::NotModified);
    assert_eq!(printing.printed(), None);
}

#[test]
fn a_failure_after_printing_began_is_passed_through() {
    let printing = Printing::new(Config::DEFAULT_MAX_ENTRY_SIZE);
    let (output, transient) =
        failed(printing.fetch(&request("pr checks exit-3", OutputMode::Pipe, false), None));
    assert!(!transient);
    assert_eq!(printing.printed().as_deref(), Some("some checks failed\n"));
    assert_eq!(
        (output.stdout, output.stdout_printed, output.exit_code),
        (Vec::new(), true, 3)
    );
}

#[test]
fn unreadable_headers_are_not_printed_and_the_second_run_is() {
    let printing = Printing::new(Config::DEFAULT_MAX_ENTRY_SIZE);
    let (entry, _) = printed(printing.fetch(&api("api garbled"), None));
    assert_eq!(printing.printed().as_deref(), Some("plain body\n"));
    assert_eq!(entry.map(|e| e.body.stdout), Some(b"plain body\n".to_vec()));
    assert_eq!(printing.gh.calls(), ["api -i garbled", "api garbled"]);
}
