//! ETag revalidation for `gh api` GETs: argv rewriting and `gh api -i` header blocks.

/// Where `api` sits in gh's argv, if this is a `gh api` call.
fn api_position(argv: &[String]) -> Option<usize> {
    argv.iter()
        .position(|a| !a.starts_with('-'))
        .filter(|&i| argv[i] == "api")
}

/// Did the user ask for headers themselves (`-i`/`--include`)?
pub(crate) fn user_includes_headers(argv: &[String]) -> bool {
    let Some(api) = api_position(argv) else {
        return false;
    };
    argv[api + 1..]
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "-i" || a == "--include")
}

/// The argv that asks gh for the response headers too, and, with `etag`, makes the request
/// conditional. Flags go right after `api`, where gh accepts them whatever follows.
pub(crate) fn revalidating_argv(
    argv: &[String],
    add_include: bool,
    etag: Option<&str>,
) -> Vec<String> {
    let Some(api) = api_position(argv) else {
        return argv.to_vec();
    };
    let mut out = Vec::with_capacity(argv.len() + 3);
    out.extend_from_slice(&argv[..=api]);
    if add_include {
        out.push("-i".to_owned());
    }
    if let Some(etag) = etag {
        out.push("-H".to_owned());
        out.push(format!("If-None-Match: {etag}"));
    }
    out.extend_from_slice(&argv[api + 1..]);
    out
}

/// A header block that `gh api -i` printed before the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// HTTP status code from the status line.
    pub status: u16,
    /// Value of the `ETag` header, if any.
    pub etag: Option<String>,
    /// Length in bytes of the block, including the blank line that ends it.
    pub len: usize,
}

/// Parses the header block at the start of `stdout`. On a terminal gh colours the block, so
/// escape sequences are ignored while reading it; `len` still counts the bytes as printed.
pub(crate) fn parse_head(stdout: &[u8]) -> Option<Head> {
    let mut offset = 0;
    let mut status = None;
    let mut etag = None;
    while offset < stdout.len() {
        let end = stdout[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(stdout.len(), |i| offset + i + 1);
        let line = plain(&stdout[offset..end]);
        let line = line.trim_end_matches(['\r', '\n']);
        offset = end;
        match status {
            None => {
                let rest = line.strip_prefix("HTTP/")?;
                let code = rest.split_whitespace().nth(1)?;
                status = Some(code.parse().ok()?);
            }
            Some(_) if line.is_empty() => {
                return status.map(|status| Head {
                    status,
                    etag,
                    len: offset,
                });
            }
            Some(_) => {
                let (name, value) = line.split_once(':')?;
                if name.trim().eq_ignore_ascii_case("etag") {
                    etag = Some(value.trim().to_owned());
                }
            }
        }
    }
    // A block without the blank line that ends it is not gh's format: leave stdout alone.
    None
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

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_go_right_after_api() {
        let argv = args("api repos/o/r --jq .name");
        assert_eq!(
            revalidating_argv(&argv, true, Some("W/\"abc\"")),
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
        assert_eq!(revalidating_argv(&argv, false, None), argv);
        assert_eq!(
            revalidating_argv(&args("pr list"), true, None),
            args("pr list")
        );
    }

    #[test]
    fn user_include_is_recognised() {
        assert!(user_includes_headers(&args("api -i repos/o/r")));
        assert!(user_includes_headers(&args("api repos/o/r --include")));
        assert!(!user_includes_headers(&args("api repos/o/r")));
        assert!(!user_includes_headers(&args("api repos/o/r -- -i")));
    }

    #[test]
    fn head_is_parsed_and_measured() {
        let out = b"HTTP/1.1 200 OK\nContent-Type: application/json\nEtag: W/\"x1\"\n\n{\"a\":1}\n";
        let head = parse_head(out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(head.status, 200);
        assert_eq!(head.etag.as_deref(), Some("W/\"x1\""));
        assert_eq!(&out[head.len..], b"{\"a\":1}\n");
    }

    #[test]
    fn crlf_and_colours_are_tolerated() {
        let out =
            b"\x1b[1;34mHTTP/1.1 304 Not Modified\x1b[m\r\n\x1b[1;34mETag\x1b[m: \"e\"\r\n\r\n";
        let head = parse_head(out).unwrap_or_else(|| panic!("no head"));
        assert_eq!(
            (head.status, head.etag.as_deref(), head.len),
            (304, Some("\"e\""), out.len())
        );
    }

    #[test]
    fn not_a_head_is_left_alone() {
        assert_eq!(parse_head(b"{\"HTTP/1.1\": 1}\n"), None);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\nEtag: x\n"),
            None,
            "unterminated"
        );
        assert_eq!(parse_head(b""), None);
    }
}
