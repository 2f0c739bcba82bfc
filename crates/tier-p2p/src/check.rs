//! The checks of everything a peer sends before it is used, stored or passed on: entries
//! (fetch responses), manifests (gossip announcements, directory replies), gossip messages
//! (what a message may say on a scope's topic, and which messages are forwarded) and the
//! rate-limit news in them (what a pause, a reading or a write time may plausibly say: in
//! `news`).
//!
//! Each refusal says why, and whether the peer must have lied: a forged signature, a digest that
//! does not match, an entry of another scope or key cannot be an honest mistake, and the peer is
//! disconnected; an untrusted producer or a stale entry can be (another trust list, another
//! clock), and the peer is only counted.

mod news;

use std::time::Duration;

use ghcache_core::budget::News;
use ghcache_core::{now_ms, Body, Entry, Manifest, ScopeId};
use libp2p::PeerId;

use crate::oidc::Binding;
use crate::sign::{self, Rejection};
use crate::wire::{self, FetchRequest, Gossip, Invalidation};

pub(crate) use news::{plausible, plausible_part};

/// Invalidations older than this are replays or very late: ignored. Pauses of rate-limit news
/// too (one is sent the moment GitHub asks for it).
const INVALIDATION_MAX_AGE: Duration = Duration::from_secs(600);

/// Whom entries are taken from, and how far their clocks may run ahead of ours.
#[derive(Debug, Clone)]
pub(crate) struct Acceptance {
    /// If not empty, the only producers whose entries and invalidations are accepted.
    pub(crate) trusted: Vec<PeerId>,
    /// How far a producer's clock may run ahead of ours (see `ghcache_core::CLOCK_SKEW`).
    pub(crate) skew: Duration,
    /// Which scopes each producer may sign for (its OIDC token).
    pub(crate) binding: Binding,
}

/// Why something from a peer was refused, and whether the peer must have lied.
pub(crate) type Refusal = (String, bool);

fn lie(reason: impl Into<String>) -> Refusal {
    (reason.into(), true)
}

/// The producer's signature, the trust policy, and whether the producer may sign for the
/// manifest's scope (its OIDC token: DESIGN.md invariant 8).
fn signature(manifest: &Manifest, accept: &Acceptance) -> Result<(), Refusal> {
    match sign::verify(manifest, &accept.trusted) {
        // Not a lie to cut the peer off for: a relaying peer may not know the producer's token.
        Ok(producer) => accept
            .binding
            .check(&producer, &manifest.scope_id, &accept.trusted)
            .map_err(|reason| (reason, false)),
        // A member of the swarm, just not one we take entries from.
        Err(r @ Rejection::Untrusted(_)) => Err((r.to_string(), false)),
        Err(r) => Err(lie(r.to_string())),
    }
}

/// Every check an entry from a peer must pass before it is used or re-served: the answer to
/// `request` must be a signed manifest of that key and scope from a trusted producer, with a
/// body under the size cap that matches its digest, fresh by our clock.
pub(crate) fn entry(
    accept: &Acceptance,
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
    signature(&manifest, accept)?;
    if manifest.body_size > wire::MAX_BODY as u64 {
        return Err(lie("body over the size cap"));
    }
    let entry = Entry { manifest, body };
    if !entry.verify_body() {
        return Err(lie("body does not match the manifest's digest"));
    }
    let now = now_ms();
    if ahead(&entry.manifest, now, accept.skew) {
        return Err((FROM_THE_FUTURE.into(), false));
    }
    if !entry.manifest.is_fresh(now, accept.skew) {
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
    accept: &Acceptance,
    scope_id: &ScopeId,
    bytes: &[u8],
) -> Result<Option<Manifest>, Refusal> {
    let manifest = Manifest::decode(bytes).map_err(|e| lie(e.to_string()))?;
    signature(&manifest, accept)?;
    if &manifest.scope_id != scope_id {
        return Err(lie("manifest of another scope"));
    }
    let now = now_ms();
    if ahead(&manifest, now, accept.skew) {
        // Honest, but its clock is wrong: said (and counted) so that someone can fix it.
        return Err((FROM_THE_FUTURE.into(), false));
    }
    if !manifest.is_fresh(now, accept.skew) || manifest.body_size > wire::MAX_BODY as u64 {
        return Ok(None);
    }
    Ok(Some(manifest))
}

/// What a peer is told off for when its entries are dated ahead of our clock.
const FROM_THE_FUTURE: &str = "made in the future by this machine's clock: the producer's clock \
runs ahead by more than the allowed skew (GH_CACHE_CLOCK_SKEW); its entries are not used";

/// Whether `manifest` was made further ahead of `now` than `skew` allows.
fn ahead(manifest: &Manifest, now: u64, skew: Duration) -> bool {
    manifest.created_at_ms > now.saturating_add(skew.as_millis() as u64)
}

/// What a gossip message that passed its checks says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// `source` holds the entry that `manifest` describes.
    Announcement {
        /// Checked as [`manifest`] checks it.
        manifest: Box<Manifest>,
        /// The peer that signed the message: it announced the entry.
        source: PeerId,
    },
    /// A write changed what `invalidation` names.
    Invalidation {
        /// Of the topic's scope, and recent.
        invalidation: Invalidation,
        /// The peer that signed the message.
        source: PeerId,
    },
    /// What GitHub said of a principal's rate-limit budget, as [`plausible`] takes it.
    Budget {
        /// Of the topic's scope, from a trusted peer, plausible.
        news: News,
        /// The peer that signed the message.
        source: PeerId,
    },
    /// Rate-limit news of the topic's scope from a trusted peer that says what cannot be so (a
    /// pause of a day, a reading from the future): not applied nor forwarded, but no lie to cut
    /// the peer off for (its clock may be wrong).
    ImplausibleBudget {
        /// What [`plausible`] found.
        reason: &'static str,
        /// The peer that signed the message.
        source: PeerId,
    },
}

/// The checks of a gossip message on scope `scope_id`'s topic before anything in it is used
/// or the message is forwarded. `source` is who signed it (gossipsub checked the signature).
///
/// It must be signed and decode. An announcement's manifest is checked as [`manifest`] checks
/// one. An invalidation must be of the topic's scope and, with a trust list, from a trusted
/// peer; one older than [`INVALIDATION_MAX_AGE`], or dated further ahead than that, is a replay
/// or a wrong clock. Rate-limit news is held to the same scope and trust rules, then to
/// [`plausible`]. `Ok(None)` for a message that passes but is of no use (not forwarded
/// either).
pub(crate) fn gossip(
    accept: &Acceptance,
    scope_id: &ScopeId,
    source: Option<PeerId>,
    data: &[u8],
) -> Result<Option<Heard>, Refusal> {
    let Some(source) = source else {
        return Err(lie("unsigned gossip"));
    };
    match Gossip::decode(data).map_err(|e| lie(e.to_string()))? {
        Gossip::Announcement { manifest: bytes } => match manifest(accept, scope_id, &bytes) {
            Ok(Some(manifest)) => Ok(Some(Heard::Announcement {
                manifest: Box::new(manifest),
                source,
            })),
            Ok(None) => Ok(None),
            Err((reason, disconnect)) => Err((format!("announcement: {reason}"), disconnect)),
        },
        Gossip::Invalidation(invalidation) => {
            if invalidation.scope_id != *scope_id {
                return Err(lie("invalidation on another scope's topic"));
            }
            trusted(accept, &source, "invalidation")?;
            let now = now_ms();
            let too_old =
                now.saturating_sub(invalidation.at_ms) > INVALIDATION_MAX_AGE.as_millis() as u64;
            // Not the producers' skew: an invalidation is applied rather than lost to a clock
            // running ahead; only one dated beyond any plausible clock is a replay.
            let too_new =
                invalidation.at_ms > now.saturating_add(INVALIDATION_MAX_AGE.as_millis() as u64);
            if too_old || too_new {
                return Ok(None);
            }
            Ok(Some(Heard::Invalidation {
                invalidation,
                source,
            }))
        }
        Gossip::Budget { scope_id: of, news } => {
            if of != *scope_id {
                return Err(lie("budget news on another scope's topic"));
            }
            trusted(accept, &source, "budget news")?;
            Ok(Some(match plausible(&news, now_ms(), accept.skew) {
                Ok(()) => Heard::Budget { news, source },
                Err(reason) => Heard::ImplausibleBudget { reason, source },
            }))
        }
    }
}

/// With a trust list, only its peers' invalidations and budget news (`what`) are taken.
/// Another trust list is no lie: the peer is counted, not cut off.
fn trusted(accept: &Acceptance, source: &PeerId, what: &str) -> Result<(), Refusal> {
    if !accept.trusted.is_empty() && !accept.trusted.contains(source) {
        return Err((format!("{what} from untrusted {source}"), false));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use ghcache_core::testkit::sample_entry;
    use ghcache_core::CacheKey;
    use ghcache_core::CLOCK_SKEW;
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

    fn accept(trusted: &[PeerId]) -> Acceptance {
        Acceptance {
            trusted: trusted.to_vec(),
            skew: CLOCK_SKEW,
            binding: Binding::default(),
        }
    }

    fn run_check(
        trusted: &[PeerId],
        request: &FetchRequest,
        candidate: &Entry,
    ) -> Result<Entry, Refusal> {
        entry(
            &accept(trusted),
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
            scope_id: ScopeId([0; 32]),
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
        let garbage = entry(&accept(&[]), &request, b"garbage", &honest.body.encode());
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
            manifest(&accept(&[]), &scope, &bytes),
            Ok(Some(honest.manifest.clone()))
        );

        let mut forged = honest.manifest.clone();
        forged.ttl_ms += 1;
        assert!(matches!(
            manifest(&accept(&[]), &scope, &forged.encode()),
            Err((_, true))
        ));
        assert!(matches!(
            manifest(&accept(&[]), &ScopeId([0; 32]), &bytes),
            Err((_, true))
        ));
        assert!(matches!(
            manifest(&accept(&[]), &scope, b"garbage"),
            Err((_, true))
        ));
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            manifest(&accept(&[stranger]), &scope, &bytes),
            Err((_, false))
        ));

        let mut stale = sample_entry(2, "o/r", b"old\n").manifest;
        stale.created_at_ms = now_ms() - 3_600_000;
        sign::sign(&mut stale, &keypair)?;
        assert_eq!(
            manifest(&accept(&[]), &stale.scope_id, &stale.encode()),
            Ok(None)
        );
        Ok(())
    }

    fn invalidation(scope_id: ScopeId, at_ms: u64) -> Vec<u8> {
        Gossip::Invalidation(Invalidation {
            scope_id,
            repo: "o/r".into(),
            resources: None,
            at_ms,
        })
        .encode()
    }

    #[test]
    fn gossip_is_signed_decodable_and_of_its_topic_scope() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let source = keypair.public().to_peer_id();
        let (honest, _) = honest(&keypair)?;
        let scope = honest.manifest.scope_id;
        let announcement = Gossip::Announcement {
            manifest: honest.manifest.encode(),
        }
        .encode();
        assert_eq!(
            gossip(&accept(&[]), &scope, Some(source), &announcement),
            Ok(Some(Heard::Announcement {
                manifest: Box::new(honest.manifest.clone()),
                source
            }))
        );
        let unsigned = gossip(&accept(&[]), &scope, None, &announcement);
        assert_eq!(unsigned, Err(("unsigned gossip".to_owned(), true)));
        assert!(matches!(
            gossip(&accept(&[]), &scope, Some(source), b"\x11garbage"),
            Err((_, true))
        ));
        // An announcement is held to the checks of a manifest, and says so.
        let elsewhere = gossip(&accept(&[]), &ScopeId([9; 32]), Some(source), &announcement);
        assert!(
            matches!(&elsewhere, Err((reason, true)) if reason.starts_with("announcement: ")),
            "{elsewhere:?}"
        );
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        let untrusted = gossip(&accept(&[stranger]), &scope, Some(source), &announcement);
        assert!(matches!(untrusted, Err((_, false))), "{untrusted:?}");
        Ok(())
    }

    #[test]
    fn invalidations_are_of_the_topic_scope_trusted_and_recent() {
        let scope = ScopeId::of("team");
        let source = Keypair::generate_ed25519().public().to_peer_id();
        let now = now_ms();
        let fresh = invalidation(scope, now);
        let heard = gossip(&accept(&[]), &scope, Some(source), &fresh);
        assert!(
            matches!(&heard, Ok(Some(Heard::Invalidation { invalidation, source: s }))
                if invalidation.repo == "o/r" && *s == source),
            "{heard:?}"
        );
        assert_eq!(
            gossip(&accept(&[]), &ScopeId::of("other"), Some(source), &fresh),
            Err(("invalidation on another scope's topic".to_owned(), true))
        );
        // Another trust list is no lie: the peer is counted, not cut off.
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            gossip(&accept(&[stranger]), &scope, Some(source), &fresh),
            Err((_, false))
        ));
        assert!(matches!(
            gossip(&accept(&[source]), &scope, Some(source), &fresh),
            Ok(Some(_))
        ));
        // Replays are ignored; a writer whose clock runs ahead is still heard: dropping
        // entries is never wrong, missing a write is.
        let old = now - INVALIDATION_MAX_AGE.as_millis() as u64 - 1_000;
        assert_eq!(
            gossip(
                &accept(&[]),
                &scope,
                Some(source),
                &invalidation(scope, old)
            ),
            Ok(None)
        );
        let minute_ahead = now + 60_000;
        assert!(matches!(
            gossip(
                &accept(&[]),
                &scope,
                Some(source),
                &invalidation(scope, minute_ahead)
            ),
            Ok(Some(_))
        ));
        let far_ahead = now + INVALIDATION_MAX_AGE.as_millis() as u64 + 60_000;
        assert_eq!(
            gossip(
                &accept(&[]),
                &scope,
                Some(source),
                &invalidation(scope, far_ahead)
            ),
            Ok(None)
        );
    }

    #[test]
    fn a_producer_bound_by_its_token_is_refused_elsewhere_without_blame() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let producer = keypair.public().to_peer_id();
        let (honest, request) = honest(&keypair)?;
        let bound = accept(&[]);
        let job = crate::oidc::Job {
            repository: "o/a".into(),
            pull_request: false,
        };
        bound
            .binding
            .grant(producer, Some(&job), &["actions:o/a".into()]);
        let refused = entry(
            &bound,
            &request,
            &honest.manifest.encode(),
            &honest.body.encode(),
        );
        assert!(
            matches!(&refused, Err((reason, false)) if reason.contains("bound")),
            "{refused:?}"
        );
        let scope = honest.manifest.scope_id;
        assert!(matches!(
            manifest(&bound, &scope, &honest.manifest.encode()),
            Err((_, false))
        ));
        Ok(())
    }

    #[test]
    fn a_producer_whose_clock_runs_ahead_is_refused_and_told_why() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let mut ahead = sample_entry(3, "o/r", b"out\n");
        ahead.manifest.created_at_ms = now_ms() + CLOCK_SKEW.as_millis() as u64 + 5_000;
        sign::sign(&mut ahead.manifest, &keypair)?;
        let request = FetchRequest {
            key: ahead.manifest.key,
            scope_id: ahead.manifest.scope_id,
        };
        assert_eq!(
            run_check(&[], &request, &ahead),
            Err((FROM_THE_FUTURE.to_owned(), false))
        );
        let scope = ahead.manifest.scope_id;
        assert_eq!(
            manifest(&accept(&[]), &scope, &ahead.manifest.encode()),
            Err((FROM_THE_FUTURE.to_owned(), false))
        );
        Ok(())
    }

    /// News of anyone's budget: a pause that began now and lasts `lasts`.
    fn paused(lasts: Duration) -> News {
        let since_ms = now_ms();
        let pause = ghcache_core::budget::Pause {
            since_ms,
            until_ms: since_ms + lasts.as_millis() as u64,
            strikes: 0,
        };
        News {
            principal: ghcache_core::budget::Principal::of(
                Some(&ghcache_core::TokenHash([1; 32])),
                None,
            ),
            standing: ghcache_core::budget::Standing {
                pause: Some(pause),
                ..Default::default()
            },
        }
    }

    fn budget(scope_id: ScopeId, news: &News) -> Vec<u8> {
        Gossip::Budget {
            scope_id,
            news: news.clone(),
        }
        .encode()
    }

    #[test]
    fn budget_news_is_of_the_topic_scope_and_trusted() {
        let scope = ScopeId::of("team");
        let source = Keypair::generate_ed25519().public().to_peer_id();
        let fresh = paused(Duration::from_secs(60));
        let bytes = budget(scope, &fresh);
        assert_eq!(
            gossip(&accept(&[]), &scope, Some(source), &bytes),
            Ok(Some(Heard::Budget {
                news: fresh.clone(),
                source
            }))
        );
        assert_eq!(
            gossip(&accept(&[]), &ScopeId::of("other"), Some(source), &bytes),
            Err(("budget news on another scope's topic".to_owned(), true))
        );
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(
            gossip(&accept(&[stranger]), &scope, Some(source), &bytes),
            Err((format!("budget news from untrusted {source}"), false))
        );
        assert!(matches!(
            gossip(&accept(&[source]), &scope, Some(source), &bytes),
            Ok(Some(Heard::Budget { .. }))
        ));
        assert!(matches!(
            gossip(&accept(&[]), &scope, None, &bytes),
            Err((_, true))
        ));
    }

    #[test]
    fn implausible_budget_news_is_heard_but_not_taken() {
        let scope = ScopeId::of("team");
        let source = Keypair::generate_ed25519().public().to_peer_id();
        let day = paused(Duration::from_secs(86_400));
        assert_eq!(
            gossip(&accept(&[]), &scope, Some(source), &budget(scope, &day)),
            Ok(Some(Heard::ImplausibleBudget {
                reason: "a pause longer than GitHub asks for",
                source
            }))
        );
    }
}
