//! The checks of everything a peer sends before it is used, stored or passed on: entries
//! (fetch responses) and manifests (gossip announcements, directory replies).
//!
//! Each refusal says why, and whether the peer must have lied: a forged signature, a digest that
//! does not match, an entry of another scope or key cannot be an honest mistake, and the peer is
//! disconnected; an untrusted producer or a stale entry can be (another trust list, another
//! clock), and the peer is only counted.

use ghcache_core::{now_ms, Body, Entry, Manifest, CLOCK_SKEW};
use libp2p::PeerId;

use crate::sign::{self, Rejection};
use crate::wire::{self, FetchRequest};

/// Why something from a peer was refused, and whether the peer must have lied.
pub(crate) type Refusal = (String, bool);

fn lie(reason: impl Into<String>) -> Refusal {
    (reason.into(), true)
}

/// The producer's signature and the trust policy.
fn signature(manifest: &Manifest, trusted: &[PeerId]) -> Result<(), Refusal> {
    match sign::verify(manifest, trusted) {
        Ok(_) => Ok(()),
        // A member of the swarm, just not one we take entries from.
        Err(r @ Rejection::Untrusted(_)) => Err((r.to_string(), false)),
        Err(r) => Err(lie(r.to_string())),
    }
}

/// Every check an entry from a peer must pass before it is used or re-served: the answer to
/// `request` must be a signed manifest of that key and scope from a trusted producer, with a
/// body under the size cap that matches its digest, fresh by our clock.
pub(crate) fn entry(
    trusted: &[PeerId],
    request: &FetchRequest,
    manifest: &[u8],
    body: &[u8],
) -> Result<Entry, Refusal> {
    let manifest = Manifest::decode(manifest).map_err(|e| lie(e.to_string()))?;
    let body = Body::decode(body).map_err(|e| lie(e.to_string()))?;
    if manifest.key != request.key {
        return Err(lie("answered with another key"));
    }
    if manifest.scope_id != request.scope_id {
        return Err(lie("answered with another scope's entry"));
    }
    signature(&manifest, trusted)?;
    if manifest.body_size > wire::MAX_BODY as u64 {
        return Err(lie("body over the size cap"));
    }
    let entry = Entry { manifest, body };
    if !entry.verify_body() {
        return Err(lie("body does not match the manifest's digest"));
    }
    if !entry.manifest.is_fresh(now_ms(), CLOCK_SKEW) {
        // Clocks differ; stale is not a lie.
        return Err(("entry is not fresh".into(), false));
    }
    Ok(entry)
}

/// The checks of a manifest received without its body, on scope `scope_id`'s gossip topic or in
/// a directory reply about that scope: it must decode, carry a valid signature by a trusted
/// producer, and be of that scope. `Ok(None)` for a manifest that passes but is of no use: stale
/// by our clock, or of an entry too large to travel between peers (honest peers do not send
/// those, but clocks and caps differ between versions).
pub(crate) fn manifest(
    trusted: &[PeerId],
    scope_id: &[u8; 32],
    bytes: &[u8],
) -> Result<Option<Manifest>, Refusal> {
    let manifest = Manifest::decode(bytes).map_err(|e| lie(e.to_string()))?;
    signature(&manifest, trusted)?;
    if &manifest.scope_id != scope_id {
        return Err(lie("manifest of another scope"));
    }
    if !manifest.is_fresh(now_ms(), CLOCK_SKEW) || manifest.body_size > wire::MAX_BODY as u64 {
        return Ok(None);
    }
    Ok(Some(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use ghcache_core::testkit::sample_entry;
    use ghcache_core::CacheKey;
    use libp2p::identity::Keypair;

    /// A signed entry as an honest peer would send it, and the request it answers.
    fn honest(keypair: &Keypair) -> Result<(Entry, FetchRequest), Error> {
        let mut entry = sample_entry(1, "o/r", b"out\n");
        sign::sign(&mut entry.manifest, keypair)?;
        let request = FetchRequest {
            key: entry.manifest.key,
            scope_id: entry.manifest.scope_id,
        };
        Ok((entry, request))
    }

    fn run_check(
        trusted: &[PeerId],
        request: &FetchRequest,
        candidate: &Entry,
    ) -> Result<Entry, Refusal> {
        entry(
            trusted,
            request,
            &candidate.manifest.encode(),
            &candidate.body.encode(),
        )
    }

    #[test]
    fn an_honest_entry_passes() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let (honest, request) = honest(&keypair)?;
        assert_eq!(run_check(&[], &request, &honest), Ok(honest.clone()));
        let me = keypair.public().to_peer_id();
        assert_eq!(run_check(&[me], &request, &honest), Ok(honest));
        Ok(())
    }

    #[test]
    fn lies_are_rejected_and_cut_off() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let (honest, request) = honest(&keypair)?;

        let mut tampered = honest.clone();
        tampered.body.stdout = b"poison\n".to_vec();
        let mut forged = honest.clone();
        forged.manifest.signature = Some(vec![0; 64]);
        let mut unsigned = honest.clone();
        unsigned.manifest.producer = None;
        unsigned.manifest.signature = None;
        let other_scope = FetchRequest {
            scope_id: [0; 32],
            ..request.clone()
        };
        let other_key = FetchRequest {
            key: CacheKey([0; 32]),
            ..request.clone()
        };

        for (what, request, candidate) in [
            ("tampered body", &request, &tampered),
            ("bad signature", &request, &forged),
            ("unsigned", &request, &unsigned),
            ("wrong scope", &other_scope, &honest),
            ("wrong key", &other_key, &honest),
        ] {
            let result = run_check(&[], request, candidate);
            assert!(matches!(result, Err((_, true))), "{what}: {result:?}");
        }
        let garbage = entry(&[], &request, b"garbage", &honest.body.encode());
        assert!(matches!(garbage, Err((_, true))));
        Ok(())
    }

    #[test]
    fn stale_or_untrusted_entries_are_refused_without_blame() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let mut expired = sample_entry(1, "o/r", b"out\n");
        expired.manifest.created_at_ms = now_ms() - 120_000;
        sign::sign(&mut expired.manifest, &keypair)?;
        let request = FetchRequest {
            key: expired.manifest.key,
            scope_id: expired.manifest.scope_id,
        };
        assert!(matches!(
            run_check(&[], &request, &expired),
            Err((_, false))
        ));

        let (honest, request) = honest(&keypair)?;
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            run_check(&[stranger], &request, &honest),
            Err((_, false))
        ));
        Ok(())
    }

    #[test]
    fn manifests_without_bodies_are_held_to_the_same_signature_trust_and_scope() -> Result<(), Error>
    {
        let keypair = Keypair::generate_ed25519();
        let (honest, _) = honest(&keypair)?;
        let scope = honest.manifest.scope_id;
        let bytes = honest.manifest.encode();
        assert_eq!(
            manifest(&[], &scope, &bytes),
            Ok(Some(honest.manifest.clone()))
        );

        let mut forged = honest.manifest.clone();
        forged.ttl_ms += 1;
        assert!(matches!(
            manifest(&[], &scope, &forged.encode()),
            Err((_, true))
        ));
        assert!(matches!(manifest(&[], &[0; 32], &bytes), Err((_, true))));
        assert!(matches!(manifest(&[], &scope, b"garbage"), Err((_, true))));
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            manifest(&[stranger], &scope, &bytes),
            Err((_, false))
        ));

        let mut stale = sample_entry(2, "o/r", b"old\n").manifest;
        stale.created_at_ms = now_ms() - 3_600_000;
        sign::sign(&mut stale, &keypair)?;
        assert_eq!(manifest(&[], &stale.scope_id, &stale.encode()), Ok(None));
        Ok(())
    }
}
