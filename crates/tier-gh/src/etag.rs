//! Revalidation of `gh api` GETs: which validator to send, argv rewriting, and `gh api -i`
//! header blocks.
//!
//! gh 2.23 prints, for `gh api -i`, the status line ending in `\n`, then one `Name: value\r\n`
//! line per header (names coloured on a terminal), then `\r\n`, then the body. With `--paginate`
//! it prints one such block per page, and a `\n` between pages that plain `gh api` does not print.
//! An ETag of the first page says nothing about the later pages, so paginated calls are not
//! revalidated at all (see [`Plan::of`]); the parser only ever reads the first block.
//!
//! GitHub computes a REST ETag over the request's `Authorization` header and the body, so an
//! ETag earns a 304 only under the token that obtained it (in GitHub Actions every job has a new
//! token); `If-Modified-Since` earns one whatever the token. [`validator`] picks between them.

use ghcache_core::{Manifest, TokenHash};

/// `gh api` flags that take a value, so the word after them is that value and not a flag.
const VALUE_FLAGS: [&str; 15] = [
    "-F",
    "--field",
    "-H",
    "--header",
    "-f",
    "--raw-field",
    "-q",
    "--jq",
    "-X",
    "--method",
    "-p",
    "--preview",
    "-t",
    "--template",
    "--input",
];

/// Value-taking flags without a shorthand, also spelled `--flag value`.
const LONG_VALUE_FLAGS: [&str; 2] = ["--hostname", "--cache"];

/// What a stale entry is revalidated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validator<'a> {
    /// `If-None-Match: <etag>`: a 304 only under the token that obtained the ETag.
    IfNoneMatch(&'a str),
    /// `If-Modified-Since: <Last-Modified>`: a 304 whatever the token.
    IfModifiedSince(&'a str),
}

impl Validator<'_> {
    /// The request header, or `None` when the value would break it (a CR or LF could smuggle
    /// another header into gh's request).
    fn header(self) -> Option<String> {
        let (name, value) = match self {
            Validator::IfNoneMatch(etag) => ("If-None-Match", etag),
            Validator::IfModifiedSince(date) => ("If-Modified-Since", date),
        };
        (!value.is_empty() && !value.contains(['\r', '\n'])).then(|| format!("{name}: {value}"))
    }
}

/// What to revalidate `prior` with when gh will send the token whose
/// [`Manifest::token_hash`] is `token` (`None`: it cannot be known without running gh).
///
/// - The ETag, when it was obtained with this very token: the exact check.
/// - Else `Last-Modified` as `If-Modified-Since`, which GitHub honours whatever the token.
/// - Else, when the token is not known, the ETag all the same: it may well be the same token
///   (a keyring login's token lasts), and one that is not costs a charged answer, as an
///   unconditional request would; it is never wrong, since GitHub answers 304 only when the
///   ETag matches.
/// - Else nothing: an ETag of another token cannot match.
pub(crate) fn validator<'a>(
    prior: &'a Manifest,
    token: Option<&TokenHash>,
) -> Option<Validator<'a>> {
    let etag = prior.etag.as_deref().filter(|e| !e.is_empty());
    let same_token = token.is_some() && prior.etag_token.as_ref() == token;
    if let Some(etag) = etag.filter(|_| same_token) {
        return Some(Validator::IfNoneMatch(etag));
    }
    if let Some(date) = prior.last_modified.as_deref().filter(|d| !d.is_empty()) {
        return Some(Validator::IfModifiedSince(date));
    }
    etag.filter(|_| token.is_none()).map(Validator::IfNoneMatch)
}

/// Whether `last_modified` is a strong validator by HTTP's rule (RFC 9110, section 8.8.2.2):
/// the answer's `Date` is at least a second later. Within the second the resource last changed
/// in, it may change again under the same `Last-Modified`, and `If-Modified-Since` would then
/// vouch for an answer that is out of date; such a `Last-Modified` is not kept.
///
/// GitHub sends both as IMF-fixdate (`Tue, 01 Dec 2026 05:44:06 GMT`), a fixed-width format in
/// which two times of the same second are the same text, and a `Last-Modified` is never later
/// than the `Date`: so two such dates that differ are a second apart or more.
pub(crate) fn is_strong(last_modified: &str, date: &str) -> bool {
    let fixdate = |d: &str| d.len() == 29 && d.ends_with(" GMT") && d.as_bytes()[3] == b',';
    fixdate(last_modified) && fixdate(date) && last_modified != date
}

/// What the origin changes in a `gh api` GET to revalidate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The argv to run.
    pub argv: Vec<String>,
    /// `-i` was added by us: the header block is ours to strip from stdout.
    pub added_include: bool,
    /// gh prints a header block (ours or the user's): read the validators from it.
    pub reads_head: bool,
    /// A validator of ours was sent: a 304 means the prior entry is still right.
    pub conditional: bool,
}

impl Plan {
    /// The run that leaves `argv` untouched.
    pub fn plain(argv: &[String]) -> Self {
        Plan {
            argv: argv.to_vec(),
            added_include: false,
            reads_head: false,
            conditional: false,
        }
    }

    /// The run for a `gh api` GET: `-i` unless the user asked for headers, and the
    /// `validator`'s header when there is one (see [`validator`]). Flags go right after `api`,
    /// where gh accepts them whatever follows (`-X GET`, `--jq`, the endpoint, `--`).
    ///
    /// Left untouched: argv that is not `gh api`; `--paginate` (one ETag per page, and the first
    /// page's does not vouch for the others); argv with the user's own `If-None-Match` or
    /// `If-Modified-Since` (a 304 is then the user's answer, not ours).
    pub fn of(argv: &[String], validator: Option<Validator<'_>>) -> Self {
        let Some(api) = api_position(argv) else {
            return Plan::plain(argv);
        };
        let flags = Flags::of(&argv[api + 1..]);
        if flags.paginate || flags.conditional {
            return Plan::plain(argv);
        }
        let header = validator.and_then(Validator::header);
        let mut out = Vec::with_capacity(argv.len() + 3);
        out.extend_from_slice(&argv[..=api]);
        if !flags.include {
            out.push("-i".to_owned());
        }
        let conditional = header.is_some();
        if let Some(header) = header {
            out.push("-H".to_owned());
            out.push(header);
        }
        out.extend_from_slice(&argv[api + 1..]);
        Plan {
            argv: out,
            added_include: !flags.include,
            reads_head: true,
            conditional,
        }
    }
}

/// Where `api` sits in gh's argv, if this is a `gh api` call.
fn api_position(argv: &[String]) -> Option<usize> {
    argv.iter()
        .position(|a| !a.starts_with('-'))
        .filter(|&i| argv[i] == "api")
}

/// The `gh api` flags that change what the origin may do.
#[derive(Debug, Default, PartialEq, Eq)]
struct Flags {
    include: bool,
    paginate: bool,
    /// The user sends a header that can make GitHub answer 304.
    conditional: bool,
}

impl Flags {
    /// Reads the flags as gh's flag parser (pflag) would: the last of a repeated boolean wins,
    /// a value flag consumes the next word, `-iX GET` groups shorthands, `--` ends flags.
    fn of(args: &[String]) -> Self {
        let mut flags = Flags::default();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            if word == "--" {
                break;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                let long_flag = format!("--{name}");
                match name {
                    "include" => flags.include = value.is_none_or(parse_bool),
                    "paginate" => flags.paginate = value.is_none_or(parse_bool),
                    "header" => {
                        let header = value.or_else(|| words.next().map(String::as_str));
                        flags.conditional |= header.is_some_and(is_conditional);
                    }
                    _ if value.is_none()
                        && (VALUE_FLAGS.contains(&long_flag.as_str())
                            || LONG_VALUE_FLAGS.contains(&long_flag.as_str())) =>
                    {
                        words.next();
                    }
                    _ => {}
                }
            } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
                // In a group only `-i` is boolean; any other letter takes the rest as its value.
                let mut rest = short;
                while let Some(letter) = rest.chars().next() {
                    rest = &rest[letter.len_utf8()..];
                    if letter == 'i' {
                        match rest.strip_prefix('=') {
                            Some(value) => {
                                flags.include = parse_bool(value);
                                break;
                            }
                            None => flags.include = true,
                        }
                        continue;
                    }
                    let value = match rest.strip_prefix('=').unwrap_or(rest) {
                        "" if VALUE_FLAGS.contains(&format!("-{letter}").as_str()) => {
                            words.next().map(String::as_str)
                        }
                        inline => Some(inline),
                    };
                    if letter == 'H' {
                        flags.conditional |= value.is_some_and(is_conditional);
                    }
                    break;
                }
            }
        }
        flags
    }
}

/// pflag's boolean spellings.
fn parse_bool(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// `If-None-Match` or `If-Modified-Since`: the request headers that GitHub answers with a 304.
fn is_conditional(header: &str) -> bool {
    header.split_once(':').is_some_and(|(name, _)| {
        let name = name.trim();
        name.eq_ignore_ascii_case("if-none-match") || name.eq_ignore_ascii_case("if-modified-since")
    })
}

/// A header block that `gh api -i` printed before the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// HTTP status code from the status line.
    pub status: u16,
    /// Value of the `ETag` header, if any.
    pub etag: Option<String>,
    /// Value of the `Last-Modified` header, if any.
    pub last_modified: Option<String>,
    /// Value of the `Date` header, if any.
    pub date: Option<String>,
    /// Length in bytes of the block, including the blank line that ends it.
    pub len: usize,
}

/// What the start of gh's stdout, as far as it has been read, says about a header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A whole block: the body starts at `len`.
    Head(Head),
    /// Not gh's format, whatever follows.
    NotHead,
    /// Every line so far fits, but the blank line that ends the block has not come yet.
    Incomplete,
}

/// Reads the header block at the start of `stdout` (the first page's, if there are several),
/// as far as it has been read: only lines that end in `\n` are judged, so that gh's output can be
/// read as it comes. On a terminal gh colours header names, so escape sequences are ignored
/// while reading it; `len` still counts the bytes as printed. A block that does not end in a
/// blank line is not gh's format.
pub(crate) fn scan_head(stdout: &[u8]) -> Scan {
    let mut offset = 0;
    let mut status = None;
    let (mut etag, mut last_modified, mut date) = (None, None, None);
    while let Some(newline) = stdout[offset..].iter().position(|&b| b == b'\n') {
        let end = offset + newline + 1;
        let line = plain(&stdout[offset..end]);
        let line = line.trim_end_matches(['\r', '\n']);
        offset = end;
        match status {
            None => {
                let Some(code) = status_code(line) else {
                    return Scan::NotHead;
                };
                status = Some(code);
            }
            Some(status) if line.is_empty() => {
                return Scan::Head(Head {
                    status,
                    etag,
                    last_modified,
                    date,
                    len: offset,
                });
            }
            Some(_) => {
                let Some((name, value)) = line.split_once(':') else {
                    return Scan::NotHead;
                };
                let slot = match name.trim().to_ascii_lowercase().as_str() {
                    "etag" => &mut etag,
                    "last-modified" => &mut last_modified,
                    "date" => &mut date,
                    _ => continue,
                };
                *slot = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            }
        }
    }
    let rest = &stdout[offset..];
    if status.is_none() && !rest.is_empty() && !could_start_status_line(rest) {
        return Scan::NotHead;
    }
    Scan::Incomplete
}

/// The status code of an `HTTP/x.y NNN Reason` line.
fn status_code(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("HTTP/")?;
    let code = rest.split_whitespace().nth(1)?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// Whether `partial`, the start of a first line, can still become a status line: output that
/// cannot is known not to be a header block before its first line ends.
fn could_start_status_line(partial: &[u8]) -> bool {
    const PREFIX: &[u8] = b"HTTP/";
    let n = partial.len().min(PREFIX.len());
    partial[..n] == PREFIX[..n]
}

/// `bytes` as text without ANSI escape sequences.
fn plain(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header block of a whole output, if it has one.
    fn parse_head(stdout: &[u8]) -> Option<Head> {
        match scan_head(stdout) {
            Scan::Head(head) => Some(head),
            Scan::NotHead | Scan::Incomplete => None,
        }
    }

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_go_right_after_api() {
        let plan = Plan::of(
            &args("api repos/o/r --jq .name"),
            Some(Validator::IfNoneMatch("W/\"abc\"")),
        );
        assert_eq!(
            plan.argv,
            [
                "api",
                "-i",
                "-H",
                "If-None-Match: W/\"abc\"",
                "repos/o/r",
                "--jq",
                ".name"
            ]
        );
        assert!(plan.added_include && plan.reads_head && plan.conditional);
        let plan = Plan::of(&args("api -X GET repos/o/r"), None);
        assert_eq!(plan.argv, args("api -i -X GET repos/o/r"));
        assert!(plan.added_include && !plan.conditional);
    }

    #[test]
    fn other_commands_are_untouched() {
        for line in ["pr list", "repo view o/r --json name", "search api"] {
            assert_eq!(
                Plan::of(&args(line), Some(Validator::IfNoneMatch("\"e\""))),
                Plan::plain(&args(line))
            );
        }
    }

    #[test]
    fn a_user_include_is_kept_and_not_doubled() {
        for line in [
            "api -i repos/o/r",
            "api repos/o/r --include",
            "api --include=true repos/o/r",
            "api -iX GET repos/o/r",
            "api repos/o/r -i=1",
        ] {
            let plan = Plan::of(&args(line), Some(Validator::IfNoneMatch("\"e\"")));
            let mut expected = args(line);
            expected.splice(1..1, ["-H".to_owned(), "If-None-Match: \"e\"".to_owned()]);
            assert_eq!(plan.argv, expected, "{line}");
            assert!(!plan.added_include && plan.reads_head && plan.conditional);
        }
    }

    #[test]
    fn include_like_words_that_are_not_the_flag() {
        for line in [
            "api repos/o/r -- -i",
            "api repos/o/r --include=false",
            "api -i repos/o/r -i=false",
            "api -X -i repos/o/r",
            "api --jq -i repos/o/r",
            "api -Xi repos/o/r",
            "api -f include=-i repos/o/r",
        ] {
            let plan = Plan::of(&args(line), None);
            assert!(plan.added_include, "{line}");
        }
    }

    #[test]
    fn paginated_and_user_conditional_calls_are_not_revalidated() {
        for line in [
            "api --paginate repos/o/r/issues",
            "api repos/o/r/issues --paginate --jq .[].id",
            "api repos/o/r -H If-None-Match:\"x\"",
            "api repos/o/r --header=if-none-match:\"x\"",
            "api repos/o/r -Hif-none-match:x",
            "api repos/o/r -H If-Modified-Since:x",
            "api repos/o/r --header=IF-MODIFIED-SINCE:x",
        ] {
            assert_eq!(
                Plan::of(&args(line), Some(Validator::IfNoneMatch("\"e\""))),
                Plan::plain(&args(line)),
                "{line}"
            );
        }
        let plan = Plan::of(&args("api repos/o/r --paginate=false"), None);
        assert!(plan.added_include);
    }

    #[test]
    fn a_validator_that_would_break_the_header_is_not_sent() {
        for validator in [
            Validator::IfNoneMatch("\"a\"\r\nX-Evil: 1"),
            Validator::IfModifiedSince("Thu, 01 Jan 2026 00:00:00 GMT\nX-Evil: 1"),
            Validator::IfNoneMatch(""),
        ] {
            let plan = Plan::of(&args("api repos/o/r"), Some(validator));
            assert_eq!(plan.argv, args("api -i repos/o/r"));
            assert!(!plan.conditional);
        }
    }

    #[test]
    fn if_modified_since_goes_where_if_none_match_would() {
        let date = "Thu, 01 Jan 2026 00:00:00 GMT";
        let plan = Plan::of(
            &args("api repos/o/r"),
            Some(Validator::IfModifiedSince(date)),
        );
        assert_eq!(
            plan.argv,
            [
                "api",
                "-i",
                "-H",
                &format!("If-Modified-Since: {date}"),
                "repos/o/r"
            ]
        );
        assert!(plan.conditional);
    }

    const DATE: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

    fn manifest(etag_token: Option<&str>, last_modified: Option<&str>) -> Manifest {
        let mut entry = ghcache_core::Entry::new(
            ghcache_core::CacheKey([1; 32]),
            "scope",
            "o/r",
            std::time::Duration::from_secs(60),
            ghcache_core::Body::default(),
            Some("W/\"e\"".to_owned()),
        );
        entry.manifest.etag_token = etag_token.map(Manifest::token_hash);
        entry.manifest.last_modified = last_modified.map(str::to_owned);
        entry.manifest
    }

    #[test]
    fn the_etag_is_sent_under_the_token_that_obtained_it() {
        let job = Manifest::token_hash("job");
        let etag = Some(Validator::IfNoneMatch("W/\"e\""));
        assert_eq!(
            validator(&manifest(Some("job"), Some(DATE)), Some(&job)),
            etag
        );
        assert_eq!(validator(&manifest(Some("job"), None), Some(&job)), etag);
    }

    #[test]
    fn under_another_token_last_modified_or_nothing() {
        let next = Manifest::token_hash("next job");
        let since = Some(Validator::IfModifiedSince(DATE));
        assert_eq!(
            validator(&manifest(Some("job"), Some(DATE)), Some(&next)),
            since
        );
        assert_eq!(validator(&manifest(None, Some(DATE)), Some(&next)), since);
        assert_eq!(validator(&manifest(Some("job"), None), Some(&next)), None);
        assert_eq!(validator(&manifest(None, None), Some(&next)), None);
    }

    #[test]
    fn an_unknown_token_prefers_last_modified_then_tries_the_etag() {
        let since = Some(Validator::IfModifiedSince(DATE));
        assert_eq!(validator(&manifest(Some("job"), Some(DATE)), None), since);
        assert_eq!(validator(&manifest(None, Some(DATE)), None), since);
        let etag = Some(Validator::IfNoneMatch("W/\"e\""));
        assert_eq!(validator(&manifest(Some("job"), None), None), etag);
        assert_eq!(validator(&manifest(None, None), None), etag);
        let mut bare = manifest(None, None);
        bare.etag = None;
        assert_eq!(validator(&bare, None), None);
    }

    #[test]
    fn last_modified_is_kept_only_a_second_before_the_answer() {
        let date = "Tue, 01 Dec 2026 05:44:06 GMT";
        assert!(is_strong(DATE, date));
        assert!(
            !is_strong(date, date),
            "changed in the second it was fetched"
        );
        assert!(!is_strong(DATE, ""));
        assert!(!is_strong("yesterday", date));
        assert!(!is_strong(DATE, "Tuesday, 01-Dec-26 05:44:06 GMT"));
    }

    /// Exactly what gh 2.23 printed for `gh api -i repos/o/r`.
    const GH_223_HEAD: &[u8] = b"HTTP/1.0 200 OK\nContent-Length: 12\r\n\
        Content-Type: application/json; charset=utf-8\r\nDate: Tue, 24 Nov 2026 21:15:33 GMT\r\n\
        Etag: \"v1\"\r\nServer: BaseHTTP/0.6 Python/3.11.7\r\n\r\n";

    #[test]
    fn gh_s_crlf_head_is_parsed_and_measured() {
        let mut out = GH_223_HEAD.to_vec();
        out.extend_from_slice(b"{\"name\":\"r\"}");
        let head = parse_head(&out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(head.status, 200);
        assert_eq!(head.etag.as_deref(), Some("\"v1\""));
        assert_eq!(head.date.as_deref(), Some("Tue, 24 Nov 2026 21:15:33 GMT"));
        assert_eq!(head.last_modified, None);
        assert_eq!(&out[head.len..], b"{\"name\":\"r\"}");
    }

    #[test]
    fn lf_heads_and_any_etag_spelling_are_read() {
        let out = b"HTTP/2.0 200 OK\nContent-Type: application/json\nETAG: W/\"x1\"\n\n{\"a\":1}\n";
        let head = parse_head(out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(head.etag.as_deref(), Some("W/\"x1\""));
        assert_eq!(&out[head.len..], b"{\"a\":1}\n");
    }

    #[test]
    fn last_modified_is_read_with_the_etag() {
        // gh 2.23, `gh api -i repos/o/r` against a resource that sends Last-Modified.
        let out = b"HTTP/1.1 200 OK\nDate: Tue, 01 Dec 2026 05:44:06 GMT\r\n\
            Etag: W/\"b5\"\r\nLast-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n{}";
        let head = parse_head(out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(head.etag.as_deref(), Some("W/\"b5\""));
        assert_eq!(head.last_modified.as_deref(), Some(DATE));
        assert_eq!(head.date.as_deref(), Some("Tue, 01 Dec 2026 05:44:06 GMT"));
    }

    #[test]
    fn colours_and_a_bodiless_304_are_tolerated() {
        let out =
            b"HTTP/1.1 304 Not Modified\n\x1b[1;34mETag\x1b[m: \"e\"\r\n\x1b[1;34mDate\x1b[m: x\r\n\r\n";
        let head = parse_head(out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(
            (head.status, head.etag.as_deref(), head.len),
            (304, Some("\"e\""), out.len())
        );
    }

    #[test]
    fn only_the_first_page_s_block_is_read() {
        // gh 2.23, `gh api -i --paginate`: a block per page and a newline between pages.
        let page = |n: u8| {
            let mut p = format!("HTTP/1.0 200 OK\r\nEtag: \"p{n}\"\r\n\r\n").into_bytes();
            p.extend_from_slice(format!("[{{\"n\":{n}}}]").as_bytes());
            p
        };
        let mut out = page(1);
        out.push(b'\n');
        out.extend(page(2));
        let head = parse_head(&out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(head.etag.as_deref(), Some("\"p1\""));
        assert!(out[head.len..].starts_with(b"[{\"n\":1}]\nHTTP/1.0 200 OK"));
    }

    #[test]
    fn a_head_read_in_pieces_is_incomplete_until_its_blank_line() {
        let mut out = GH_223_HEAD.to_vec();
        out.extend_from_slice(b"{\"name\":\"r\"}");
        let whole = parse_head(&out).unwrap_or_else(|| panic!("no head"));
        for cut in 0..GH_223_HEAD.len() {
            assert_eq!(scan_head(&out[..cut]), Scan::Incomplete, "cut at {cut}");
        }
        for cut in GH_223_HEAD.len()..=out.len() {
            assert_eq!(
                scan_head(&out[..cut]),
                Scan::Head(whole.clone()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn what_cannot_be_a_head_is_known_early() {
        assert_eq!(scan_head(b"{"), Scan::NotHead);
        assert_eq!(scan_head(b"HTTX"), Scan::NotHead);
        assert_eq!(scan_head(b"HTTP/1.1 200 OK\nnot a header\n"), Scan::NotHead);
        assert_eq!(scan_head(b"HTT"), Scan::Incomplete);
        assert_eq!(scan_head(b""), Scan::Incomplete);
    }

    #[test]
    fn not_a_head_is_left_alone() {
        assert_eq!(parse_head(b"{\"HTTP/1.1\": 1}\n"), None);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\nEtag: x\n"),
            None,
            "unterminated"
        );
        assert_eq!(parse_head(b"HTTP/1.1 2000 OK\n\n"), None);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\nnot a header\n\n"), None);
        assert_eq!(parse_head(b""), None);
    }
}
