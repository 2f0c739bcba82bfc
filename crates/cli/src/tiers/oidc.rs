//! The daemon's OIDC key set: where the verifier of peers' GitHub Actions tokens gets the
//! issuer's signing keys.
//!
//! In order: a file the operator gives (`--oidc-jwks FILE`, for machines that cannot reach the
//! issuer); else the copy cached in the cache dir (`p2p/oidc-jwks-<issuer hash>.json`, refetched
//! when older than [`CACHE_MAX_AGE`]); else, for a daemon that requires tokens, fetched once from
//! the issuer's `jwks_uri` (named by `<issuer>/.well-known/openid-configuration`) through the
//! HTTP level's client, and cached. A daemon that does not require tokens fetches nothing: it
//! verifies with a cached set if there is one, and otherwise leaves peers as they were.

use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ghcache_tier_p2p::oidc::Verifier;

use crate::error::Failure;

/// Largest discovery document or key set read (GitHub's key set is a few kilobytes).
const DOCUMENT_MAX: usize = 256 << 10;
/// A cached key set older than this is fetched again (by a daemon that fetches): an issuer
/// rotates its keys now and then, and publishes the new one before it signs with it.
const CACHE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Where the key set of `issuer` is cached in cache dir `dir`: one file per issuer, named
/// after it (characters other than letters, digits, `.` and `-` as `_`).
fn cache_file(dir: &Path, issuer: &str) -> PathBuf {
    let name: String = issuer
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(super::keys::NODE_DIR)
        .join(format!("oidc-jwks-{name}.json"))
}

/// The verifier of `issuer`'s tokens for a daemon of cache dir `dir`, from `file` if given,
/// else the cache, else (when `fetch`) the issuer. `None` when there is no key set and `fetch`
/// is off.
///
/// # Errors
/// A given file that cannot be read or is not a JWK set; with `fetch`, an issuer that cannot
/// be reached and no cached copy.
pub async fn verifier(
    dir: &Path,
    issuer: &str,
    file: Option<&Path>,
    fetch: bool,
) -> Result<Option<Verifier>, Failure> {
    let usage = |e: String| Failure::Usage(e);
    if let Some(file) = file {
        let bytes =
            fs::read(file).map_err(|e| usage(format!("--oidc-jwks {}: {e}", file.display())))?;
        return Verifier::new(issuer, &bytes)
            .map(Some)
            .map_err(|e| usage(format!("--oidc-jwks {}: {e}", file.display())));
    }
    let cached_path = cache_file(dir, issuer);
    let cached = fs::read(&cached_path)
        .ok()
        .and_then(|bytes| Verifier::new(issuer, &bytes).ok());
    let fresh = fs::metadata(&cached_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age < CACHE_MAX_AGE);
    if !fetch || (cached.is_some() && fresh) {
        return Ok(cached);
    }
    match fetch_key_set(issuer).await {
        Ok(bytes) => {
            let verifier = Verifier::new(issuer, &bytes).map_err(|e| {
                Failure::Runtime(format!("the key set of OIDC issuer {issuer}: {e}"))
            })?;
            if let Err(e) = write_private(&cached_path, &bytes) {
                eprintln!(
                    "ghcache daemon: warning: cannot cache the OIDC key set in {}: {e}",
                    cached_path.display()
                );
            }
            Ok(Some(verifier))
        }
        // An older copy still checks tokens signed with keys it holds.
        Err(e) if cached.is_some() => {
            eprintln!("ghcache daemon: warning: {e}; using the cached OIDC key set");
            Ok(cached)
        }
        Err(e) => Err(Failure::Runtime(format!(
            "{e}; give the key set with --oidc-jwks FILE"
        ))),
    }
}

/// The issuer's key set: its discovery document names `jwks_uri`.
async fn fetch_key_set(issuer: &str) -> Result<Vec<u8>, String> {
    let env = |name: &str| std::env::var(name).ok();
    let client = ghcache_http::Upstream::from_env(&env);
    let discovery_url = format!("{issuer}/.well-known/openid-configuration");
    let discovery = client.get(&discovery_url, DOCUMENT_MAX).await?;
    let discovery: serde_json::Value = serde_json::from_slice(&discovery)
        .map_err(|e| format!("{discovery_url}: not JSON: {e}"))?;
    // OpenID Connect Discovery: the document names its own issuer, exactly.
    if discovery["issuer"].as_str() != Some(issuer) {
        return Err(format!("{discovery_url}: names another issuer"));
    }
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or_else(|| format!("{discovery_url}: no jwks_uri"))?;
    client.get(jwks_uri, DOCUMENT_MAX).await
}

/// Writes `bytes` to `path` atomically, readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)?;
    let tmp = super::keys::private_temp(parent, "oidc-jwks", bytes)?;
    let renamed = fs::rename(&tmp, path);
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}
