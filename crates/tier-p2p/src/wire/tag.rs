//! The first byte of every message, peers' and local commands' alike.
//!
//! They live in one file so that a reviewer sees at once that no two are equal: tags are
//! distinct across message kinds so that a message sent on the wrong channel is rejected, not
//! misread (a test of the wire module checks it, and that each is fuzzed).

pub(super) const TAG_ANNOUNCE: u8 = 0x11;
pub(super) const TAG_INVALIDATE: u8 = 0x12;
pub(super) const TAG_BUDGET: u8 = 0x13;
pub(super) const TAG_FETCH: u8 = 0x21;
pub(super) const TAG_FOUND: u8 = 0x22;
pub(super) const TAG_NOT_FOUND: u8 = 0x23;
pub(super) const TAG_DIRECTORY_ASK: u8 = 0x24;
pub(super) const TAG_DIRECTORY: u8 = 0x25;
pub(super) const TAG_PRESENT: u8 = 0x26;
pub(super) const TAG_GRANTED: u8 = 0x27;
pub(super) const TAG_REFUSED: u8 = 0x28;
pub(super) const TAG_DIAL_BACK: u8 = 0x29;
pub(super) const TAG_DIALED: u8 = 0x2a;
pub(super) const TAG_NOT_DIALED: u8 = 0x2b;
pub(super) const TAG_NOT_CHECKED: u8 = 0x2c;
pub(super) const TAG_CATCH_UP: u8 = 0x2d;
pub(super) const TAG_CAUGHT_UP: u8 = 0x2e;
pub(super) const TAG_GET: u8 = 0x31;
pub(super) const TAG_PUBLISH: u8 = 0x32;
pub(super) const TAG_CTL_INVALIDATE: u8 = 0x33;
pub(super) const TAG_STATUS: u8 = 0x34;
pub(super) const TAG_MANIFEST: u8 = 0x35;
pub(super) const TAG_STORE: u8 = 0x36;
pub(super) const TAG_CTL_BUDGET: u8 = 0x37;
pub(super) const TAG_HIT: u8 = 0x41;
pub(super) const TAG_MISS: u8 = 0x42;
pub(super) const TAG_OK: u8 = 0x43;
pub(super) const TAG_STATUS_TEXT: u8 = 0x44;
pub(super) const TAG_ERROR: u8 = 0x45;
pub(super) const TAG_MANIFEST_BYTES: u8 = 0x46;
