//! `sim`: see the crate docs.
