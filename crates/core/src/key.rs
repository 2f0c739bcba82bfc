//! Cache keys: everything that makes two `gh` calls different answers ([`KeyInput`]), hashed
//! with a canonical, versioned encoding into the [`CacheKey`] that every tier indexes by.

/// Version of the key encoding. Bump it when [`KeyInput::encode`] changes, so old entries miss.
pub const KEY_VERSION: u8 = 1;

/// How the user consumes gh's output: it changes what gh prints, so it is part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputMode {
    /// stdout is a pipe or a file: gh prints machine-friendly output.
    Pipe,
    /// stdout is a terminal of this many columns: gh prints colours and tables.
    Tty {
        /// Terminal width in columns.
        width: u16,
    },
}

/// Everything that makes two `gh` calls different answers. Hashed into a [`CacheKey`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyInput {
    /// GitHub host (`github.com`, or `GH_HOST`).
    pub host: String,
    /// Who is asking (see [`crate::context::scope`]). Entries never cross scopes.
    pub scope: String,
    /// Repository context gh would use (`owner/name`, lowercase), or empty when there is none.
    pub repo: String,
    /// gh's arguments after normalisation (see [`crate::policy::Cacheable::key_argv`]).
    pub argv: Vec<String>,
    /// Pipe or terminal width.
    pub output: OutputMode,
}

impl KeyInput {
    /// Canonical, versioned, length-prefixed encoding: no two different inputs encode alike.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"ghcache-key");
        out.push(KEY_VERSION);
        for field in [&self.host, &self.scope, &self.repo] {
            put_bytes(&mut out, field.as_bytes());
        }
        out.extend_from_slice(&(self.argv.len() as u64).to_le_bytes());
        for arg in &self.argv {
            put_bytes(&mut out, arg.as_bytes());
        }
        match self.output {
            OutputMode::Pipe => out.push(0),
            OutputMode::Tty { width } => {
                out.push(1);
                out.extend_from_slice(&width.to_le_bytes());
            }
        }
        out
    }

    /// The key of this input.
    pub fn key(&self) -> CacheKey {
        CacheKey(*blake3::hash(&self.encode()).as_bytes())
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The blake3 hash of a [`KeyInput`]: what every tier indexes entries by. Its hex form names
/// files, SQL rows and DHT records.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

crate::hex::hex_id!(CacheKey);

// The swarm key's text form reads and writes its hex through these paths.
pub(crate) use crate::hex::{encode as hex, parse32 as parse_hex32};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input() -> impl Strategy<Value = KeyInput> {
        (
            "[a-z.]{0,12}",
            "[a-z:]{0,8}",
            "[a-z/]{0,8}",
            proptest::collection::vec("[a-z= -]{0,6}", 0..5),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(|(host, scope, repo, argv, width)| KeyInput {
                host,
                scope,
                repo,
                argv,
                output: width.map_or(OutputMode::Pipe, |width| OutputMode::Tty { width }),
            })
    }

    proptest! {
        #[test]
        fn keys_are_stable(a in input()) {
            prop_assert_eq!(a.key(), a.clone().key());
        }

        #[test]
        fn keys_differ_when_any_input_differs(a in input(), b in input()) {
            prop_assert_eq!(a == b, a.key() == b.key());
        }

        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>()) {
            let key = CacheKey(bytes);
            prop_assert_eq!(CacheKey::from_hex(&key.to_hex()), Some(key));
        }
    }

    #[test]
    fn field_boundaries_are_part_of_the_key() {
        let base = KeyInput {
            host: "github.com".into(),
            scope: "a".into(),
            repo: "o/r".into(),
            argv: vec!["pr".into(), "list".into()],
            output: OutputMode::Pipe,
        };
        let shifted = KeyInput {
            argv: vec!["prlist".into()],
            ..base.clone()
        };
        assert_ne!(base.key(), shifted.key());
        let tty = KeyInput {
            output: OutputMode::Tty { width: 80 },
            ..base.clone()
        };
        assert_ne!(base.key(), tty.key());
    }
}
