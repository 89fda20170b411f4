//! `host`: see the crate docs.
