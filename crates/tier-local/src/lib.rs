//! Local tier (being written).
