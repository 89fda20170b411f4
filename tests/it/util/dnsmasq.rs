//! A real DNS server for tests: dnsmasq (Debian package `dnsmasq-base`) on a free loopback
//! port, answering only from the lines a test gives it (`srv-host=`, `host-record=`,
//! `txt-record=`, `local=`), never forwarding anywhere (`no-resolv`, `no-hosts`).
//!
//! ```ignore
//! let Some(dns) = crate::util::dnsmasq::Dnsmasq::start(&[
//!     "local=/kms.test/",                       // NXDOMAIN for other names under kms.test
//!     "host-record=kms1.kms.test,127.0.0.1",
//!     "srv-host=_vlmcs._tcp.kms.test,kms1.kms.test,1688,0,0",
//! ]) else { return }; // dnsmasq missing: one line printed, test passes (fails under CI=true)
//! let server: SocketAddr = dns.addr();
//! ```
//!
//! Records carry TTL 60 (`local-ttl`) unless a line sets another. The process is killed and
//! its directory removed on drop.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The dnsmasq binary: on PATH, or in /usr/sbin or /sbin (not on a user's PATH on Debian).
pub(crate) fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file())
}

/// `None` after printing one line when dnsmasq is missing; panics instead under `CI=true`.
pub(crate) fn binary_or_skip(test: &str) -> Option<PathBuf> {
    let found = binary();
    if found.is_none() {
        // One visible line per run (eprintln! is captured by the test harness), or a
        // failure under CI=true.
        crate::system::missing(
            &crate::system::DNSMASQ,
            &format!("{test}: dnsmasq is not installed"),
        );
    }
    found
}

/// A running dnsmasq.
pub(crate) struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq with `lines` added to its configuration; `None` (after one printed line)
    /// when it is not installed. Panics when it is installed but does not start.
    pub(crate) fn start(lines: &[&str]) -> Option<Self> {
        let test = std::thread::current()
            .name()
            .unwrap_or("dnsmasq test")
            .to_owned();
        let bin = binary_or_skip(&test)?;
        // A free port can be taken between our probe and dnsmasq's bind: retry a few times.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(&bin, lines) {
                Ok(d) => return Some(d),
                Err(e) => last = e,
            }
        }
        panic!("dnsmasq did not start: {last}");
    }

    fn try_start(bin: &Path, lines: &[&str]) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let port = free_udp_port();
        let dir = std::env::temp_dir().join(format!(
            "kmsload-dnsmasq-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut conf = format!(
            "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
             no-poll\nlocal-ttl=60\n"
        );
        for l in lines {
            conf.push_str(l);
            conf.push('\n');
        }
        let conf_path = dir.join("dnsmasq.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf_path.display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // As root dnsmasq would switch to user "dnsmasq"/"nobody"; it needs nothing of root.
        if is_root() {
            cmd.arg("--user=root");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!("exited with {status}: {}", err.trim()));
            }
            // Bound once our own bind to the port fails, and bound by this dnsmasq only if the
            // socket is one of its file descriptors: between our probe and its start another
            // socket (a resolver's ephemeral port, another test's server) can take the port,
            // and this dnsmasq then exits with "Address in use" while queries go elsewhere.
            if UdpSocket::bind(addr).is_err() {
                if owns_udp_port(child.id(), port) {
                    // dnsmasq binds TCP after UDP and exits if that fails: give it a moment
                    // and make sure it is still there.
                    std::thread::sleep(Duration::from_millis(50));
                    if let Ok(None) = child.try_wait() {
                        return Ok(Self { child, addr, dir });
                    }
                    continue;
                }
                if let Ok(Some(_)) | Err(_) = child.try_wait() {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(format!("port {port} was taken by another socket"));
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
                return Err("not listening after 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where it answers (UDP and TCP).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as `--dns-server` takes it.
    pub(crate) fn arg(&self) -> String {
        self.addr.to_string()
    }

    /// Stops it now (later queries to its port go unanswered).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for both UDP and TCP on 127.0.0.1, taken from 10000..20000: below Linux's
/// ephemeral range (32768 and up) and below the Slurm fixture's (20000..30000). dnsmasq binds
/// the port for UDP and TCP; an ephemeral port could be taken for TCP by one of the many
/// client connections other tests open at the same time, and dnsmasq then exits right after
/// binding UDP, so queries time out.
fn free_udp_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Each test process starts at its own offset, so parallel test binaries rarely probe
    // the same ports.
    let offset = (std::process::id() % 1_000) * 10;
    for _ in 0..10_000 {
        let n = (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000;
        let port = u16::try_from(10_000 + n).expect("below 20000");
        let udp = UdpSocket::bind(("127.0.0.1", port));
        let tcp = TcpListener::bind(("127.0.0.1", port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no free port in 10000..20000 for dnsmasq")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// True when process `pid` holds the UDP socket bound to 127.0.0.1:`port` (Linux: the
/// socket's inode from /proc/net/udp among the process's descriptors).
fn owns_udp_port(pid: u32, port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else {
        return false;
    };
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&local.as_str()))
                .then(|| f.get(9).map(|i| format!("socket:[{i}]")))?
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}
