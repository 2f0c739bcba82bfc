//! Lowercase hex for the 32-byte ids that travel as text (cache keys, body digests, scope ids,
//! token hashes): one encoder, one parser, and [`hex_id!`], which gives an id type its text
//! forms, so that no two id types can disagree on how an id is written or read.

/// Lowercase hex of `bytes`, two digits a byte.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The 32 bytes that exactly 64 hex digits (either case) write; `None` for anything else.
pub(crate) fn parse32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The text forms of a 32-byte id, a tuple struct over `[u8; 32]`: `to_hex` and `from_hex`
/// (64 lowercase digits; either case parses), `short` (the first 12 digits, for log lines),
/// `as_bytes`, `Display` (the whole id) and `Debug` (`Name(short)`, so that a debug line does
/// not fill with ids).
macro_rules! hex_id {
    ($name:ident) => {
        impl $name {
            /// Lowercase hex, 64 characters: how the id is written in file names, SQL, topics,
            /// paths and records.
            pub fn to_hex(&self) -> String {
                $crate::hex::encode(&self.0)
            }

            /// Parses `to_hex` output (either case); `None` for anything else.
            pub fn from_hex(s: &str) -> Option<Self> {
                $crate::hex::parse32(s).map($name)
            }

            /// First 12 hex characters, for debug and log lines.
            pub fn short(&self) -> String {
                self.to_hex()[..12].to_owned()
            }

            /// The 32 bytes, as encodings and indexes store them.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

pub(crate) use hex_id;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Id([u8; 32]);
    hex_id!(Id);

    #[test]
    fn an_id_reads_back_and_debugs_short() {
        let id = Id([0x0f; 32]);
        assert_eq!(id.to_string(), "0f".repeat(32));
        assert_eq!(format!("{id:?}"), "Id(0f0f0f0f0f0f)");
        assert_eq!(id.as_bytes(), &[0x0f; 32]);
        assert_eq!(
            Id::from_hex(&id.to_hex().to_uppercase()).map(|i| i.0),
            Some(id.0)
        );
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>()) {
            prop_assert_eq!(parse32(&encode(&bytes)), Some(bytes));
        }
    }
}
