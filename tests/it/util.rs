//! Helpers every area uses: the built binary and its output, fresh directories, scenario runs;
//! [`dnsmasq`], a real DNS server for the discovery tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kmsload::wire::FileTime;
use serde_json::Value;

pub(crate) mod dnsmasq;

/// The `kmsload` binary cargo built for these tests.
pub(crate) const KMSLOAD: &str = env!("CARGO_BIN_EXE_kmsload");

/// A `kmsload` command run from the crate's root (where `scenarios/` is).
pub(crate) fn command() -> Command {
    let mut c = Command::new(KMSLOAD);
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs `kmsload ARGS` to the end and returns what it printed and its status.
pub(crate) fn kmsload(args: &[&str]) -> Output {
    command()
        .args(args)
        .output()
        .expect("the kmsload binary runs")
}

/// stdout, which must be UTF-8.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// stderr, which must be UTF-8.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// Exit status, stdout and stderr, for an assertion message.
pub(crate) fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh, empty directory under the system's temp dir, unique per call (the tests run in
/// parallel threads of one process).
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kmsload-it-{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes scenario `text` to `dir/scenario.toml` and returns the path.
pub(crate) fn write_scenario(dir: &Path, text: &str) -> String {
    let path = dir.join("scenario.toml");
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `kmsload run` of scenario `text` (written into `dir`), quietly and without HTML; returns
/// the output and the results directory.
pub(crate) fn run_text(dir: &Path, text: &str) -> (Output, PathBuf) {
    let path = write_scenario(dir, text);
    let results = dir.join("results");
    let o = kmsload(&[
        "run",
        &path,
        "--quiet",
        "--no-html",
        "--out",
        results.to_str().unwrap(),
    ]);
    (o, results)
}

/// A results directory's summary.json.
pub(crate) fn summary(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// attempts = activated + not_activated + failed = Σ by_code = events.csv rows; returns the
/// summary.
pub(crate) fn assert_accounting(out: &Path) -> Value {
    let s = summary(out);
    let attempts = s["attempts"].as_u64().unwrap();
    let b = &s["by_outcome"];
    let sum = ["activated", "not_activated", "failed"]
        .iter()
        .map(|k| b[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(sum, attempts, "by_outcome sums to attempts");
    let codes: u64 = s["by_code"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(codes, attempts, "by_code sums to attempts");
    let events = fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(
        events.lines().count() as u64,
        attempts + 1,
        "one events.csv row per attempt"
    );
    assert_eq!(s["dispatched"].as_u64().unwrap(), attempts);
    s
}

/// This machine's clock, in whole seconds, as a request carries it.
pub(crate) fn now() -> FileTime {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    FileTime::from_unix(i64::try_from(t.as_secs()).unwrap(), 0)
}

/// A loopback port nothing listens on (bound, then released).
pub(crate) fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Reads the first line `kmsload host` writes to stderr and returns the address it says it
/// listens on.
pub(crate) fn listening_addr(stderr: &mut impl std::io::BufRead) -> String {
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    first
        .trim()
        .strip_prefix("kmsload host listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from kmsload host: {first:?}"))
        .to_owned()
}

/// Sends signal `name` (`TERM`, `INT`, ...) to `child`.
pub(crate) fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{name}");
}

/// Waits for `child` at most `limit`; a run that outlives it is a hang.
pub(crate) fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
