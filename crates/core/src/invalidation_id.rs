//! The name every machine gives one invalidation.

/// Names one invalidation the same way on every machine that applies it: a hash of what it
/// drops and of the time its issuer gave it (the writer's, the webhook's keeper's, the event's).
///
/// Why: an entry a peer made just after a write is refused for the clock skew after it, as the
/// producer's clock may run ahead, so every runner fetched again after each write. An entry that
/// names the last invalidation its producer had seen ([`crate::Manifest::after`]) is known to have been
/// fetched after that write, whatever the clocks say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidationId(pub u64);
