//! `load`: see the crate docs.
