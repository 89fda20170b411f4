//! Where each key of a TOML document is: a small scanner that records, for every key, its
//! path (`load.stages.#1.duration`) and byte ranges, so errors found after deserialisation
//! can name a line, and byte offsets from the parser can name a key.
//!
//! It understands exactly as much TOML as locating keys needs: table and array-of-tables
//! headers, dotted and quoted keys, inline tables, arrays, the four string forms and comments.
//! It does not check the document (the `toml` crate does that) and is lenient: on text it
//! cannot follow it skips to the next line, so it never fails and never panics. (`toml`
//! 0.8's `Spanned` was not used for this because it fails on values that carry no span,
//! such as the implicit tables of dotted keys.)

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// One step in a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    /// A table key.
    Key(String),
    /// An array element, counted from 0.
    Index(usize),
}

/// A key path, e.g. `[load] stages #2 duration`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    /// The path of a top-level key or section.
    pub(crate) fn root(key: &str) -> Self {
        Self(vec![Seg::Key(key.to_owned())])
    }

    /// This path extended by a key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.to_owned()));
        Self(v)
    }

    /// This path extended by an array index (from 0).
    pub(crate) fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    /// The last key name, if the path ends in a key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The path without its last step.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    fn starts_with(&self, prefix: &Self) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

/// Shows `seed`, `[load] rate`, `[fleet.skew] kind`, `[load] stages #2 duration`,
/// `[[faults]] #3 probability`: the section the way the file writes its header, then the key;
/// array elements are counted from 1.
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let segs = &self.0;
        let keys: Vec<&str> = segs
            .iter()
            .map_while(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .collect();
        let rest = &segs[keys.len()..];
        match (keys.split_last(), rest.first()) {
            (None, _) => return f.write_str("(document)"),
            (Some((last, [])), None) => return f.write_str(last),
            (Some((last, [])), Some(Seg::Index(i))) => write!(f, "[[{last}]] #{}", i + 1)?,
            (Some((last, section)), _) => write!(f, "[{}] {last}", section.join("."))?,
        }
        // A leading index was written with the array-of-tables header above.
        let rest = match (keys.len(), rest.first()) {
            (1, Some(Seg::Index(_))) => &rest[1..],
            _ => rest,
        };
        let mut after_index = true;
        for seg in rest {
            match seg {
                Seg::Index(i) => {
                    write!(f, " #{}", i + 1)?;
                    after_index = true;
                }
                Seg::Key(k) => {
                    f.write_str(if after_index { " " } else { "." })?;
                    f.write_str(k)?;
                    after_index = false;
                }
            }
        }
        Ok(())
    }
}

/// A 1-based line and column (in characters) in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the text, and to a char boundary).
    pub fn of(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self { line, column }
    }
}

#[derive(Debug, Clone)]
struct KeyEntry {
    path: KeyPath,
    key: Range<usize>,
    value: Range<usize>,
}

/// Every key of a document with its byte ranges.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyMap {
    entries: Vec<KeyEntry>,
}

impl KeyMap {
    /// Scans `text`. Never fails; text it cannot follow contributes no entries.
    pub(crate) fn scan(text: &str) -> Self {
        let mut s = Scanner {
            b: text.as_bytes(),
            text,
            entries: Vec::new(),
        };
        s.document();
        Self { entries: s.entries }
    }

    /// Byte offset where `path` is written: its key, else the first key written under it,
    /// else the nearest ancestor that is written; `None` if nothing of it is in the file.
    pub(crate) fn offset_of(&self, path: &KeyPath) -> Option<usize> {
        let mut p = path.clone();
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == p) {
                return Some(e.key.start);
            }
            if let Some(e) = self.entries.iter().find(|e| e.path.starts_with(&p)) {
                return Some(e.key.start);
            }
            p = p.parent()?;
            if p.0.is_empty() {
                return None;
            }
        }
    }

    /// True if `path` itself is written in the document.
    #[cfg(test)]
    pub(crate) fn contains(&self, path: &KeyPath) -> bool {
        self.entries.iter().any(|e| &e.path == path)
    }

    /// The bytes of the deepest entry covering `offset`, from its key to the end of its
    /// value (for a section header: to the next header).
    pub(crate) fn entry_span_at(&self, offset: usize) -> Option<Range<usize>> {
        let covers = |r: &Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
        self.entries
            .iter()
            .filter(|e| covers(&e.key) || covers(&e.value))
            .max_by_key(|e| (e.path.0.len(), e.key.start))
            .map(|e| e.key.start.min(e.value.start)..e.key.end.max(e.value.end))
    }

    /// The deepest key whose key or value covers byte `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> Option<KeyPath> {
        let covers = |r: &Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
        self.entries
            .iter()
            .filter(|e| covers(&e.key) || covers(&e.value))
            .max_by_key(|e| (e.path.0.len(), e.key.start))
            .map(|e| e.path.clone())
    }
}

/// One part of a dotted key and where it is written.
struct KeyPart {
    name: String,
    span: Range<usize>,
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    entries: Vec<KeyEntry>,
}

impl Scanner<'_> {
    fn document(&mut self) {
        let mut table = KeyPath::default();
        // Element counts of arrays of tables, by path (with parent indices resolved).
        let mut array_tables: HashMap<KeyPath, usize> = HashMap::new();
        // Index of the current header's entry, whose value range runs to the next header.
        let mut open_header: Option<usize> = None;
        let mut i = 0;
        while i < self.b.len() {
            i = self.skip_blank(i);
            if i >= self.b.len() {
                break;
            }
            let line_start = i;
            if self.b[i] == b'[' {
                let double = self.b.get(i + 1) == Some(&b'[');
                let key_start = self.skip_ws(i + if double { 2 } else { 1 });
                let Some((keys, key_end)) = self.key(key_start) else {
                    i = self.next_line(i);
                    continue;
                };
                let path = self.resolve_header(&keys, &array_tables);
                let path = if double {
                    let n = array_tables.entry(path.clone()).or_insert(0);
                    *n += 1;
                    path.index(*n - 1)
                } else {
                    path
                };
                if let Some(h) = open_header.take() {
                    self.entries[h].value.end = line_start;
                }
                let key_range = key_start..key_end;
                self.entries.push(KeyEntry {
                    path: path.clone(),
                    key: key_range,
                    // From the `[`, so a parser error spanning the header lands here.
                    value: line_start..self.b.len(),
                });
                open_header = Some(self.entries.len() - 1);
                table = path;
                i = self.next_line(key_end);
                continue;
            }
            let Some((keys, key_end)) = self.key(i) else {
                i = self.next_line(i);
                continue;
            };
            let after = self.skip_ws(key_end);
            if self.b.get(after) != Some(&b'=') {
                i = self.next_line(i);
                continue;
            }
            let path = keys.iter().fold(table.clone(), |p, part| p.key(&part.name));
            let key_range = keys.first().map_or(i, |k| k.span.start)..key_end;
            let end = self.value(self.skip_ws(after + 1), &path, key_range);
            i = self.next_line(end);
        }
    }

    /// Header keys → path, inserting the current element index after any prefix that is an
    /// array of tables (`[[fleet.products]]` under `[[fleet]]` would nest; ours never do, but
    /// the scanner must not mislabel them).
    fn resolve_header(&self, keys: &[KeyPart], array_tables: &HashMap<KeyPath, usize>) -> KeyPath {
        let mut path = KeyPath::default();
        for (n, part) in keys.iter().enumerate() {
            path = path.key(&part.name);
            if n + 1 < keys.len()
                && let Some(count) = array_tables.get(&path)
            {
                path = path.index(count.saturating_sub(1));
            }
        }
        path
    }

    /// A value starting at `i`; records an entry for `path` and for everything inside.
    /// Returns the offset just past the value.
    fn value(&mut self, i: usize, path: &KeyPath, key: Range<usize>) -> usize {
        let end = match self.b.get(i) {
            Some(b'[') => self.array(i, path),
            Some(b'{') => self.inline_table(i, path),
            Some(b'"') | Some(b'\'') => self.string(i),
            Some(_) => self.scalar(i),
            None => i,
        };
        self.entries.push(KeyEntry {
            path: path.clone(),
            key,
            value: i..end,
        });
        end
    }

    fn array(&mut self, open: usize, path: &KeyPath) -> usize {
        let mut i = open + 1;
        let mut index = 0;
        loop {
            i = self.skip_blank(i);
            match self.b.get(i) {
                None => return i,
                Some(b']') => return i + 1,
                Some(b',') => {
                    i += 1;
                    continue;
                }
                Some(_) => {}
            }
            let start = i;
            let end = self.value(i, &path.index(index), start..start);
            // The element's "key" is the element itself, so an error in it points there.
            if let Some(last) = self.entries.last_mut() {
                last.key = start..end;
            }
            index += 1;
            if end == start {
                return end;
            }
            i = end;
        }
    }

    fn inline_table(&mut self, open: usize, path: &KeyPath) -> usize {
        let mut i = open + 1;
        loop {
            i = self.skip_blank(i);
            match self.b.get(i) {
                None => return i,
                Some(b'}') => return i + 1,
                Some(b',') => {
                    i += 1;
                    continue;
                }
                Some(_) => {}
            }
            let Some((keys, key_end)) = self.key(i) else {
                return self.next_line(i);
            };
            let eq = self.skip_ws(key_end);
            if self.b.get(eq) != Some(&b'=') {
                return self.next_line(i);
            }
            let sub = keys.iter().fold(path.clone(), |p, part| p.key(&part.name));
            let key_range = i..key_end;
            let end = self.value(self.skip_ws(eq + 1), &sub, key_range);
            if end <= i {
                return end;
            }
            i = end;
        }
    }

    fn string(&self, i: usize) -> usize {
        let quote = self.b[i];
        let triple = self.b.get(i + 1) == Some(&quote) && self.b.get(i + 2) == Some(&quote);
        let mut j = i + if triple { 3 } else { 1 };
        while j < self.b.len() {
            let c = self.b[j];
            if c == b'\\' && quote == b'"' {
                j += 2;
                continue;
            }
            if c == quote {
                if !triple {
                    return j + 1;
                }
                if self.b.get(j + 1) == Some(&quote) && self.b.get(j + 2) == Some(&quote) {
                    // Up to two more quotes may end the content (`""""` is legal TOML).
                    let mut end = j + 3;
                    while end < self.b.len() && self.b[end] == quote && end < j + 5 {
                        end += 1;
                    }
                    return end;
                }
            }
            if c == b'\n' && !triple {
                return j;
            }
            j += 1;
        }
        self.b.len()
    }

    fn scalar(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.b.len() && !matches!(self.b[j], b',' | b']' | b'}' | b'\n' | b'\r' | b'#') {
            j += 1;
        }
        while j > i && matches!(self.b[j - 1], b' ' | b'\t') {
            j -= 1;
        }
        j
    }

    /// A dotted key: bare, "basic" or 'literal' parts separated by dots.
    fn key(&self, mut i: usize) -> Option<(Vec<KeyPart>, usize)> {
        let mut parts = Vec::new();
        loop {
            i = self.skip_ws(i);
            let start = i;
            let name = match self.b.get(i)? {
                b'"' | b'\'' => {
                    let end = self.string(i);
                    let inner = self.text.get(i + 1..end.saturating_sub(1))?;
                    i = end;
                    inner.to_owned()
                }
                c if is_bare(*c) => {
                    while i < self.b.len() && is_bare(self.b[i]) {
                        i += 1;
                    }
                    self.text.get(start..i)?.to_owned()
                }
                _ => return None,
            };
            parts.push(KeyPart {
                name,
                span: start..i,
            });
            let after = self.skip_ws(i);
            if self.b.get(after) == Some(&b'.') {
                i = after + 1;
            } else {
                return Some((parts, i));
            }
        }
    }

    fn skip_ws(&self, mut i: usize) -> usize {
        while i < self.b.len() && matches!(self.b[i], b' ' | b'\t') {
            i += 1;
        }
        i
    }

    /// Skips spaces, newlines and comments.
    fn skip_blank(&self, mut i: usize) -> usize {
        while i < self.b.len() {
            match self.b[i] {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => i = self.line_end(i),
                _ => break,
            }
        }
        i
    }

    fn line_end(&self, i: usize) -> usize {
        self.b[i.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |p| i + p)
    }

    /// The start of the line after the one holding `i`, or `i` if `i` is already at a line
    /// start after a value that ended the line.
    fn next_line(&self, i: usize) -> usize {
        (self.line_end(i) + 1).min(self.b.len()).max(i + 1)
    }
}

fn is_bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(parts: &[&str]) -> KeyPath {
        KeyPath(
            parts
                .iter()
                .map(|p| match p.strip_prefix('#') {
                    Some(n) => Seg::Index(n.parse().unwrap()),
                    None => Seg::Key((*p).to_owned()),
                })
                .collect(),
        )
    }

    const DOC: &str = r#"# comment
name = "x"   # trailing
load.rate = 5

[fleet]
size = 10
products = [
  { product = "A", weight = 2 },  # one
  { product = "B, }", weight = 1 },
]
"quoted key" = 'lit'

[fleet.skew]
kind = "uniform"
offsets = ["-1h", "+1h"]

[[faults]]
kind = "reset"
[[faults]]
kind = """delay
multi"""
window = ["20s", "40s"]
"#;

    fn line_of(map: &KeyMap, parts: &[&str]) -> usize {
        Position::of(DOC, map.offset_of(&k(parts)).unwrap()).line
    }

    #[test]
    fn finds_lines_of_keys() {
        let map = KeyMap::scan(DOC);
        assert_eq!(line_of(&map, &["name"]), 2);
        assert_eq!(line_of(&map, &["load", "rate"]), 3);
        assert_eq!(line_of(&map, &["fleet"]), 5);
        assert_eq!(line_of(&map, &["fleet", "size"]), 6);
        assert_eq!(line_of(&map, &["fleet", "products", "#0", "weight"]), 8);
        assert_eq!(line_of(&map, &["fleet", "products", "#1", "weight"]), 9);
        assert_eq!(line_of(&map, &["fleet", "quoted key"]), 11);
        assert_eq!(line_of(&map, &["fleet", "skew", "offsets", "#1"]), 15);
        assert_eq!(line_of(&map, &["faults", "#0", "kind"]), 18);
        assert_eq!(line_of(&map, &["faults", "#1", "window", "#1"]), 22);
    }

    #[test]
    fn missing_keys_fall_back_to_section_or_first_child() {
        let map = KeyMap::scan(DOC);
        // Not written: falls back to its section's header.
        assert_eq!(line_of(&map, &["fleet", "vm_fraction"]), 5);
        // `load` has no header; its first key is used.
        assert_eq!(line_of(&map, &["load"]), 3);
        assert_eq!(line_of(&map, &["load", "duration"]), 3);
        assert_eq!(map.offset_of(&k(&["gates", "x"])), None);
        assert!(map.contains(&k(&["faults", "#1", "window"])));
        assert!(!map.contains(&k(&["faults", "#2"])));
    }

    #[test]
    fn names_the_key_at_an_offset() {
        let map = KeyMap::scan(DOC);
        let at = |needle: &str| map.path_at(DOC.find(needle).unwrap());
        assert_eq!(
            at("weight = 1"),
            Some(k(&["fleet", "products", "#1", "weight"]))
        );
        assert_eq!(at("\"+1h\""), Some(k(&["fleet", "skew", "offsets", "#1"])));
        assert_eq!(at("multi"), Some(k(&["faults", "#1", "kind"])));
        assert_eq!(at("rate"), Some(k(&["load", "rate"])));
    }

    #[test]
    fn displays_paths_as_the_file_writes_them() {
        assert_eq!(k(&["seed"]).to_string(), "seed");
        assert_eq!(k(&["load", "rate"]).to_string(), "[load] rate");
        assert_eq!(
            k(&["load", "stages", "#1", "duration"]).to_string(),
            "[load] stages #2 duration"
        );
        assert_eq!(
            k(&["faults", "#2", "probability"]).to_string(),
            "[[faults]] #3 probability"
        );
        assert_eq!(
            k(&["fleet", "skew", "kind"]).to_string(),
            "[fleet.skew] kind"
        );
        assert_eq!(
            k(&["fleet", "products", "#0", "weight"]).to_string(),
            "[fleet] products #1 weight"
        );
        assert_eq!(
            k(&["gates", "latency", "#0"]).to_string(),
            "[gates] latency #1"
        );
    }

    #[test]
    fn positions_count_characters() {
        let text = "a = \"é\"\nbb = 1";
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(
            Position::of(text, text.find("1").unwrap()),
            Position { line: 2, column: 6 }
        );
        assert_eq!(Position::of(text, 6), Position { line: 1, column: 6 }); // inside "é"
        assert_eq!(Position::of(text, 999), Position { line: 2, column: 7 });
    }

    proptest::proptest! {
        #[test]
        fn scan_never_panics(s in "[\\[\\]{}=,.\"'#a-z0-9 \n]{0,80}") {
            let map = KeyMap::scan(&s);
            for i in 0..s.len() + 2 {
                let _ = map.path_at(i);
            }
        }
    }
}
