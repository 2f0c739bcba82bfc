//! [`ScopeId`]: the id of a scope, as manifests, messages and topics carry it.
//!
//! A scope is who is asking (see [`crate::context::scope`]); entries never cross scopes. The
//! scope string itself (a login, `actions:owner/repo`) stays on the machine: what travels is
//! its keyed blake3 hash, so peers can tell whether two entries are of one scope and nothing
//! else.

/// The blake3 key derivation context of scope ids: changing it changes every id.
const CONTEXT: &str = "ghcache scope id v1";

/// The id of a scope: a keyed blake3 hash of the scope string, 32 bytes. Gossip topics and IPFS
/// paths name scopes by its hex form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub [u8; 32]);

impl ScopeId {
    /// The id of `scope` (a scope string as [`crate::context::scope`] makes it).
    pub fn of(scope: &str) -> ScopeId {
        ScopeId(blake3::derive_key(CONTEXT, scope.as_bytes()))
    }
}

crate::hex::hex_id!(ScopeId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_id_is_the_keyed_hash_of_its_scope() {
        let team = ScopeId::of("team");
        assert_eq!(team, ScopeId::of("team"));
        assert_ne!(team, ScopeId::of("Team"));
        assert_ne!(team, ScopeId::of(""));
        // The derivation is part of every manifest and topic: it never changes silently.
        assert_eq!(
            team.0,
            blake3::derive_key("ghcache scope id v1", b"team"),
            "scope ids are derived with the v1 context"
        );
        assert_ne!(team.0, *blake3::hash(b"team").as_bytes());
    }

    #[test]
    fn debug_shows_a_short_prefix_and_display_the_whole_id() {
        let id = ScopeId([0xab; 32]);
        assert_eq!(format!("{id:?}"), "ScopeId(abababababab)");
        assert_eq!(id.to_string(), "ab".repeat(32));
        assert_eq!(id.short(), "abababababab");
        assert_eq!(id.as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn only_64_hex_digits_parse() {
        let id = ScopeId::of("team");
        assert_eq!(ScopeId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        for bad in [
            String::new(),
            "00".repeat(31),
            "00".repeat(33),
            format!("{}zz", "00".repeat(31)),
            format!("{}+1", "00".repeat(31)),
            format!("ÿÿ{}", "0".repeat(60)),
        ] {
            assert_eq!(ScopeId::from_hex(&bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>()) {
            let id = ScopeId(bytes);
            let text = id.to_hex();
            prop_assert_eq!(text.len(), 64);
            prop_assert_eq!(ScopeId::from_hex(&text), Some(id));
        }
    }
}
