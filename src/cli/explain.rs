//! `kmsload explain CODE`: what an activation code means, who produces it, the usual causes
//! and what to check (spec section 8, `data/hresults.csv`); `--list` shows every known code.
//!
//! ```text
//! $ kmsload explain -1073418184
//! 0xC004F038  SL_E_VL_NOT_ENOUGH_COUNT
//!   produced by    client (derived): the client, from a valid response; never sent by a
//!                  host
//!   meaning        the host answered correctly but its reported count is below ...
//!   ...
//! ```
//!
//! CODE is read by [`parse_code`] (hex with or without `0x`, or the signed decimal `slmgr`
//! prints), or is a symbolic name from the table. For a raw RPC fault status the output adds
//! the HRESULT Windows reports for it (spec 8.1) and takes cause and checks from that row; for
//! an RPC fault HRESULT it names the fault status. An unknown code is a usage error (exit 2)
//! that says how to list the known ones.

use serde::Serialize;

use crate::catalog::hresult::{
    Hresult, Origin, Role, hex, hresult, hresult_by_name, hresults, parse_code, win32_error,
};

use super::products::{print, table};
use super::{CliError, Status};

/// Width the descriptions are wrapped to.
const WIDTH: usize = 80;
/// Label column: two spaces, the longest label ("typical cause"), two spaces.
const LABEL: usize = 17;

/// Options of `kmsload explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The code: 0xC004F038, C004F038, the signed decimal slmgr prints (-1073418184), or a
    /// name such as SL_E_VL_NOT_ENOUGH_COUNT.
    #[arg(
        value_name = "CODE",
        allow_negative_numbers = true,
        required_unless_present = "list",
        conflicts_with = "list"
    )]
    pub code: Option<String>,
    /// List every code kmsload knows.
    #[arg(long)]
    pub list: bool,
    /// Print JSON: one object, or an array with --list.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kmsload explain`.
///
/// # Errors
/// [`CliError::Usage`] when CODE cannot be read or is not a known code;
/// [`CliError::Runtime`] when stdout cannot be written.
pub fn run(args: ExplainArgs) -> Result<Status, CliError> {
    if args.list {
        let out = if args.json {
            to_json(&hresults().iter().map(CodeJson::new).collect::<Vec<_>>())?
        } else {
            list_table()
        };
        return print(&out);
    }
    let input = args.code.unwrap_or_default();
    let h = resolve(&input)?;
    let out = if args.json {
        to_json(&CodeJson::new(h))?
    } else {
        describe(h)
    };
    print(&out)
}

/// The row for what the user typed.
///
/// # Errors
/// [`CliError::Usage`] naming the problem and how to list the known codes.
fn resolve(input: &str) -> Result<&'static Hresult, CliError> {
    const LIST: &str = "`kmsload explain --list` shows the known codes";
    let code = match parse_code(input) {
        Ok(code) => code,
        Err(e) => {
            return hresult_by_name(input).ok_or_else(|| CliError::Usage(format!("{e}; {LIST}")));
        }
    };
    hresult(code).ok_or_else(|| {
        let wrapped = win32_error(code)
            .map(|n| format!("; it is Win32 error {n} wrapped in an HRESULT"))
            .unwrap_or_default();
        CliError::Usage(format!(
            "unknown code {} ({} in decimal): not one of the {} activation codes kmsload \
             knows{wrapped}; {LIST}",
            hex(code),
            // The signed reading slmgr prints; reinterpreting the bits is the point.
            code as i32,
            hresults().len()
        ))
    })
}

/// The human description: code and name, then labelled, wrapped fields.
fn describe(h: &Hresult) -> String {
    let mut out = format!("{}  {}\n", h.hex(), h.name);
    let mut field = |label: &str, text: &str| {
        for (i, line) in wrap(text, WIDTH - LABEL).iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            out.push_str(&format!("  {label:<w$}{line}\n", w = LABEL - 2));
        }
    };
    field(
        "produced by",
        &format!("{}: {}", h.origin, h.origin.describe()),
    );
    field("in kmsload", h.kmsload.describe());
    field("meaning", &h.meaning);
    // A raw fault status takes its cause and checks from the HRESULT it maps to (spec 8.1).
    let mapped = h.maps_to();
    if let Some(m) = mapped {
        let win32 = win32_error(m.code)
            .map(|n| format!(" (Win32 error {n})"))
            .unwrap_or_default();
        field(
            "maps to",
            &format!(
                "{} {}{win32}: what Windows reports for this fault",
                m.hex(),
                m.name
            ),
        );
    }
    if let Some(s) = h.fault_status() {
        field(
            "fault status",
            &format!("{} {} in the fault PDU", s.hex(), s.name),
        );
    }
    let source = mapped.unwrap_or(h);
    if let Some(cause) = &source.typical_cause {
        field("typical cause", cause);
    }
    if let Some(check) = &source.what_to_check {
        field("what to check", check);
    }
    field("evidence", &h.evidence);
    if mapped.is_none()
        && let Some(n) = win32_error(h.code)
    {
        field("win32 error", &n.to_string());
    }
    // The signed reading is what slmgr and the event log print; reinterpreting is the point.
    let signed = h.code as i32;
    if signed < 0 {
        field(
            "decimal",
            &format!("{signed} (as slmgr prints it), {} unsigned", h.code),
        );
    } else {
        field("decimal", &signed.to_string());
    }
    out
}

/// One code as JSON: every CSV field plus the decoded relations, in this order.
#[derive(Debug, Serialize)]
struct CodeJson<'a> {
    code: String,
    value: u32,
    signed: i32,
    name: &'a str,
    origin: Origin,
    produced_by: &'static str,
    kmsload: Role,
    in_kmsload: &'static str,
    meaning: &'a str,
    typical_cause: Option<&'a str>,
    what_to_check: Option<&'a str>,
    evidence: &'a str,
    win32_error: Option<u16>,
    maps_to: Option<Link<'a>>,
    fault_status: Option<Link<'a>>,
}

/// Another row, by code and name.
#[derive(Debug, Serialize)]
struct Link<'a> {
    code: String,
    name: &'a str,
}

impl<'a> CodeJson<'a> {
    fn new(h: &'a Hresult) -> Self {
        let link = |r: Option<&'static Hresult>| {
            r.map(|r| Link {
                code: r.hex(),
                name: r.name.as_str(),
            })
        };
        Self {
            code: h.hex(),
            value: h.code,
            // Reinterpreting the bits is the point: slmgr prints this.
            signed: h.code as i32,
            name: &h.name,
            origin: h.origin,
            produced_by: h.origin.describe(),
            kmsload: h.kmsload,
            in_kmsload: h.kmsload.describe(),
            meaning: &h.meaning,
            typical_cause: h.typical_cause.as_deref(),
            what_to_check: h.what_to_check.as_deref(),
            evidence: &h.evidence,
            win32_error: win32_error(h.code),
            maps_to: link(h.maps_to()),
            fault_status: link(h.fault_status()),
        }
    }
}

fn to_json(v: &impl Serialize) -> Result<String, CliError> {
    let mut s = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::Runtime(format!("cannot encode JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

fn list_table() -> String {
    let rows: Vec<Vec<String>> = hresults()
        .iter()
        .map(|h| {
            vec![
                h.hex(),
                h.kmsload.short().to_owned(),
                h.origin.short().to_owned(),
                h.name.clone(),
            ]
        })
        .collect();
    let mut out = table(&["code", "kmsload", "origin", "name"], &[], &rows);
    let legend = format!(
        "{} codes. kmsload: derives = kmsload's client works the code out itself; relays = \
         shown as a host sent it; both; - = never produced by kmsload. `kmsload explain CODE` \
         for the meaning and what to check.",
        rows.len()
    );
    for line in wrap(&legend, WIDTH) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Greedy word wrap; a word longer than `width` gets a line of its own.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::catalog::hresult::code;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ExplainArgs, clap::Error> {
        let argv = ["kmsload", "explain"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Explain(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_decimal_is_a_code_not_a_flag() {
        let a = parse(&["-1073418184", "--json"]).unwrap();
        assert_eq!(a.code.as_deref(), Some("-1073418184"));
        assert!(a.json);
    }

    #[test]
    fn code_or_list_is_required_but_not_both() {
        assert_eq!(
            parse(&[]).unwrap_err().kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse(&["0", "--list"]).unwrap_err().kind(),
            clap::error::ErrorKind::ArgumentConflict
        );
        assert!(parse(&["--list"]).unwrap().list);
    }

    #[test]
    fn resolves_every_form() {
        for input in [
            "0xC004F038",
            "C004F038",
            "c004f038",
            "-1073418184",
            "3221549112",
            "sl_e_vl_not_enough_count",
        ] {
            assert_eq!(
                resolve(input).map(|h| h.code).ok(),
                Some(code::SL_E_VL_NOT_ENOUGH_COUNT),
                "{input}"
            );
        }
    }

    #[test]
    fn unknown_code_is_a_usage_error_naming_the_list() {
        let Err(CliError::Usage(msg)) = resolve("0x80070006") else {
            panic!()
        };
        assert!(
            msg.starts_with("unknown code 0x80070006 (-2147024890 in decimal)"),
            "{msg}"
        );
        assert!(msg.contains("Win32 error 6"), "{msg}");
        assert!(msg.contains("kmsload explain --list"), "{msg}");
        let Err(CliError::Usage(msg)) = resolve("banana") else {
            panic!()
        };
        assert!(
            msg.contains("'banana' is not a code") && msg.contains("--list"),
            "{msg}"
        );
    }

    #[test]
    fn describe_shows_every_field() {
        let h = hresult(code::SL_E_VL_NOT_ENOUGH_COUNT).unwrap();
        let text = describe(h);
        assert!(
            text.starts_with("0xC004F038  SL_E_VL_NOT_ENOUGH_COUNT\n"),
            "{text}"
        );
        for label in [
            "produced by",
            "in kmsload",
            "meaning",
            "typical cause",
            "what to check",
            "evidence",
            "decimal",
        ] {
            assert!(text.contains(&format!("\n  {label}")), "{label}: {text}");
        }
        assert!(text.contains("-1073418184 (as slmgr prints it)"), "{text}");
        assert!(
            text.contains("produced by    client (derived): the client"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
    }

    #[test]
    fn fault_status_shows_the_hresult_it_maps_to() {
        let text = describe(hresult(code::NCA_S_UNK_IF).unwrap());
        assert!(
            text.contains("\n  maps to        0x800706B5 RPC_S_UNKNOWN_IF (Win32 error 1717)"),
            "{text}"
        );
        // Cause taken from the mapped row, not the CSV's "see 0x800706B5".
        assert!(!text.contains("see 0x"), "{text}");
        assert!(
            text.contains("fault nca_s_unk_if (0x1C010003): request on a"),
            "{text}"
        );

        let text = describe(hresult(code::RPC_S_UNKNOWN_IF).unwrap());
        assert!(
            text.contains("fault status   0x1C010003 nca_s_unk_if"),
            "{text}"
        );
        assert!(text.contains("win32 error    1717"), "{text}");
        assert!(
            text.contains("decimal        -2147023179 (as slmgr prints it)"),
            "{text}"
        );
        let text = describe(hresult(code::NCA_S_UNK_IF).unwrap());
        assert!(text.ends_with("\n  decimal        469827587\n"), "{text}");
    }

    /// Issue 12, item 12: the codes an admin meets first are known, with cause and checks.
    #[test]
    fn codes_admins_meet_first_are_explained() {
        for (input, name) in [
            ("0xC004F050", "SL_E_INVALID_PRODUCT_KEY"),
            ("0xC004F035", "SL_E_VL_NOT_WINDOWS_SLP"),
            ("0x80070005", "E_ACCESSDENIED"),
        ] {
            let h = resolve(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            let text = describe(h);
            assert!(text.starts_with(&format!("{input}  {name}\n")), "{text}");
            assert!(text.contains("\n  typical cause"), "{text}");
            assert!(text.contains("\n  what to check"), "{text}");
            assert!(
                text.contains("in kmsload     never produced by kmsload"),
                "{text}"
            );
            assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        }
        // The DNS code of a missing SRV record, which kmsload's discovery also derives.
        let text = describe(resolve("0x8007232B").unwrap());
        assert!(
            text.starts_with("0x8007232B  DNS_ERROR_RCODE_NAME_ERROR\n"),
            "{text}"
        );
        assert!(text.contains("_vlmcs._tcp"), "{text}");
        assert!(
            text.contains("in kmsload     derived by kmsload's client"),
            "{text}"
        );
    }

    #[test]
    fn no_host_reachable_says_so_and_is_marked_derived() {
        let h = resolve("0xC004F074").unwrap();
        assert!(h.meaning.contains("none could be reached"), "{}", h.meaning);
        let text = describe(h);
        assert!(!text.contains("valid response"), "{text}");
        assert!(
            text.contains("in kmsload     derived by kmsload's client"),
            "{text}"
        );
        let text = describe(resolve("0xC004F06C").unwrap());
        assert!(text.contains("in kmsload     sent by a host"), "{text}");
    }

    #[test]
    fn a_code_without_a_symbol_is_shown_as_such() {
        let text = describe(resolve("0x8004FE21").unwrap());
        assert!(
            text.starts_with("0x8004FE21  (no symbolic name)\n"),
            "{text}"
        );
    }

    #[test]
    fn dash_fields_are_left_out() {
        let text = describe(hresult(code::S_OK).unwrap());
        assert!(!text.contains("typical cause"), "{text}");
    }

    #[test]
    fn json_has_the_relations() {
        let json = |c| serde_json::to_value(CodeJson::new(hresult(c).unwrap())).unwrap();
        let v = json(code::NCA_S_PROTO_ERROR);
        assert_eq!(v["code"], "0x1C01000B");
        assert_eq!(v["origin"], "rpc fault status");
        assert_eq!(v["maps_to"]["code"], "0x800706C0");
        assert_eq!(v["maps_to"]["name"], "RPC_S_PROTOCOL_ERROR");
        assert!(v["fault_status"].is_null());
        let v = json(code::SL_E_VL_NOT_ENOUGH_COUNT);
        assert_eq!(v["signed"], -1_073_418_184);
        assert_eq!(v["value"], 3_221_549_112_u32);
        assert!(v["win32_error"].is_null());
        assert!(v["maps_to"].is_null());
        assert_eq!(v["kmsload"], "derived");
        assert_eq!(json(0xC004_C008)["kmsload"], "not produced");
    }

    #[test]
    fn list_has_every_code() {
        let text = list_table();
        for h in hresults() {
            assert!(
                text.contains(&format!("\n{}  ", h.hex())),
                "{}: {text}",
                h.hex()
            );
        }
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        assert!(
            text.contains("0xC004F038  derives  client        SL_E_VL_NOT_ENOUGH_COUNT"),
            "{text}"
        );
        assert!(
            text.contains("0xC004F06C  relays   host          SL_E_VL_INVALID_TIMESTAMP"),
            "{text}"
        );
        assert!(
            text.contains("0xC004F050  -        licensing     SL_E_INVALID_PRODUCT_KEY"),
            "{text}"
        );
        assert!(text.contains("derives = kmsload's client"), "{text}");
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("abcdefgh ij", 4), ["abcdefgh", "ij"]);
    }
}
