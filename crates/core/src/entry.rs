//! What a tier stores and peers exchange: an [`Entry`] is a signed [`Manifest`] and the [`Body`]
//! it describes, each with its bounded binary encoding.
//!
//! ```text
//! body      "GHB1" | u64 len | stdout | u64 len | stderr
//! manifest  "ghcache-manifest" | version | key | scope id | repo | created_at | ttl | digest
//!           | size | exit code | resource | etag? | last-modified? | token hash? | cid?
//!           | producer? | after? (version 3) | signature?
//!                                           (the signature covers every field before it)
//! ```

use std::time::Duration;

use crate::error::DecodeError;
use crate::invalidation_id::InvalidationId;
use crate::key::CacheKey;
use crate::policy::Resource;
use crate::scope::ScopeId;
use crate::wire::{put_bytes, put_opt_bytes, Reader};

/// Version of the manifest encoding. 2: the resource, `Last-Modified` and the ETag's token.
/// 3: the last invalidation its producer had seen ([`Manifest::after`]). Version 2 manifests
/// are still read (and their signatures checked over their own layout).
pub const MANIFEST_VERSION: u8 = 3;

/// Largest encoded manifest that any tier reads or sends (a peer's message, a file in IPFS's
/// MFS): every field has its own cap below, and the largest manifest they allow (about 2.5 KiB;
/// real ones are a few hundred bytes) fits under it. One number, so that a manifest one tier
/// accepts is never refused by another.
pub const MAX_MANIFEST: usize = 4 << 10;

/// Largest repository name (`owner/name`): in a manifest, and in an invalidation peers send.
pub const MAX_REPO: usize = 512;
const MAX_ETAG: usize = 1024;
const MAX_LAST_MODIFIED: usize = 128;
const MAX_CID: usize = 256;
const MAX_PRODUCER: usize = 128;
const MAX_SIGNATURE: usize = 256;

/// blake3 digest of an encoded [`Body`]; bodies are stored and fetched by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Digest of these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }
}

crate::hex::hex_id!(Digest);

/// A keyed hash of a GitHub token ([`Manifest::token_hash`]): it tells whether two requests used
/// the same token, and nothing else. A type of its own, so that it cannot be mixed up with a key,
/// a digest or the job token's hash ([`crate::context::JobTokenHash`]), which is derived apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

crate::hex::hex_id!(TokenHash);

/// What gh printed: replayed byte for byte on a hit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    /// gh's stdout.
    pub stdout: Vec<u8>,
    /// gh's stderr (notices such as "no pull requests match").
    pub stderr: Vec<u8>,
}

impl Body {
    /// Framed encoding: `GHB1`, then length-prefixed stdout and stderr.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 16 + self.stdout.len() + self.stderr.len());
        out.extend_from_slice(b"GHB1");
        for part in [&self.stdout, &self.stderr] {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// Size of [`Body::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> u64 {
        4 + 16 + self.stdout.len() as u64 + self.stderr.len() as u64
    }

    /// Digest of [`Body::encode`]'s output, without encoding: a big answer is not copied to be
    /// checked.
    pub fn digest(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"GHB1");
        for part in [&self.stdout, &self.stderr] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Digest(*hasher.finalize().as_bytes())
    }

    /// [`Body::decode`] that keeps `bytes`' allocation for stdout, so that reading a big answer
    /// holds it in memory once.
    pub fn decode_owned(mut bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let (start, stdout_len, stderr_at) = {
            let mut r = Reader::new(&bytes, "body");
            if r.take(4)? != b"GHB1" {
                return Err(r.err("bad magic"));
            }
            let stdout_len = r.long_bytes(usize::MAX)?.len();
            let stderr_at = bytes.len() - r.remaining();
            r.long_bytes(usize::MAX)?;
            r.finish()?;
            (12, stdout_len, stderr_at)
        };
        let stderr = bytes[stderr_at + 8..].to_vec();
        bytes.truncate(start + stdout_len);
        bytes.drain(..start);
        Ok(Body {
            stdout: bytes,
            stderr,
        })
    }

    /// Inverse of [`Body::encode`]. Never allocates more than `bytes.len()`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "body");
        if r.take(4)? != b"GHB1" {
            return Err(r.err("bad magic"));
        }
        let stdout = r.long_bytes(usize::MAX)?.to_vec();
        let stderr = r.long_bytes(usize::MAX)?.to_vec();
        r.finish()?;
        Ok(Body { stdout, stderr })
    }
}

/// The signed description of an entry: what it answers, when, and which body.
///
/// Encoded deterministically ([`Manifest::signing_bytes`]) so that a producer's signature can be
/// checked by any consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Encoding version ([`MANIFEST_VERSION`]).
    pub version: u8,
    /// What this entry answers.
    pub key: CacheKey,
    /// Id of the scope it was fetched in: peers exchange entries of one scope only.
    pub scope_id: ScopeId,
    /// Repository the entry is about (`owner/name`, lowercase), empty if none: invalidation uses it.
    pub repo: String,
    /// When the producer fetched it from GitHub, producer clock, ms since the epoch.
    pub created_at_ms: u64,
    /// How long it is fresh after `created_at_ms`.
    pub ttl_ms: u64,
    /// Digest of the encoded body.
    pub body_digest: Digest,
    /// Size of the encoded body in bytes.
    pub body_size: u64,
    /// gh's exit code (only 0 is stored today).
    pub exit_code: i32,
    /// What the answer shows: which writes drop it.
    pub resource: Resource,
    /// GitHub's ETag, for revalidation of `gh api` entries.
    pub etag: Option<String>,
    /// GitHub's `Last-Modified`, for revalidation with `If-Modified-Since`, which GitHub honours
    /// whatever the token.
    pub last_modified: Option<String>,
    /// Keyed hash of the token the ETag was obtained with ([`Manifest::token_hash`]): GitHub's
    /// ETags depend on the token, so `If-None-Match` is sent only with the same one.
    pub etag_token: Option<TokenHash>,
    /// IPFS CID of the body, when it was added to IPFS.
    pub cid: Option<String>,
    /// Peer id (protobuf bytes) of the producer, when signed.
    pub producer: Option<Vec<u8>>,
    /// The last invalidation of its repository and resource that the producer had seen when
    /// the fetch began: a consumer that has seen the same one last needs no clock margin after
    /// it ([`crate::FenceState::admits`]).
    pub after: Option<InvalidationId>,
    /// Producer's signature over [`Manifest::signing_bytes`].
    pub signature: Option<Vec<u8>>,
}

impl Manifest {
    /// The hash of a token that manifests may carry: it tells whether two requests used the
    /// same token, and nothing else (tokens are long random strings; the token itself is never
    /// stored or sent).
    pub fn token_hash(token: &str) -> TokenHash {
        TokenHash(blake3::derive_key("ghcache token v1", token.as_bytes()))
    }

    /// Bytes a producer signs: every field but the signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"ghcache-manifest");
        out.push(self.version);
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(self.scope_id.as_bytes());
        put_bytes(&mut out, self.repo.as_bytes());
        out.extend_from_slice(&self.created_at_ms.to_le_bytes());
        out.extend_from_slice(&self.ttl_ms.to_le_bytes());
        out.extend_from_slice(&self.body_digest.0);
        out.extend_from_slice(&self.body_size.to_le_bytes());
        out.extend_from_slice(&self.exit_code.to_le_bytes());
        out.push(self.resource.code());
        put_opt_bytes(&mut out, self.etag.as_deref().map(str::as_bytes));
        put_opt_bytes(&mut out, self.last_modified.as_deref().map(str::as_bytes));
        put_opt_bytes(
            &mut out,
            self.etag_token.as_ref().map(|t| t.as_bytes().as_slice()),
        );
        put_opt_bytes(&mut out, self.cid.as_deref().map(str::as_bytes));
        put_opt_bytes(&mut out, self.producer.as_deref());
        if self.version >= 3 {
            let after = self.after.map(|id| id.0.to_le_bytes());
            put_opt_bytes(&mut out, after.as_ref().map(<[u8; 8]>::as_slice));
        }
        out
    }

    /// Full encoding: the signing bytes followed by the optional signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signing_bytes();
        put_opt_bytes(&mut out, self.signature.as_deref());
        out
    }

    /// Inverse of [`Manifest::encode`]. Bounded: each field has a size cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "manifest");
        if r.take(16)? != b"ghcache-manifest" {
            return Err(r.err("bad magic"));
        }
        let version = r.u8()?;
        if !(2..=MANIFEST_VERSION).contains(&version) {
            return Err(r.err("unsupported version"));
        }
        let key = CacheKey(r.array()?);
        let scope_id = ScopeId(r.array()?);
        let repo = r.string(MAX_REPO)?;
        let created_at_ms = r.u64()?;
        let ttl_ms = r.u64()?;
        let body_digest = Digest(r.array()?);
        let body_size = r.u64()?;
        let exit_code = i32::from_le_bytes(r.array()?);
        let resource = Resource::from_code(r.u8()?).ok_or_else(|| r.err("unknown resource"))?;
        let etag = r.opt_string(MAX_ETAG)?;
        let last_modified = r.opt_string(MAX_LAST_MODIFIED)?;
        let etag_token = match r.opt_bytes(32)? {
            None => None,
            Some(bytes) => {
                let bytes = <[u8; 32]>::try_from(bytes.as_slice());
                Some(TokenHash(bytes.map_err(|_| r.err("bad token hash"))?))
            }
        };
        let cid = r.opt_string(MAX_CID)?;
        let producer = r.opt_bytes(MAX_PRODUCER)?;
        let after = match version {
            2 => None,
            _ => match r.opt_bytes(8)? {
                None => None,
                Some(bytes) => {
                    let bytes = <[u8; 8]>::try_from(bytes.as_slice());
                    let id = u64::from_le_bytes(bytes.map_err(|_| r.err("bad invalidation id"))?);
                    Some(InvalidationId(id))
                }
            },
        };
        let signature = r.opt_bytes(MAX_SIGNATURE)?;
        r.finish()?;
        Ok(Manifest {
            version,
            key,
            scope_id,
            repo,
            created_at_ms,
            ttl_ms,
            body_digest,
            body_size,
            exit_code,
            resource,
            etag,
            last_modified,
            etag_token,
            cid,
            producer,
            after,
            signature,
        })
    }

    /// Milliseconds since creation at `now_ms` (0 if the producer's clock is ahead).
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.created_at_ms)
    }

    /// Fresh at `now_ms`? A producer clock ahead of ours by more than `skew` is not trusted.
    pub fn is_fresh(&self, now_ms: u64, skew: Duration) -> bool {
        let skew_ms = skew.as_millis() as u64;
        if self.created_at_ms > now_ms.saturating_add(skew_ms) {
            return false;
        }
        self.age_ms(now_ms) < self.ttl_ms
    }

    /// Fresh for a consumer whose policy gives this kind of answer `ttl`? Freshness is the
    /// consumer's call (the producer may have used other TTLs); only the creation time is taken
    /// from the manifest.
    pub fn is_fresh_for(&self, ttl: Duration, now_ms: u64, skew: Duration) -> bool {
        let skew_ms = skew.as_millis() as u64;
        if self.created_at_ms > now_ms.saturating_add(skew_ms) {
            return false;
        }
        u128::from(self.age_ms(now_ms)) < ttl.as_millis()
    }
}

/// A cached answer: the manifest and the body it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the body is and who vouches for it.
    pub manifest: Manifest,
    /// What gh printed.
    pub body: Body,
}

impl Entry {
    /// A new unsigned entry for `key`, created now, whose digest and size match `body`.
    pub fn new(
        key: CacheKey,
        scope: &str,
        repo: &str,
        ttl: Duration,
        body: Body,
        etag: Option<String>,
    ) -> Self {
        let encoded = body.encode();
        Entry {
            manifest: Manifest {
                version: MANIFEST_VERSION,
                key,
                scope_id: ScopeId::of(scope),
                repo: repo.to_owned(),
                created_at_ms: crate::now_ms(),
                ttl_ms: ttl.as_millis() as u64,
                body_digest: Digest::of(&encoded),
                body_size: encoded.len() as u64,
                exit_code: 0,
                resource: Resource::Other,
                etag,
                last_modified: None,
                etag_token: None,
                cid: None,
                producer: None,
                after: None,
                signature: None,
            },
            body,
        }
    }

    /// Does the body match the manifest's digest and size? Checked on every read.
    pub fn verify_body(&self) -> bool {
        self.body.encoded_len() == self.manifest.body_size
            && self.body.digest() == self.manifest.body_digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Entry {
        let mut e = Entry::new(
            CacheKey([7; 32]),
            "scope",
            "o/r",
            Duration::from_secs(60),
            Body {
                stdout: b"out\n".to_vec(),
                stderr: b"err\n".to_vec(),
            },
            Some("\"abc\"".into()),
        );
        e.manifest.signature = Some(vec![1, 2, 3]);
        e.manifest.resource = Resource::Issues;
        e.manifest.last_modified = Some("Thu, 01 Jan 2026 00:00:00 GMT".into());
        e.manifest.etag_token = Some(Manifest::token_hash("token"));
        e
    }

    #[test]
    fn the_largest_manifest_the_field_caps_allow_fits_under_the_manifest_cap() {
        let mut m = sample().manifest;
        m.repo = "r".repeat(MAX_REPO);
        m.etag = Some("e".repeat(MAX_ETAG));
        m.last_modified = Some("l".repeat(MAX_LAST_MODIFIED));
        m.cid = Some("c".repeat(MAX_CID));
        m.producer = Some(vec![1; MAX_PRODUCER]);
        m.after = Some(InvalidationId(u64::MAX));
        m.signature = Some(vec![2; MAX_SIGNATURE]);
        let encoded = m.encode();
        assert_eq!(Manifest::decode(&encoded), Ok(m));
        assert!(encoded.len() <= MAX_MANIFEST, "{} bytes", encoded.len());
    }

    #[test]
    fn manifest_round_trips() {
        let mut m = sample().manifest;
        assert_eq!(Manifest::decode(&m.encode()), Ok(m.clone()));
        m.after = Some(InvalidationId(42));
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn a_version_2_manifest_is_read_and_signs_over_its_own_layout() {
        let mut m = sample().manifest;
        m.version = 2;
        m.producer = Some(vec![7; 4]);
        let v2 = m.encode();
        let decoded = Manifest::decode(&v2);
        assert_eq!(decoded.as_ref().map(|d| d.after), Ok(None));
        assert_eq!(decoded.map(|d| d.signing_bytes()), Ok(m.signing_bytes()));
        let v2_signed = m.signing_bytes();
        m.version = 3;
        assert_eq!(
            m.signing_bytes().len(),
            v2_signed.len() + 1,
            "`after`: none"
        );
        m.version = 4;
        assert!(
            Manifest::decode(&m.encode()).is_err(),
            "a later version is refused"
        );
    }

    #[test]
    fn body_round_trips_and_verifies() {
        let e = sample();
        assert_eq!(Body::decode(&e.body.encode()), Ok(e.body.clone()));
        assert_eq!(Body::decode_owned(e.body.encode()), Ok(e.body.clone()));
        assert_eq!(e.body.digest(), Digest::of(&e.body.encode()));
        assert_eq!(e.body.encoded_len(), e.body.encode().len() as u64);
        assert!(e.verify_body());
        let mut tampered = e;
        tampered.body.stdout.push(b'!');
        assert!(!tampered.verify_body());
    }

    #[test]
    fn freshness_honours_ttl_and_skew() {
        let m = sample().manifest;
        let t = m.created_at_ms;
        assert!(m.is_fresh(t + 59_000, Duration::ZERO));
        assert!(!m.is_fresh(t + 60_000, Duration::ZERO));
        assert!(m.is_fresh(t - 1_000, Duration::from_secs(5)));
        assert!(!m.is_fresh(t - 10_000, Duration::from_secs(5)));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::decode(&bytes);
            let _ = Body::decode(&bytes);
            let _ = Body::decode_owned(bytes);
        }

        #[test]
        fn both_decoders_agree(
            stdout in proptest::collection::vec(any::<u8>(), 0..300),
            stderr in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let body = Body { stdout, stderr };
            let encoded = body.encode();
            prop_assert_eq!(Body::decode_owned(encoded.clone()), Ok(body.clone()));
            prop_assert_eq!(body.digest(), Digest::of(&encoded));
        }

        #[test]
        fn huge_length_prefixes_are_rejected(len in any::<u64>()) {
            let mut bytes = b"GHB1".to_vec();
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(b"short");
            prop_assert!(Body::decode(&bytes).is_err());
        }
    }
}
