//! `faults`: see the crate docs.
