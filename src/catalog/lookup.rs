//! Finding a product the way admins name it: by edition name, by GVLK or by SKU ID; resolving
//! a family name; filtering the catalog for `kmsload products`.
//!
//! # Names
//!
//! The CSV names follow py-kms (spec 14.1), which is not how people type them: Windows 10 and
//! 11 share SKUs and appear as "Windows 10/11 Pro", Office rows read "Office Professional Plus
//! 2019" where admins say "Office 2019 ProPlus". Both sides are therefore reduced to a bag of
//! tokens and compared without regard to order:
//!
//! ```text
//! "Windows 10/11 Pro"              → windows {10|11} pro
//! "Windows 11 Professional"        → windows 11 pro            (matches: 11 ∈ {10|11})
//! "Office Professional Plus 2019"  → office pro plus 2019
//! "office 2019 proplus"            → office 2019 pro plus      (same bag: exact match)
//! "Windows 10/11 IoT Enterprise LTSC 2021-2024" → windows {10|11} iot enterprise ltsc {2021|2024}
//! ```
//!
//! Rules: lower case; anything but letters, digits, `.`, `/` and `-` separates tokens; numbers
//! joined by `/` or `-` become one token matching any of them; other words split at `/` and
//! `-`; synonyms are folded (`professional`→`pro`, `proplus`→`pro plus`, `win`→`windows`,
//! `ent`→`enterprise`, `std`→`standard`, `dc`/`datacentre`→`datacenter`, `edu`→`education`,
//! `prerelease`→`pre release`, `multisession`→`multi session`); glued versions are split
//! (`win10`, `server2019`, `office2019`, `2008r2`, `ws2019`→`windows server 2019`); the noise
//! words `microsoft`, `edition`, `for` ("Pro for Workstations"), `volume` and `vl` are dropped.
//!
//! Resolution ([`by_name`]): an exact match (same bag) wins; otherwise, among the rows that
//! contain every query token, the one with the fewest leftover tokens wins if it is the only
//! one. Leftover `windows`/`office`/`ltsc` cost little (admins drop them: "Server 2019
//! Standard", "Office Standard 2021" is the LTSC row, not Project Standard), leftover preview
//! words cost a lot (nobody means a preview without saying so: "Office 2021 ProPlus" is the
//! LTSC row, not "Office Professional Plus 2021 Preview"). A tie is
//! [`LookupError::Ambiguous`]; no row containing every token is
//! [`LookupError::UnknownProduct`], carrying up to five suggestions ranked by fuzzy token
//! overlap (edit distance, prefixes). Suggestions are never applied silently: a load test
//! against the wrong SKU would be worse than an error.
//!
//! # Aliases
//!
//! A few names are not CSV rows but are what admins call an existing SKU (spec 14.2):
//!
//! - "Windows 11 Enterprise LTSC 2024" has no SKU ID of its own; it uses the LTSC 2019/2021
//!   key, i.e. SKU `32d2fab3-…` (14.2 item 2). Without the alias the token rules would pick
//!   the IoT LTSC row, a different SKU.
//! - "Windows 10 Enterprise for Virtual Desktops" is vlmcsd's name for SKU `ec868e65-…`, which
//!   the CSV calls "Windows 10/11 Enterprise multi-session" (14.2 item 5).
//!
//! Left out: locale names, retail and OEM keys, Microsoft's marketing names for Office 365.

use std::collections::HashMap;
use std::sync::OnceLock;

use uuid::{Uuid, uuid};

use super::{Family, Product, app_id, products};

/// Extra names for existing SKUs (spec 14.2 items 2 and 5; see the module docs).
const ALIASES: &[(&str, Uuid)] = &[
    (
        "Windows 11 Enterprise LTSC 2024",
        uuid!("32d2fab3-e4a8-42c2-923b-4bf4fd13e6ee"),
    ),
    (
        "Windows 10 Enterprise for Virtual Desktops",
        uuid!("ec868e65-fadf-4759-b23e-93fe37f2cc29"),
    ),
];

/// How many suggestions an unknown name carries.
const SUGGESTIONS: usize = 5;
/// How many names an ambiguity message lists before "and N more".
const LISTED: usize = 8;
/// Query tokens beyond this are ignored, which bounds the matching work on odd input.
const MAX_QUERY_TOKENS: usize = 24;

/// Why a product (or family) could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Nothing was given.
    #[error("no product given; name it (\"Windows 11 Pro\"), or give its GVLK or SKU ID")]
    Empty,
    /// No product has this name.
    #[error("unknown product '{input}'; {}", did_you_mean(suggestions))]
    UnknownProduct {
        /// What the user typed.
        input: String,
        /// Up to five product names, closest first.
        suggestions: Vec<String>,
    },
    /// Several products fit the name equally well.
    #[error(
        "'{input}' matches {} products: {}; give the full name (see `kmsload products {input}`)",
        matches.len(),
        list_names(matches)
    )]
    Ambiguous {
        /// What the user typed.
        input: String,
        /// The names that fit, in catalog order.
        matches: Vec<String>,
    },
    /// The input has the shape of a product key, but no product has it as GVLK.
    #[error(
        "no product has the GVLK '{input}'; only the public generic volume licence keys are \
         known (`kmsload products` shows them)"
    )]
    UnknownGvlk {
        /// What the user typed.
        input: String,
    },
    /// The input is a GUID, but no product has it as SKU ID.
    #[error("no product has the SKU ID {id}{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    UnknownSkuId {
        /// The GUID given.
        id: Uuid,
        /// What the GUID is instead, when the catalog knows it (a KMS counted ID, an
        /// application ID).
        hint: Option<String>,
    },
    /// Not a family name.
    #[error("unknown product family '{input}'; expected windows-client, windows-server or office")]
    UnknownFamily {
        /// What the user typed.
        input: String,
    },
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        "`kmsload products` lists the known products".to_owned()
    } else {
        format!("did you mean: {}?", list_names(suggestions))
    }
}

fn list_names(names: &[String]) -> String {
    let mut out = names
        .iter()
        .take(LISTED)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        out.push_str(&format!(" and {} more", names.len() - LISTED));
    }
    out
}

/// Finds one product from what a user typed: a SKU ID (GUID, with or without braces), a GVLK
/// (with or without dashes, any case) or an edition name (see the module docs).
///
/// # Errors
/// [`LookupError`]: unknown (with suggestions), ambiguous (with the candidates), or empty.
pub fn find(input: &str) -> Result<&'static Product, LookupError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(LookupError::Empty);
    }
    if let Some(id) = parse_guid(s) {
        return by_sku_id(id).ok_or_else(|| LookupError::UnknownSkuId {
            id,
            hint: guid_hint(id),
        });
    }
    if let Some(key) = gvlk_key(s) {
        return by_gvlk(&key).ok_or_else(|| LookupError::UnknownGvlk {
            input: s.to_owned(),
        });
    }
    by_name(s)
}

/// The product with this SKU ID.
pub fn by_sku_id(id: Uuid) -> Option<&'static Product> {
    // Looked up for every line the host logs and every request the fleet builds: a map, not
    // a walk over the 262 rows. The first row of a SKU wins, as a search in order would.
    static BY_SKU: OnceLock<HashMap<Uuid, &'static Product>> = OnceLock::new();
    BY_SKU
        .get_or_init(|| {
            let mut map = HashMap::with_capacity(products().len());
            for p in products() {
                map.entry(p.sku_id).or_insert(p);
            }
            map
        })
        .get(&id)
        .copied()
}

/// The product with this GVLK; dashes and case do not matter.
pub fn by_gvlk(key: &str) -> Option<&'static Product> {
    let want = gvlk_key(key)?;
    products().iter().find(|p| {
        p.gvlk
            .as_deref()
            .and_then(gvlk_key)
            .is_some_and(|k| k == want)
    })
}

/// Finds one product by edition name (see the module docs for the rules).
///
/// # Errors
/// [`LookupError`]: unknown (with suggestions), ambiguous (with the candidates), or empty.
pub fn by_name(input: &str) -> Result<&'static Product, LookupError> {
    let input = input.trim();
    let query = tokens(input);
    if query.is_empty() {
        return Err(LookupError::Empty);
    }
    if let Some(p) = products()
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(input))
    {
        return Ok(p);
    }
    let scored: Vec<(&NameEntry, Fit)> = index()
        .iter()
        .map(|e| (e, fit(&query, &e.tokens)))
        .collect();

    let exact = distinct(
        scored
            .iter()
            .filter(|(_, f)| f.exact)
            .map(|(e, _)| e.product),
    );
    match exact.as_slice() {
        [one] => return Ok(one),
        [] => {}
        many => return Err(ambiguous(input, many)),
    }

    let best = scored
        .iter()
        .filter(|(_, f)| f.contains_query)
        .map(|(_, f)| f.leftover_cost)
        .min();
    let Some(best) = best else {
        return Err(LookupError::UnknownProduct {
            input: input.to_owned(),
            suggestions: suggest(input, SUGGESTIONS)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        });
    };
    let tied = distinct(
        scored
            .iter()
            .filter(|(_, f)| f.contains_query && f.leftover_cost == best)
            .map(|(e, _)| e.product),
    );
    match tied.as_slice() {
        [one] => Ok(one),
        many => Err(ambiguous(input, many)),
    }
}

/// Every product that fits `text`, in catalog order: the product with that SKU ID or GVLK, or
/// the products whose name contains every token of `text` (see the module docs). Empty or
/// blank text matches everything.
pub fn search(text: &str) -> Vec<&'static Product> {
    let s = text.trim();
    if let Some(id) = parse_guid(s) {
        return by_sku_id(id).into_iter().collect();
    }
    if gvlk_key(s).is_some() {
        return by_gvlk(s).into_iter().collect();
    }
    let query = tokens(s);
    if query.is_empty() {
        return products().iter().collect();
    }
    distinct(
        index()
            .iter()
            .filter(|e| fit(&query, &e.tokens).contains_query)
            .map(|e| e.product),
    )
}

/// Products of one family, or all, that fit `text` (as [`search`]), in catalog order.
pub fn filter(family: Option<Family>, text: Option<&str>) -> Vec<&'static Product> {
    let found = match text {
        Some(t) => search(t),
        None => products().iter().collect(),
    };
    found
        .into_iter()
        .filter(|p| family.is_none_or(|f| p.family == f))
        .collect()
}

/// Up to `limit` product names close to `text`, closest first: ranked by fuzzy token overlap
/// (equal tokens, then one or two edits, then prefixes), then by fewest unmatched tokens, then
/// by edit distance of the whole normalised name. Names sharing nothing with `text` are left
/// out, so gibberish gets no suggestions.
pub fn suggest(text: &str, limit: usize) -> Vec<&'static str> {
    let query = tokens(text);
    if query.is_empty() {
        return Vec::new();
    }
    let joined = join(&query);
    let mut ranked: Vec<(u32, usize, usize, usize, &'static Product)> = index()
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let score: u32 = query
                .iter()
                .map(|q| e.tokens.iter().map(|p| similarity(q, p)).max().unwrap_or(0))
                .sum();
            if score == 0 {
                return None;
            }
            let unmatched = e
                .tokens
                .iter()
                .filter(|p| query.iter().all(|q| similarity(q, p) == 0))
                .count();
            Some((
                score,
                unmatched,
                levenshtein(&joined, &join(&e.tokens)),
                i,
                e.product,
            ))
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    let mut out: Vec<&'static str> = Vec::new();
    for (.., p) in ranked {
        if out.len() == limit {
            break;
        }
        if !out.contains(&p.name.as_str()) {
            out.push(p.name.as_str());
        }
    }
    out
}

/// Resolves a family name: `windows-client` (or `client`), `windows-server` (or `server`),
/// `office`; any case, with `-`, `_` or a space between words.
///
/// # Errors
/// [`LookupError::UnknownFamily`].
pub fn family(name: &str) -> Result<Family, LookupError> {
    let norm: String = name
        .trim()
        .chars()
        .map(|c| {
            if c == '_' || c == ' ' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    match norm.as_str() {
        "windows-client" | "client" | "win-client" => Ok(Family::WindowsClient),
        "windows-server" | "server" | "win-server" => Ok(Family::WindowsServer),
        "office" => Ok(Family::Office),
        _ => Err(LookupError::UnknownFamily {
            input: name.trim().to_owned(),
        }),
    }
}

impl std::str::FromStr for Family {
    type Err = LookupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        family(s)
    }
}

/// The tokens of `name` as the lookup compares them, joined by spaces, with alternatives as
/// `10|11`: `"Windows 10/11 Pro"` → `"windows 10|11 pro"`. For diagnostics and tests.
pub fn normalize(name: &str) -> String {
    join(&tokens(name))
}

fn ambiguous(input: &str, many: &[&'static Product]) -> LookupError {
    LookupError::Ambiguous {
        input: input.to_owned(),
        matches: many.iter().map(|p| p.name.clone()).collect(),
    }
}

/// Products in catalog order without repeats (a product can match by name and by alias).
fn distinct(found: impl Iterator<Item = &'static Product>) -> Vec<&'static Product> {
    let mut out: Vec<&'static Product> = Vec::new();
    for p in found {
        if !out.iter().any(|q| q.sku_id == p.sku_id) {
            out.push(p);
        }
    }
    let position = |p: &Product| products().iter().position(|q| q.sku_id == p.sku_id);
    out.sort_by_key(|p| position(p));
    out
}

fn parse_guid(s: &str) -> Option<Uuid> {
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(s);
    // Only the hyphenated (36) and simple (32) forms: anything else is a name.
    matches!(inner.len(), 32 | 36)
        .then(|| Uuid::try_parse(inner).ok())
        .flatten()
}

/// What a GUID that is not a SKU ID is, if the catalog knows.
fn guid_hint(id: Uuid) -> Option<String> {
    if [app_id::WINDOWS, app_id::OFFICE_2010, app_id::OFFICE_2013].contains(&id) {
        return Some(
            "it is an application ID; give a SKU ID (see `kmsload products --json`)".into(),
        );
    }
    let counted = products()
        .iter()
        .filter(|p| p.kms_id == id)
        .collect::<Vec<_>>();
    let first = counted.first()?;
    Some(format!(
        "it is the KMS counted ID '{}' shared by {} products; give a SKU ID (see `kmsload \
         products --json`)",
        first.kms_id_name,
        counted.len()
    ))
}

/// The 25 key characters in upper case if `s` has the shape of a product key:
/// `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` or the same 25 letters and digits without dashes.
fn gvlk_key(s: &str) -> Option<String> {
    let s = s.trim();
    let groups: Vec<&str> = s.split('-').collect();
    let shaped = match groups.len() {
        1 => s.len() == 25,
        5 => groups.iter().all(|g| g.len() == 5),
        _ => false,
    };
    let key: String = groups.concat();
    (shaped && key.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| key.to_ascii_uppercase())
}

/// One name of one product, tokenised once.
struct NameEntry {
    product: &'static Product,
    tokens: Vec<Token>,
}

fn index() -> &'static [NameEntry] {
    static INDEX: OnceLock<Vec<NameEntry>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let names = products().iter().map(|p| (p, p.name.as_str()));
        let aliases = ALIASES
            .iter()
            .filter_map(|(name, sku)| Some((by_sku_id(*sku)?, *name)));
        names
            .chain(aliases)
            .map(|(product, name)| NameEntry {
                product,
                tokens: tokens(name),
            })
            .collect()
    })
}

/// A token: a word, or numbers any of which matches (`10/11`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token(Vec<String>);

impl Token {
    fn word(w: &str) -> Self {
        Self(vec![w.to_owned()])
    }

    fn matches(&self, other: &Self) -> bool {
        self.0.iter().any(|a| other.0.contains(a))
    }

    /// What this token costs when a row has it and the query does not.
    fn leftover_cost(&self) -> u32 {
        match self.0[0].as_str() {
            // Words admins leave out: the brand, and Office's only volume channel.
            "windows" | "office" | "ltsc" => 1,
            "preview" | "insider" | "pre" | "release" | "beta" => 6,
            _ => 2,
        }
    }
}

fn tokens(s: &str) -> Vec<Token> {
    let lower = s.to_lowercase();
    let mut out = Vec::new();
    let separators = |c: char| !(c.is_alphanumeric() || matches!(c, '.' | '/' | '-'));
    for chunk in lower.split(separators) {
        let chunk = chunk.trim_matches(['.', '/', '-']);
        if chunk.is_empty() {
            continue;
        }
        let parts: Vec<&str> = chunk.split(['/', '-']).collect();
        let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if parts.len() > 1 && parts.iter().all(numeric) {
            out.push(Token(parts.iter().map(|p| (*p).to_owned()).collect()));
            continue;
        }
        for part in parts {
            let part = part.trim_matches('.');
            if !part.is_empty() {
                push_word(part, &mut out);
            }
        }
    }
    out.truncate(MAX_QUERY_TOKENS);
    out
}

fn push_word(w: &str, out: &mut Vec<Token>) {
    let is_version = |r: &str| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    // Glued family word and version: "win10", "server2019", "ws2019".
    for (prefix, words) in [
        ("windows", &["windows"][..]),
        ("win", &["windows"]),
        ("server", &["server"]),
        ("office", &["office"]),
        ("ws", &["windows", "server"]),
    ] {
        if let Some(rest) = w.strip_prefix(prefix).filter(|r| is_version(r)) {
            out.extend(words.iter().map(|x| Token::word(x)));
            out.push(Token::word(rest));
            return;
        }
    }
    // "2008r2".
    if let Some(year) = w.strip_suffix("r2").filter(|r| is_version(r)) {
        out.push(Token::word(year));
        out.push(Token::word("r2"));
        return;
    }
    let words: &[&str] = match w {
        "microsoft" | "edition" | "for" | "volume" | "vl" => &[],
        "workstations" => &["workstation"],
        "professional" | "prof" => &["pro"],
        "proplus" => &["pro", "plus"],
        "prerelease" => &["pre", "release"],
        "multisession" => &["multi", "session"],
        "win" => &["windows"],
        "ent" => &["enterprise"],
        "std" => &["standard"],
        "dc" | "datacentre" => &["datacenter"],
        "edu" => &["education"],
        _ => {
            out.push(Token::word(w));
            return;
        }
    };
    out.extend(words.iter().map(|x| Token::word(x)));
}

fn join(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| t.0.join("|"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a row's tokens fit a query's.
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// Every query token matched a distinct row token.
    contains_query: bool,
    /// ... and no row token is left over.
    exact: bool,
    /// Summed cost of the row tokens left over.
    leftover_cost: u32,
}

/// Pairs query tokens with row tokens (a maximum bipartite matching, so `2019 2021` against
/// `{2019|2021}` cannot use the one row token twice) and scores what is left.
fn fit(query: &[Token], row: &[Token]) -> Fit {
    let mut owner: Vec<Option<usize>> = vec![None; row.len()];
    let mut matched = 0;
    for q in 0..query.len() {
        let mut seen = vec![false; row.len()];
        if augment(q, query, row, &mut owner, &mut seen) {
            matched += 1;
        }
    }
    let leftover_cost = row
        .iter()
        .zip(&owner)
        .filter(|(_, o)| o.is_none())
        .map(|(t, _)| t.leftover_cost())
        .sum();
    let contains_query = matched == query.len();
    Fit {
        contains_query,
        exact: contains_query && matched == row.len(),
        leftover_cost,
    }
}

/// Kuhn's augmenting path step; recursion depth is at most the query length (bounded by
/// `MAX_QUERY_TOKENS`).
fn augment(
    q: usize,
    query: &[Token],
    row: &[Token],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for r in 0..row.len() {
        if seen[r] || !query[q].matches(&row[r]) {
            continue;
        }
        seen[r] = true;
        let free = match owner[r] {
            None => true,
            Some(other) => augment(other, query, row, owner, seen),
        };
        if free {
            owner[r] = Some(q);
            return true;
        }
    }
    false
}

/// Fuzzy closeness of two tokens for suggestions: 4 equal, 3 one or two typos in a word,
/// 2 a prefix of at least three letters, 0 otherwise. Numbers only ever match exactly
/// (2016 is not a typo of 2019).
fn similarity(q: &Token, p: &Token) -> u32 {
    if q.matches(p) {
        return 4;
    }
    let (a, b) = (&q.0[0], &p.0[0]);
    let alphabetic = |s: &str| s.chars().all(char::is_alphabetic);
    if q.0.len() > 1 || p.0.len() > 1 || !alphabetic(a) || !alphabetic(b) {
        return 0;
    }
    let shorter = a.chars().count().min(b.chars().count());
    let allowed = match shorter {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    if allowed > 0 && levenshtein(a, b) <= allowed {
        3
    } else if shorter >= 3 && (b.starts_with(a.as_str()) || a.starts_with(b.as_str())) {
        2
    } else {
        0
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map behind `by_sku_id` answers what a search in catalog order would, for every
    /// row, and nothing for an unknown SKU.
    #[test]
    fn by_sku_id_finds_every_row_as_a_search_in_order_would() {
        for p in products() {
            let first = products().iter().find(|q| q.sku_id == p.sku_id).unwrap();
            assert!(
                std::ptr::eq(by_sku_id(p.sku_id).unwrap(), first),
                "{}",
                p.name
            );
        }
        assert!(by_sku_id(Uuid::nil()).is_none());
    }

    fn name_of(input: &str) -> String {
        match find(input) {
            Ok(p) => p.name.clone(),
            Err(e) => panic!("{input}: {e}"),
        }
    }

    #[test]
    fn admin_spellings_resolve() {
        let table = [
            ("Windows 11 Pro", "Windows 10/11 Pro"),
            ("windows 10 pro", "Windows 10/11 Pro"),
            ("Windows 10 Professional", "Windows 10/11 Pro"),
            ("Win11 Pro", "Windows 10/11 Pro"),
            ("Windows 10/11 Pro", "Windows 10/11 Pro"),
            ("Windows 11 Pro N", "Windows 10/11 Pro N"),
            (
                "Windows 11 Pro for Workstations",
                "Windows 10/11 Pro Workstation",
            ),
            (
                "Windows 11 Pro Workstation",
                "Windows 10/11 Pro Workstation",
            ),
            ("Windows 11 Enterprise", "Windows 10/11 Enterprise"),
            ("Windows 10 Enterprise", "Windows 10/11 Enterprise"),
            ("Windows 11 Education", "Windows 10/11 Education"),
            (
                "Windows 11 Enterprise multi-session",
                "Windows 10/11 Enterprise multi-session",
            ),
            (
                "Windows 10 Enterprise LTSC 2021",
                "Windows 10 Enterprise LTSC 2019/2021",
            ),
            (
                "Windows 10 Enterprise LTSC 2019",
                "Windows 10 Enterprise LTSC 2019/2021",
            ),
            (
                "Windows 11 Enterprise LTSC 2024",
                "Windows 10 Enterprise LTSC 2019/2021",
            ),
            (
                "Windows 10 Enterprise LTSB 2016",
                "Windows 10 Enterprise 2016 LTSB",
            ),
            (
                "Windows 11 IoT Enterprise LTSC 2024",
                "Windows 10/11 IoT Enterprise LTSC 2021-2024",
            ),
            ("Windows 7 Enterprise", "Windows 7 Enterprise"),
            ("Windows 7 Professional", "Windows 7 Professional"),
            ("Windows 7 Pro", "Windows 7 Professional"),
            ("Windows 8.1 Pro", "Windows 8.1 Professional"),
            ("Windows 8.1 Enterprise", "Windows 8.1 Enterprise"),
            ("Windows Vista Business", "Windows Vista Business"),
            (
                "Windows Server 2022 Datacenter",
                "Windows Server 2022 Datacenter",
            ),
            (
                "Windows Server 2022 Standard",
                "Windows Server 2022 Standard",
            ),
            (
                "Windows Server 2019 Standard",
                "Windows Server 2019 Standard",
            ),
            ("Server 2019 Standard", "Windows Server 2019 Standard"),
            ("WS2019 Datacenter", "Windows Server 2019 Datacenter"),
            (
                "Windows Server 2016 Datacenter",
                "Windows Server 2016 Datacenter",
            ),
            (
                "Windows Server 2025 Standard",
                "Windows Server 2025 Standard",
            ),
            (
                "Windows Server 2012 R2 Datacenter",
                "Windows Server 2012 R2 Datacenter",
            ),
            (
                "Windows Server 2008R2 Enterprise",
                "Windows Server 2008 R2 Enterprise",
            ),
            (
                "Windows Server 2008 R2 Standard",
                "Windows Server 2008 R2 Standard",
            ),
            (
                "Windows Server 2022 Datacentre",
                "Windows Server 2022 Datacenter",
            ),
            ("Office 2019 Pro Plus", "Office Professional Plus 2019"),
            ("office 2019 proplus", "Office Professional Plus 2019"),
            (
                "Office Professional Plus 2019",
                "Office Professional Plus 2019",
            ),
            (
                "Office LTSC 2021 Professional Plus",
                "Office LTSC Professional Plus 2021",
            ),
            (
                "Office LTSC Professional Plus 2021",
                "Office LTSC Professional Plus 2021",
            ),
            ("Office 2021 ProPlus", "Office LTSC Professional Plus 2021"),
            ("Office Standard 2021", "Office LTSC Standard 2021"),
            (
                "Office Pro Plus 2019 Volume",
                "Office Professional Plus 2019",
            ),
            ("Windows 10 Pro VL", "Windows 10/11 Pro"),
            (
                "Office LTSC 2024 ProPlus",
                "Office LTSC Professional Plus 2024",
            ),
            ("Office 2010 ProPlus", "Office Professional Plus 2010"),
            (
                "Office 2013 Professional Plus",
                "Office Professional Plus 2013",
            ),
            ("Office 2016 Pro Plus", "Office Professional Plus 2016"),
            ("Office 2016 Standard", "Office Standard 2016"),
            ("Visio 2019 Pro", "Office Visio Pro 2019"),
            ("Project Professional 2016", "Office Project Pro 2016"),
            ("Office Outlook 2013", "Office OutLook 2013"),
            (
                "Office Professional Plus 2013 Pre-Release",
                "Office Professional Plus 2013 (Pre-Release)",
            ),
            (
                "Windows 10 Enterprise for Virtual Desktops",
                "Windows 10/11 Enterprise multi-session",
            ),
        ];
        for (input, want) in table {
            assert_eq!(name_of(input), want, "{input}");
        }
    }

    #[test]
    fn every_csv_name_and_key_finds_its_own_row() {
        for p in products() {
            assert_eq!(find(&p.name).map(|f| f.sku_id), Ok(p.sku_id), "{}", p.name);
            assert_eq!(find(&p.name.to_uppercase()).map(|f| f.sku_id), Ok(p.sku_id));
            assert_eq!(find(&p.sku_id.to_string()).map(|f| f.sku_id), Ok(p.sku_id));
            if let Some(k) = &p.gvlk {
                assert_eq!(find(k).map(|f| f.sku_id), Ok(p.sku_id), "{k}");
            }
        }
    }

    #[test]
    fn normalised_names_are_unique() {
        // If two rows normalised alike, an exact name would be ambiguous.
        let mut seen = HashMap::new();
        for e in index() {
            let mut key: Vec<String> = e.tokens.iter().map(|t| t.0.join("|")).collect();
            key.sort();
            if let Some(prev) = seen.insert(key, e.product.sku_id) {
                assert_eq!(prev, e.product.sku_id, "{}", e.product.name);
            }
        }
    }

    #[test]
    fn aliases_point_at_rows() {
        for (name, sku) in ALIASES {
            assert!(by_sku_id(*sku).is_some(), "{name}");
        }
        assert_eq!(index().len(), products().len() + ALIASES.len());
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize("Windows 10/11 Pro"), "windows 10|11 pro");
        assert_eq!(normalize("Office ProPlus 2019"), "office pro plus 2019");
        assert_eq!(
            normalize("  WINDOWS   Server,2019 (Semi-Annual Channel)"),
            "windows server 2019 semi annual channel"
        );
        assert_eq!(normalize("Windows 8.1 Pro."), "windows 8.1 pro");
        assert_eq!(normalize("LTSC 2021-2024"), "ltsc 2021|2024");
        assert_eq!(
            normalize("win10 server2019 ws2022 2008R2"),
            "windows 10 server 2019 windows server 2022 2008 r2"
        );
        assert_eq!(
            normalize("Microsoft Windows 7 Enterprise Edition"),
            "windows 7 enterprise"
        );
        assert_eq!(normalize("---"), "");
    }

    #[test]
    fn gvlk_with_or_without_dashes_any_case() {
        let pro = name_of("Windows 11 Pro");
        assert_eq!(name_of("W269N-WFGWX-YVC9B-4J6C9-T83GX"), pro);
        assert_eq!(name_of("w269n-wfgwx-yvc9b-4j6c9-t83gx"), pro);
        assert_eq!(name_of("W269NWFGWXYVC9B4J6C9T83GX"), pro);
        assert_eq!(name_of(" W269N-WFGWX-YVC9B-4J6C9-T83GX\n"), pro);
    }

    #[test]
    fn sku_id_with_or_without_braces() {
        let sku = "32d2fab3-e4a8-42c2-923b-4bf4fd13e6ee";
        let want = "Windows 10 Enterprise LTSC 2019/2021";
        assert_eq!(name_of(sku), want);
        assert_eq!(name_of(&format!("{{{sku}}}")), want);
        assert_eq!(name_of(&sku.to_uppercase()), want);
        assert_eq!(name_of(&sku.replace('-', "")), want);
    }

    #[test]
    fn unknown_gvlk_is_typed() {
        let err = find("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE").unwrap_err();
        assert!(matches!(err, LookupError::UnknownGvlk { .. }), "{err:?}");
        // Wrong shapes are not keys (and then not names either).
        assert!(gvlk_key("AAAAA-BBBBB-CCCCC-DDDDD").is_none());
        assert!(gvlk_key("AAAAAA-BBBB-CCCCC-DDDDD-EEEEE").is_none());
        assert!(gvlk_key("AAAAA-BBBBB-CCCCC-DDDDD-EEEE!").is_none());
    }

    #[test]
    fn unknown_sku_id_says_what_the_guid_is() {
        let err = find("00000000-0000-0000-0000-000000000001").unwrap_err();
        assert!(
            matches!(err, LookupError::UnknownSkuId { hint: None, .. }),
            "{err:?}"
        );
        let err = find(&app_id::WINDOWS.to_string()).unwrap_err();
        assert!(err.to_string().contains("application ID"), "{err}");
        let err = find("11b15659-e603-4cf1-9c1f-f0ec01b81888").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("KMS counted ID 'Windows 10 2019 (Volume)'"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_name_suggests_close_names() {
        let err = find("Windows Sever 2022 Datacenter").unwrap_err();
        let LookupError::UnknownProduct { suggestions, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            suggestions.first().map(String::as_str),
            Some("Windows Server 2022 Datacenter")
        );
        assert!(suggestions.len() <= SUGGESTIONS);
        let msg = err.to_string();
        assert!(
            msg.starts_with("unknown product 'Windows Sever 2022 Datacenter'; did you mean: 'Windows Server 2022 Datacenter'"),
            "{msg}"
        );

        let err = find("Windows 12 Pro").unwrap_err();
        let LookupError::UnknownProduct { suggestions, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            suggestions.iter().any(|s| s == "Windows 10/11 Pro"),
            "{suggestions:?}"
        );

        let err = find("Ofice 2019 Profesional Plus").unwrap_err();
        let LookupError::UnknownProduct { suggestions, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            suggestions[0], "Office Professional Plus 2019",
            "{suggestions:?}"
        );
    }

    #[test]
    fn gibberish_gets_no_suggestions() {
        let err = find("qqq zzz").unwrap_err();
        assert_eq!(
            err,
            LookupError::UnknownProduct {
                input: "qqq zzz".into(),
                suggestions: vec![]
            }
        );
        assert!(err.to_string().contains("`kmsload products`"));
    }

    #[test]
    fn ambiguous_names_list_the_candidates() {
        for (input, some) in [
            ("Windows 11", "Windows 10/11 Pro"),
            ("Windows Server 2022", "Windows Server 2022 Standard"),
            ("Project 2019", "Office Project Pro 2019"),
            (
                "Windows 10 Enterprise LTSB",
                "Windows 10 Enterprise 2015 LTSB",
            ),
            ("Office 2021 Pro Plus Preview 2024", ""),
        ] {
            match find(input) {
                Err(LookupError::Ambiguous { matches, .. }) => {
                    assert!(matches.len() > 1, "{input}");
                    assert!(matches.iter().any(|m| m == some), "{input}: {matches:?}");
                }
                Err(LookupError::UnknownProduct { .. }) if some.is_empty() => {}
                other => panic!("{input}: {other:?}"),
            }
        }
        let msg = find("Windows").unwrap_err().to_string();
        assert!(msg.starts_with("'Windows' matches "), "{msg}");
        assert!(msg.contains(" more; give the full name"), "{msg}");
    }

    #[test]
    fn preview_rows_need_the_word_preview() {
        assert_eq!(
            name_of("Office Professional Plus 2021 Preview"),
            "Office Professional Plus 2021 Preview"
        );
        assert_eq!(
            name_of("Office Visio Pro 2021"),
            "Office Visio LTSC Pro 2021"
        );
    }

    #[test]
    fn empty_input() {
        assert_eq!(find(""), Err(LookupError::Empty));
        assert_eq!(find("  "), Err(LookupError::Empty));
        assert_eq!(find("()"), Err(LookupError::Empty));
    }

    #[test]
    fn families() {
        assert_eq!(family("windows-client"), Ok(Family::WindowsClient));
        assert_eq!(family("Windows Client"), Ok(Family::WindowsClient));
        assert_eq!(family("server"), Ok(Family::WindowsServer));
        assert_eq!(family("WINDOWS_SERVER"), Ok(Family::WindowsServer));
        assert_eq!("office".parse::<Family>(), Ok(Family::Office));
        let err = family("linux").unwrap_err();
        assert_eq!(
            err,
            LookupError::UnknownFamily {
                input: "linux".into()
            }
        );
        assert!(
            err.to_string()
                .contains("windows-client, windows-server or office")
        );
        for f in [Family::WindowsClient, Family::WindowsServer, Family::Office] {
            assert_eq!(family(f.as_str()), Ok(f));
        }
    }

    #[test]
    fn search_and_filter() {
        assert_eq!(search("").len(), 262);
        assert_eq!(filter(Some(Family::Office), None).len(), 118);
        assert_eq!(filter(Some(Family::WindowsServer), None).len(), 55);
        assert_eq!(filter(Some(Family::WindowsClient), None).len(), 89);
        let ltsc = search("ltsc");
        assert!(ltsc.iter().all(|p| normalize(&p.name).contains("ltsc")));
        assert!(ltsc.len() >= 4);
        let server_2022: Vec<&str> = search("server 2022")
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(server_2022.len(), 6, "{server_2022:?}");
        assert_eq!(filter(Some(Family::Office), Some("windows")).len(), 0);
        assert_eq!(search("W269N-WFGWX-YVC9B-4J6C9-T83GX").len(), 1);
        assert_eq!(search("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE").len(), 0);
        // Catalog order.
        let all = search("windows 11 pro");
        let pos = |p: &Product| products().iter().position(|q| q.sku_id == p.sku_id);
        assert!(all.windows(2).all(|w| pos(w[0]) < pos(w[1])));
    }

    #[test]
    fn similarity_rules() {
        let t = |s: &str| tokens(s).remove(0);
        assert_eq!(similarity(&t("server"), &t("server")), 4);
        assert_eq!(similarity(&t("sever"), &t("server")), 3);
        assert_eq!(similarity(&t("enterprize"), &t("enterprise")), 3);
        assert_eq!(similarity(&t("datac"), &t("datacenter")), 2);
        assert_eq!(similarity(&t("2016"), &t("2019")), 0);
        assert_eq!(similarity(&t("pro"), &t("plus")), 0);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }

    proptest::proptest! {
        // Each case ranks every catalog name; 64 cases keep the debug build quick.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn find_never_panics(s in "\\PC{0,60}") {
            let _ = find(&s);
            let _ = search(&s);
            let _ = suggest(&s, 5);
        }
    }
}
