//! The swarm's key and this machine's signing identity, read from where the settings say: the
//! daemon needs both to join the swarm, and the IPFS tier needs them to seal bodies and sign
//! manifests, also in a build without the p2p tier (see `ghcache_core::producer`).

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ghcache_core::producer::Identity;
#[cfg(feature = "ipfs")]
use ghcache_core::producer::ProducerId;
use ghcache_core::swarm_key::SwarmKey;

use crate::config::{Config, SwarmKeySource};
use crate::error::Failure;

pub(crate) use ghcache_core::cache_dir::NODE_DIR;

/// What to do without a swarm key.
pub(crate) const NO_KEY: &str = "p2p needs the swarm's pre-shared key: make one with \
`ghcache swarm-key new --out swarm.key`, share it with the team, and pass --swarm-key swarm.key \
(or set GH_CACHE_SWARM_KEY to its text)";

/// The configured swarm key, or a line saying how to make one.
///
/// # Errors
/// [`Failure::Usage`]: no key is configured, the text is not a key, or the file cannot be read
/// or is readable by other users (it is the swarm's only secret).
pub fn swarm_key(config: &Config) -> Result<SwarmKey, Failure> {
    match &config.p2p.swarm_key.value {
        None => Err(Failure::Usage(NO_KEY.to_owned())),
        Some(SwarmKeySource::Text(text)) => {
            SwarmKey::parse(text).map_err(|e| Failure::Usage(format!("bad swarm key: {e}")))
        }
        Some(SwarmKeySource::File(path)) => read_key_file(path),
    }
}

fn read_key_file(path: &Path) -> Result<SwarmKey, Failure> {
    let fail = |reason: String| {
        Failure::Usage(format!(
            "cannot use the swarm key {}: {reason}",
            path.display()
        ))
    };
    let mut file = fs::File::open(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    // The mode of the file that was opened, not of whatever the name points to later.
    let mode = file
        .metadata()
        .map_err(|e| fail(format!("cannot read it: {e}")))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "other users can read or change it (mode {:o}), and it is the swarm's only secret; \
             run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    SwarmKey::parse(&text).map_err(|e| fail(format!("not a swarm key: {e}")))
}

/// The producers whose entries are accepted (empty: any member of the swarm).
///
/// # Errors
/// [`Failure::Usage`] naming an entry that is not an ed25519 peer id.
#[cfg(feature = "ipfs")]
pub fn trusted_producers(config: &Config) -> Result<Vec<ProducerId>, Failure> {
    config
        .p2p
        .trusted_peers
        .value
        .iter()
        .map(|p| ProducerId::parse(p).map_err(|e| Failure::Usage(format!("trusted peer: {e}"))))
        .collect()
}

/// Where the node's identity lives in the cache dir `dir` (the daemon's, which signs the
/// manifests this machine produces).
pub fn identity_path(dir: &Path) -> PathBuf {
    dir.join(NODE_DIR).join("identity")
}

/// Writes `bytes` to a new file `<name>.tmp.<pid>` in `parent`, readable by this user only and
/// synced: the first half of an atomic write, which the caller renames or links into place.
/// Nothing is left behind when it fails.
pub(crate) fn private_temp(parent: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let tmp = parent.join(format!("{name}.tmp.{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// This machine's identity, made on first use: the daemon's key (libp2p's encoding), so that
/// peers see one producer per machine whichever part of ghcache signed.
///
/// # Errors
/// [`Failure::Runtime`] when the file cannot be read or written, is not an ed25519 key, or other
/// users can read it.
pub fn identity(dir: &Path) -> Result<Identity, Failure> {
    let file = identity_path(dir);
    let fail = |reason: String| Failure::Runtime(format!("identity {}: {reason}", file.display()));
    match read_identity(&file) {
        Ok(Some(identity)) => return Ok(identity),
        Ok(None) => {}
        Err(reason) => return Err(fail(reason)),
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| fail(format!("cannot get random bytes: {e}")))?;
    let identity = Identity::from_secret(&secret);
    let parent = file.parent().unwrap_or(dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    let tmp = private_temp(parent, "identity", &identity.encode())
        .map_err(|e| fail(format!("cannot write a new key: {e}")))?;
    // A hard link never replaces an existing file: whoever linked first (this process or the
    // daemon) wins, and the other reads it.
    let linked = fs::hard_link(&tmp, &file);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(identity),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_identity(&file)
            .map_err(fail)?
            .ok_or_else(|| fail("vanished while it was made".to_owned())),
        Err(e) => Err(fail(format!("cannot create it: {e}"))),
    }
}

/// This machine's producer id, if it has an identity yet (read, never made: a lookup must not
/// write to the cache dir).
#[cfg(feature = "ipfs")]
pub fn own_id(dir: &Path) -> Option<ProducerId> {
    read_identity(&identity_path(dir))
        .ok()
        .flatten()
        .map(|identity| identity.id())
}

/// The identity in `file`, `None` when there is none.
fn read_identity(file: &Path) -> Result<Option<Identity>, String> {
    let mut opened = match fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let mode = opened
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by other users (mode {:o}); run `chmod 600` on it",
            mode & 0o777
        ));
    }
    let mut bytes = Vec::new();
    opened
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Identity::decode(&bytes)
        .map(Some)
        .map_err(|e| format!("{e}; delete it to make a new one"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_made_once_private_and_read_back() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let first = identity(dir.path()).map_err(|e| format!("{e:?}"))?;
        let again = identity(dir.path()).map_err(|e| format!("{e:?}"))?;
        assert_eq!(first.id(), again.id());
        let file = identity_path(dir.path());
        let mode = fs::metadata(&file)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
        let refused = identity(dir.path()).err().map(|e| format!("{e:?}"));
        assert!(refused.is_some_and(|e| e.contains("chmod 600")));
        Ok(())
    }
}
