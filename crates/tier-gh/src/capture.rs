//! What becomes of gh's stdout as it is read: printed at once, held back, or kept for the cache.
//!
//! Most of gh's stdout is printed as it arrives and a copy is kept for the cache, up to the
//! largest entry; past it the copy is dropped and the answer is only printed. Two things are
//! held back instead, because what they say is known only later:
//! - the header block that `gh api -i` prints first (see [`crate::etag`]), until it is whole:
//!   it carries the ETag and `Last-Modified`, and when ghcache added `-i` it is not the user's
//!   to see;
//! - after a header block with an error status (`>= 400`) or the `304` to our own
//!   `If-None-Match` or `If-Modified-Since`, the body: gh is about to fail, and a stale answer
//!   (stale-if-error) or the prior entry (a 304) may be printed instead of it.
//!
//! This type does no I/O: it is fed what gh printed and says what to print.

use crate::etag::{scan_head, Head, Scan};

/// Longer than any header block GitHub sends (a few KiB): output that has not ended its
/// header block by then is not one.
const HEAD_MAX: usize = 64 << 10;

/// How gh's stdout is read, from the ETag plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    /// gh prints a header block first.
    pub reads_head: bool,
    /// The header block was asked for by ghcache: strip it.
    pub strip_head: bool,
    /// A validator of ours (`If-None-Match`, `If-Modified-Since`) was sent: a 304 means the
    /// prior entry stands.
    pub conditional: bool,
    /// The largest answer kept for the cache.
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the header block; `kept` holds gh's bytes so far.
    Head,
    /// The block said gh is failing (or 304): `kept` holds the body, unprinted.
    Hold,
    /// Printing as it comes; `kept` is a copy of what was printed, unless `too_large`.
    Print,
    /// ghcache added `-i` but gh printed no header block: nothing is printed, and the
    /// origin runs gh again without `-i` (`kept` holds gh's bytes, unless `too_large`).
    Unreadable,
}

/// gh's stdout as read so far, and what to do with it.
#[derive(Debug)]
pub(crate) struct Capture {
    reading: Reading,
    phase: Phase,
    head: Option<Head>,
    kept: Vec<u8>,
    /// More than `limit` bytes came: `kept` was dropped (or, held, printed).
    too_large: bool,
}

impl Capture {
    /// A capture for one run of gh.
    pub fn new(reading: Reading) -> Self {
        Capture {
            phase: if reading.reads_head {
                Phase::Head
            } else {
                Phase::Print
            },
            reading,
            head: None,
            kept: Vec::new(),
            too_large: false,
        }
    }

    /// Takes the next bytes gh printed; returns what to print now.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        match self.phase {
            Phase::Head => {
                self.kept.extend_from_slice(chunk);
                match scan_head(&self.kept) {
                    Scan::Head(head) => self.found_head(head),
                    Scan::NotHead => self.found_no_head(),
                    Scan::Incomplete if self.kept.len() > HEAD_MAX => self.found_no_head(),
                    Scan::Incomplete => None,
                }
            }
            Phase::Hold => {
                self.kept.extend_from_slice(chunk);
                self.release_if_over_limit()
            }
            Phase::Print => {
                self.keep(chunk);
                Some(chunk.to_vec())
            }
            Phase::Unreadable => {
                self.keep(chunk);
                None
            }
        }
    }

    /// gh's stdout ended; returns what to print now.
    pub fn end(&mut self) -> Option<Vec<u8>> {
        match self.phase {
            Phase::Head => match scan_head(&self.kept) {
                Scan::Head(head) => self.found_head(head),
                Scan::NotHead | Scan::Incomplete => self.found_no_head(),
            },
            Phase::Hold | Phase::Print | Phase::Unreadable => None,
        }
    }

    /// Prints what is held back: gh succeeded after all.
    pub fn release(&mut self) -> Option<Vec<u8>> {
        if self.phase != Phase::Hold {
            return None;
        }
        self.phase = Phase::Print;
        Some(self.kept.clone()).filter(|held| !held.is_empty())
    }

    /// The header block gh printed, if one was read.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// ghcache added `-i` and gh printed no header block: run it again without.
    pub fn unreadable(&self) -> bool {
        self.phase == Phase::Unreadable
    }

    /// The answer, for the cache: what was printed, when it fit under the limit.
    pub fn into_answer(self) -> Option<Vec<u8>> {
        (self.phase == Phase::Print && !self.too_large).then_some(self.kept)
    }

    /// What is kept: the answer as far as it fit under the limit (printed or, without a sink,
    /// not), or what was held back (all of gh's stdout when unreadable), for a failure that is
    /// passed through.
    pub fn into_kept(self) -> Vec<u8> {
        self.kept
    }

    fn found_head(&mut self, head: Head) -> Option<Vec<u8>> {
        if self.reading.strip_head {
            self.kept.drain(..head.len.min(self.kept.len()));
        }
        let failing = head.status >= 400 || (self.reading.conditional && head.status == 304);
        self.head = Some(head);
        if failing {
            self.phase = Phase::Hold;
            return self.release_if_over_limit();
        }
        self.start_printing()
    }

    fn found_no_head(&mut self) -> Option<Vec<u8>> {
        if self.reading.strip_head {
            self.phase = Phase::Unreadable;
            if self.kept.len() > self.reading.limit {
                self.drop_copy();
            }
            return None;
        }
        self.start_printing()
    }

    /// Held bytes over the limit can no longer wait for gh's verdict: print them.
    fn release_if_over_limit(&mut self) -> Option<Vec<u8>> {
        if self.kept.len() <= self.reading.limit {
            return None;
        }
        self.start_printing()
    }

    /// Switches to printing; returns what was held.
    fn start_printing(&mut self) -> Option<Vec<u8>> {
        self.phase = Phase::Print;
        if self.kept.is_empty() {
            return None;
        }
        if self.kept.len() > self.reading.limit {
            self.too_large = true;
            return Some(std::mem::take(&mut self.kept));
        }
        Some(self.kept.clone())
    }

    /// Adds `chunk` to the copy for the cache while it fits.
    fn keep(&mut self, chunk: &[u8]) {
        if self.too_large {
            return;
        }
        if self.kept.len().saturating_add(chunk.len()) > self.reading.limit {
            self.drop_copy();
            return;
        }
        self.kept.extend_from_slice(chunk);
    }

    fn drop_copy(&mut self) {
        self.too_large = true;
        // Freed, not cleared: the point is to give the memory back.
        self.kept = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.0 200 OK\nContent-Type: application/json\r\nEtag: \"v1\"\r\n\r\n";

    fn reading(reads_head: bool, strip_head: bool, limit: usize) -> Reading {
        Reading {
            reads_head,
            strip_head,
            conditional: true,
            limit,
        }
    }

    /// Feeds `bytes` in pieces of `piece` bytes; returns what was printed and the capture.
    fn run(reading: Reading, bytes: &[u8], piece: usize) -> (Vec<u8>, Capture) {
        let mut capture = Capture::new(reading);
        let mut printed = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            printed.extend(capture.feed(chunk).unwrap_or_default());
        }
        printed.extend(capture.end().unwrap_or_default());
        (printed, capture)
    }

    fn with_head(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.0 {status}\nEtag: \"v1\"\r\n\r\n").into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn plain_output_is_printed_and_kept_whatever_the_pieces() {
        for piece in [1, 3, 4096] {
            let (printed, capture) = run(reading(false, false, 1 << 20), b"a\nb\nc\n", piece);
            assert_eq!(printed, b"a\nb\nc\n");
            assert_eq!(capture.into_answer().as_deref(), Some(&b"a\nb\nc\n"[..]));
        }
    }

    #[test]
    fn our_header_block_is_never_printed_nor_kept() {
        let mut out = HEAD.to_vec();
        out.extend_from_slice(b"{\"name\":\"r\"}\n");
        for piece in [1, 2, 7, 4096] {
            let (printed, capture) = run(reading(true, true, 1 << 20), &out, piece);
            assert_eq!(printed, b"{\"name\":\"r\"}\n", "piece {piece}");
            assert_eq!(
                capture.head().and_then(|h| h.etag.clone()).as_deref(),
                Some("\"v1\"")
            );
            assert_eq!(
                capture.into_answer().as_deref(),
                Some(&b"{\"name\":\"r\"}\n"[..])
            );
        }
    }

    #[test]
    fn the_user_s_header_block_is_printed_once_read() {
        let out = with_head("200 OK", b"body\n");
        let (printed, capture) = run(reading(true, false, 1 << 20), &out, 5);
        assert_eq!(printed, out);
        assert_eq!(capture.into_answer(), Some(out));
    }

    #[test]
    fn an_error_or_our_304_is_held_until_gh_s_verdict() {
        for status in ["502 Bad Gateway", "404 Not Found", "304 Not Modified"] {
            let out = with_head(status, b"{\"message\":\"x\"}");
            let (printed, mut capture) = run(reading(true, true, 1 << 20), &out, 3);
            assert_eq!(printed, b"", "{status}");
            assert_eq!(
                capture.release().as_deref(),
                Some(&b"{\"message\":\"x\"}"[..])
            );
            let (_, capture) = run(reading(true, true, 1 << 20), &out, 3);
            assert_eq!(capture.into_kept(), b"{\"message\":\"x\"}", "{status}");
        }
    }

    #[test]
    fn output_without_the_header_block_we_asked_for_is_unreadable() {
        let (printed, capture) = run(reading(true, true, 1 << 20), b"plain body\n", 4);
        assert_eq!(printed, b"");
        assert!(capture.unreadable());
        let (printed, capture) = run(reading(true, true, 1 << 20), b"", 4);
        assert_eq!(printed, b"");
        assert!(
            capture.unreadable(),
            "nothing at all is not a header block either"
        );
        // The user's own -i: what gh printed is theirs, header block or not.
        let (printed, _) = run(reading(true, false, 1 << 20), b"plain body\n", 4);
        assert_eq!(printed, b"plain body\n");
    }

    #[test]
    fn past_the_limit_everything_is_printed_and_nothing_kept() {
        let body: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for (reads_head, strip_head) in [(false, false), (true, true), (true, false)] {
            let out = if reads_head {
                with_head("200 OK", &body)
            } else {
                body.clone()
            };
            let expected = if strip_head {
                body.clone()
            } else {
                out.clone()
            };
            let (printed, capture) = run(reading(reads_head, strip_head, 1000), &out, 333);
            assert_eq!(printed, expected);
            assert_eq!(capture.into_answer(), None);
        }
        // A held error body past the limit is printed rather than held without bound.
        let out = with_head("502 Bad Gateway", &body);
        let (printed, capture) = run(reading(true, true, 1000), &out, 333);
        assert_eq!(printed, body);
        assert_eq!(capture.into_kept(), b"");
    }

    #[test]
    fn an_endless_first_line_is_not_a_header_block() {
        let mut out = b"HTTP/".to_vec();
        out.resize(HEAD_MAX + 10, b'x');
        let (printed, _) = run(reading(true, false, 1 << 20), &out, 4096);
        assert_eq!(printed, out);
    }
}
