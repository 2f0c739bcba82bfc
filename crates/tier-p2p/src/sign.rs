//! Producer signatures on manifests, with libp2p's types: the checks themselves are core's
//! (`ghcache_core::producer`), which the IPFS tier uses too, so that both agree byte for byte.

use ghcache_core::producer::{self, ProducerId};
use ghcache_core::Manifest;
use libp2p::identity::Keypair;
use libp2p::PeerId;

use crate::error::Error;

pub use ghcache_core::producer::Rejection;

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

/// Checks `manifest`'s producer signature and the trust policy; returns the producer.
///
/// An empty `trusted` list trusts every member of the swarm (holding the swarm key is the
/// membership test); a non-empty one names the only producers whose entries are accepted.
///
/// # Errors
/// The [`Rejection`] that says which check failed.
pub fn verify(manifest: &Manifest, trusted: &[PeerId]) -> Result<PeerId, Rejection> {
    let trusted: Vec<ProducerId> = trusted
        .iter()
        .filter_map(|peer| ProducerId::from_bytes(&peer.to_bytes()))
        .collect();
    let producer = producer::verify(manifest, &trusted)?;
    PeerId::from_bytes(producer.as_bytes()).map_err(|_| Rejection::BadProducer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::producer::Identity;
    use ghcache_core::testkit::sample_entry;

    #[test]
    fn libp2p_and_core_name_and_sign_alike() -> Result<(), Error> {
        let identity = Identity::from_secret(&[5; 32]);
        let keypair = Keypair::ed25519_from_bytes(identity.secret())
            .map_err(|e| Error::Node(e.to_string()))?;
        let peer = keypair.public().to_peer_id();
        assert_eq!(peer.to_bytes(), identity.id().as_bytes());
        assert_eq!(peer.to_string(), identity.id().to_string());
        let mut ours = sample_entry(1, "o/r", b"x").manifest;
        let mut theirs = ours.clone();
        sign(&mut theirs, &keypair)?;
        identity.sign(&mut ours);
        assert_eq!(ours, theirs, "ed25519 signatures are deterministic");
        assert_eq!(verify(&theirs, &[peer]), Ok(peer));
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            verify(&theirs, &[stranger]),
            Err(Rejection::Untrusted(_))
        ));
        theirs.ttl_ms += 1;
        assert_eq!(verify(&theirs, &[]), Err(Rejection::BadSignature));
        Ok(())
    }
}
