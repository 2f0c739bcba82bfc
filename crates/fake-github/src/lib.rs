//! Fake GitHub (being written).
