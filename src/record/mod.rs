//! `record`: see the crate docs.
