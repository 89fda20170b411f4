//! What tests/it/slurm.rs and tests/it/shards.rs share: a one-node Slurm cluster on loopback, a
//! `kmsload host` child, the sharded scenario and readers of results directories.
//!
//! # The Slurm cluster
//!
//! Real Slurm on this machine: a one-node cluster on loopback that each test brings up itself
//! (munged with a generated key, slurmctld, slurmd), used to run kmsload's job-array script.
//!
//! ```text
//!  <dir>/munge/munge.key   generated, 0400        munged -F  --socket <dir>/munge/sock
//!  <dir>/slurm.conf        written by the test    slurmctld -D   (127.0.0.1:<free port>)
//!  <dir>/state, spool, log                        slurmd -D -N localhost (127.0.0.1:<free port>)
//! ```
//!
//! Everything lives in a fresh directory under the system's temp dir (short, because munge's
//! socket path must fit in a Unix socket address); the daemons run in the foreground as
//! children of the test and are stopped (SIGTERM, then SIGKILL after a deadline) when the
//! fixture is dropped, after any job still queued is cancelled. Nothing is installed or
//! written outside that directory, and nothing listens anywhere but 127.0.0.1.
//!
//! What the cluster leaves out, because containers often lack it: cgroups (proctrack/pgid,
//! task/none, no memory enforcement) and accounting (no slurmdbd). The node is configured with
//! four CPUs whatever the machine has (`SlurmdParameters=config_overrides`) so that a four-task
//! array runs its tasks at the same time, as on a real cluster with four free cores.
//!
//! # When the tests do not run
//!
//! Slurm needs Debian's `slurm-wlm` and `munge` packages and root (slurmd starts jobs as their
//! owner). Without them a test prints one `SKIPPED` line saying what to install and passes
//! (`system.rs`); under `CI=true` it fails instead (`.ci/run` installs the packages). A cluster that is
//! installed but does not come up is always a failure, with the daemons' logs in the message.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// How long the cluster may take to report its node idle.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a daemon may take to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// CPUs the node advertises (see the module docs).
const NODE_CPUS: u32 = 4;

/// One cluster at a time: the tests of this file take turns.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// The programs a cluster needs, with the package each comes from.
const PROGRAMS: [(&str, &str); 7] = [
    ("munged", "munge"),
    ("munge", "munge"),
    ("slurmctld", "slurm-wlm"),
    ("slurmd", "slurm-wlm"),
    ("sbatch", "slurm-wlm"),
    ("sinfo", "slurm-wlm"),
    ("scancel", "slurm-wlm"),
];

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Where `name` is installed: on PATH, or in the sbin directories a non-login root shell may
/// leave out of it.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    // The effective uid, as /proc reports it (no libc call in a forbid(unsafe) crate).
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Why a cluster cannot be brought up on this machine, if it cannot: a missing package or
/// no root. The message says how to fix it.
fn missing() -> Option<String> {
    let mut packages: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(prog, _)| find_program(prog).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    packages.dedup();
    if !packages.is_empty() {
        return Some(format!(
            "Slurm is not installed (no {}); install it with `apt-get install slurm-wlm munge`",
            packages.join(", ")
        ));
    }
    if !is_root() {
        return Some("a Slurm cluster needs root (slurmd starts jobs as their owner)".into());
    }
    None
}

/// A running one-node cluster. Dropping it stops the daemons and removes its directory.
pub(crate) struct SlurmCluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    /// This process's turn (taken once the cluster is up).
    _turn: Option<MutexGuard<'static, ()>>,
}

/// A TCP port on 127.0.0.1 that is free when asked, from below the kernel's ephemeral range
/// (so no outgoing connection of another process takes it before the daemon binds it), at a
/// random place in it (so clusters that other test processes start at the same time pick
/// other ports). A start that loses the race anyway is retried (see [`START_TRIES`]).
fn free_port() -> u16 {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .clamp(12_000, 65_000);
    let mut seed = [0u8; 8];
    fs::File::open("/dev/urandom")
        .and_then(|mut r| std::io::Read::read_exact(&mut r, &mut seed))
        .expect("read /dev/urandom");
    let mut x = u64::from_le_bytes(seed);
    loop {
        let port = 10_000 + (x % u64::from(low - 10_000)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        x = x.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15;
    }
}

/// How many times a cluster start is tried when a daemon finds its port taken.
const START_TRIES: u32 = 3;

fn write_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl SlurmCluster {
    /// Starts a cluster, or returns `None` after printing one `skipped:` line when Slurm cannot
    /// run here (and panics instead under `CI=true`). `test` names the caller in that line.
    pub(crate) fn start(test: &str) -> Option<Self> {
        if let Some(why) = missing() {
            // One visible line for the whole run (println! here is captured by the test
            // harness, so nobody would see the skip); a failure under CI=true.
            crate::system::missing(&crate::system::SLURM, &format!("{test}: {why}"));
            return None;
        }
        let turn = ONE_CLUSTER.lock().unwrap_or_else(PoisonError::into_inner);
        for attempt in 1..=START_TRIES {
            match Self::try_start() {
                Ok(mut cluster) => {
                    cluster._turn = Some(turn);
                    return Some(cluster);
                }
                Err((cluster, why)) => {
                    let logs = cluster.logs();
                    drop(cluster);
                    if attempt < START_TRIES && logs.contains("Address already in use") {
                        eprintln!("slurm: a port was taken; starting the cluster again");
                        continue;
                    }
                    panic!("{why}\n{logs}");
                }
            }
        }
        unreachable!("the last try returns or panics")
    }

    /// One try at starting a cluster; on failure, the half-started cluster (dropping it stops
    /// what runs) and why.
    #[allow(clippy::result_large_err)]
    fn try_start() -> Result<Self, (Self, String)> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kmsload-slurm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["munge", "state", "spool", "log"] {
            fs::create_dir_all(dir.join(sub)).expect("create the cluster's directories");
        }
        fs::set_permissions(dir.join("munge"), fs::Permissions::from_mode(0o711))
            .expect("chmod munge dir");
        let key = dir.join("munge/munge.key");
        {
            let mut bytes = vec![0u8; 1024];
            fs::File::open("/dev/urandom")
                .and_then(|mut r| std::io::Read::read_exact(&mut r, &mut bytes))
                .expect("read /dev/urandom");
            let mut f = fs::File::create(&key).expect("create munge.key");
            f.write_all(&bytes).expect("write munge.key");
        }
        fs::set_permissions(&key, fs::Permissions::from_mode(0o400)).expect("chmod munge.key");
        let socket = dir.join("munge/sock");
        let conf = dir.join("slurm.conf");
        write_file(&conf, &slurm_conf(&dir, &socket, free_port(), free_port()));

        let mut cluster = Self {
            dir: dir.clone(),
            conf: conf.clone(),
            daemons: Vec::new(),
            _turn: None,
        };
        let d = |p: &str| dir.join(p).display().to_string();
        cluster.spawn(
            "munged",
            &[
                "-F",
                "--force",
                &format!("--key-file={}", key.display()),
                &format!("--socket={}", socket.display()),
                &format!("--pid-file={}", d("munge/pid")),
                &format!("--log-file={}", d("log/munged.log")),
                &format!("--seed-file={}", d("munge/seed")),
            ],
        );
        if let Err(why) = cluster.wait_for("munged's socket", |_| socket.exists()) {
            return Err((cluster, why));
        }
        let conf_arg = conf.display().to_string();
        cluster.spawn("slurmctld", &["-D", "-f", &conf_arg]);
        cluster.spawn("slurmd", &["-D", "-f", &conf_arg, "-N", "localhost"]);
        let idle = cluster.wait_for("the node to be idle", |c| {
            c.command("sinfo")
                .args(["-h", "-o", "%T"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        match idle {
            Ok(()) => Ok(cluster),
            Err(why) => Err((cluster, why)),
        }
    }

    fn spawn(&mut self, name: &'static str, args: &[&str]) {
        let log = fs::File::create(self.dir.join(format!("log/{name}.out")))
            .expect("create a daemon's output file");
        let child = Command::new(find_program(name).expect("checked by missing()"))
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// Polls `ready` until it holds; an error after [`START_LIMIT`], or as soon as a daemon
    /// has exited.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Self) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if ready(self) {
                return Ok(());
            }
            let exited = self.daemons.iter_mut().find_map(|(name, child)| {
                child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|status| (*name, status))
            });
            if let Some((name, status)) = exited {
                return Err(format!("{name} exited ({status}) while waiting for {what}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("no {what} after {START_LIMIT:?}"));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// A Slurm client command (`sbatch`, `squeue`, ...) talking to this cluster.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(find_program(program).unwrap_or_else(|| program.into()));
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// The cluster's own directory (jobs may write under it).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemons' log files and output, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> = fs::read_dir(self.dir.join("log"))
            .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for path in entries {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            out.push_str(&format!("--- {}\n{}\n", path.display(), tail.join("\n")));
        }
        out
    }

    /// `sbatch --wait` with `args`, bounded by `limit`: the job's exit status is sbatch's.
    pub(crate) fn sbatch_wait(
        &self,
        args: &[&str],
        envs: &[(&str, &str)],
        limit: Duration,
    ) -> Output {
        let mut cmd = self.command("sbatch");
        cmd.arg("--wait").args(args).envs(envs.iter().copied());
        run_bounded(cmd, limit).unwrap_or_else(|| {
            panic!(
                "sbatch --wait {args:?} did not finish within {limit:?}\n{}",
                self.logs()
            )
        })
    }
}

/// Runs `cmd` to completion, or kills it and returns `None` after `limit`.
pub(crate) fn run_bounded(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a command");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().expect("collect output"))
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        // Jobs first, so no slurmstepd outlives its slurmd.
        let mut scancel = self.command("scancel");
        scancel.args(["--user", "root", "--full"]);
        let _ = run_bounded(scancel, STOP_LIMIT);
        // Then the daemons, in the reverse of their start order.
        while let Some((_, mut child)) = self.daemons.pop() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + STOP_LIMIT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The cluster's configuration: one node, one partition, no cgroups, no accounting.
fn slurm_conf(dir: &Path, munge_socket: &Path, ctld_port: u16, slurmd_port: u16) -> String {
    let d = |p: &str| dir.join(p).display().to_string();
    format!(
        "\
ClusterName=kmsload
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={ctld_pid}
SlurmdPidFile={slurmd_pid}
SlurmctldLogFile={ctld_log}
SlurmdLogFile={slurmd_log}
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
",
        socket = munge_socket.display(),
        state = d("state"),
        spool = d("spool"),
        ctld_pid = d("slurmctld.pid"),
        slurmd_pid = d("slurmd.pid"),
        ctld_log = d("log/slurmctld.log"),
        slurmd_log = d("log/slurmd.log"),
    )
}

// ---- kmsload children and their results ----

pub(crate) const KMSLOAD: &str = env!("CARGO_BIN_EXE_kmsload");
/// Environment variables that name a shard: cleared for every child, then set per test.
pub(crate) const SHARD_VARS: [&str; 6] = [
    "KMSLOAD_SHARD",
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
];

/// A mixed, skewed fleet on a ramp, with client-side faults: every field that sharding must
/// keep varies from attempt to attempt. Bounded: 345 attempts over 4 s.
pub(crate) const SCENARIO: &str = r#"
name = "sharded"
seed = 5
[fleet]
size = 300
skew = { kind = "uniform", min = "-2h", max = "2h" }
products = [
  { product = "Windows 10/11 Pro", weight = 3 },
  { product = "Office LTSC Professional Plus 2021", weight = 1 },
  { product = "Windows Server 2012 Standard", weight = 1 },
  { product = "Windows 7 Professional", weight = 1 },
]
[load]
stages = [{ duration = "1s", rate = 60 }, { duration = "3s", rate = 150 }]
attempts = 360
[[faults]]
kind = "refuse"
probability = 0.15
"#;

/// `kmsload host` on a free loopback port; killed on drop. Its request log goes to a file.
pub(crate) struct Host {
    child: Child,
    /// `127.0.0.1:port`.
    pub(crate) addr: String,
    /// The host's stderr (one line per request).
    pub(crate) log: PathBuf,
}

impl Host {
    pub(crate) fn start(dir: &Path) -> Self {
        let log = dir.join("host.log");
        let mut child = Command::new(KMSLOAD)
            .args(["host", "--listen", "127.0.0.1:0", "--charged"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kmsload host");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let addr = crate::util::listening_addr(&mut stderr);
        // Keep reading, into the log file, so the host never blocks on a full pipe.
        let mut file = fs::File::create(&log).unwrap();
        thread::spawn(move || std::io::copy(&mut stderr, &mut file));
        Self { child, addr, log }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn kmsload() -> Command {
    let mut cmd = Command::new(KMSLOAD);
    for var in SHARD_VARS {
        cmd.env_remove(var);
    }
    cmd
}

pub(crate) fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What sharding must keep of each attempt, by attempt number, from events.csv.
pub(crate) type Planned = BTreeMap<u64, (String, String, String, String, String, String)>;

pub(crate) fn planned(dir: &Path) -> Planned {
    let mut reader = csv::Reader::from_path(dir.join("events.csv")).expect("events.csv");
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (attempt, intended, client, cmid, product, protocol, fault) = (
        col("attempt"),
        col("intended_start_us"),
        col("client_index"),
        col("cmid"),
        col("product"),
        col("protocol"),
        col("fault"),
    );
    let mut out = Planned::new();
    for row in reader.records() {
        let row = row.unwrap();
        let k: u64 = row[attempt].parse().unwrap();
        let fields = (
            row[intended].to_owned(),
            row[client].to_owned(),
            row[cmid].to_owned(),
            row[product].to_owned(),
            row[protocol].to_owned(),
            row[fault].to_owned(),
        );
        assert!(
            out.insert(k, fields).is_none(),
            "attempt {k} twice in {}",
            dir.display()
        );
    }
    out
}

pub(crate) use crate::util::summary;

/// Attempts a results directory counted as not started: due before the end of the run, but
/// the runner was too late to start them (issue 12, item 6).
pub(crate) fn not_started(dir: &Path) -> u64 {
    summary(dir)["not_started"].as_u64().unwrap()
}

/// A UTC time `secs` from now, as `--start-at` takes it.
pub(crate) fn utc_in(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(secs)).to_string()
}
