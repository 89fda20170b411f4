//! ARCHITECTURE.md's dependency direction, checked against the code: each module's non-test
//! code names (`crate::module`) only modules of a lower rank in the chain, and the document's
//! table of what each module uses is what the code uses.
//!
//! Non-test code is each file of `src/MODULE.rs` / `src/MODULE/**` up to the `#[cfg(test)]`
//! of its test module, comment lines left out; files that are test modules themselves
//! (`tests.rs`, `tests/`) are left out whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The chain of ARCHITECTURE.md, lowest rank first; modules of one rank do not use each other.
const RANKS: &[&[&str]] = &[
    &["wire", "catalog", "procfs"],
    &["values", "netio"],
    &["sim", "host", "client"],
    &["discover"],
    &["faults", "record"],
    &["load"],
    &["scenario"],
    &["report"],
    &["run", "validate", "lifecycle"],
    &["cli"],
];

fn rank(module: &str) -> Option<usize> {
    RANKS.iter().position(|r| r.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The modules `text`'s non-test code names as `crate::NAME` (macros such as `crate::outln!`
/// are not modules).
fn uses_in(text: &str, out: &mut BTreeSet<String>) {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]") {
            // A test module declared here (`mod tests;`) is skipped; one written out here
            // (`mod tests {`) ends the file's non-test code.
            match lines.next() {
                Some(item) if item.trim_end().ends_with(';') => continue,
                _ => break,
            }
        }
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && !rest[name.len()..].starts_with('!') {
                out.insert(name);
            }
        }
    }
}

/// What each top-level module of `src/` uses, by its non-test code.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut map = BTreeMap::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.clone());
        }
        let set: &mut BTreeSet<String> = map.entry(name.clone()).or_default();
        for f in files {
            uses_in(&fs::read_to_string(&f).unwrap(), set);
        }
        set.remove(&name);
    }
    map
}

#[test]
fn every_module_uses_only_modules_of_a_lower_rank() {
    let mut wrong = Vec::new();
    for (module, used) in uses() {
        let Some(own) = rank(&module) else {
            wrong.push(format!("{module} is not in ARCHITECTURE.md's chain"));
            continue;
        };
        for u in used {
            match rank(&u) {
                Some(r) if r < own => {}
                _ => wrong.push(format!("{module} uses {u}")),
            }
        }
    }
    assert!(wrong.is_empty(), "against the direction: {wrong:?}");
}

#[test]
fn architecture_md_lists_what_each_module_uses() {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    // The rows of the table under "What the code's `use` lines say": `| module | a, b |`.
    let table = doc
        .split("| module | uses |")
        .nth(1)
        .expect("ARCHITECTURE.md has the table `| module | uses |`");
    let mut listed = BTreeMap::new();
    for line in table.lines().skip(2) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            break;
        }
        let used: BTreeSet<String> = cells[2]
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s != "—")
            .collect();
        listed.insert(cells[1].to_owned(), used);
    }
    assert_eq!(listed, uses(), "ARCHITECTURE.md's table against the code");
}
