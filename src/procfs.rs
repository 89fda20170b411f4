//! `procfs`: the few Linux `/proc` readings kmsload reports about itself (its CPU time, its
//! open-file limit) and about the machine's TCP listen queues (overflows, `somaxconn`),
//! shared by the runner, `kmsload run`, the host and the benchmarks. Everything
//! returns `None` where the file does not exist (not Linux) or does not parse.

/// Clock ticks per second of the CPU times in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` or `/proc/PID/task/TID/stat`
/// line, in clock ticks. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted after its closing `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
}

/// The soft open-file limit (`ulimit -n`), from `/proc/self/limits`; `None` also when it
/// says "unlimited".
pub fn open_file_limit() -> Option<u64> {
    parse_open_file_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit on the "Max open files" line of a `/proc/PID/limits` text.
pub fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's listen-queue counters since boot, as `nstat` names them:
/// `TcpExtListenOverflows` (a connection completed its handshake but the listener's accept
/// queue was full) and `TcpExtListenDrops` (SYNs and handshakes dropped for any reason at a
/// listener, overflows included). Machine-wide: every listener on the machine counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenCounters {
    /// `TcpExtListenOverflows`.
    pub overflows: u64,
    /// `TcpExtListenDrops`.
    pub drops: u64,
}

impl ListenCounters {
    /// What happened between `earlier` and `self` (0 where a counter went backwards).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            overflows: self.overflows.saturating_sub(earlier.overflows),
            drops: self.drops.saturating_sub(earlier.drops),
        }
    }
}

/// The listen-queue counters now, from `/proc/net/netstat`.
pub fn listen_counters() -> Option<ListenCounters> {
    parse_listen_counters(&std::fs::read_to_string("/proc/net/netstat").ok()?)
}

/// `ListenOverflows` and `ListenDrops` of a `/proc/net/netstat` text: its `TcpExt:` lines
/// come in pairs, the names then the values in the same order.
pub fn parse_listen_counters(netstat: &str) -> Option<ListenCounters> {
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let field = |name: &str| -> Option<u64> {
        let at = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(at)?.parse().ok()
    };
    Some(ListenCounters {
        overflows: field("ListenOverflows")?,
        drops: field("ListenDrops")?,
    })
}

/// `net.core.somaxconn`: the kernel caps every listen backlog at it.
pub fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Ports in the ephemeral range (`net.ipv4.ip_local_port_range`), from which the kernel picks
/// the local port of every outgoing connection without a bound port. IPv6 uses the same range.
pub fn local_port_count() -> Option<u32> {
    parse_local_port_count(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?)
}

/// [`local_port_count`] from the file's text: two numbers, the first and last port.
pub fn parse_local_port_count(range: &str) -> Option<u32> {
    let mut ports = range.split_whitespace().map(str::parse::<u32>);
    let (first, last) = (ports.next()?.ok()?, ports.next()?.ok()?);
    (first <= last && last <= 65_535).then(|| last - first + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_port_range_counts_both_ends() {
        assert_eq!(parse_local_port_count("32768\t60999\n"), Some(28_232));
        assert_eq!(parse_local_port_count("1024 1024"), Some(1));
        assert_eq!(parse_local_port_count("60999 32768"), None);
        assert_eq!(parse_local_port_count("32768"), None);
        assert_eq!(parse_local_port_count("1 70000"), None);
        assert_eq!(parse_local_port_count(""), None);
        // This machine's, when Linux reports it.
        if let Some(n) = local_port_count() {
            assert!((1..=65_535).contains(&n));
        }
    }

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        // A command name with a space and a parenthesis, as /proc allows.
        let stat = "4242 (kms load) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (short"), None);
        assert_eq!(parse_cpu_ticks(""), None);
        // This process has a stat file on Linux, and its CPU time only grows.
        if let Some(a) = process_cpu_s() {
            let b = process_cpu_s().unwrap();
            assert!(b >= a);
        }
    }

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 20000                files
Max locked memory         8388608              8388608              bytes
";

    #[test]
    fn reads_the_soft_open_file_limit() {
        assert_eq!(parse_open_file_limit(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024      ", "unlimited ");
        assert_eq!(parse_open_file_limit(&unlimited), None);
        assert_eq!(parse_open_file_limit(""), None);
    }

    /// The head of a real /proc/net/netstat (Linux 6.x), values changed.
    const NETSTAT: &str = "\
TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts ListenOverflows ListenDrops TCPHPHits
TcpExt: 7 0 0 0 573499 573512 41111548
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
";

    #[test]
    fn reads_listen_overflows_and_drops_by_name() {
        let c = parse_listen_counters(NETSTAT).unwrap();
        assert_eq!(
            c,
            ListenCounters {
                overflows: 573_499,
                drops: 573_512
            }
        );
        let later = ListenCounters {
            overflows: 573_600,
            drops: 573_700,
        };
        assert_eq!(
            later.since(c),
            ListenCounters {
                overflows: 101,
                drops: 188
            }
        );
        // Counters that went backwards (another namespace, a reset) give 0, not a wrap.
        assert_eq!(c.since(later).overflows, 0);
        // Missing names or values, or no TcpExt lines at all: unreadable, not zero.
        assert_eq!(
            parse_listen_counters(&NETSTAT.replace("ListenDrops", "Other")),
            None
        );
        assert_eq!(
            parse_listen_counters("TcpExt: ListenOverflows ListenDrops\n"),
            None
        );
        assert_eq!(parse_listen_counters(""), None);
        // This machine's, where there is one.
        if std::path::Path::new("/proc/net/netstat").exists() {
            assert!(listen_counters().is_some());
        }
    }
}
