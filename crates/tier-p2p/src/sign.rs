//! Producer signatures on manifests: who fetched an entry from GitHub vouches for it.

use std::fmt;

use ghcache_core::Manifest;
use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;

use crate::error::Error;

/// Multihash code of the identity hash: ed25519 peer ids carry the public key itself.
const IDENTITY_MULTIHASH: u64 = 0;

/// Why a manifest received from a peer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No producer: unsigned entries never travel between peers.
    Unsigned,
    /// The producer field is not a peer id whose public key can be recovered from it.
    BadProducer,
    /// The signature does not match the producer's key and the manifest's bytes.
    BadSignature,
    /// The producer is not on the configured list of trusted peers.
    Untrusted(PeerId),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Unsigned => f.write_str("manifest is not signed"),
            Rejection::BadProducer => f.write_str("producer is not an ed25519 peer id"),
            Rejection::BadSignature => f.write_str("signature does not verify"),
            Rejection::Untrusted(peer) => write!(f, "producer {peer} is not trusted"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Makes `keypair`'s peer the producer of `manifest` and signs it.
///
/// # Errors
/// [`Error::Node`] if the key cannot sign (only non-ed25519 keys can fail).
pub fn sign(manifest: &mut Manifest, keypair: &Keypair) -> Result<(), Error> {
    manifest.producer = Some(keypair.public().to_peer_id().to_bytes());
    let signature = keypair
        .sign(&manifest.signing_bytes())
        .map_err(|e| Error::Node(format!("cannot sign a manifest: {e}")))?;
    manifest.signature = Some(signature);
    Ok(())
}

/// The public key inlined in an ed25519 (or other short-key) peer id.
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    PublicKey::try_decode_protobuf(multihash.digest()).ok()
}

/// Checks `manifest`'s producer signature and the trust policy; returns the producer.
///
/// An empty `trusted` list trusts every member of the swarm (holding the swarm key is the
/// membership test); a non-empty one names the only producers whose entries are accepted.
///
/// # Errors
/// The [`Rejection`] that says which check failed.
pub fn verify(manifest: &Manifest, trusted: &[PeerId]) -> Result<PeerId, Rejection> {
    let producer = manifest.producer.as_deref().ok_or(Rejection::Unsigned)?;
    let signature = manifest.signature.as_deref().ok_or(Rejection::Unsigned)?;
    let peer = PeerId::from_bytes(producer).map_err(|_| Rejection::BadProducer)?;
    let key = public_key_of(&peer).ok_or(Rejection::BadProducer)?;
    if key.to_peer_id() != peer {
        return Err(Rejection::BadProducer);
    }
    if !key.verify(&manifest.signing_bytes(), signature) {
        return Err(Rejection::BadSignature);
    }
    if !trusted.is_empty() && !trusted.contains(&peer) {
        return Err(Rejection::Untrusted(peer));
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::testkit::sample_entry;

    #[test]
    fn signed_manifest_verifies_and_names_its_producer() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let mut manifest = sample_entry(1, "o/r", b"x").manifest;
        sign(&mut manifest, &keypair)?;
        let me = keypair.public().to_peer_id();
        assert_eq!(verify(&manifest, &[]), Ok(me));
        assert_eq!(verify(&manifest, &[me]), Ok(me));
        // The signature survives the wire encoding.
        let decoded =
            Manifest::decode(&manifest.encode()).map_err(|e| Error::Protocol(e.to_string()))?;
        assert_eq!(verify(&decoded, &[]), Ok(me));
        Ok(())
    }

    #[test]
    fn every_tampering_is_caught() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let other = Keypair::generate_ed25519();
        let mut manifest = sample_entry(1, "o/r", b"x").manifest;
        assert_eq!(verify(&manifest, &[]), Err(Rejection::Unsigned));
        sign(&mut manifest, &keypair)?;

        let mut changed = manifest.clone();
        changed.ttl_ms += 1;
        assert_eq!(verify(&changed, &[]), Err(Rejection::BadSignature));

        let mut impostor = manifest.clone();
        impostor.producer = Some(other.public().to_peer_id().to_bytes());
        assert_eq!(verify(&impostor, &[]), Err(Rejection::BadSignature));

        let mut garbage = manifest.clone();
        garbage.producer = Some(vec![0, 3, 1, 2, 3]);
        assert_eq!(verify(&garbage, &[]), Err(Rejection::BadProducer));

        let stranger = other.public().to_peer_id();
        let me = keypair.public().to_peer_id();
        assert_eq!(
            verify(&manifest, &[stranger]),
            Err(Rejection::Untrusted(me))
        );
        Ok(())
    }
}
