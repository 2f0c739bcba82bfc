//! The framing every channel shares: a `u32` length prefix, then at most a cap of bytes, read
//! into a buffer that grows with what arrives. Over a Unix socket (the control socket) and over
//! a libp2p stream (the request-response codecs, built by [`framed_codec`]).

use std::io;

use ghcache_core::DecodeError;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// First allocation for a frame; it then doubles up to the announced length, never past it, so
/// a peer that announces a big frame and sends little costs little memory.
pub(super) const FIRST_CHUNK: usize = 16 << 10;

pub(super) fn frame_len(prefix: [u8; 4], cap: usize) -> io::Result<usize> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the cap of {cap}"),
        ));
    }
    Ok(len)
}

/// Grows `buf` toward `len` without exceeding it; returns the new free space to fill.
pub(super) fn grow(buf: &mut Vec<u8>, len: usize) -> usize {
    let target = (buf.len() * 2).max(FIRST_CHUNK).min(len);
    buf.reserve_exact(target.saturating_sub(buf.len()));
    target - buf.len()
}

/// Reads one `u32`-length-prefixed frame from a Unix socket. `Ok(None)` on a clean end of stream.
///
/// # Errors
/// I/O errors, a frame over `cap`, or a stream that ends inside a frame.
pub async fn read_frame<R>(r: &mut R, cap: usize) -> io::Result<Option<Vec<u8>>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = frame_len(prefix, cap)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; FIRST_CHUNK.min(len)];
    while buf.len() < len {
        let room = grow(&mut buf, len).min(chunk.len());
        let n = r.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

/// Writes one `u32`-length-prefixed frame to a Unix socket.
///
/// # Errors
/// I/O errors, or a payload over 4 GiB.
pub async fn write_frame<W>(w: &mut W, payload: &[u8]) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_le_bytes()).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// The same framing over a libp2p stream.
/// Reads one frame of at most `cap` bytes; `refuse_early` is asked after each read whether the
/// bytes so far already show the frame cannot decode, so that the rest is not waited for.
pub(super) async fn read_stream_frame<T>(
    io: &mut T,
    cap: usize,
    refuse_early: fn(&[u8]) -> Result<(), DecodeError>,
) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = frame_len(prefix, cap)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; FIRST_CHUNK.min(len)];
    while buf.len() < len {
        let room = grow(&mut buf, len).min(chunk.len());
        let n = io.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        refuse_early(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    Ok(buf)
}

/// For frames whose first bytes tell nothing in advance.
pub(super) fn no_early_refusal(_: &[u8]) -> Result<(), DecodeError> {
    Ok(())
}

pub(super) async fn write_stream_frame<T>(io: &mut T, payload: &[u8]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(payload).await?;
    io.close().await
}

/// A request-response codec: one length-prefixed frame each way, each read under its cap.
///
/// Each protocol's file invokes it; paths inside are absolute, as they resolve where it is used.
macro_rules! framed_codec {
    ($(#[$doc:meta])* $name:ident, $request:ty, $request_cap:expr, $response:ty, $response_cap:expr, $refuse_early:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl ::libp2p::request_response::Codec for $name {
            type Protocol = ::libp2p::StreamProtocol;
            type Request = $request;
            type Response = $response;

            async fn read_request<T>(&mut self, _: &::libp2p::StreamProtocol, io: &mut T) -> ::std::io::Result<$request>
            where
                T: ::libp2p::futures::AsyncRead + Unpin + Send,
            {
                let frame = $crate::wire::frame::read_stream_frame(io, $request_cap, $crate::wire::frame::no_early_refusal).await?;
                Ok(<$request>::decode(&frame)?)
            }

            async fn read_response<T>(&mut self, _: &::libp2p::StreamProtocol, io: &mut T) -> ::std::io::Result<$response>
            where
                T: ::libp2p::futures::AsyncRead + Unpin + Send,
            {
                let frame = $crate::wire::frame::read_stream_frame(io, $response_cap, $refuse_early).await?;
                Ok(<$response>::decode(&frame)?)
            }

            async fn write_request<T>(
                &mut self,
                _: &::libp2p::StreamProtocol,
                io: &mut T,
                req: $request,
            ) -> ::std::io::Result<()>
            where
                T: ::libp2p::futures::AsyncWrite + Unpin + Send,
            {
                $crate::wire::frame::write_stream_frame(io, &req.encode()).await
            }

            async fn write_response<T>(
                &mut self,
                _: &::libp2p::StreamProtocol,
                io: &mut T,
                res: $response,
            ) -> ::std::io::Result<()>
            where
                T: ::libp2p::futures::AsyncWrite + Unpin + Send,
            {
                $crate::wire::frame::write_stream_frame(io, &res.encode()).await
            }
        }
    };
}

pub(super) use framed_codec;
