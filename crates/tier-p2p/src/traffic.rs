//! Bytes on the wire, counted under every protocol of the swarm.
//!
//! The meter wraps each TCP connection before pnet, so it counts what the network carries:
//! gossip, DHT, identify, ping and fetches together, with their encryption and framing. That is
//! the figure an operator pays for, and what the scale benchmark reports per node.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use libp2p::futures::{AsyncRead, AsyncWrite};

/// Totals for one node, shared by all its connections.
#[derive(Debug, Default)]
pub struct Traffic {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Traffic {
    /// Bytes received since the node started.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes sent since the node started.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

/// A connection whose reads and writes add to a [`Traffic`].
#[derive(Debug)]
pub struct Metered<S> {
    inner: S,
    traffic: Arc<Traffic>,
}

impl<S> Metered<S> {
    /// Wraps `inner`; its bytes count towards `traffic`.
    pub fn new(inner: S, traffic: Arc<Traffic>) -> Metered<S> {
        Metered { inner, traffic }
    }
}

fn count(counter: &AtomicU64, polled: &Poll<io::Result<usize>>) {
    if let Poll::Ready(Ok(n)) = polled {
        counter.fetch_add(*n as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        count(&self.traffic.bytes_in, &polled);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        count(&self.traffic.bytes_out, &polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::futures::io::Cursor;
    use libp2p::futures::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_are_counted_apart() -> io::Result<()> {
        let traffic = Arc::new(Traffic::default());
        let mut conn = Metered::new(Cursor::new(b"hello world".to_vec()), traffic.clone());
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).await?;
        conn.write_all(b"abc").await?;
        assert_eq!((traffic.bytes_in(), traffic.bytes_out()), (5, 3));
        Ok(())
    }
}
