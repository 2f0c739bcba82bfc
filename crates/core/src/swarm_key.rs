//! The pre-shared key of a private swarm, in the IPFS `swarm.key` text format.
//!
//! The daemon's transport needs it to connect at all, and the IPFS tier derives from it the key
//! that seals bodies: both read the same text, so its format lives here, without I/O (the
//! composition crate reads key files and checks who can read them).

use std::fmt;
use std::str::FromStr;

const HEADER: &str = "/key/swarm/psk/1.0.0/";
const ENCODING: &str = "/base16/";

/// The 32-byte secret every member of a private swarm holds.
///
/// Text form (the file `swarm.key` that go-ipfs/Kubo also read):
/// `/key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits>\n`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SwarmKey([u8; 32]);

impl SwarmKey {
    /// A key from raw bytes (32 random bytes for a new one).
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
    /// A line naming the first line of the text that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim);
        if lines.next() != Some(HEADER) {
            return Err(format!("first line must be `{HEADER}`"));
        }
        if lines.next() != Some(ENCODING) {
            return Err(format!(
                "second line must be `{ENCODING}` (only base16 keys are supported)"
            ));
        }
        let hex = lines.next().unwrap_or("");
        if lines.any(|l| !l.is_empty()) {
            return Err("unexpected text after the key".to_owned());
        }
        crate::key::parse_hex32(hex)
            .map(SwarmKey)
            .ok_or_else(|| "third line must be 64 hex digits".to_owned())
    }
}

impl FromStr for SwarmKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SwarmKey::parse(s)
    }
}

impl fmt::Display for SwarmKey {
    /// The `swarm.key` text form: what a key file holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        writeln!(f, "{ENCODING}")?;
        writeln!(f, "{}", crate::key::hex(&self.0))
    }
}

impl fmt::Debug for SwarmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.write_str("SwarmKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_and_bad_lines_are_named() {
        let key = SwarmKey::from_bytes([0xab; 32]);
        let text = key.to_string();
        assert_eq!(SwarmKey::parse(&text), Ok(key));
        assert_eq!(SwarmKey::parse(&format!("{text}\n  \n")), Ok(key));
        assert!(SwarmKey::parse("/key/swarm/psk/1.0.0/\n/base64/\nxx")
            .is_err_and(|e| e.starts_with("second line")));
        assert!(SwarmKey::parse("nope").is_err_and(|e| e.starts_with("first line")));
        let short = text.replace(&"ab".repeat(32), "ab");
        assert!(SwarmKey::parse(&short).is_err_and(|e| e.starts_with("third line")));
        assert_eq!(format!("{key:?}"), "SwarmKey(..)");
    }
}
