//! The check that a delivery comes from GitHub: `X-Hub-Signature-256`.
//!
//! GitHub signs each delivery's raw body with the webhook's secret and sends
//! `X-Hub-Signature-256: sha256=<64 lowercase hex digits>` (HMAC-SHA256). Anyone who can reach
//! the receiver could otherwise make the swarm drop what it holds, so nothing of a delivery is
//! read before this check passes. The comparison is the `hmac` crate's, in constant time: a
//! comparison that stops at the first wrong byte tells an attacker, by its timing, how many
//! leading bytes of a forged signature are right.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

/// The header's prefix before the hex digest.
const PREFIX: &str = "sha256=";

/// A webhook's secret, as set in GitHub's webhook settings.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret in `text`, without the line end a file or `echo` leaves (GitHub's setting
    /// holds none).
    ///
    /// # Errors
    /// [`Error::EmptySecret`] when nothing is left: GitHub signs with an empty secret as with
    /// none, and a receiver that took one would take anyone's deliveries.
    pub fn from_text(text: &str) -> Result<Secret, Error> {
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(Error::EmptySecret);
        }
        Ok(Secret(secret.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length; the error is for fixed-length MACs only.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"))
    }

    /// Whether `header` (the `X-Hub-Signature-256` value) is this secret's signature of `body`.
    pub fn signed(&self, body: &[u8], header: Option<&str>) -> bool {
        let Some(hex) = header.and_then(|h| h.trim().strip_prefix(PREFIX)) else {
            return false;
        };
        let Some(digest) = decode_hex(hex) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&digest).is_ok()
    }

    /// The header GitHub would send with `body`: for tests and for the bench's sender.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut header = String::with_capacity(PREFIX.len() + 64);
        header.push_str(PREFIX);
        for byte in digest {
            header.push_str(&format!("{byte:02x}"));
        }
        header
    }
}

/// The bytes of a hex string of a SHA-256 digest's length; `None` for anything else.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::from_text(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn githubs_documented_example_verifies() {
        // GitHub's documentation: secret "It's a Secret to Everybody", payload "Hello, World!".
        let secret = secret("It's a Secret to Everybody\n");
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(secret.signed(b"Hello, World!", Some(header)));
        assert_eq!(secret.sign(b"Hello, World!"), header);
        assert!(!secret.signed(b"Hello, World?", Some(header)));
    }

    #[test]
    fn anything_but_the_right_signature_is_refused() {
        let secret = secret("s3cret");
        let right = secret.sign(b"{}");
        assert!(secret.signed(b"{}", Some(&right)));
        assert!(!secret.signed(b"{}", None));
        assert!(!secret.signed(b"{}", Some("")));
        assert!(!secret.signed(b"{}", Some(right.trim_start_matches(PREFIX))));
        assert!(!secret.signed(b"{}", Some(&right[..right.len() - 2])));
        assert!(!secret.signed(b"{}", Some(&format!("{right}00"))));
        assert!(!secret.signed(b"{}", Some(&right.replace("sha256", "sha1"))));
        let other = Secret::from_text("other").unwrap_or_else(|e| panic!("{e}"));
        assert!(!secret.signed(b"{}", Some(&other.sign(b"{}"))));
        let not_hex = format!("{PREFIX}{}", "zz".repeat(32));
        assert!(!secret.signed(b"{}", Some(&not_hex)));
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(Secret::from_text("").is_err());
        assert!(Secret::from_text("\n").is_err());
        assert!(format!("{:?}", secret("x")).contains(".."));
    }
}
