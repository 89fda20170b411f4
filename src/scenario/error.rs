//! Scenario errors: each names the file, the line and column, the key, what is wrong and,
//! where one helps, a hint. Parser errors from `toml` are rewritten into the same shape
//! (unknown keys get "did you mean" suggestions from the known key lists).

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::locate::{KeyMap, KeyPath, Position, Seg};
use super::raw::{SECTIONS, value_hint};

/// One problem in a scenario, e.g.
/// `scenarios/x.toml:12:1: [load] rate: must be > 0 (hint: rates are attempts per second)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file as given.
    pub file: PathBuf,
    /// Line and column in the file; `None` when the value came from a command-line flag or
    /// the file says nothing at that place (e.g. an empty file).
    pub position: Option<Position>,
    /// The key (`[load] rate`, `[[faults]] #2 window`) or the flag (`--rate`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Why a scenario could not become a plan. Either way nothing was started (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{}: cannot read the scenario: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file (or a flag) is wrong; every problem found, in file order.
    #[error("{}", display_all(.0))]
    Invalid(Vec<ScenarioError>),
}

impl Error {
    /// The problems, for callers that format them themselves (empty for `Read`).
    pub fn problems(&self) -> &[ScenarioError] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid(v) => v,
        }
    }
}

fn display_all(errors: &[ScenarioError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turns a `toml` error (syntax, unknown key, wrong type) into a [`ScenarioError`].
pub(crate) fn from_toml(
    err: &toml::de::Error,
    file: PathBuf,
    text: &str,
    map: &KeyMap,
) -> ScenarioError {
    let offset = err.span().map(|s| s.start);
    let position = offset.map(|o| Position::of(text, o));
    let path = offset.and_then(|o| map.path_at(o)).unwrap_or_default();
    let raw = err.message().trim();
    let (key, message, hint) = explain(raw, &path);
    ScenarioError {
        file,
        position,
        key,
        message,
        hint,
    }
}

/// Rewrites serde's messages into ours: (key shown, message, hint).
fn explain(raw: &str, path: &KeyPath) -> (String, String, Option<String>) {
    let quoted = backticked(raw);
    let key_shown = if path.0.is_empty() {
        String::new()
    } else {
        path.to_string()
    };
    if let Some(rest) = raw.strip_prefix("unknown field ") {
        let unknown = quoted.first().copied().unwrap_or("");
        let expected: Vec<&str> = if rest.contains("there are no fields") {
            Vec::new()
        } else {
            quoted.iter().skip(1).copied().collect()
        };
        let hint = key_suggestion(unknown, &expected, path);
        return (key_shown, format!("unknown key `{unknown}`"), Some(hint));
    }
    if raw.starts_with("unknown variant ") {
        let found = quoted.first().copied().unwrap_or("");
        let expected: Vec<&str> = quoted.iter().skip(1).copied().collect();
        let list = expected
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match closest(found, &expected) {
            Some(best) => format!("did you mean \"{best}\"? allowed: {list}"),
            None => format!("allowed: {list}"),
        };
        return (key_shown, format!("unknown value \"{found}\""), Some(hint));
    }
    if let Some(rest) = raw.strip_prefix("missing field ") {
        let field = backticked(rest).first().copied().unwrap_or("").to_owned();
        let hint = value_hint(&field).map(str::to_owned);
        let shown = if path.0.is_empty() {
            field.clone()
        } else {
            path.key(&field).to_string()
        };
        return (shown, format!("required key `{field}` is missing"), hint);
    }
    let hint = path.last_key().and_then(value_hint).map(str::to_owned);
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let message = format!(
            "wrong type: expected {}, found {}",
            plain_type(expected),
            plain_type(found)
        );
        return (key_shown, message, hint);
    }
    if let Some(rest) = raw.strip_prefix("invalid value: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let message = match expected {
            "u16" => format!("{found} is out of range (0 to 65535)"),
            "u32" => format!("{found} is out of range (0 to 4294967295)"),
            "u64" => format!("{found} must not be negative"),
            _ => format!("invalid value {found}, expected {}", plain_type(expected)),
        };
        return (key_shown, message, hint);
    }
    if raw.starts_with("duplicate key") {
        let message = raw.lines().next().unwrap_or(raw).to_owned();
        return (
            key_shown,
            message,
            Some("each key may appear once per table".to_owned()),
        );
    }
    // Syntax errors: toml's own words. The key under the error is not meaningful here.
    let message = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let hint = "the file is not valid TOML here; scenarios/README.md has examples".to_owned();
    (String::new(), message, Some(hint))
}

/// serde's type names in words a scenario author uses.
fn plain_type(t: &str) -> String {
    let t = t.trim();
    if t.starts_with("struct ") || t == "map" {
        return "a table".to_owned();
    }
    match t {
        "u16" | "u32" | "u64" | "i64" => "a whole number".to_owned(),
        "f64" => "a number".to_owned(),
        "sequence" | "a sequence" => "a list".to_owned(),
        "boolean" => "true or false".to_owned(),
        _ => t.to_owned(),
    }
}

/// "did you mean `x`?", or "`x` belongs in [section]", or the list of keys allowed here.
fn key_suggestion(unknown: &str, expected: &[&str], path: &KeyPath) -> String {
    if let Some(best) = closest(unknown, expected) {
        return format!("did you mean `{best}`?");
    }
    let here = section_of(path);
    let elsewhere: Vec<String> = SECTIONS
        .iter()
        .filter(|(s, keys)| *s != here && keys.contains(&unknown))
        .map(|(s, _)| {
            if s.is_empty() {
                "the top level".to_owned()
            } else {
                format!("[{s}]")
            }
        })
        .collect();
    if !elsewhere.is_empty() {
        return format!("`{unknown}` belongs in {}", elsewhere.join(" or "));
    }
    if expected.is_empty() {
        "this table takes no keys".to_owned()
    } else {
        format!("keys allowed here: {}", expected.join(", "))
    }
}

/// The `SECTIONS` name of the table holding the key at `path` (indices dropped).
fn section_of(path: &KeyPath) -> String {
    let parent = path.parent().unwrap_or_default();
    let keys: Vec<&str> = parent
        .0
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    keys.join(".")
}

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = match w.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    let typo = candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    // An abbreviation of exactly one candidate ("vol" for "volume").
    typo.or_else(|| {
        let mut prefixed = candidates
            .iter()
            .filter(|c| w.len() >= 3 && c.to_ascii_lowercase().starts_with(&w));
        match (prefixed.next(), prefixed.next()) {
            (Some(c), None) => Some(*c),
            _ => None,
        }
    })
}

/// Levenshtein distance counting an adjacent swap as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The words between backticks, in order.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_typos() {
        assert_eq!(edit_distance("duration", "duration"), 0);
        assert_eq!(edit_distance("durration", "duration"), 1);
        assert_eq!(edit_distance("duraiton", "duration"), 1);
        assert_eq!(edit_distance("rate", "seed"), 4);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn closest_only_suggests_plausible_typos() {
        let keys = ["duration", "rate", "attempts"];
        assert_eq!(closest("durration", &keys), Some("duration"));
        assert_eq!(closest("Rate", &keys), Some("rate"));
        assert_eq!(closest("rat", &keys), Some("rate"));
        assert_eq!(closest("xyz", &keys), None);
        assert_eq!(closest("seed", &keys), None);
        assert_eq!(closest("vol", &["all", "volume"]), Some("volume"));
        assert_eq!(closest("att", &keys), Some("attempts"));
        assert_eq!(closest("d", &["duration", "delay"]), None);
    }

    #[test]
    fn backticks_are_extracted_in_order() {
        assert_eq!(
            backticked("unknown field `x`, expected one of `a`, `b`"),
            vec!["x", "a", "b"]
        );
        assert!(backticked("no ticks").is_empty());
    }

    #[test]
    fn display_has_file_line_key_message_hint() {
        let e = ScenarioError {
            file: "scenarios/x.toml".into(),
            position: Some(Position {
                line: 12,
                column: 1,
            }),
            key: "[load] rate".into(),
            message: "must be > 0".into(),
            hint: Some("e.g. rate = 500".into()),
        };
        assert_eq!(
            e.to_string(),
            "scenarios/x.toml:12:1: [load] rate: must be > 0 (hint: e.g. rate = 500)"
        );
        let flag = ScenarioError {
            position: None,
            key: "--rate".into(),
            hint: None,
            ..e
        };
        assert_eq!(flag.to_string(), "scenarios/x.toml: --rate: must be > 0");
    }
}
