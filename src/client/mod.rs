//! `client`: see the crate docs.
