//! Sealing bodies before they are added to IPFS, so that a leaked CID reveals nothing, and the
//! manifests of the node's MFS index, so that only holders of the swarm key can write one.
//!
//! Deterministic authenticated encryption: XChaCha20-Poly1305 with the nonce derived from the
//! plaintext under a second key (a synthetic IV). The same body sealed twice gives the same bytes,
//! so the node still stores identical bodies once; equality is all an outsider can learn.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ghcache_core::ScopeId;

const MAGIC: &[u8; 4] = b"GHE1";
const NONCE: usize = 24;
const TAG: usize = 16;

/// Bytes a sealed body has beyond the plaintext: magic, nonce and tag.
pub const SEAL_OVERHEAD: usize = MAGIC.len() + NONCE + TAG;

/// The key that seals the bodies of one scope, derived from the swarm key: only swarm members
/// can open them, and entries of one scope cannot be opened with another scope's key.
#[derive(Clone)]
pub struct BodyKey {
    cipher: [u8; 32],
    nonce: [u8; 32],
}

impl std::fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyKey(..)")
    }
}

/// A sealed body that cannot be opened: not sealed by ghcache, another key, or altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot open the body from IPFS: {0}")]
pub struct OpenError(&'static str);

/// The key that seals the manifests of one scope in the node's MFS index, derived from the
/// swarm key (apart from the bodies' key, so that one is never taken for the other).
///
/// Anyone who reaches the node's API can write to MFS; a manifest that does not open with this
/// key was not written by a member of the swarm, whoever signed it. It also keeps what the
/// manifests tell (repositories, times) from those who read the node.
#[derive(Clone)]
pub struct IndexKey(BodyKey);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

impl IndexKey {
    /// The index key of scope `scope_id` in the swarm whose pre-shared key is `swarm_psk`.
    pub fn derive(swarm_psk: &[u8; 32], scope_id: &ScopeId) -> IndexKey {
        IndexKey(BodyKey::derive_as(
            "ghcache ipfs index key v1",
            "ghcache ipfs index nonce v1",
            swarm_psk,
            scope_id,
        ))
    }

    /// The manifest's encoding, sealed.
    pub fn seal(&self, encoded: &[u8]) -> Vec<u8> {
        self.0.seal(encoded)
    }

    /// Inverse of [`IndexKey::seal`].
    ///
    /// # Errors
    /// Anything not sealed with this key (a manifest written without the swarm key), or altered.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.0.open(sealed)
    }
}

impl BodyKey {
    /// The key of scope `scope_id` in the swarm whose pre-shared key is `swarm_psk`.
    pub fn derive(swarm_psk: &[u8; 32], scope_id: &ScopeId) -> BodyKey {
        BodyKey::derive_as(
            "ghcache ipfs body key v1",
            "ghcache ipfs body nonce v1",
            swarm_psk,
            scope_id,
        )
    }

    fn derive_as(
        cipher_context: &str,
        nonce_context: &str,
        swarm_psk: &[u8; 32],
        scope_id: &ScopeId,
    ) -> BodyKey {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(swarm_psk);
        material[32..].copy_from_slice(scope_id.as_bytes());
        BodyKey {
            cipher: blake3::derive_key(cipher_context, &material),
            nonce: blake3::derive_key(nonce_context, &material),
        }
    }

    /// `GHE1 || nonce || ciphertext+tag`.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let digest = blake3::keyed_hash(&self.nonce, plain);
        let nonce = XNonce::from_slice(&digest.as_bytes()[..NONCE]);
        let cipher = XChaCha20Poly1305::new((&self.cipher).into());
        // Encryption only fails for inputs beyond 256 GiB, far over any entry's size cap.
        let sealed = cipher.encrypt(nonce, plain).unwrap_or_default();
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plain.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Inverse of [`BodyKey::seal`].
    ///
    /// # Errors
    /// Anything not sealed with this key, or altered since.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(OpenError("too short"));
        }
        let (magic, rest) = sealed.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(OpenError("not sealed by ghcache"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE);
        let cipher = XChaCha20Poly1305::new((&self.cipher).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| OpenError("wrong key, or altered"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(scope: u8) -> BodyKey {
        BodyKey::derive(&[7; 32], &ScopeId([scope; 32]))
    }

    proptest! {
        #[test]
        fn what_is_sealed_opens(plain in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let sealed = key(1).seal(&plain);
            prop_assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
            prop_assert_eq!(key(1).open(&sealed), Ok(plain.clone()));
            prop_assert_eq!(key(1).seal(&plain), sealed.clone(), "deterministic");
            prop_assert!(key(2).open(&sealed).is_err(), "another scope's key");
        }

        #[test]
        fn the_index_key_and_the_body_key_do_not_open_each_other(
            plain in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let index = IndexKey::derive(&[7; 32], &ScopeId([1; 32]));
            prop_assert_eq!(index.open(&index.seal(&plain)), Ok(plain.clone()));
            prop_assert!(key(1).open(&index.seal(&plain)).is_err());
            prop_assert!(index.open(&key(1).seal(&plain)).is_err());
            let outsider = IndexKey::derive(&[8; 32], &ScopeId([1; 32]));
            prop_assert!(outsider.open(&index.seal(&plain)).is_err(), "another swarm's key");
        }

        #[test]
        fn random_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(key(1).open(&bytes).is_err());
        }

        #[test]
        fn any_flipped_bit_is_refused(
            plain in proptest::collection::vec(any::<u8>(), 1..256),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut sealed = key(1).seal(&plain);
            let i = at.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(key(1).open(&sealed).is_err());
        }

        #[test]
        fn the_plaintext_does_not_show(text in "[a-z ]{32,200}") {
            let sealed = key(1).seal(text.as_bytes());
            let needle = &text.as_bytes()[..16];
            prop_assert!(!sealed.windows(16).any(|w| w == needle));
        }
    }
}
