//! `kmsload host`: the reference KMS host on 127.0.0.1:1688 (any other address only when
//! given with `--listen`), one log line per request on stderr (text or JSON, written by a
//! dedicated thread: a sink that cannot keep up loses lines, counted, rather than slowing the
//! host; see [`crate::host::server::log`]), the counters on stdout when stopped with Ctrl-C
//! (or SIGTERM).
//!
//! Two stages, like every command: the flags become [`ServerOptions`] and are checked before
//! anything starts (a bad flag, host key, ePID, LCID or state file exits 2); then the host
//! runs until a signal. Exit 0 after a clean stop, 1 when the host could not listen or the
//! final `--state` save failed.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{CliError, Status};
use crate::host::config::check_fixed_epid;
use crate::host::server::{
    self, HostHandle, LOG_EXIT_GRACE, LOG_QUEUE, LogFormat, Logger, ServerError, ServerOptions,
    SystemClock,
};
use crate::host::{HostConfig, HostKey, StateError, UnknownHostKey, state};
use crate::values;
use crate::wire::KMS_PORT;
use crate::wire::kms::HwId;
use crate::wire::rpc::SecondaryAddress;
use crate::wire::session::HostRpcConfig;

/// Options of `kmsload host`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload host                                     # 127.0.0.1:1688, every product, Windows-like RPC\n  kmsload host --listen 127.0.0.1:0                # any free port (printed at start)\n  kmsload host --host-key \"Office 2019\" --no-time-check\n  kmsload host --charged --state host.json         # activates at once, keeps counts across restarts\n  kmsload host --no-ndr64 --close-after-response   # behave like py-kms"
)]
pub struct HostArgs {
    // Help in `help` rather than a doc comment: rustdoc would read `[:PORT]` as a link.
    #[arg(
        help = "Address to listen on, ADDR[:PORT] (port 1688; port 0 picks a free one). \
                Loopback by default; any other address only when named here"
    )]
    #[arg(long, value_name = "ADDR[:PORT]", default_value = "127.0.0.1:1688", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Installed host key (CSVLK): e.g. "Windows Server 2022", "Office LTSC 2021", or `all`
    /// (every Windows and Office product).
    #[arg(long, value_name = "NAME|all", default_value = "all", value_parser = parse_host_key)]
    pub host_key: &'static HostKey,

    /// Start with every client table at its threshold, so the first client activates
    /// (like vlmcsd -E0).
    #[arg(long)]
    pub charged: bool,

    /// Accept requests whatever their time (otherwise more than 4 hours off → 0xC004F06C).
    #[arg(long)]
    pub no_time_check: bool,

    /// Also activate retail and preview KMS IDs (genuine hosts refuse them with 0xC004F042).
    #[arg(long)]
    pub accept_retail: bool,

    /// Send this ePID in every response instead of the generated ones.
    #[arg(long, value_parser = parse_epid)]
    pub epid: Option<String>,

    /// HwID of V6 responses, 16 hex digits (default 3A1C049600B60076, or the saved one).
    #[arg(long, value_name = "HEX")]
    pub hwid: Option<HwId>,

    /// VLActivationInterval sent to clients: minutes, or a duration such as 2h.
    #[arg(long, value_name = "MINUTES", default_value = "120", value_parser = values::parse_minutes)]
    pub activation_interval: u32,

    /// VLRenewalInterval sent to clients: minutes, or a duration such as 7d.
    #[arg(long, value_name = "MINUTES", default_value = "10080", value_parser = values::parse_minutes)]
    pub renewal_interval: u32,

    /// LCID in generated ePIDs.
    #[arg(long, default_value_t = 1033)]
    pub lcid: u32,

    /// Host OS build in generated ePIDs (default: the host key's, e.g. 26100).
    #[arg(long, value_name = "BUILD")]
    pub host_build: Option<u32>,

    /// Newest protocol version answered: 6 (Server 2012 R2 and later), 5 (Server 2012),
    /// 4 (Server 2008 R2). Newer requests get 0x8007000D.
    #[arg(long, value_name = "4|5|6", default_value_t = 6, value_parser = clap::value_parser!(u16).range(4..=6))]
    pub max_protocol: u16,

    /// Seed of the generated ePIDs (the same seed gives the same ePIDs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Refuse NDR64 and accept NDR32 in the bind (py-kms, vlmcsd -N0): tests clients'
    /// fallback.
    #[arg(long)]
    pub no_ndr64: bool,

    /// Refuse bind-time feature negotiation (vlmcsd -B0).
    #[arg(long)]
    pub no_btfn: bool,

    /// Close the connection on alter_context instead of answering it (py-kms).
    #[arg(long)]
    pub no_alter_context: bool,

    /// Close the connection after every response (py-kms, vlmcsd -d).
    #[arg(long)]
    pub close_after_response: bool,

    /// Answer V6 requests with the request's IV, as KMS emulators built with V5 rules do
    /// (vlmcs and `kmsload validate` flag it): tests clients' emulator detection.
    #[arg(long)]
    pub echo_iv: bool,

    /// Drop a connection when no whole PDU arrives for this long (vlmcsd -t).
    #[arg(long, default_value = "30s", value_parser = values::parse_nonzero_duration)]
    pub idle_timeout: Duration,

    /// Simultaneous connections; more wait in the listen backlog until one closes.
    #[arg(long, value_name = "N", default_value = "10000", value_parser = values::parse_positive_count)]
    pub max_connections: u64,

    /// Keep the client tables, ePIDs and HwID in FILE across restarts (loaded at start when
    /// it exists, saved every 10 s when changed and at exit, atomically).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// No log line per request.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Log line format: `text` (one line per request), or `json` (one object per line with
    /// time, peer, protocol, product, cmid, outcome, code, count) for log pipelines.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Print the summary at exit as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kmsload host` until Ctrl-C or SIGTERM.
///
/// # Errors
/// [`CliError::Usage`] for an invalid configuration or state file, [`CliError::Runtime`]
/// when the host cannot listen or its state cannot be saved at exit.
pub fn run(args: HostArgs) -> Result<Status, CliError> {
    let options = options(&args)?;
    // Before anything starts: a path that cannot hold the state is the user's to fix (exit
    // 2), not a surprise at the first save.
    let removed = match &args.state {
        Some(path) => state::prepare(path).map_err(|e| CliError::Usage(e.to_string()))?,
        None => Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(args, options, removed))
}

/// The validated server options for `args`.
///
/// # Errors
/// [`CliError::Usage`] naming the flag that is wrong.
pub fn options(args: &HostArgs) -> Result<ServerOptions, CliError> {
    let max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    let host = HostConfig {
        host_key: args.host_key,
        accept_retail: args.accept_retail,
        charged: args.charged,
        time_check: !args.no_time_check,
        activation_interval: args.activation_interval,
        renewal_interval: args.renewal_interval,
        epid: args.epid.clone(),
        hwid: args.hwid,
        lcid: args.lcid,
        host_build: args.host_build,
        versions: 4..=args.max_protocol,
        seed: args.seed,
        ..HostConfig::default()
    };
    host.validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(ServerOptions {
        listen: args.listen,
        host,
        rpc: HostRpcConfig {
            ndr64: !args.no_ndr64,
            btfn: !args.no_btfn,
            alter_context: !args.no_alter_context,
            sec_addr: SecondaryAddress::port(args.listen.port()),
            ..HostRpcConfig::default()
        },
        close_after_response: args.close_after_response,
        echo_iv: args.echo_iv,
        idle_timeout: args.idle_timeout,
        max_connections,
        state_file: args.state.clone(),
        state_interval: server::DEFAULT_STATE_INTERVAL,
        clock: Arc::new(SystemClock),
        // The writer thread is started by `serve`, with the runtime.
        log: None,
    })
}

/// Serves until stopped; `removed` are the stale temporary files [`state::prepare`] removed,
/// reported after the first line (which names the address).
async fn serve(
    args: HostArgs,
    options: ServerOptions,
    removed: Vec<String>,
) -> Result<Status, CliError> {
    let mut options = options;
    let writer = if args.quiet {
        None
    } else {
        let (logger, writer) =
            Logger::writer(Box::new(std::io::stderr()), args.log_format, LOG_QUEUE)
                .map_err(|e| CliError::Runtime(format!("cannot start the log writer: {e}")))?;
        options.log = Some(logger);
        Some(writer)
    };
    let handle = server::start(options.clone()).await.map_err(start_error)?;
    announce(&args, &options, &handle);
    for file in removed {
        crate::errln!("removed {file}: a temporary file left by an interrupted save");
    }
    let signal = wait_for_stop().await;
    let mut report = handle.shutdown().await;
    drop(options);
    if let Some(writer) = writer {
        let totals = writer.finish(LOG_EXIT_GRACE);
        report.log_lines_dropped = totals.dropped;
        report.log_lines_unwritten = totals.unwritten;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        // serde_json cannot fail on these plain structs.
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        let _ = write!(out, "{report}");
    }
    let _ = out.flush();
    if let Err(e) = signal {
        return Err(CliError::Runtime(format!("cannot wait for Ctrl-C: {e}")));
    }
    match report.state_error {
        Some(e) => Err(CliError::Runtime(format!("host state not saved: {e}"))),
        None => Ok(Status::Success),
    }
}

fn start_error(e: ServerError) -> CliError {
    match e {
        ServerError::Config(_)
        | ServerError::Options(_)
        | ServerError::State(StateError::Invalid { .. } | StateError::Unusable { .. }) => {
            CliError::Usage(e.to_string())
        }
        ServerError::State(StateError::Io { .. })
        | ServerError::Listen { .. }
        | ServerError::Runtime(_) => CliError::Runtime(e.to_string()),
    }
}

/// The start-up lines on stderr; the first names the address (tests and scripts read it).
fn announce(args: &HostArgs, options: &ServerOptions, handle: &HostHandle) {
    let addr = handle.addr();
    let on_off = |b: bool| if b { "on" } else { "off" };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "kmsload host listening on {addr}");
    if !addr.ip().is_loopback() {
        let _ = writeln!(
            err,
            "warning: {} is not a loopback address: every machine that reaches it can activate against this test host",
            addr.ip()
        );
    }
    if let Some(warning) =
        open_files_warning(options.max_connections, crate::procfs::open_file_limit())
    {
        let _ = writeln!(err, "{warning}");
    }
    let summary = handle.summary();
    let _ = writeln!(
        err,
        "host key {}  HwID {}  protocols V4-V{}  time check {}  intervals {}/{} min",
        summary.host_key,
        summary.hwid,
        args.max_protocol,
        on_off(!args.no_time_check),
        args.activation_interval,
        args.renewal_interval
    );
    for (csvlk, epid) in &summary.epids {
        let _ = writeln!(err, "  ePID {epid}  ({csvlk})");
    }
    let _ = writeln!(
        err,
        "RPC: NDR64 {}  BTFN {}  alter_context {}  {}  idle timeout {}  max {} connections{}",
        on_off(options.rpc.ndr64),
        on_off(options.rpc.btfn),
        on_off(options.rpc.alter_context),
        if options.close_after_response {
            "close after response"
        } else {
            "keep-alive"
        },
        values::DisplayDuration(options.idle_timeout),
        options.max_connections,
        match &options.state_file {
            Some(p) => format!("  state {}", p.display()),
            None => String::new(),
        }
    );
    let _ = writeln!(err, "Ctrl-C stops the host and prints the counters.");
}

/// Waits for Ctrl-C, or SIGTERM on Unix.
async fn wait_for_stop() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Reads `IP[:PORT]` for `--listen`: port 1688 when omitted, 0 for any free port; IPv6 with a
/// port in brackets (`[::1]:1688`). Names are refused: a listener binds an address.
///
/// # Errors
/// A message naming the value and the expected form.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, KMS_PORT));
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, KMS_PORT));
    }
    Err(format!(
        "'{t}' is not an IP address with an optional port; expected e.g. 127.0.0.1, 127.0.0.1:1688, [::1]:1688 or 127.0.0.1:0 (any free port)"
    ))
}

/// The start-up warning when `max_connections` open connections need more file descriptors
/// than the open-file `limit` allows (`None`: no limit known, or enough). Without it a host
/// under load failed accepts with EMFILE and said so only at exit (issue 12, item 17).
fn open_files_warning(max_connections: usize, limit: Option<u64>) -> Option<String> {
    // The listener, stdio, the runtime's own descriptors and a state file being saved.
    const SLACK: u64 = 32;
    let limit = limit?;
    let connections = u64::try_from(max_connections).unwrap_or(u64::MAX);
    let needed = connections.saturating_add(SLACK);
    (needed > limit).then(|| {
        format!(
            "warning: --max-connections {connections} needs about {needed} open files, but the \
             open-file limit is {limit}: connections beyond about {} will fail at accept (logged \
             as they happen, at most one line a second). Raise the limit (ulimit -n {needed}) or \
             lower --max-connections.",
            limit.saturating_sub(SLACK)
        )
    })
}

fn parse_host_key(s: &str) -> Result<&'static HostKey, UnknownHostKey> {
    HostKey::lookup(s)
}

fn parse_epid(s: &str) -> Result<String, String> {
    check_fixed_epid(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<HostArgs, clap::Error> {
        let mut argv = vec!["kmsload", "host"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Host(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_listen_on_loopback_1688_with_every_key() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.listen, "127.0.0.1:1688".parse().unwrap());
        assert_eq!(a.host_key.name, "all");
        let o = options(&a).unwrap();
        assert!(o.rpc.ndr64 && o.rpc.btfn && o.rpc.alter_context);
        assert!(o.host.time_check && !o.host.charged);
        assert_eq!(o.idle_timeout, Duration::from_secs(30));
        assert_eq!(o.max_connections, 10_000);
        // The log writer is started with the host (in `serve`), not here.
        assert!(o.log.is_none() && !a.quiet);
        assert_eq!(a.log_format, LogFormat::Text);
        assert_eq!(
            parse(&["--log-format", "json"]).unwrap().log_format,
            LogFormat::Json
        );
        assert!(parse(&["--log-format", "xml"]).is_err());
        assert_eq!(o.host.versions, 4..=6);
    }

    #[test]
    fn other_addresses_only_when_named() {
        let a = parse(&["--listen", "10.1.2.3:1688"]).unwrap();
        assert_eq!(a.listen, "10.1.2.3:1688".parse().unwrap());
        assert_eq!(
            parse(&["--listen", "[::1]"]).unwrap().listen,
            "[::1]:1688".parse().unwrap()
        );
        assert_eq!(
            parse(&["--listen", "127.0.0.1"]).unwrap().listen.port(),
            1688
        );
        assert_eq!(
            parse(&["--listen", "127.0.0.1:0"]).unwrap().listen.port(),
            0
        );
        assert!(parse(&["--listen", "localhost:1688"]).is_err());
        assert!(parse(&["--listen", "127.0.0.1:99999"]).is_err());
    }

    #[test]
    fn flags_reach_the_options() {
        let a = parse(&[
            "--host-key",
            "office 2019",
            "--charged",
            "--no-time-check",
            "--epid",
            "TEST-EPID",
            "--hwid",
            "0011223344556677",
            "--activation-interval",
            "2h",
            "--renewal-interval",
            "7d",
            "--max-protocol",
            "5",
            "--no-ndr64",
            "--no-btfn",
            "--no-alter-context",
            "--close-after-response",
            "--idle-timeout",
            "5s",
            "--max-connections",
            "2k",
            "--state",
            "s.json",
            "--quiet",
        ])
        .unwrap();
        let o = options(&a).unwrap();
        assert_eq!(o.host.host_key.name, "Office 2019");
        assert!(o.host.charged && !o.host.time_check);
        assert_eq!(o.host.epid.as_deref(), Some("TEST-EPID"));
        assert_eq!(o.host.hwid.unwrap().to_string(), "0011223344556677");
        assert_eq!(
            (o.host.activation_interval, o.host.renewal_interval),
            (120, 10_080)
        );
        assert_eq!(o.host.versions, 4..=5);
        assert!(!o.rpc.ndr64 && !o.rpc.btfn && !o.rpc.alter_context);
        assert!(o.close_after_response);
        assert_eq!(o.idle_timeout, Duration::from_secs(5));
        assert_eq!(o.max_connections, 2000);
        assert_eq!(
            o.state_file.as_deref(),
            Some(std::path::Path::new("s.json"))
        );
        assert!(o.log.is_none());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["--host-key", "windows 3.1"][..],
            &["--hwid", "XYZ"],
            &["--epid", ""],
            &["--activation-interval", "90s"],
            &["--max-protocol", "7"],
            &["--idle-timeout", "0"],
            // Accepted once, then every connection panicked on Instant overflow (issue 12,
            // item 15): now refused before anything starts, like a scenario duration.
            &["--idle-timeout", "200000000000000d"],
            &["--max-connections", "0"],
            &["--no-such-flag"],
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.use_stderr(), "{bad:?}");
        }
        let e = parse(&["--host-key", "server 2002"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("valid host keys"), "{e}");
        let a = parse(&["--lcid", "0"]).unwrap();
        assert!(matches!(options(&a), Err(CliError::Usage(_))));
        let a = parse(&["--host-build", "1234"]).unwrap();
        assert!(matches!(options(&a), Err(CliError::Usage(_))));
    }

    #[test]
    fn max_connections_beyond_the_open_file_limit_is_warned_about() {
        let w = open_files_warning(10_000, Some(128)).unwrap();
        assert!(w.contains("--max-connections 10000"), "{w}");
        assert!(w.contains("open-file limit is 128"), "{w}");
        assert!(w.contains("ulimit -n"), "{w}");
        assert_eq!(open_files_warning(10_000, Some(20_000)), None);
        assert_eq!(open_files_warning(10_000, None), None);
        assert_eq!(open_files_warning(96, Some(128)), None);
        assert!(open_files_warning(97, Some(128)).is_some());
    }

    #[test]
    fn minutes_accept_bare_numbers_and_whole_minute_durations() {
        assert_eq!(values::parse_minutes("120"), Ok(120));
        assert_eq!(values::parse_minutes("1h30m"), Ok(90));
        assert_eq!(values::parse_minutes("0"), Ok(0));
        assert!(values::parse_minutes("1.5m").is_err());
        assert!(values::parse_minutes("99999999999").is_err());
        assert!(values::parse_minutes("-5").is_err());
    }

    #[test]
    fn start_errors_map_to_exit_codes() {
        let usage = start_error(ServerError::Options("x".into()));
        assert!(matches!(usage, CliError::Usage(_)));
        let runtime = start_error(ServerError::Listen {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        });
        assert!(matches!(runtime, CliError::Runtime(_)));
    }
}
