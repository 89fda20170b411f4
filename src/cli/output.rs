//! Writing to stdout and stderr without ever panicking.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`kmsload run ... | head -3`),
//! which killed a run before it wrote its report (issue 12, item 8). Here a closed stdout
//! (or stderr) ends printing to it quietly: later lines are dropped, the command carries on
//! and its exit code is what it would have been. Any other write error is dropped too: output
//! on a terminal is a courtesy, the results on disk are what counts.
//!
//! Use [`outln!`](crate::outln) and [`errln!`](crate::errln) in place of `println!` and
//! `eprintln!` in the commands.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout was found closed; nothing is written to it afterwards.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Set once stderr was found closed.
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` and a newline to stdout, unless stdout is closed.
pub fn out_line(text: &str) {
    write_line(&mut io::stdout().lock(), &STDOUT_CLOSED, text);
}

/// Writes `text` and a newline to stderr, unless stderr is closed.
pub fn err_line(text: &str) {
    write_line(&mut io::stderr().lock(), &STDERR_CLOSED, text);
}

/// Whether stdout was found closed (its reader went away).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `text` and a newline to `w`; a broken pipe sets `closed` and drops this and every
/// later line.
fn write_line(w: &mut impl Write, closed: &AtomicBool, text: &str) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let result = w
        .write_all(text.as_bytes())
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush());
    if let Err(e) = result
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        closed.store(true, Ordering::Relaxed);
    }
}

/// `println!` that never panics: see [`out_line`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::output::out_line("")
    };
    ($($arg:tt)*) => {
        $crate::cli::output::out_line(&format!($($arg)*))
    };
}

/// `eprintln!` that never panics: see [`err_line`].
#[macro_export]
macro_rules! errln {
    () => {
        $crate::cli::output::err_line("")
    };
    ($($arg:tt)*) => {
        $crate::cli::output::err_line(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone.
    struct ClosedPipe(usize);

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.0 += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stops_printing_without_panicking() {
        let closed = AtomicBool::new(false);
        let mut w = ClosedPipe(0);
        write_line(&mut w, &closed, "first");
        assert!(closed.load(Ordering::Relaxed));
        write_line(&mut w, &closed, "second");
        assert_eq!(w.0, 1, "nothing is tried after the pipe closed");
    }

    #[test]
    fn an_open_writer_gets_the_line() {
        let closed = AtomicBool::new(false);
        let mut v = Vec::new();
        write_line(&mut v, &closed, "one");
        write_line(&mut v, &closed, "two");
        assert_eq!(v, b"one\ntwo\n");
        assert!(!closed.load(Ordering::Relaxed));
    }
}
