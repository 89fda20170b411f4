//! `--state FILE`: the host's client tables and identity saved as JSON, so a restarted host
//! keeps its counts, ePIDs and HwID. The only module of `host` that touches the file system
//! (std::fs only); everything else here is pure.
//!
//! ```text
//! {
//!   "format": "kmsload-host-state", "version": 1,
//!   "host_key": "all", "hwid": "3A1C049600B60076",
//!   "epids": [ { "csvlk": "Windows Server 2025", "epid": "03612-04918-…" }, … ],
//!   "applications": [
//!     { "application": "windows", "max_required": 25,
//!       "clients": [ { "cmid": "…", "last_seen": 134397843810000000 }, … ] }  (oldest first;
//!   ]                                                   last_seen is a FILETIME of host time)
//! }
//! ```
//!
//! What is saved and what is not:
//!
//! - Saved: host key name, HwID, each installed CSVLK's ePID, and per application N and the
//!   stored clients with their last contact (and whether they are charged-start placeholders).
//! - Not saved: the counters (they describe one run) and the rest of the configuration.
//!   On restore the identity in the file wins over the LCID, build, activation date and seed
//!   of the configuration (a real host's ePID does not change when it restarts), but an
//!   explicit [`HostConfig::epid`] or [`HostConfig::hwid`] overrides it. A charged start is
//!   not applied again. A file written for another host key is refused
//!   ([`StateProblem::HostKeyMismatch`]): use the same key or another file.
//!
//! Saving is atomic: the JSON goes to a new temporary file in the target's directory
//! (`.NAME.PID.N.tmp`), is flushed to disk (`fsync`), and renamed over the target, so a crash
//! leaves either the old or the new file, never a torn one. Loading checks everything before
//! building a model and reports a typed [`StateError`]; no input makes it panic or hang: only
//! a regular file is read (a FIFO would block the host before it listens, `/dev/zero` would
//! never end), and at most [`MAX_STATE_FILE_BYTES`] of it.
//!
//! [`prepare`] runs before a host starts: it refuses a path that is not a regular file or
//! whose directory cannot take the file (so a host does not run for days and then fail to
//! save), and removes temporary files that a save interrupted by a crash left behind.

use std::{
    collections::HashSet,
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use uuid::Uuid;

use super::{
    config::{ConfigError, HostConfig, MAX_REQUIRED_COUNT_LIMIT, check_fixed_epid},
    keys::{Application, HostKey},
    model::{HostModel, KeyIdentity},
    table::{ClientEntry, ClientTable},
};
use crate::wire::FileTime;
use crate::wire::kms::HwId;

/// The `format` member of every state file.
pub const STATE_FORMAT: &str = "kmsload-host-state";
/// The `version` member this kmsload writes and reads.
pub const STATE_VERSION: u32 = 1;
/// Files larger than this are refused without reading them (a full table at the largest
/// allowed N is about 6 MB).
pub const MAX_STATE_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The saved form of a host (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// Always [`STATE_VERSION`].
    pub version: u32,
    /// Canonical host key name.
    pub host_key: String,
    /// HwID, 16 hex digits.
    pub hwid: String,
    /// One ePID per installed CSVLK.
    pub epids: Vec<SavedEpid>,
    /// One client table per application that has one.
    pub applications: Vec<SavedTable>,
}

/// The ePID of one installed CSVLK.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedEpid {
    /// CSVLK name.
    pub csvlk: String,
    /// ePID text.
    pub epid: String,
}

/// The client table of one application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTable {
    /// The application.
    pub application: Application,
    /// N, the largest RequiredClientCount seen.
    pub max_required: u32,
    /// Stored clients, oldest last contact first.
    pub clients: Vec<SavedClient>,
}

/// One stored client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedClient {
    /// The CMID.
    pub cmid: Uuid,
    /// Last contact, FILETIME ticks of host time.
    pub last_seen: u64,
    /// Charged-start placeholder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
}

/// Why a state file cannot be used, without the path (see [`StateError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProblem {
    /// Not JSON of the expected shape (includes torn and truncated files).
    #[error("not a host state document: {0}")]
    Json(String),
    /// `format` is not [`STATE_FORMAT`].
    #[error("format is {0:?}, expected {STATE_FORMAT:?}")]
    Format(String),
    /// `version` is not [`STATE_VERSION`].
    #[error("version {0} is not supported (this kmsload reads version {STATE_VERSION})")]
    Version(u32),
    /// The file is larger than [`MAX_STATE_FILE_BYTES`].
    #[error("file is {0} bytes, more than the {MAX_STATE_FILE_BYTES} a host state can need")]
    TooLarge(u64),
    /// `host_key` names no host key.
    #[error("unknown host key {0:?}")]
    UnknownHostKey(String),
    /// The file was written for another host key than the configured one.
    #[error(
        "saved for host key {saved:?} but the host runs with {configured:?}; use the same --host-key or another --state file"
    )]
    HostKeyMismatch {
        /// Host key in the file.
        saved: String,
        /// Host key configured.
        configured: String,
    },
    /// `hwid` is not 16 hex digits.
    #[error("HwID {0:?} is not 16 hex digits")]
    HwId(String),
    /// An installed CSVLK has no ePID in the file.
    #[error("no ePID for CSVLK {0:?}")]
    MissingEpid(String),
    /// An ePID for a CSVLK the host key does not install, or a second one.
    #[error("unexpected or repeated ePID for CSVLK {0:?}")]
    UnexpectedEpid(String),
    /// An ePID the wire cannot carry.
    #[error("ePID of {csvlk:?}: {error}")]
    Epid {
        /// CSVLK name.
        csvlk: String,
        /// What is wrong.
        error: ConfigError,
    },
    /// An application appears twice.
    #[error("application {0} appears twice")]
    DuplicateApplication(Application),
    /// N beyond what any configuration allows.
    #[error("{application}: max_required {value} exceeds {MAX_REQUIRED_COUNT_LIMIT}")]
    MaxRequired {
        /// The application.
        application: Application,
        /// The saved N.
        value: u32,
    },
    /// More clients than 2 × N.
    #[error("{application}: {count} clients stored but at most {capacity} (2 × N) allowed")]
    TooManyClients {
        /// The application.
        application: Application,
        /// Clients in the file.
        count: usize,
        /// 2 × max(N, 1).
        capacity: usize,
    },
    /// A CMID appears twice in one table.
    #[error("{application}: CMID {cmid} appears twice")]
    DuplicateClient {
        /// The application.
        application: Application,
        /// The CMID.
        cmid: Uuid,
    },
    /// The configuration itself is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A state file could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file system refused.
    #[error("cannot {action} host state file {}: {source}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// What was being done ("read", "write", "replace", …).
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The path cannot hold a state file: not a regular file, or its directory cannot take
    /// one. Found before the host starts, so it is the user's to fix.
    #[error("host state file {}: {reason}", path.display())]
    Unusable {
        /// The state file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The file's content cannot be used.
    #[error("host state file {}: {problem}", path.display())]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        problem: StateProblem,
    },
}

impl HostState {
    /// The saved form of `model`.
    pub fn from_model(model: &HostModel) -> Self {
        Self {
            format: STATE_FORMAT.to_owned(),
            version: STATE_VERSION,
            host_key: model.config().host_key.name.to_owned(),
            hwid: model.hwid().to_string(),
            epids: model
                .identity()
                .iter()
                .map(|k| SavedEpid {
                    csvlk: k.csvlk.name.to_owned(),
                    epid: k.epid.clone(),
                })
                .collect(),
            applications: Application::ALL
                .into_iter()
                .zip(model.tables())
                .filter(|(_, t)| t.max_required() > 0 || t.stored() > 0)
                .map(|(application, t)| SavedTable {
                    application,
                    max_required: t.max_required(),
                    clients: t
                        .entries()
                        .map(|e| SavedClient {
                            cmid: e.cmid,
                            last_seen: e.last_seen.0,
                            synthetic: e.synthetic,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings, numbers and UUIDs cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Parses and checks a state document on its own (without a configuration).
    ///
    /// # Errors
    /// The first [`StateProblem`] found.
    pub fn from_json(text: &str) -> Result<Self, StateProblem> {
        let state: Self =
            serde_json::from_str(text).map_err(|e| StateProblem::Json(e.to_string()))?;
        state.check()?;
        Ok(state)
    }

    fn check(&self) -> Result<&'static HostKey, StateProblem> {
        if self.format != STATE_FORMAT {
            return Err(StateProblem::Format(self.format.clone()));
        }
        if self.version != STATE_VERSION {
            return Err(StateProblem::Version(self.version));
        }
        let key = HostKey::lookup(&self.host_key)
            .map_err(|_| StateProblem::UnknownHostKey(self.host_key.clone()))?;
        self.hwid
            .parse::<HwId>()
            .map_err(|_| StateProblem::HwId(self.hwid.clone()))?;
        let mut seen = HashSet::new();
        for e in &self.epids {
            if !key.csvlks.iter().any(|c| c.name == e.csvlk) || !seen.insert(e.csvlk.as_str()) {
                return Err(StateProblem::UnexpectedEpid(e.csvlk.clone()));
            }
            check_fixed_epid(&e.epid).map_err(|error| StateProblem::Epid {
                csvlk: e.csvlk.clone(),
                error,
            })?;
        }
        if let Some(missing) = key.csvlks.iter().find(|c| !seen.contains(c.name)) {
            return Err(StateProblem::MissingEpid(missing.name.to_owned()));
        }
        let mut apps = HashSet::new();
        for t in &self.applications {
            let application = t.application;
            if !apps.insert(application) {
                return Err(StateProblem::DuplicateApplication(application));
            }
            if t.max_required > MAX_REQUIRED_COUNT_LIMIT {
                return Err(StateProblem::MaxRequired {
                    application,
                    value: t.max_required,
                });
            }
            let capacity = 2 * t.max_required.max(1) as usize;
            if t.clients.len() > capacity {
                return Err(StateProblem::TooManyClients {
                    application,
                    count: t.clients.len(),
                    capacity,
                });
            }
            let mut cmids = HashSet::new();
            if let Some(dup) = t.clients.iter().find(|c| !cmids.insert(c.cmid)) {
                return Err(StateProblem::DuplicateClient {
                    application,
                    cmid: dup.cmid,
                });
            }
        }
        Ok(key)
    }

    /// Builds a host from this state and `config` (see the module docs for what wins).
    ///
    /// # Errors
    /// [`StateProblem`] if the state is inconsistent, was saved for another host key, or the
    /// configuration is invalid.
    pub fn into_model(self, config: HostConfig) -> Result<HostModel, StateProblem> {
        let key = self.check()?;
        if !std::ptr::eq(key, config.host_key) {
            return Err(StateProblem::HostKeyMismatch {
                saved: key.name.to_owned(),
                configured: config.host_key.name.to_owned(),
            });
        }
        config.validate()?;
        let hwid = self
            .hwid
            .parse::<HwId>()
            .map_err(|_| StateProblem::HwId(self.hwid.clone()))?;
        let identity = key
            .csvlks
            .iter()
            .map(|&csvlk| {
                let epid = self
                    .epids
                    .iter()
                    .find(|e| e.csvlk == csvlk.name)
                    .map(|e| e.epid.clone())
                    .ok_or_else(|| StateProblem::MissingEpid(csvlk.name.to_owned()))?;
                Ok(KeyIdentity { csvlk, epid })
            })
            .collect::<Result<Vec<_>, StateProblem>>()?;
        let mut tables: [ClientTable; 3] = Default::default();
        for saved in self.applications {
            let table = &mut tables[saved.application.index()];
            table.set_max_required(saved.max_required);
            let mut clients = saved.clients;
            clients.sort_by_key(|c| c.last_seen);
            for c in clients {
                table.restore(ClientEntry {
                    cmid: c.cmid,
                    last_seen: FileTime(c.last_seen),
                    synthetic: c.synthetic,
                });
            }
        }
        Ok(HostModel::from_parts(config, hwid, identity, tables))
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `state` to `path` atomically (temporary file in the same directory, fsync, rename).
///
/// # Errors
/// [`StateError::Io`] naming the step that failed; the temporary file is removed.
pub fn save(path: &Path, state: &HostState) -> Result<(), StateError> {
    let io = |action, source| StateError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let (dir, name) = split(path).map_err(|e| io("write", e))?;
    let tmp = dir.join(temp_name(&name));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(state.to_json().as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io("replace", e));
    }
    // Make the rename itself durable. Directories cannot be opened for syncing everywhere
    // (Windows), and the data is already safe in the renamed file, so this is best effort.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads and checks a state file.
///
/// # Errors
/// [`StateError::Io`] if it cannot be read, [`StateError::Invalid`] if its content is not a
/// usable host state.
pub fn load(path: &Path) -> Result<HostState, StateError> {
    let io = |action, source| StateError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let invalid = |problem| StateError::Invalid {
        path: path.to_owned(),
        problem,
    };
    let meta = fs::metadata(path).map_err(|e| io("read", e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    if meta.len() > MAX_STATE_FILE_BYTES {
        return Err(invalid(StateProblem::TooLarge(meta.len())));
    }
    // The length can change between the check and the read: read one byte past the limit at
    // most, so a file that grew is still refused without reading all of it.
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_STATE_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| io("read", e))?;
    if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
        return Err(invalid(StateProblem::TooLarge(bytes.len() as u64)));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| invalid(StateProblem::Json(format!("not UTF-8: {e}"))))?;
    HostState::from_json(&text).map_err(invalid)
}

/// The error for an existing path that is not a regular file.
fn not_regular(path: &Path, meta: &fs::Metadata) -> StateError {
    let kind = if meta.is_dir() {
        "a directory"
    } else {
        file_kind(meta)
    };
    StateError::Unusable {
        path: path.to_owned(),
        reason: format!(
            "is {kind}, not a regular file; give the path of a regular file (it is created if \
             missing)"
        ),
    }
}

#[cfg(unix)]
fn file_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn file_kind(_: &fs::Metadata) -> &'static str {
    "not a regular file"
}

/// Checks, before a host starts, that `path` can hold its state, and removes the temporary
/// files of saves that a crash interrupted. Returns the names of the files removed.
///
/// - An existing `path` must be a regular file (FIFOs and devices are refused).
/// - Its directory must exist and take a new file: a test file is created and removed, so a
///   host that could never save finds out at start, not at its first save.
/// - `.NAME.PID.N.tmp` files beside it whose process is gone (or that another boot left) are
///   removed; those of a live process are kept.
///
/// # Errors
/// [`StateError::Unusable`] naming the problem and the fix.
pub fn prepare(path: &Path) -> Result<Vec<String>, StateError> {
    let unusable = |reason: String| StateError::Unusable {
        path: path.to_owned(),
        reason,
    };
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(not_regular(path, &meta)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(unusable(format!("cannot be examined: {e}"))),
    }
    let (dir, name) = split(path).map_err(|e| unusable(e.to_string()))?;
    let removed = remove_stale_temporaries(dir, &name);
    let probe = dir.join(temp_name(&name));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            unusable(format!(
                "its directory {} cannot take the file ({e}); create the directory or choose a \
                 writable one",
                dir.display()
            ))
        })?;
    let _ = fs::remove_file(&probe);
    Ok(removed)
}

/// The directory and file name of a state path.
fn split(path: &Path) -> io::Result<(&Path, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// A fresh temporary name beside the state file `name`: `.NAME.PID.N.tmp`.
fn temp_name(name: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.{}.{n}.tmp", std::process::id())
}

/// The process id in a temporary file name of state file `name`, if `file` is one.
fn temp_pid(file: &str, name: &str) -> Option<u32> {
    let rest = file
        .strip_prefix('.')?
        .strip_prefix(name)?
        .strip_prefix('.')?;
    let (pid, rest) = rest.split_once('.')?;
    let n = rest.strip_suffix(".tmp")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` runs now (Linux: `/proc/PID`). Without `/proc`, only this process
/// counts as running, so a crashed host's files are still removed.
fn process_running(pid: u32) -> bool {
    pid == std::process::id()
        || (Path::new("/proc/self").exists() && Path::new(&format!("/proc/{pid}")).exists())
}

fn remove_stale_temporaries(dir: &Path, name: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_pid(&file, name) else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && !process_running(pid) && fs::remove_file(entry.path()).is_ok() {
            removed.push(file);
        }
    }
    removed.sort();
    removed
}

/// Saves `model` to `path` (atomic, see [`save`]).
///
/// # Errors
/// As [`save`].
pub fn save_model(path: &Path, model: &HostModel) -> Result<(), StateError> {
    save(path, &HostState::from_model(model))
}

/// Loads a host from `path` with `config` (see the module docs for what wins).
///
/// # Errors
/// As [`load`], plus [`StateError::Invalid`] for a file of another host key.
pub fn load_model(path: &Path, config: HostConfig) -> Result<HostModel, StateError> {
    load(path)?
        .into_model(config)
        .map_err(|problem| StateError::Invalid {
            path: path.to_owned(),
            problem,
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uuid::uuid;

    use super::*;
    use crate::{
        catalog::app_id,
        host::{Decision, HostKey},
        wire::{RequestBase, Version},
    };

    const T0: FileTime = FileTime(134_397_843_810_000_000);

    fn request(kms: Uuid, app: Uuid, client: u128, n: u32) -> RequestBase {
        RequestBase {
            version: Version::V6,
            is_client_vm: 0,
            license_status: 2,
            binding_expiration: 0,
            application_id: app,
            sku_id: Uuid::nil(),
            kms_counted_id: kms,
            client_machine_id: Uuid::from_u128(client),
            required_client_count: n,
            request_time: T0,
            previous_client_machine_id: Uuid::nil(),
            machine_name: String::new(),
        }
    }

    fn busy_host(config: HostConfig) -> HostModel {
        let mut h = HostModel::new(config, T0).unwrap();
        let win = uuid!("58e2134f-8e11-4d17-9cb2-91069c151148");
        let office = uuid!("85b5f61b-320b-4be3-814a-b76b2bfafc82");
        for i in 0..30 {
            let now = T0.offset_secs(i64::try_from(i).unwrap());
            h.handle(&request(win, app_id::WINDOWS, i, 25), now);
        }
        for i in 0..3 {
            h.handle(&request(office, app_id::OFFICE_2013, 100 + i, 5), T0);
        }
        h
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("kmsload-state-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn save_load_round_trip() {
        let dir = TempDir::new("round-trip");
        let path = dir.0.join("host.json");
        let config = HostConfig {
            charged: true,
            seed: 5,
            ..HostConfig::default()
        };
        let h = busy_host(config.clone());
        save_model(&path, &h).unwrap();
        save_model(&path, &h).unwrap(); // replacing an existing file works too
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["host.json"], "no temporary files left behind");

        let state = load(&path).unwrap();
        assert_eq!(state, HostState::from_model(&h));
        // Another seed must not change a restored identity.
        let restored = load_model(&path, HostConfig { seed: 99, ..config }).unwrap();
        assert_eq!(restored.identity(), h.identity());
        assert_eq!(restored.hwid(), h.hwid());
        for app in Application::ALL {
            assert_eq!(
                restored.current_count(app, T0),
                h.current_count(app, T0),
                "{app}"
            );
            assert_eq!(
                restored.table(app).max_required(),
                h.table(app).max_required()
            );
            assert_eq!(restored.table(app).synthetic(), h.table(app).synthetic());
            let a: Vec<_> = restored.table(app).entries().collect();
            let b: Vec<_> = h.table(app).entries().collect();
            assert_eq!(a, b, "{app}");
        }
        assert_eq!(restored.counters().requests, 0, "counters are per run");
        assert_eq!(HostState::from_model(&restored), state);
    }

    #[test]
    fn restored_host_continues_counting() {
        let h = busy_host(HostConfig::default());
        let json = HostState::from_model(&h).to_json();
        let mut r = HostState::from_json(&json)
            .unwrap()
            .into_model(HostConfig::default())
            .unwrap();
        let win = uuid!("58e2134f-8e11-4d17-9cb2-91069c151148");
        // 30 Windows clients are stored: client 29 is one of them, client 500 is new.
        let Decision::Respond(resp) = r.handle(&request(win, app_id::WINDOWS, 29, 25), T0) else {
            panic!()
        };
        assert_eq!(resp.base.current_count, 30);
        let Decision::Respond(resp) = r.handle(&request(win, app_id::WINDOWS, 500, 25), T0) else {
            panic!()
        };
        assert_eq!(resp.base.current_count, 31);
    }

    #[test]
    fn explicit_epid_and_hwid_override_the_file() {
        let h = busy_host(HostConfig::default());
        let state = HostState::from_model(&h);
        let config = HostConfig {
            epid: Some("custom".into()),
            hwid: Some(HwId([1, 2, 3, 4, 5, 6, 7, 8])),
            ..HostConfig::default()
        };
        let r = state.into_model(config).unwrap();
        assert!(r.identity().iter().all(|k| k.epid == "custom"));
        assert_eq!(r.hwid().to_string(), "0102030405060708");
    }

    #[test]
    fn other_host_key_is_refused() {
        let state = HostState::from_model(&busy_host(HostConfig::default()));
        let config = HostConfig {
            host_key: HostKey::lookup("Windows Server 2019").unwrap(),
            ..HostConfig::default()
        };
        assert_eq!(
            state.into_model(config).unwrap_err(),
            StateProblem::HostKeyMismatch {
                saved: "all".into(),
                configured: "Windows Server 2019".into()
            }
        );
    }

    #[test]
    fn garbage_and_torn_files_give_errors() {
        let dir = TempDir::new("garbage");
        let path = dir.0.join("host.json");
        let good = HostState::from_model(&busy_host(HostConfig::default())).to_json();
        for bytes in [
            b"".to_vec(),
            b"\xff\xfe\x00garbage".to_vec(),
            b"{}".to_vec(),
            b"[1,2,3]".to_vec(),
            good.as_bytes()[..good.len() / 2].to_vec(),
        ] {
            fs::write(&path, &bytes).unwrap();
            let err = load(&path).unwrap_err();
            assert!(
                matches!(
                    err,
                    StateError::Invalid {
                        problem: StateProblem::Json(_),
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("host.json"), "{err}");
        }
        // Every truncation of a valid file is an error, never a panic.
        for cut in 0..good.len() - 1 {
            assert!(HostState::from_json(&good[..cut]).is_err(), "cut at {cut}");
        }
        let missing = dir.0.join("absent.json");
        assert!(matches!(
            load(&missing),
            Err(StateError::Io { action: "read", .. })
        ));
    }

    #[test]
    fn each_inconsistency_is_named() {
        let base = HostState::from_model(&busy_host(HostConfig::default()));
        let check = |edit: &dyn Fn(&mut HostState), expected: &dyn Fn(&StateProblem) -> bool| {
            let mut s = base.clone();
            edit(&mut s);
            let err = HostState::from_json(&s.to_json()).unwrap_err();
            assert!(expected(&err), "{err}");
        };
        check(&|s| s.format = "x".into(), &|e| {
            matches!(e, StateProblem::Format(_))
        });
        check(&|s| s.version = 2, &|e| {
            matches!(e, StateProblem::Version(2))
        });
        check(&|s| s.host_key = "nope".into(), &|e| {
            matches!(e, StateProblem::UnknownHostKey(_))
        });
        check(&|s| s.hwid = "xyz".into(), &|e| {
            matches!(e, StateProblem::HwId(_))
        });
        check(
            &|s| {
                s.epids.pop();
            },
            &|e| matches!(e, StateProblem::MissingEpid(_)),
        );
        check(&|s| s.epids.push(s.epids[0].clone()), &|e| {
            matches!(e, StateProblem::UnexpectedEpid(_))
        });
        check(&|s| s.epids[0].epid = String::new(), &|e| {
            matches!(e, StateProblem::Epid { .. })
        });
        check(&|s| s.applications.push(s.applications[0].clone()), &|e| {
            matches!(e, StateProblem::DuplicateApplication(Application::Windows))
        });
        check(&|s| s.applications[0].max_required = 10_001, &|e| {
            matches!(e, StateProblem::MaxRequired { .. })
        });
        check(&|s| s.applications[0].max_required = 5, &|e| {
            matches!(
                e,
                StateProblem::TooManyClients {
                    count: 30,
                    capacity: 10,
                    ..
                }
            )
        });
        check(
            &|s| {
                let first = s.applications[0].clients[0].clone();
                s.applications[0].clients.push(first);
            },
            &|e| matches!(e, StateProblem::DuplicateClient { .. }),
        );
        let with_extra = base.to_json().replacen('{', "{\"extra\": 1,", 1);
        assert!(matches!(
            HostState::from_json(&with_extra),
            Err(StateProblem::Json(_))
        ));
    }

    #[test]
    fn save_reports_io_errors() {
        let dir = TempDir::new("io");
        let state = HostState::from_model(&busy_host(HostConfig::default()));
        let err = save(&dir.0.join("no-such-dir").join("host.json"), &state).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Io {
                    action: "write",
                    ..
                }
            ),
            "{err}"
        );
        let err = save(Path::new("/"), &state).unwrap_err();
        assert!(matches!(err, StateError::Io { .. }), "{err}");
    }

    /// Issue 12, item 16: a FIFO as state file hung the host before it listened, and
    /// `/dev/zero` was read until memory ran out. Only regular files are read.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_not_read() {
        let dir = TempDir::new("fifo");
        let fifo = dir.0.join("host.json");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            let err = load(path).unwrap_err();
            assert!(
                matches!(&err, StateError::Unusable { reason, .. } if reason.contains("not a regular file")),
                "{err}"
            );
            let err = prepare(path).unwrap_err();
            assert!(matches!(err, StateError::Unusable { .. }), "{err}");
        }
        assert!(load(&fifo).unwrap_err().to_string().contains("a FIFO"));
        assert!(
            load(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string()
                .contains("a character device")
        );
    }

    #[test]
    fn a_file_larger_than_the_limit_is_refused() {
        let dir = TempDir::new("large");
        let path = dir.0.join("host.json");
        let f = fs::File::create(&path).unwrap();
        f.set_len(MAX_STATE_FILE_BYTES + 1).unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Invalid {
                    problem: StateProblem::TooLarge(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Issue 12, item 16: a path that cannot be written was found only at the first save.
    #[test]
    fn prepare_refuses_a_path_that_cannot_be_written() {
        let dir = TempDir::new("prepare");
        let err = prepare(&dir.0.join("no-such-dir").join("host.json")).unwrap_err();
        assert!(
            matches!(&err, StateError::Unusable { reason, .. } if reason.contains("create the directory")),
            "{err}"
        );
        assert!(matches!(
            prepare(&dir.0).unwrap_err(),
            StateError::Unusable { .. }
        ));
        // A writable place, with or without the file, is fine and leaves nothing behind.
        let path = dir.0.join("host.json");
        assert_eq!(prepare(&path).unwrap(), Vec::<String>::new());
        save(
            &path,
            &HostState::from_model(&busy_host(HostConfig::default())),
        )
        .unwrap();
        assert_eq!(prepare(&path).unwrap(), Vec::<String>::new());
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["host.json"]);
    }

    /// Issue 12, item 16: temporary files of a save interrupted by a crash stayed forever.
    #[test]
    fn prepare_removes_temporaries_of_dead_processes_only() {
        let dir = TempDir::new("stale");
        let path = dir.0.join("host.json");
        // No process has pid 0 in /proc; this one is alive.
        let dead = ".host.json.0.3.tmp";
        let alive = format!(".host.json.{}.7.tmp", std::process::id());
        let other = ".other.json.0.3.tmp";
        for f in [dead, alive.as_str(), other, ".host.json.0.x.tmp"] {
            fs::write(dir.0.join(f), "{").unwrap();
        }
        assert_eq!(prepare(&path).unwrap(), [dead]);
        for f in [alive.as_str(), other, ".host.json.0.x.tmp"] {
            assert!(dir.0.join(f).exists(), "{f} kept");
        }
    }

    #[test]
    fn temporary_names_parse_back() {
        assert_eq!(temp_pid(".h.json.123.4.tmp", "h.json"), Some(123));
        assert_eq!(temp_pid(".h.json.123.tmp", "h.json"), None);
        assert_eq!(temp_pid(".h.json.123.4.tmp", "g.json"), None);
        assert_eq!(temp_pid("h.json.123.4.tmp", "h.json"), None);
        let t = temp_name("h.json");
        assert_eq!(temp_pid(&t, "h.json"), Some(std::process::id()));
    }

    proptest! {
        #[test]
        fn from_json_never_panics(text in "\\PC{0,200}") {
            let _ = HostState::from_json(&text);
        }
    }
}
