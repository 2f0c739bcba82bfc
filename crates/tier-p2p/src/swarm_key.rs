//! The pre-shared key of a private swarm, in the IPFS `swarm.key` format.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;

use libp2p::pnet::PreSharedKey;

use crate::error::Error;

/// The 32-byte secret every member of a private swarm holds; connections without it fail at the
/// first handshake, before any peer learns anything.
///
/// Text form (the file `swarm.key` that go-ipfs/Kubo also read):
/// `/key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits>\n`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SwarmKey([u8; 32]);

impl SwarmKey {
    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    /// When the system's random source fails (it practically never does).
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::SwarmKey {
            reason: format!("cannot get random bytes: {e}"),
        })?;
        Ok(SwarmKey(bytes))
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SwarmKey(bytes)
    }

    /// The raw key: other secrets (the IPFS body key) are derived from it.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the `swarm.key` text form. Trailing whitespace and a final newline are accepted.
    ///
    /// # Errors
    /// [`Error::SwarmKey`] naming the first line that is wrong.
    pub fn parse(text: &str) -> Result<Self, Error> {
        ghcache_core::swarm_key::SwarmKey::parse(text)
            .map(|key| SwarmKey(*key.as_bytes()))
            .map_err(|reason| Error::SwarmKey { reason })
    }

    /// Writes the key to a new file at `path` that only its owner can read (mode 0600).
    ///
    /// # Behavior
    /// Never replaces an existing file: a swarm key may be the only copy of the team's secret,
    /// and replacing it silently cuts this machine off from its swarm.
    ///
    /// # Errors
    /// [`Error::KeyFile`] when the file exists or cannot be written; nothing is left behind.
    pub fn write_new(&self, path: &Path) -> Result<(), Error> {
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

    /// The key as libp2p's pnet transport wants it.
    pub(crate) fn psk(&self) -> PreSharedKey {
        PreSharedKey::new(self.0)
    }

    /// A fingerprint that identifies the key in logs without revealing it (same as go-libp2p's).
    pub fn fingerprint(&self) -> String {
        self.psk().fingerprint().to_string()
    }
}

impl FromStr for SwarmKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SwarmKey::parse(s)
    }
}

/// The full `swarm.key` text, secret included: this is what `ghcache swarm-key new` prints.
impl fmt::Display for SwarmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ghcache_core::swarm_key::SwarmKey::from_bytes(self.0).fmt(f)
    }
}

/// Never prints the secret, only its fingerprint.
impl fmt::Debug for SwarmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwarmKey(fingerprint {})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_matches_libp2p() -> Result<(), Error> {
        let key = SwarmKey::generate()?;
        let text = key.to_string();
        assert_eq!(SwarmKey::parse(&text)?, key);
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
            let message = SwarmKey::parse(text).err().map(|e| e.to_string());
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
        assert_eq!(SwarmKey::parse(&std::fs::read_to_string(&path)?)?, key);
        let again = SwarmKey::generate()?
            .write_new(&path)
            .err()
            .map(|e| e.to_string());
        assert!(again.unwrap_or_default().contains("already exists"));
        assert_eq!(
            SwarmKey::parse(&std::fs::read_to_string(&path)?)?,
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
