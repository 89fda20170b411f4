//! `scenario`: see the crate docs.
