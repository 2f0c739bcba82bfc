//! An entry on the wire: a manifest and a body, each `u32`-prefixed and under its cap. Peers'
//! fetch answers and local commands' publishes, stores and hits carry it alike.

use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::{DecodeError, MAX_MANIFEST};

/// Largest encoded body that travels between peers. Bigger entries stay on the machine that made
/// them (and in IPFS).
pub const MAX_BODY: usize = 8 << 20;

/// An entry behind `tag`: the encoding of every message that carries one.
pub(super) fn pair(tag: u8, manifest: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + manifest.len() + body.len());
    out.push(tag);
    put_bytes(&mut out, manifest);
    put_bytes(&mut out, body);
    out
}

/// The two `u32`-prefixed halves of an entry: a manifest and a body, each under its cap.
pub(super) fn read_pair(r: &mut Reader<'_>) -> Result<(Vec<u8>, Vec<u8>), DecodeError> {
    let manifest = r.bytes(MAX_MANIFEST)?.to_vec();
    let body = r.bytes(MAX_BODY)?.to_vec();
    Ok((manifest, body))
}
