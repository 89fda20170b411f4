//! End to end: `kmsload products` and `kmsload explain` as a user runs them, through the
//! built binary, checking stdout, stderr and exit codes (0 success, 2 bad input).

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{KMSLOAD, kmsload, stderr, stdout};

/// Runs a command that must succeed and returns its stdout.
fn ok(args: &[&str]) -> String {
    let o = kmsload(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Runs a command that must fail with exit 2 and returns its stderr.
fn usage_error(args: &[&str]) -> String {
    let o = kmsload(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
    assert!(
        o.stdout.is_empty(),
        "{args:?} printed to stdout: {}",
        stdout(&o)
    );
    stderr(&o)
}

fn json_array(args: &[&str]) -> Vec<Value> {
    match serde_json::from_str(&ok(args)).expect("valid JSON") {
        Value::Array(items) => items,
        other => panic!("{args:?}: not an array: {other}"),
    }
}

mod products {
    use super::*;

    #[test]
    fn table_lists_every_product_with_a_footer() {
        let out = ok(&["products"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1 + 262 + 1);
        assert_eq!(
            lines[0],
            "family  proto   N  GVLK                           name"
        );
        assert!(
            lines.contains(&"client  V6     25  W269N-WFGWX-YVC9B-4J6C9-T83GX  Windows 10/11 Pro"),
            "{out}"
        );
        assert!(lines.contains(
            &"client  V6     25  -                              Windows 8.1 Core Connected"
        ));
        assert_eq!(
            lines[263],
            "262 products (89 windows-client, 55 windows-server, 118 office)"
        );
        // Aligned: every row has its name where the header says.
        assert!(
            lines[1..263]
                .iter()
                .all(|l| l.len() > 50 && &l[48..50] == "  ")
        );
    }

    #[test]
    fn family_filters() {
        for (family, count, short) in [
            ("windows-client", 89, "client"),
            ("windows-server", 55, "server"),
            ("office", 118, "office"),
        ] {
            let out = ok(&["products", "--family", family]);
            let rows: Vec<&str> = out
                .lines()
                .skip(1)
                .filter(|l| !l.contains(" products"))
                .collect();
            assert_eq!(rows.len(), count, "{family}");
            assert!(rows.iter().all(|l| l.starts_with(short)), "{family}");
            assert!(
                out.ends_with(&format!("{count} of 262 products ({count} {family})\n")),
                "{out}"
            );
        }
    }

    #[test]
    fn json_has_every_csv_field() {
        let all = json_array(&["products", "--json"]);
        assert_eq!(all.len(), 262);
        let fields = [
            "name",
            "family",
            "app_id",
            "sku_id",
            "kms_id",
            "kms_id_name",
            "n_policy",
            "protocol",
            "gvlk",
        ];
        for item in &all {
            let obj = item.as_object().expect("objects");
            assert_eq!(obj.len(), fields.len(), "{item}");
            for f in fields {
                assert!(obj.contains_key(f), "{f} missing in {item}");
            }
        }
        let pro = all
            .iter()
            .find(|p| p["name"] == "Windows 10/11 Pro")
            .expect("Pro row");
        assert_eq!(pro["gvlk"], "W269N-WFGWX-YVC9B-4J6C9-T83GX");
        assert_eq!(pro["family"], "windows-client");
        assert_eq!(pro["n_policy"], 25);
        assert_eq!(pro["protocol"], 6);
        assert_eq!(pro["app_id"], "55c92734-d682-4d71-983e-d6ec3f16059f");
        assert_eq!(all.iter().filter(|p| p["gvlk"].is_null()).count(), 11);
    }

    #[test]
    fn json_per_family() {
        for (family, count) in [
            ("windows-client", 89),
            ("windows-server", 55),
            ("office", 118),
        ] {
            let items = json_array(&["products", "--family", family, "--json"]);
            assert_eq!(items.len(), count, "{family}");
            assert!(items.iter().all(|p| p["family"] == family), "{family}");
        }
    }

    #[test]
    fn search_by_words_key_or_sku_id() {
        let positional = ok(&["products", "windows", "11", "pro"]);
        assert_eq!(positional, ok(&["products", "--search", "Windows 11 Pro"]));
        assert!(positional.contains("  Windows 10/11 Pro\n"), "{positional}");
        assert!(
            positional.ends_with("7 of 262 products (7 windows-client)\n"),
            "{positional}"
        );

        let by_key = ok(&["products", "w269n-wfgwx-yvc9b-4j6c9-t83gx"]);
        assert_eq!(by_key.lines().count(), 3, "{by_key}");
        let by_sku = ok(&["products", "{32d2fab3-e4a8-42c2-923b-4bf4fd13e6ee}"]);
        assert!(
            by_sku.contains("Windows 10 Enterprise LTSC 2019/2021\n"),
            "{by_sku}"
        );

        let server = json_array(&["products", "--family", "server", "--json", "2022"]);
        assert_eq!(server.len(), 6);
    }

    #[test]
    fn no_match_is_not_an_error_but_hints() {
        let o = kmsload(&["products", "Windows Sever 2022 Datacenter"]);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(stdout(&o), "0 of 262 products\n");
        let err = stderr(&o);
        assert!(
            err.contains("did you mean: 'Windows Server 2022 Datacenter'"),
            "{err}"
        );
        assert_eq!(ok(&["products", "--json", "qqqq"]).trim(), "[]");
    }

    #[test]
    fn bad_flags_exit_2() {
        let err = usage_error(&["products", "--family", "linux"]);
        assert!(err.contains("windows-client"), "{err}");
        usage_error(&["products", "--bogus"]);
        usage_error(&["products", "pro", "--search", "pro"]);
    }

    #[test]
    fn closed_pipe_ends_quietly() {
        // The JSON (about 80 kB) is larger than a pipe's buffer, so the write is still going on
        // when the reader goes away, as with `kmsload products --json | head`.
        let mut child = Command::new(KMSLOAD)
            .args(["products", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut pipe = child.stdout.take().expect("stdout pipe");
        let mut first = [0u8; 64];
        pipe.read_exact(&mut first).expect("some output");
        drop(pipe);
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
    }
}

mod explain {
    use super::*;

    #[test]
    fn every_input_form_names_not_enough_count() {
        for code in [
            "0xC004F038",
            "C004F038",
            "c004f038",
            "-1073418184",
            "3221549112",
        ] {
            let out = ok(&["explain", code]);
            assert!(
                out.starts_with("0xC004F038  SL_E_VL_NOT_ENOUGH_COUNT\n"),
                "{code}: {out}"
            );
            for label in ["produced by", "meaning", "typical cause", "what to check"] {
                assert!(
                    out.contains(&format!("\n  {label}  ")),
                    "{code}: {label}: {out}"
                );
            }
            assert!(
                out.contains("CurrentCount in the response vs RequiredClientCount"),
                "{out}"
            );
        }
    }

    #[test]
    fn json_output() {
        let out = ok(&["explain", "-1073418184", "--json"]);
        let v: Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["name"], "SL_E_VL_NOT_ENOUGH_COUNT");
        assert_eq!(v["code"], "0xC004F038");
        assert_eq!(v["signed"], -1_073_418_184);
        assert_eq!(v["origin"], "client (derived)");
        assert!(
            v["typical_cause"]
                .as_str()
                .is_some_and(|s| s.contains("CMID"))
        );
    }

    #[test]
    fn fault_status_shows_its_hresult() {
        let out = ok(&["explain", "0x1C010003"]);
        assert!(
            out.contains("maps to        0x800706B5 RPC_S_UNKNOWN_IF (Win32 error 1717)"),
            "{out}"
        );
        let v: Value = serde_json::from_str(&ok(&["explain", "0x1C010002", "--json"])).unwrap();
        assert_eq!(v["maps_to"]["code"], "0x800706D1");
        let out = ok(&["explain", "0x800706C0"]);
        assert!(
            out.contains("fault status   0x1C01000B nca_s_proto_error"),
            "{out}"
        );
    }

    #[test]
    fn unknown_code_exits_2_and_says_how_to_list() {
        let err = usage_error(&["explain", "0x12345678"]);
        assert!(err.contains("unknown code 0x12345678"), "{err}");
        assert!(err.contains("kmsload explain --list"), "{err}");
        let err = usage_error(&["explain", "not-a-code"]);
        assert!(err.contains("'not-a-code' is not a code"), "{err}");
        assert!(err.contains("kmsload explain --list"), "{err}");
        usage_error(&["explain"]);
        usage_error(&["explain", "0", "--list"]);
    }

    #[test]
    fn list_shows_every_code() {
        let out = ok(&["explain", "--list"]);
        assert!(
            out.contains("0xC004F06C  relays   host          SL_E_VL_INVALID_TIMESTAMP"),
            "{out}"
        );
        let all = json_array(&["explain", "--list", "--json"]);
        assert_eq!(all.len(), 47);
        assert_eq!(out.lines().filter(|l| l.starts_with("0x")).count(), 47);
        assert!(all.iter().any(|c| c["name"] == "nca_s_proto_error"));
        assert!(all.iter().any(|c| c["kmsload"] == "derived"));
    }

    /// Issue 12, item 12: codes an admin meets before any KMS exchange were unknown (exit 2).
    #[test]
    fn codes_from_microsofts_list_are_explained() {
        for code in ["0x8007007B", "0xC004F050", "0xC004F035", "0xC004C008"] {
            let out = ok(&["explain", code]);
            assert!(out.starts_with(&format!("{code}  ")), "{out}");
            assert!(out.contains("\n  what to check  "), "{out}");
            assert!(out.contains("never produced by kmsload"), "{out}");
        }
        let v: Value = serde_json::from_str(&ok(&["explain", "0xC004F074", "--json"])).unwrap();
        assert_eq!(v["kmsload"], "derived");
        assert!(
            v["meaning"]
                .as_str()
                .is_some_and(|m| m.contains("none could be reached")),
            "{v}"
        );
    }
}
