//! Producers bound to what they may read (DESIGN.md invariant 8): the checks of a GitHub Actions
//! OIDC token that a peer presents, and the scopes each producer may sign entries for.
//!
//! Holding the swarm key makes a peer a member: it may connect, ask and read. It does not make
//! it a producer for every scope: Actions scopes are predictable (`actions:owner/repo`), and a
//! job of one repository holding an organisation-wide swarm key could otherwise plant answers
//! for another repository, fleet-wide. So a runner presents its job's OIDC token to each peer it
//! connects to, with the scope names it produces for:
//!
//! ```text
//! runner --/ghcache/oidc/1--> peer   Presentation { token, scopes: ["actions:o/a", ...] }
//! peer: verify the token offline  ->  signature (RS256) against the issuer's JWK set,
//!                                      iss, exp/nbf (LEEWAY), aud == "ghcache:<runner's peer id>"
//!       grant the runner           ->  ScopeId::of(name) for each name its `repository` claim
//!                                      allows ([`allows`]); nothing for a pull request's token
//! peer <-- Presented::Granted(n) or Refused(reason)
//! ```
//!
//! The audience binds the token to the connection: a peer that received a runner's token cannot
//! replay it as its own, because the verifier requires `aud` to name the peer id of the
//! connection the token arrived on, and that peer id is proven by the noise handshake.
//!
//! What a producer may sign is then decided by [`Binding::check`], which every check of an
//! entry or manifest from a peer asks (see the check module): a producer that presented a token
//! is held to it; one that presented nothing is refused for every scope by a node that requires
//! tokens (`require_oidc`, keepers), unless its trust list names it, and taken as before by
//! others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ghcache_core::ScopeId;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use libp2p::PeerId;
use serde::Deserialize;

use crate::error::Error;
use crate::status::bump;
use crate::wire::{Presentation, Presented};

/// GitHub Actions' OIDC issuer: the `iss` of its tokens, and where its key set is published
/// (`<issuer>/.well-known/openid-configuration` names the `jwks_uri`).
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// How far `exp` and `nbf` may be off by the verifier's clock: clocks of runners and keepers
/// differ a little; a token is valid for minutes, so more would let expired tokens in.
pub const LEEWAY_SECS: u64 = 30;

/// The presentation's caps are the wire's (where they bound what a peer may send); named here
/// too, where the token is checked.
pub use crate::wire::{MAX_PRESENTED_SCOPES, MAX_SCOPE_NAME, MAX_TOKEN};
/// Producers whose grants a node remembers; the oldest grant is forgotten first (its producer
/// then counts as one that presented nothing).
const MAX_GRANTS: usize = 4096;

/// The audience a runner asks GitHub for, and a verifier requires: `ghcache:<peer id>`.
pub fn audience(peer: &PeerId) -> String {
    format!("ghcache:{peer}")
}

/// The claims of a GitHub Actions token that decide what its job may produce.
#[derive(Debug, Deserialize)]
struct Claims {
    /// `owner/name` of the repository the job runs for.
    repository: String,
    /// The event that started the workflow.
    event_name: String,
}

/// Events whose jobs may run code from a pull request's head, which may be a fork.
///
/// GitHub's token names the base repository in `repository` for these, and carries no claim that
/// says whether the head is a fork (`head_ref` names only a branch). A fork's code must produce
/// nothing for the base repository, and a token cannot tell a fork's pull request from a
/// branch's, so every pull request token produces nothing: it fails safe, and a job of a pull
/// request still reads what others produced.
const PULL_REQUEST_EVENTS: [&str; 4] = [
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
];

/// What a verified token says about its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `owner/name`, lowercase (as Actions scopes are).
    pub repository: String,
    /// Whether the job runs for a pull request: it then produces for nothing.
    pub pull_request: bool,
}

/// Whether a job may produce entries for the scope named `scope`: `actions:<its repository>`, or
/// a `#suffix` of that scope; never for a pull request.
pub fn allows(job: &Job, scope: &str) -> bool {
    if job.pull_request {
        return false;
    }
    let Some(rest) = scope.strip_prefix("actions:") else {
        return false;
    };
    match rest.strip_prefix(job.repository.as_str()) {
        Some("") => true,
        Some(suffix) => suffix.starts_with('#'),
        None => false,
    }
}

/// Checks tokens of one issuer offline, against its key set.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    keys: Arc<JwkSet>,
}

impl Verifier {
    /// A verifier of tokens from `issuer` signed by a key of `jwks` (a JWK set, JSON).
    ///
    /// # Errors
    /// [`Error::Oidc`] when `jwks` is not a JWK set.
    pub fn new(issuer: &str, jwks: &[u8]) -> Result<Verifier, Error> {
        let keys: JwkSet = serde_json::from_slice(jwks)
            .map_err(|e| Error::Oidc(format!("the OIDC key set is not a JWK set: {e}")))?;
        if keys.keys.is_empty() {
            return Err(Error::Oidc("the OIDC key set holds no key".into()));
        }
        Ok(Verifier {
            issuer: issuer.trim_end_matches('/').to_owned(),
            keys: Arc::new(keys),
        })
    }

    /// The issuer whose tokens it checks.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks `token` as presented by `peer` over a connection: an RS256 signature by the key
    /// its `kid` names in the set, this issuer, not expired and already valid (give or take
    /// [`LEEWAY_SECS`]), and the audience [`audience`]`(peer)`, so that a token cannot be
    /// replayed by a peer it was shown to.
    ///
    /// # Errors
    /// Why the token is refused, as one line.
    pub fn verify(&self, token: &str, peer: &PeerId) -> Result<Job, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("signed with {:?}, not RS256", header.alg));
        }
        let kid = header.kid.ok_or("the token names no key (kid)")?;
        let jwk = self
            .keys
            .find(&kid)
            .ok_or_else(|| format!("key {kid:?} is not in the issuer's key set"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid:?}: {e}"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience(peer)]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                format!("its audience is not {:?}", audience(peer))
            }
            _ => format!("{e}"),
        })?;
        let claims = data.claims;
        Ok(Job {
            repository: claims.repository.to_ascii_lowercase(),
            pull_request: PULL_REQUEST_EVENTS.contains(&claims.event_name.as_str()),
        })
    }
}

/// A producer's grant: what its token allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    /// Its job's repository, to say why an entry was refused; `None` for a token that was
    /// refused (the producer is held to nothing).
    repository: Option<String>,
    scopes: HashSet<ScopeId>,
}

#[derive(Debug, Default)]
struct Grants {
    by_producer: HashMap<PeerId, Grant>,
    /// Oldest first, for [`MAX_GRANTS`].
    order: VecDeque<PeerId>,
}

/// Which producers may sign for which scopes, shared by every check of what peers send.
#[derive(Debug, Clone, Default)]
pub(crate) struct Binding {
    /// Refuse producers that presented no token (unless trusted): `require_oidc`.
    require: bool,
    grants: Arc<Mutex<Grants>>,
    /// Entries and manifests refused by [`Binding::check`].
    refused: Arc<AtomicU64>,
}

impl Binding {
    /// A binding that counts its refusals into `refused`.
    pub(crate) fn new(require: bool, refused: Arc<AtomicU64>) -> Binding {
        Binding {
            require,
            grants: Arc::default(),
            refused,
        }
    }

    fn grants(&self) -> MutexGuard<'_, Grants> {
        // The map stays whole whatever panicked: each change is one insert or remove.
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `producer` to what its token allowed: the scopes in `scopes` that `job` may
    /// produce for, or nothing for `None` (a token that was refused). A valid token replaces
    /// what the producer presented before (a self-hosted runner's next job); a refused one does
    /// not undo a valid one (the same token, expired by the time the runner met another
    /// connection, proves no less than it did). Returns how many scopes it may produce for.
    pub(crate) fn grant(&self, producer: PeerId, job: Option<&Job>, scopes: &[String]) -> usize {
        let grant = Grant {
            repository: job.map(|j| j.repository.clone()),
            scopes: job
                .map(|job| {
                    scopes
                        .iter()
                        .filter(|name| allows(job, name))
                        .map(|name| ScopeId::of(name))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let granted = grant.scopes.len();
        let mut grants = self.grants();
        if job.is_none() && grants.by_producer.contains_key(&producer) {
            return 0;
        }
        if grants.by_producer.insert(producer, grant).is_none() {
            grants.order.push_back(producer);
            while grants.order.len() > MAX_GRANTS {
                if let Some(oldest) = grants.order.pop_front() {
                    grants.by_producer.remove(&oldest);
                }
            }
        }
        granted
    }

    /// Producers held to a token they presented, oldest first.
    pub(crate) fn bound(&self) -> Vec<PeerId> {
        self.grants().order.iter().copied().collect()
    }

    /// Whether `producer` may sign entries for `scope`: held to its token if it presented one;
    /// else refused when tokens are required and `trusted` does not name it.
    ///
    /// # Errors
    /// Why not, as one line; each refusal is counted.
    pub(crate) fn check(
        &self,
        producer: &PeerId,
        scope: &ScopeId,
        trusted: &[PeerId],
    ) -> Result<(), String> {
        let refusal = match self.grants().by_producer.get(producer) {
            Some(grant) if grant.scopes.contains(scope) => return Ok(()),
            Some(Grant {
                repository: Some(repository),
                ..
            }) => format!(
                "producer {producer} is bound by its OIDC token to {repository}, not to scope {}",
                scope.short()
            ),
            Some(_) => format!("producer {producer} presented an OIDC token that was refused"),
            None if self.require && !trusted.contains(producer) => {
                format!("producer {producer} presented no OIDC token, and one is required")
            }
            None => return Ok(()),
        };
        bump(&self.refused);
        Err(refusal)
    }
}

/// Reads a token file: one JWT, surrounding whitespace ignored.
///
/// # Errors
/// Why it cannot be presented, as one line.
pub(crate) fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let token = std::str::from_utf8(&text)
        .map_err(|_| format!("{}: not text", path.display()))?
        .trim();
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(format!(
            "{}: not a token (empty, or over {MAX_TOKEN} bytes)",
            path.display()
        ));
    }
    Ok(token.to_owned())
}

/// What this node makes of `presentation`, received from `peer` over a connection: checked by
/// `verifier`, and `peer` held to the outcome in `binding`. Without a verifier the token cannot
/// be checked: `peer` is left as one that presented nothing.
pub(crate) fn answer(
    verifier: Option<&Verifier>,
    binding: &Binding,
    peer: PeerId,
    presentation: &Presentation,
) -> Result<(Job, usize), String> {
    let Some(verifier) = verifier else {
        return Err("this peer has no OIDC key set to check tokens with".into());
    };
    match verifier.verify(&presentation.token, &peer) {
        Ok(job) => {
            let granted = binding.grant(peer, Some(&job), &presentation.scopes);
            Ok((job, granted))
        }
        Err(reason) => {
            binding.grant(peer, None, &presentation.scopes);
            Err(reason)
        }
    }
}

impl Presented {
    /// The answer to a presentation that [`answer`] made of it.
    pub(crate) fn of(outcome: &Result<(Job, usize), String>) -> Presented {
        match outcome {
            Ok((_, granted)) => Presented::Granted(u32::try_from(*granted).unwrap_or(u32::MAX)),
            Err(reason) => Presented::Refused(reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_github::oidc::{self as fake, Claims as FakeClaims, Signer};
    use libp2p::identity::Keypair;

    const ISSUER: &str = "http://127.0.0.1:1";

    fn verifier() -> Result<Verifier, Error> {
        Verifier::new(ISSUER, fake::jwks().to_string().as_bytes())
    }

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    fn token(claims: &FakeClaims, signer: Signer) -> Result<String, Box<dyn std::error::Error>> {
        Ok(fake::mint(claims, signer).map_err(|e| e.to_string())?)
    }

    #[test]
    fn a_genuine_token_names_its_job() -> Result<(), Box<dyn std::error::Error>> {
        let runner = peer();
        let claims = FakeClaims::job(ISSUER, "O/A", &audience(&runner));
        let job = verifier()?.verify(&token(&claims, Signer::Issuer)?, &runner)?;
        assert_eq!(
            job,
            Job {
                repository: "o/a".into(),
                pull_request: false
            }
        );
        Ok(())
    }

    #[test]
    fn forged_expired_early_misaddressed_or_foreign_tokens_are_refused(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let runner = peer();
        let verifier = verifier()?;
        let good = FakeClaims::job(ISSUER, "o/a", &audience(&runner));
        let now = fake::now_secs();
        let cases = [
            ("forged", good.clone(), Signer::Stranger, "InvalidSignature"),
            (
                "expired",
                FakeClaims {
                    exp: now - LEEWAY_SECS - 60,
                    ..good.clone()
                },
                Signer::Issuer,
                "ExpiredSignature",
            ),
            (
                "not yet valid",
                FakeClaims {
                    nbf: now + LEEWAY_SECS + 60,
                    ..good.clone()
                },
                Signer::Issuer,
                "ImmatureSignature",
            ),
            (
                "another peer's",
                FakeClaims {
                    aud: audience(&peer()),
                    ..good.clone()
                },
                Signer::Issuer,
                "audience",
            ),
            (
                "GitHub's default audience",
                FakeClaims {
                    aud: "https://github.com/o".into(),
                    ..good.clone()
                },
                Signer::Issuer,
                "audience",
            ),
            (
                "another issuer's",
                FakeClaims {
                    iss: "https://elsewhere.example".into(),
                    ..good.clone()
                },
                Signer::Issuer,
                "InvalidIssuer",
            ),
        ];
        for (what, claims, signer, why) in cases {
            let refused = verifier.verify(&token(&claims, signer)?, &runner);
            assert!(
                matches!(&refused, Err(reason) if reason.contains(why)),
                "{what}: {refused:?}"
            );
        }
        assert!(verifier.verify("not.a.jwt", &runner).is_err());
        assert!(verifier.verify("", &runner).is_err());
        // A key set that does not hold the signing key refuses genuine tokens too.
        let wrong_set = Verifier::new(ISSUER, fake::stranger_jwks().to_string().as_bytes())?;
        assert!(wrong_set
            .verify(&token(&good, Signer::Issuer)?, &runner)
            .is_err());
        Ok(())
    }

    #[test]
    fn a_key_set_that_is_not_one_is_refused_with_a_reason() {
        for bad in [&b"garbage"[..], b"{\"keys\": []}", b"{}"] {
            let refused = Verifier::new(ISSUER, bad);
            assert!(
                matches!(&refused, Err(Error::Oidc(reason)) if reason.contains("key set")),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_job_produces_for_its_repository_and_its_suffixes_only() {
        let job = Job {
            repository: "o/a".into(),
            pull_request: false,
        };
        for yes in ["actions:o/a", "actions:o/a#build", "actions:o/a#"] {
            assert!(allows(&job, yes), "{yes}");
        }
        for no in [
            "actions:o/b",
            "actions:o/ab",
            "actions:o/a/b",
            "actions:O/A",
            "actions:o",
            "o/a",
            "team",
            "token:abc",
            "",
        ] {
            assert!(!allows(&job, no), "{no}");
        }
        let pull_request = Job {
            pull_request: true,
            ..job
        };
        assert!(!allows(&pull_request, "actions:o/a"));
    }

    #[test]
    fn a_pull_request_token_produces_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let runner = peer();
        for event in PULL_REQUEST_EVENTS {
            let claims = FakeClaims {
                event_name: event.into(),
                head_ref: Some("feature".into()),
                ..FakeClaims::job(ISSUER, "o/a", &audience(&runner))
            };
            let job = verifier()?.verify(&token(&claims, Signer::Issuer)?, &runner)?;
            let binding = Binding::default();
            assert_eq!(
                binding.grant(runner, Some(&job), &["actions:o/a".into()]),
                0
            );
            assert!(binding
                .check(&runner, &ScopeId::of("actions:o/a"), &[])
                .is_err());
        }
        Ok(())
    }

    #[test]
    fn producers_are_held_to_their_tokens_and_required_ones_to_present_one() {
        let runner = peer();
        let silent = peer();
        let trusted = peer();
        let job = Job {
            repository: "o/a".into(),
            pull_request: false,
        };
        let (a, b) = (ScopeId::of("actions:o/a"), ScopeId::of("actions:o/b"));
        let names = ["actions:o/a".to_owned(), "actions:o/b".to_owned()];

        let open = Binding::default();
        assert_eq!(open.grant(runner, Some(&job), &names), 1);
        assert_eq!(open.check(&runner, &a, &[]), Ok(()));
        assert!(open.check(&runner, &b, &[]).is_err(), "held to its token");
        assert_eq!(open.check(&silent, &b, &[]), Ok(()), "as before");
        assert_eq!(open.grant(runner, None, &names), 0);
        assert_eq!(
            open.check(&runner, &a, &[]),
            Ok(()),
            "a later refused token does not undo a valid one"
        );
        let elsewhere = Job {
            repository: "o/b".into(),
            pull_request: false,
        };
        open.grant(runner, Some(&elsewhere), &names);
        assert!(
            open.check(&runner, &a, &[]).is_err(),
            "a new job's token replaces"
        );
        assert_eq!(open.check(&runner, &b, &[]), Ok(()));
        open.grant(silent, None, &names);
        assert!(
            open.check(&silent, &b, &[]).is_err(),
            "a refused token binds to nothing"
        );

        let counted = Arc::new(AtomicU64::new(0));
        let required = Binding::new(true, counted.clone());
        required.grant(runner, Some(&job), &names);
        assert_eq!(required.check(&runner, &a, &[]), Ok(()));
        assert!(required.check(&runner, &b, &[]).is_err());
        assert!(required.check(&silent, &a, &[]).is_err());
        assert_eq!(required.check(&trusted, &a, &[trusted]), Ok(()));
        assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(required.bound(), vec![runner]);
    }
}
