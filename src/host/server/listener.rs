//! The listening side: binds the socket, accepts while a connection slot is free (the rest
//! wait in the kernel's backlog), spawns one [`super::connection`] task per connection, saves
//! the `--state` file periodically, and on stop waits for every connection to end and saves it
//! a last time.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::connection::serve;
use super::stats::bump;
use super::{ACCEPT_BACKOFF, LogEvent, ServerShared, listen_backlog};
use crate::host::rng::SplitMix64;
use crate::host::state::{self, HostState};

pub(super) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted host must not fail on connections of its predecessor in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(listen_backlog(crate::procfs::somaxconn()))
}

/// True once the host is told to stop (or its handle is gone).
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&s| s).await;
}

/// Accepts until told to stop, then waits for the connections and saves the state. Returns
/// the final save's error, if any.
///
/// While `down` is true (an outage window of an in-process host) the host is a stopped
/// service: the listening socket is closed, so connects are refused, and every open
/// connection is closed as at a stop. When `down` turns false the same address is bound
/// again (retried every [`ACCEPT_BACKOFF`] while it is taken).
#[allow(clippy::too_many_arguments)]
pub(super) async fn supervise(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<ServerShared>,
    mut stop: watch::Receiver<bool>,
    mut down: watch::Receiver<bool>,
    max_connections: usize,
    state: Option<(PathBuf, Duration)>,
) -> Option<String> {
    let saver = state.as_ref().map(|(path, every)| {
        tokio::spawn(save_periodically(
            shared.clone(),
            path.clone(),
            *every,
            stop.clone(),
        ))
    });
    // Each connection task holds a clone; `recv` returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let permits = Arc::new(Semaphore::new(max_connections));
    // Per-connection seeds: one draw from the thread RNG, then a SplitMix64 stream.
    let mut seeds = SplitMix64::new(rand::random(), "connections");
    let mut accept_log = AcceptLog::default();
    let mut listener = Some(listener);
    'run: loop {
        let Some(open) = listener.take() else {
            // Down: wait for the outage to end, then listen on the same address again.
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break 'run,
                () = went(&mut down, false) => {}
            }
            match listen(addr) {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    bump(&shared.stats.accept_errors);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
            continue;
        };
        // The connections of this up period end when it does (down or stop): dropping
        // `period` wakes them as a stop does.
        let (period, period_rx) = watch::channel(false);
        loop {
            let permit = tokio::select! {
                biased;
                () = stopped(&mut stop) => break 'run,
                () = went(&mut down, true) => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break 'run, // the semaphore is never closed
                },
            };
            let accepted = tokio::select! {
                biased;
                () = stopped(&mut stop) => break 'run,
                () = went(&mut down, true) => break,
                a = open.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    bump(&shared.stats.accept_errors);
                    accept_log.failed(&shared, &e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            bump(&shared.stats.connections);
            let now_open = shared.stats.open.fetch_add(1, Ordering::Relaxed) + 1;
            shared
                .stats
                .peak_open
                .fetch_max(now_open, Ordering::Relaxed);
            let (shared, stop, done, seed) = (
                shared.clone(),
                period_rx.clone(),
                done_tx.clone(),
                seeds.next_u64(),
            );
            tokio::spawn(async move {
                // Answers are one write each, sent as soon as they are ready.
                let _ = stream.set_nodelay(true);
                if let Err(reason) = serve(&shared, stream, peer, seed, stop).await {
                    shared.dropped(peer, reason);
                }
                shared.stats.open.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
                drop(done);
            });
        }
        // Down: close the listening socket (connects are refused) and this period's
        // connections.
        drop(open);
        drop(period);
    }
    drop(listener);
    drop(done_tx);
    let _ = done_rx.recv().await;
    accept_log.flush(&shared);
    let (path, _) = state?;
    if let Some(saver) = saver {
        let _ = saver.await;
    }
    save(&shared, path).await.err()
}

/// Accept failures as they happen, at most one log line per second: the first failure is
/// logged at once, later ones within the second are counted into the next line.
#[derive(Default)]
struct AcceptLog {
    last_line: Option<Instant>,
    pending: u64,
    last_error: String,
}

impl AcceptLog {
    const EVERY: Duration = Duration::from_secs(1);

    fn failed(&mut self, shared: &ServerShared, e: &io::Error) {
        self.pending += 1;
        self.last_error = e.to_string();
        let due = self.last_line.is_none_or(|at| at.elapsed() >= Self::EVERY);
        if due {
            self.flush(shared);
        }
    }

    /// Logs the failures not logged yet, if any.
    fn flush(&mut self, shared: &ServerShared) {
        if self.pending == 0 {
            return;
        }
        if let Some(log) = &shared.log {
            log.log(&LogEvent::AcceptErrors {
                time: shared.clock.now(),
                count: self.pending,
                error: std::mem::take(&mut self.last_error),
            });
        }
        self.pending = 0;
        self.last_line = Some(Instant::now());
    }
}

/// Returns once `down` is `to`; never when its sender is gone (the host then stops).
async fn went(down: &mut watch::Receiver<bool>, to: bool) {
    if down.wait_for(|&d| d == to).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Saves the state every `every` when a request was handled since the last save.
async fn save_periodically(
    shared: Arc<ServerShared>,
    path: PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut saved_at = shared.model().counters().requests;
    let mut ticks = tokio::time::interval_at(super::connection::deadline_after(every), every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            _ = ticks.tick() => {}
        }
        let requests = shared.model().counters().requests;
        if requests == saved_at {
            continue;
        }
        // A failed periodic save is logged at once and retried at the next tick (and at stop).
        match save(&shared, path.clone()).await {
            Ok(()) => saved_at = requests,
            Err(error) => {
                if let Some(log) = &shared.log {
                    log.log(&LogEvent::SaveFailed {
                        time: shared.clock.now(),
                        path: path.clone(),
                        error,
                    });
                }
            }
        }
    }
}

/// Snapshots the model under the lock, writes the file on a blocking thread.
async fn save(shared: &ServerShared, path: PathBuf) -> Result<(), String> {
    let snapshot = HostState::from_model(&shared.model());
    match tokio::task::spawn_blocking(move || state::save(&path, &snapshot)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("state save task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::server::LISTEN_BACKLOG;

    #[test]
    fn the_backlog_is_as_deep_as_somaxconn_allows() {
        assert_eq!(LISTEN_BACKLOG, 65_535);
        assert_eq!(listen_backlog(Some(4096)), 4096);
        assert_eq!(listen_backlog(Some(200_000)), 65_535);
        assert_eq!(listen_backlog(None), 65_535);
    }

    /// More connections than tokio's default backlog (1024) complete their handshake while
    /// nothing accepts them: they wait in the queue, none is dropped.
    #[test]
    fn connects_beyond_tokios_default_backlog_wait_in_the_queue() {
        const PENDING: usize = 1100;
        let Some(cap) = crate::procfs::somaxconn().filter(|&c| c as usize >= PENDING) else {
            println!(
                "skipped: net.core.somaxconn below {PENDING} or unreadable (sysctl -w \
                 net.core.somaxconn=4096 to run this test)"
            );
            return;
        };
        // Two sockets per pending connection (client end and queued server end).
        if crate::procfs::open_file_limit().is_some_and(|l| l < 2 * PENDING as u64 + 64) {
            println!(
                "skipped: open-file limit below {} (ulimit -n 4096 to run this test)",
                2 * PENDING + 64
            );
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(async { listen(SocketAddr::from(([127, 0, 0, 1], 0))) })
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for i in 0..PENDING {
            // A dropped SYN would be retried after 1 s: the short timeout sees the drop.
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => held.push(s),
                Err(e) => panic!("connect {i} of {PENDING} (somaxconn {cap}) failed: {e}"),
            }
        }
        assert_eq!(held.len(), PENDING);
        drop(listener);
    }
}
