//! The bodies the HTTP level sends, to gh or to GitHub: whole when they were stored or are small,
//! streamed when they are too large to hold (logs, archives, release assets), so that a large
//! download costs no memory and is counted as it passes.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};

/// A message body that the HTTP level sends: to gh (an answer) or to GitHub (a request).
///
/// Either whole, or streamed: what was read of it already, then the rest as it comes from the
/// other side, never held in memory. A streamed body can count the bytes it passes on.
#[derive(Debug)]
pub struct Body {
    kind: Kind,
    counted: Option<Arc<AtomicU64>>,
}

#[derive(Debug)]
enum Kind {
    Whole(Option<Bytes>),
    Streamed {
        prefix: Option<Bytes>,
        rest: Incoming,
    },
}

impl Body {
    /// A body of `bytes`.
    pub fn whole(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body {
            kind: Kind::Whole((!bytes.is_empty()).then_some(bytes)),
            counted: None,
        }
    }

    /// An empty body.
    pub fn empty() -> Body {
        Body::whole(Bytes::new())
    }

    /// `prefix`, then what is left of `rest`, passed on as it comes.
    pub(crate) fn streamed(prefix: Bytes, rest: Incoming) -> Body {
        Body {
            kind: Kind::Streamed {
                prefix: (!prefix.is_empty()).then_some(prefix),
                rest,
            },
            counted: None,
        }
    }

    /// This body, adding the bytes it passes on to `counter`.
    pub(crate) fn counting(mut self, counter: Arc<AtomicU64>) -> Body {
        self.counted = Some(counter);
        self
    }

    fn count(&self, n: usize) {
        if let Some(counter) = &self.counted {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        match &mut this.kind {
            Kind::Whole(bytes) => {
                let frame = bytes.take().map(|b| Ok(Frame::data(b)));
                if let Some(Ok(frame)) = &frame {
                    if let Some(data) = frame.data_ref() {
                        this.count(data.len());
                    }
                }
                Poll::Ready(frame)
            }
            Kind::Streamed { prefix, rest } => {
                if let Some(bytes) = prefix.take() {
                    this.count(bytes.len());
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                let polled = Pin::new(rest).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    if let Some(data) = frame.data_ref() {
                        this.count(data.len());
                    }
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Whole(bytes) => bytes.is_none(),
            Kind::Streamed { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Streamed { prefix, rest } => {
                let before = prefix.as_ref().map_or(0, |b| b.len() as u64);
                let after = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(after.lower().saturating_add(before));
                if let Some(upper) = after.upper() {
                    hint.set_upper(upper.saturating_add(before));
                }
                hint
            }
        }
    }
}

/// A body as far as [`read_up_to`] read it.
pub(crate) enum Read {
    /// All of it, within the limit.
    Whole(Bytes),
    /// More than the limit: what was read, and the rest, unread.
    Long(Bytes, Incoming),
}

/// Reads `body` whole when it has at most `limit` bytes; else stops soon after the limit.
///
/// # Errors
/// The other side broke off the body.
pub(crate) async fn read_up_to(mut body: Incoming, limit: u64) -> Result<Read, hyper::Error> {
    let mut kept: Vec<u8> = Vec::new();
    loop {
        if kept.len() as u64 > limit {
            return Ok(Read::Long(Bytes::from(kept), body));
        }
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let Some(frame) = next else {
            return Ok(Read::Whole(Bytes::from(kept)));
        };
        if let Ok(data) = frame?.into_data() {
            kept.extend_from_slice(&data);
        }
    }
}
