//! `kmsload products`: the product catalog (spec 14.1) as an aligned table or as JSON,
//! filtered by family and by the same name matching `--product` uses.
//!
//! ```text
//! family  proto   N  GVLK                           name
//! client  V6     25  W269N-WFGWX-YVC9B-4J6C9-T83GX  Windows 10/11 Pro
//! client  V6     25  -                              Windows 8.1 Core Connected
//! server  V6      5  WX4NM-KYWYW-QJJR4-XV3QB-6VM33  Windows Server 2022 Datacenter
//! 3 of 262 products (2 windows-client, 1 windows-server)
//! ```
//!
//! The name is the last column so that the table stays aligned within 80 columns: the fixed
//! columns take 50, and the few names longer than 30 characters run past the right edge
//! instead of being cut or pushing every other row out of line. Rows are in catalog order.
//!
//! Output goes to stdout; a closed pipe (`| head`) ends the command quietly with exit 0.

use std::io::{self, Write};

use crate::catalog::{Family, Product, lookup, products};

use super::{CliError, Status};

/// Options of `kmsload products`.
#[derive(Debug, clap::Args)]
pub struct ProductsArgs {
    /// Show only products matching TEXT: words of the name in any order ("windows 11 pro",
    /// "server 2022", "office 2019"), a GVLK or a SKU ID.
    /// Several words are joined with spaces, so quoting is optional.
    #[arg(value_name = "TEXT", num_args = 0.., conflicts_with = "search")]
    pub query: Vec<String>,
    /// Same as the positional TEXT.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Show only one product family.
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
    /// Print a JSON array of objects with every catalog field (the columns of products.csv).
    #[arg(long)]
    pub json: bool,
}

/// `--family` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyArg {
    /// Windows client editions (N = 25).
    #[value(alias = "client")]
    WindowsClient,
    /// Windows Server editions and Enterprise multi-session (N = 5).
    #[value(alias = "server")]
    WindowsServer,
    /// Office 2010 and later (N = 5).
    Office,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Self {
        match f {
            FamilyArg::WindowsClient => Self::WindowsClient,
            FamilyArg::WindowsServer => Self::WindowsServer,
            FamilyArg::Office => Self::Office,
        }
    }
}

/// Runs `kmsload products`.
///
/// # Errors
/// [`CliError::Runtime`] when stdout cannot be written (other than a closed pipe).
pub fn run(args: ProductsArgs) -> Result<Status, CliError> {
    let joined = args.query.join(" ");
    let text = if args.query.is_empty() {
        args.search.as_deref()
    } else {
        Some(joined.as_str())
    };
    let rows = lookup::filter(args.family.map(Family::from), text);
    if rows.is_empty()
        && let Some(t) = text
    {
        hint_no_match(t);
    }
    let out = if args.json {
        let mut json = serde_json::to_string_pretty(&rows)
            .map_err(|e| CliError::Runtime(format!("cannot encode JSON: {e}")))?;
        json.push('\n');
        json
    } else {
        let mut table = if rows.is_empty() {
            String::new()
        } else {
            product_table(&rows)
        };
        table.push_str(&footer(&rows));
        table
    };
    print(&out)
}

/// Tells stderr why nothing matched, with the closest names.
fn hint_no_match(text: &str) {
    let close = lookup::suggest(text, 5);
    if close.is_empty() {
        crate::errln!("no product matches '{}'", text.trim());
    } else {
        let list = close
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        crate::errln!(
            "no product matches '{}'; did you mean: {list}?",
            text.trim()
        );
    }
}

/// The table: header and one line per product.
fn product_table(rows: &[&Product]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|p| {
            vec![
                short_family(p.family).to_owned(),
                format!("V{}", p.protocol),
                p.n_policy.to_string(),
                p.gvlk.clone().unwrap_or_else(|| "-".to_owned()),
                p.name.clone(),
            ]
        })
        .collect();
    table(
        &["family", "proto", "N", "GVLK", "name"],
        &[false, false, true, false, false],
        &cells,
    )
}

/// The count line: "262 products (89 windows-client, ...)" or "3 of 262 products (...)".
fn footer(rows: &[&Product]) -> String {
    let total = products().len();
    let count = if rows.len() == total {
        format!("{total} products")
    } else {
        format!("{} of {total} products", rows.len())
    };
    let per_family: Vec<String> = Family::ALL
        .iter()
        .map(|f| (f, rows.iter().filter(|p| p.family == *f).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(f, n)| format!("{n} {f}"))
        .collect();
    if per_family.is_empty() {
        format!("{count}\n")
    } else {
        format!("{count} ({})\n", per_family.join(", "))
    }
}

fn short_family(f: Family) -> &'static str {
    match f {
        Family::WindowsClient => "client",
        Family::WindowsServer => "server",
        Family::Office => "office",
    }
}

/// Aligns `rows` under `headers`, two spaces between columns, right-aligning where
/// `right[i]`; the last column is not padded, so lines carry no trailing blanks.
pub(super) fn table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&format!("{cell:>w$}"));
            } else if i == last {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes `text` to stdout. A closed pipe is not an error: the reader has seen enough.
///
/// # Errors
/// [`CliError::Runtime`] for any other write failure.
pub(super) fn print(text: &str) -> Result<Status, CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(Status::Success),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Status::Success),
        Err(e) => Err(CliError::Runtime(format!("cannot write to stdout: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ProductsArgs, clap::Error> {
        let argv = ["kmsload", "products"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Products(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_parse() {
        let a = parse(&["--family", "windows-server", "--json", "2022"]).unwrap();
        assert_eq!(a.family, Some(FamilyArg::WindowsServer));
        assert!(a.json);
        assert_eq!(a.query, ["2022"]);
        assert_eq!(
            parse(&["server", "2022"]).unwrap().query,
            ["server", "2022"]
        );
        assert_eq!(
            parse(&["--family", "client"]).unwrap().family,
            Some(FamilyArg::WindowsClient)
        );
        assert_eq!(
            parse(&["--search", "ltsc"]).unwrap().search.as_deref(),
            Some("ltsc")
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let e = parse(&["--family", "linux"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(e.to_string().contains("windows-client"), "{e}");
        let e = parse(&["pro", "--search", "pro"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn family_arg_maps_to_family() {
        for (arg, f) in [
            (FamilyArg::WindowsClient, Family::WindowsClient),
            (FamilyArg::WindowsServer, Family::WindowsServer),
            (FamilyArg::Office, Family::Office),
        ] {
            assert_eq!(Family::from(arg), f);
            // The ValueEnum spelling is the catalog's.
            use clap::ValueEnum;
            assert_eq!(arg.to_possible_value().unwrap().get_name(), f.as_str());
        }
    }

    #[test]
    fn table_is_aligned_and_fits_80_columns_for_short_names() {
        let rows = lookup::search("windows 11 pro");
        let text = product_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), rows.len() + 1);
        assert_eq!(
            lines[0],
            "family  proto   N  GVLK                           name"
        );
        assert!(
            lines.contains(&"client  V6     25  W269N-WFGWX-YVC9B-4J6C9-T83GX  Windows 10/11 Pro")
        );
        let name_col = lines[0].find("name").unwrap();
        assert_eq!(name_col, 50);
        for (line, p) in lines[1..].iter().zip(&rows) {
            assert_eq!(&line[name_col..], p.name, "{line}");
            assert!(line.len() <= 80 || p.name.len() > 30, "{line}");
        }
    }

    #[test]
    fn missing_gvlk_shows_a_dash_and_n_is_right_aligned() {
        let rows: Vec<&Product> = products()
            .iter()
            .filter(|p| p.gvlk.is_none())
            .take(1)
            .collect();
        let rows = [
            rows[0],
            lookup::find("Windows Server 2022 Datacenter").unwrap(),
        ];
        let text = product_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("  -  "), "{}", lines[1]);
        assert_eq!(&lines[2][..20], "server  V6      5  W", "{}", lines[2]);
    }

    #[test]
    fn footer_counts() {
        let all: Vec<&Product> = products().iter().collect();
        assert_eq!(
            footer(&all),
            "262 products (89 windows-client, 55 windows-server, 118 office)\n"
        );
        let office = lookup::filter(Some(Family::Office), None);
        assert_eq!(footer(&office), "118 of 262 products (118 office)\n");
        assert_eq!(footer(&[]), "0 of 262 products\n");
    }

    #[test]
    fn table_helper_handles_ragged_input() {
        let t = table(
            &["a", "bb"],
            &[true],
            &[vec!["123".into(), "x".into()], vec![]],
        );
        assert_eq!(t, "  a  bb\n123  x\n\n");
    }
}
