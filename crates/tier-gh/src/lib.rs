//! gh origin (being written).
