//! `procfs`: the few Linux `/proc` readings kmsload reports about itself (its CPU time, its
//! open-file limit), shared by the runner, `kmsload run` and the benchmarks. Everything
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
