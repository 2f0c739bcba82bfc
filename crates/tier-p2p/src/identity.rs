//! The node's long-lived ed25519 identity: its peer id, and the key that signs manifests.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;

use crate::error::Error;

/// `<cache dir>/p2p`: the daemon's own files (identity, control socket).
pub(crate) fn p2p_dir(dir: &Path) -> PathBuf {
    dir.join("p2p")
}

/// Path of the identity file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    p2p_dir(dir).join("identity")
}

/// Loads the identity kept in the cache dir `dir`, creating it on first use.
///
/// # Behavior
/// The file is `<dir>/p2p/identity`, libp2p's protobuf key encoding, mode 0600. A new key is
/// written to a temporary file and hard-linked into place, so two daemons starting at once both
/// end up with the same identity and a crash never leaves a half-written key.
///
/// # Errors
/// [`Error::Identity`] when the file cannot be read or written, is not an ed25519 key, or is
/// readable by other users.
pub fn load_or_create(dir: &Path) -> Result<Keypair, Error> {
    let file = path(dir);
    let fail = |reason: String| Error::Identity {
        path: file.clone(),
        reason,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p2p_dir(dir))
        .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    match fs::read(&file) {
        Ok(bytes) => return decode(&file, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(format!("cannot read: {e}"))),
    }

    let keypair = Keypair::generate_ed25519();
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|e| fail(format!("cannot encode a new key: {e}")))?;
    let tmp = p2p_dir(dir).join(format!("identity.tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail(format!("cannot write a new key: {e}")));
    }
    // A hard link never replaces an existing file: whoever linked first wins, the other reads it.
    let linked = fs::hard_link(&tmp, &file);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(keypair),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = fs::read(&file).map_err(|e| fail(format!("cannot read: {e}")))?;
            decode(&file, &bytes)
        }
        Err(e) => Err(fail(format!("cannot create: {e}"))),
    }
}

fn decode(file: &Path, bytes: &[u8]) -> Result<Keypair, Error> {
    let fail = |reason: String| Error::Identity {
        path: file.to_owned(),
        reason,
    };
    let mode = fs::metadata(file)
        .map_err(|e| fail(format!("cannot stat: {e}")))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "is readable by other users (mode {:o}); run `chmod 600` on it",
            mode & 0o777
        )));
    }
    let keypair = Keypair::from_protobuf_encoding(bytes).map_err(|e| {
        fail(format!(
            "not a libp2p key ({e}); delete it to make a new one"
        ))
    })?;
    // Peer ids of ed25519 keys inline the public key, which is what lets any consumer check a
    // manifest's signature from the producer id alone.
    if keypair.clone().try_into_ed25519().is_err() {
        return Err(fail(
            "not an ed25519 key; delete it to make a new one".into(),
        ));
    }
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let first = load_or_create(dir.path())?;
        let again = load_or_create(dir.path())?;
        assert_eq!(first.public(), again.public());
        let mode = fs::metadata(path(dir.path()))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }

    #[test]
    fn garbage_and_loose_permissions_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        load_or_create(dir.path())?;
        let file = path(dir.path());
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;
        let message = load_or_create(dir.path()).err().map(|e| e.to_string());
        assert!(message.unwrap_or_default().contains("chmod 600"));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
        fs::write(&file, b"not a key")?;
        let message = load_or_create(dir.path()).err().map(|e| e.to_string());
        assert!(message.unwrap_or_default().contains("not a libp2p key"));
        Ok(())
    }
}
