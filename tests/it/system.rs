//! Tests that need a system component: Chromium, root (for network namespaces), iproute2,
//! Slurm, a DNS server. `cargo test` must pass on a machine with only a Rust toolchain, so such a test
//! runs when its component is present and otherwise prints ONE line saying what is missing and
//! how to install it, then passes. Under `CI=true` a missing component is a failure instead:
//! CI installs everything (`.ci/run`), so a skip there would hide a broken check.
//!
//! The line is printed once per component and test process (past the harness's capture, so it
//! shows in `cargo test` output and CI logs), not once per test.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

/// A system component some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Component {
    /// What it is, for people: "Chromium (/usr/bin/chromium)".
    pub(crate) name: &'static str,
    /// How to get it.
    pub(crate) install: &'static str,
}

/// Debian's Chromium, for the report page checks.
pub(crate) const CHROMIUM: Component = Component {
    name: "Chromium (/usr/bin/chromium)",
    install: "apt-get install -y chromium fonts-dejavu-core (the list is .ci/packages-report.txt)",
};

/// iproute2's `ip` and `tc`, for the network-namespace tests.
#[allow(dead_code)] // Not every test module that includes this file uses every component.
pub(crate) const IPROUTE2: Component = Component {
    name: "iproute2 (ip, tc)",
    install: "apt-get install -y iproute2 (the list is .ci/packages-netns.txt)",
};

/// The right to create network namespaces: root, or CAP_SYS_ADMIN in a container.
#[allow(dead_code)]
pub(crate) const NETNS: Component = Component {
    name: "network namespaces (root or CAP_SYS_ADMIN)",
    install: "run the tests as root (sudo -E cargo test), or in a container with CAP_SYS_ADMIN",
};

/// A one-node Slurm cluster on loopback: Debian's slurm-wlm and munge, and root.
#[allow(dead_code)]
pub(crate) const SLURM: Component = Component {
    name: "Slurm (slurm-wlm, munge, and root)",
    install: "apt-get install -y slurm-wlm munge, and run the tests as root",
};

/// dnsmasq, the real DNS server the discovery tests ask.
#[allow(dead_code)]
pub(crate) const DNSMASQ: Component = Component {
    name: "dnsmasq (a DNS server on loopback)",
    install: "apt-get install -y dnsmasq-base",
};

/// What to do about a missing component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Print this line (once per component) and pass.
    Skip(String),
    /// Fail with this message: CI must have every component.
    Fail(String),
}

/// Whether the tests run in CI: `CI=true` (or `1`), as CI services set it.
pub(crate) fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

fn ci_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The decision for a test that needs `component`, which is missing because `why`.
pub(crate) fn decide(component: &Component, why: &str, ci: bool) -> Missing {
    let line = format!(
        "SKIPPED tests that need {}: {why}; to run them: {}",
        component.name, component.install
    );
    if ci {
        Missing::Fail(format!(
            "{line}. CI=true: a missing component is a failure, not a skip (.ci/run installs \
             every one)"
        ))
    } else {
        Missing::Skip(line)
    }
}

/// Called by a test whose `component` is missing (`why`): prints the skip line once per
/// component and returns, so the test can return early and pass.
///
/// # Panics
/// Under `CI=true`, with the reason and how to install the component.
pub(crate) fn missing(component: &Component, why: &str) {
    static SAID: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    match decide(component, why, in_ci()) {
        Missing::Fail(msg) => panic!("{msg}"),
        Missing::Skip(line) => {
            let first = SAID
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(component.name);
            if first {
                // Written to the handle, not through eprintln!, which the harness captures.
                let _ = writeln!(io::stderr(), "{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_recognised_as_ci_services_set_it() {
        assert!(ci_value(Some("true")));
        assert!(ci_value(Some("TRUE")));
        assert!(ci_value(Some("1")));
        assert!(!ci_value(Some("false")));
        assert!(!ci_value(Some("")));
        assert!(!ci_value(None));
    }

    #[test]
    fn a_missing_component_is_one_line_naming_it_and_its_install() {
        let Missing::Skip(line) = decide(&CHROMIUM, "/usr/bin/chromium is missing", false) else {
            panic!()
        };
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("Chromium (/usr/bin/chromium)"), "{line}");
        assert!(line.contains("/usr/bin/chromium is missing"), "{line}");
        assert!(line.contains("apt-get install -y chromium"), "{line}");
    }

    #[test]
    fn under_ci_a_missing_component_fails() {
        let Missing::Fail(msg) = decide(&CHROMIUM, "/usr/bin/chromium is missing", true) else {
            panic!()
        };
        assert!(msg.contains("CI=true"), "{msg}");
        assert!(msg.contains("apt-get install -y chromium"), "{msg}");
    }
}
