//! Producers: who fetched an entry from GitHub and vouches for it with a signature.
//!
//! A producer is named by its libp2p peer id, so that the swarm and IPFS agree on who signed
//! what, but nothing here needs libp2p (a build with the IPFS tier and without the p2p tier
//! signs and checks manifests too): an ed25519 peer id is the "identity" multihash of the
//! protobuf encoding of the public key,
//!
//! ```text
//! 0x00 0x24 | 0x08 0x01 0x12 0x20 <32-byte public key>
//! identity  | KeyType = Ed25519, Data = the key      (36 bytes)
//! ```
//!
//! written in base58 (`12D3KooW...`) where people see it. An identity (the daemon's key, in
//! `<cache dir>/p2p/identity`) is libp2p's protobuf keypair encoding:
//! `0x08 0x01 0x12 0x40 <32-byte secret> <32-byte public>`.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::entry::Manifest;

/// The protobuf encoding's prefix of an ed25519 public key (KeyType 1, 32 bytes of data).
const PUBLIC_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];
/// The protobuf encoding's prefix of an ed25519 keypair (KeyType 1, 64 bytes of data).
const KEYPAIR_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x40];
/// The identity multihash (code 0) of 36 bytes.
const MULTIHASH_PREFIX: [u8; 2] = [0x00, 0x24];

/// A producer's name: an ed25519 libp2p peer id, as bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProducerId([u8; 38]);

impl ProducerId {
    /// The id of the producer with this public key.
    pub fn of_public(key: &[u8; 32]) -> ProducerId {
        let mut bytes = [0u8; 38];
        bytes[..2].copy_from_slice(&MULTIHASH_PREFIX);
        bytes[2..6].copy_from_slice(&PUBLIC_PREFIX);
        bytes[6..].copy_from_slice(key);
        ProducerId(bytes)
    }

    /// The id in a manifest's `producer` field; `None` for anything but an ed25519 peer id.
    pub fn from_bytes(bytes: &[u8]) -> Option<ProducerId> {
        let bytes: [u8; 38] = bytes.try_into().ok()?;
        (bytes[..2] == MULTIHASH_PREFIX && bytes[2..6] == PUBLIC_PREFIX)
            .then_some(ProducerId(bytes))
    }

    /// Parses the base58 text form (`12D3KooW...`), as `--trusted-peer` takes it.
    ///
    /// # Errors
    /// A line saying what is wrong with `text`.
    pub fn parse(text: &str) -> Result<ProducerId, String> {
        let bytes = bs58::decode(text.trim())
            .into_vec()
            .map_err(|e| format!("{text:?} is not a peer id: {e}"))?;
        ProducerId::from_bytes(&bytes)
            .ok_or_else(|| format!("{text:?} is not the peer id of an ed25519 key"))
    }

    /// The bytes, as manifests carry them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The public key inside.
    pub fn public_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.0[6..]);
        key
    }
}

impl fmt::Display for ProducerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for ProducerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProducerId({self})")
    }
}

/// A producer's signing key (the daemon's identity).
#[derive(Clone)]
pub struct Identity(SigningKey);

impl Identity {
    /// The identity whose secret is `secret` (32 random bytes for a new one).
    pub fn from_secret(secret: &[u8; 32]) -> Identity {
        Identity(SigningKey::from_bytes(secret))
    }

    /// Decodes libp2p's protobuf keypair encoding (the identity file).
    ///
    /// # Errors
    /// A line saying why the bytes are not an ed25519 keypair.
    pub fn decode(bytes: &[u8]) -> Result<Identity, String> {
        let keypair: [u8; 64] = bytes
            .strip_prefix(&KEYPAIR_PREFIX)
            .and_then(|rest| rest.try_into().ok())
            .ok_or("not an ed25519 keypair in libp2p's encoding")?;
        SigningKey::from_keypair_bytes(&keypair)
            .map(Identity)
            .map_err(|_| "the public half does not match the secret".to_owned())
    }

    /// libp2p's protobuf keypair encoding, for the identity file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = KEYPAIR_PREFIX.to_vec();
        out.extend_from_slice(&self.0.to_keypair_bytes());
        out
    }

    /// The 32 secret bytes (for libp2p's own key type).
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// This producer's id.
    pub fn id(&self) -> ProducerId {
        ProducerId::of_public(self.0.verifying_key().as_bytes())
    }

    /// Makes this producer the one of `manifest` and signs it.
    pub fn sign(&self, manifest: &mut Manifest) {
        manifest.producer = Some(self.id().as_bytes().to_vec());
        let signature = self.0.sign(&manifest.signing_bytes());
        manifest.signature = Some(signature.to_bytes().to_vec());
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        write!(f, "Identity({})", self.id())
    }
}

/// Why a manifest received from a peer or IPFS was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No producer: unsigned entries never travel between machines.
    Unsigned,
    /// The producer field is not an ed25519 peer id.
    BadProducer,
    /// The signature does not match the producer's key and the manifest's bytes.
    BadSignature,
    /// The producer is not on the configured list of trusted producers.
    Untrusted(ProducerId),
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

/// Checks `manifest`'s producer signature and the trust policy; returns the producer.
///
/// An empty `trusted` list trusts every producer that signed correctly (for the swarm, holding
/// the swarm key is the membership test); a non-empty one names the only producers whose
/// entries are accepted.
///
/// # Errors
/// The [`Rejection`] that says which check failed.
pub fn verify(manifest: &Manifest, trusted: &[ProducerId]) -> Result<ProducerId, Rejection> {
    let producer = manifest.producer.as_deref().ok_or(Rejection::Unsigned)?;
    let signature = manifest.signature.as_deref().ok_or(Rejection::Unsigned)?;
    let id = ProducerId::from_bytes(producer).ok_or(Rejection::BadProducer)?;
    let key = VerifyingKey::from_bytes(&id.public_key()).map_err(|_| Rejection::BadProducer)?;
    let signature =
        ed25519_dalek::Signature::from_slice(signature).map_err(|_| Rejection::BadSignature)?;
    key.verify_strict(&manifest.signing_bytes(), &signature)
        .map_err(|_| Rejection::BadSignature)?;
    if !trusted.is_empty() && !trusted.contains(&id) {
        return Err(Rejection::Untrusted(id));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample_entry;

    #[test]
    fn a_signed_manifest_verifies_and_any_change_breaks_it() {
        let identity = Identity::from_secret(&[7; 32]);
        let mut manifest = sample_entry(1, "o/r", b"x").manifest;
        identity.sign(&mut manifest);
        assert_eq!(verify(&manifest, &[]), Ok(identity.id()));
        assert_eq!(verify(&manifest, &[identity.id()]), Ok(identity.id()));
        let other = Identity::from_secret(&[8; 32]).id();
        assert_eq!(
            verify(&manifest, std::slice::from_ref(&other)),
            Err(Rejection::Untrusted(identity.id()))
        );
        let mut changed = manifest.clone();
        changed.ttl_ms += 1;
        assert_eq!(verify(&changed, &[]), Err(Rejection::BadSignature));
        changed = manifest.clone();
        changed.producer = Some(other.as_bytes().to_vec());
        assert_eq!(verify(&changed, &[]), Err(Rejection::BadSignature));
        changed.producer = Some(vec![1, 2, 3]);
        assert_eq!(verify(&changed, &[]), Err(Rejection::BadProducer));
        changed.signature = None;
        assert_eq!(verify(&changed, &[]), Err(Rejection::Unsigned));
    }

    #[test]
    fn identities_and_ids_round_trip_in_libp2p_formats() {
        let identity = Identity::from_secret(&[9; 32]);
        let encoded = identity.encode();
        assert_eq!(&encoded[..4], &KEYPAIR_PREFIX);
        let decoded = Identity::decode(&encoded).map(|i| i.id());
        assert_eq!(decoded, Ok(identity.id()));
        let text = identity.id().to_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(ProducerId::parse(&text), Ok(identity.id()));
        assert!(ProducerId::parse("not-base58!").is_err());
        let mut wrong = encoded.clone();
        wrong[40] ^= 1;
        assert!(Identity::decode(&wrong).is_err(), "public half must match");
        assert!(Identity::decode(&encoded[1..]).is_err());
    }
}
