//! What the daemon adds to the swarm key: a new random key, a private key file, and the key as
//! libp2p's private-network transport takes it.
//!
//! The key itself and its `swarm.key` text form are core's ([`SwarmKey`]): the IPFS tier and
//! the composition crate read the same key without libp2p. What needs libp2p, randomness or a
//! file is here, as [`SwarmKeyExt`].

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use ghcache_core::swarm_key::SwarmKey;
use libp2p::pnet::PreSharedKey;

use crate::error::Error;

/// The daemon's side of a [`SwarmKey`]: connections without the key fail at the first
/// handshake, before any peer learns anything.
pub trait SwarmKeyExt: Sized {
    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    /// When the system's random source fails (it practically never does).
    fn generate() -> Result<Self, Error>;

    /// Writes the key to a new file at `path` that only its owner can read (mode 0600).
    ///
    /// # Behavior
    /// Never replaces an existing file: a swarm key may be the only copy of the team's secret,
    /// and replacing it silently cuts this machine off from its swarm.
    ///
    /// # Errors
    /// [`Error::KeyFile`] when the file exists or cannot be written; nothing is left behind.
    fn write_new(&self, path: &Path) -> Result<(), Error>;

    /// The key as libp2p's pnet transport wants it.
    fn psk(&self) -> PreSharedKey;

    /// A fingerprint that identifies the key in logs without revealing it (same as go-libp2p's).
    fn fingerprint(&self) -> String;
}

impl SwarmKeyExt for SwarmKey {
    fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::SwarmKey {
            reason: format!("cannot get random bytes: {e}"),
        })?;
        Ok(SwarmKey::from_bytes(bytes))
    }

    fn write_new(&self, path: &Path) -> Result<(), Error> {
        let fail = |reason: String| Error::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    fail(
                        "it already exists and is not replaced (it may be the only copy of \
                          a swarm's key); remove it first, or choose another file"
                            .to_owned(),
                    )
                } else {
                    fail(format!("cannot create it: {e}"))
                }
            })?;
        let written = file
            .write_all(self.to_string().as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(path);
            return Err(fail(format!("cannot write it: {e}")));
        }
        Ok(())
    }

    fn psk(&self) -> PreSharedKey {
        PreSharedKey::new(*self.as_bytes())
    }

    fn fingerprint(&self) -> String {
        self.psk().fingerprint().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    /// Core's parse, its reason in the error the daemon reports.
    fn parse(text: &str) -> Result<SwarmKey, Error> {
        SwarmKey::parse(text).map_err(|reason| Error::SwarmKey { reason })
    }

    #[test]
    fn text_round_trips_and_matches_libp2p() -> Result<(), Error> {
        let key = SwarmKey::generate()?;
        let text = key.to_string();
        assert_eq!(parse(&text)?, key);
        // The same file must work with libp2p's own parser (and so with Kubo).
        let theirs = PreSharedKey::from_str(&text).map_err(|e| Error::SwarmKey {
            reason: e.to_string(),
        })?;
        assert_eq!(theirs, key.psk());
        Ok(())
    }

    #[test]
    fn two_generated_keys_differ() -> Result<(), Error> {
        assert_ne!(SwarmKey::generate()?, SwarmKey::generate()?);
        Ok(())
    }

    #[test]
    fn errors_say_what_is_wrong_and_how_to_fix_it() {
        let cases = [
            ("", "first line"),
            ("/key/swarm/psk/1.0.0/\n/base64/\nAAAA\n", "second line"),
            ("/key/swarm/psk/1.0.0/\n/base16/\nabcd\n", "64 hex digits"),
            (
                "/key/swarm/psk/1.0.0/\n/base16/\n00000000000000000000000000000000000000000000000000000000000000zz\n",
                "64 hex digits",
            ),
        ];
        for (text, needle) in cases {
            let message = parse(text).err().map(|e| e.to_string());
            let message = message.unwrap_or_default();
            assert!(message.contains(needle), "{message}");
            assert!(message.contains("ghcache swarm-key new"), "{message}");
        }
    }

    #[test]
    fn a_key_file_is_written_private_never_replaced_and_read_back(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("swarm.key");
        let key = SwarmKey::generate()?;
        key.write_new(&path)?;
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions())
                & 0o777,
            0o600
        );
        assert_eq!(parse(&std::fs::read_to_string(&path)?)?, key);
        let again = SwarmKey::generate()?
            .write_new(&path)
            .err()
            .map(|e| e.to_string());
        assert!(again.unwrap_or_default().contains("already exists"));
        assert_eq!(
            parse(&std::fs::read_to_string(&path)?)?,
            key,
            "the first key is kept"
        );
        Ok(())
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = SwarmKey::from_bytes([0xab; 32]);
        assert!(!format!("{key:?}").contains("abab"));
    }
}
