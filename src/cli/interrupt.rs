//! Ctrl-C, SIGTERM and SIGHUP, in one place.
//!
//! While `save` or `rekey` writes ([`exit_cleanly_on_interrupt`]): the
//! first signal abandons the unfinished output (temp files removed, bucket
//! uploads aborted, see `helm_bulk::store::unfinished`), one line says so,
//! and the process exits with 128 + the signal number.
//!
//! While `load` installs releases ([`stop_on_interrupt`]): the first signal stops the plan: no install starts any more, and each
//! helm process running gets the signal too (SIGTERM for a SIGHUP, since
//! helm cleans up only after SIGINT and SIGTERM), so it marks its release
//! failed and ends; load then uninstalls what those installs left, checks
//! the cluster and exits with 128 + the signal number. A second signal ends
//! the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use helm_bulk::restore::execute::Stop;

/// Which signal stopped the load (its exit code, 128 + number; 0: none).
#[derive(Debug, Default)]
pub(super) struct Interrupt(AtomicI32);

impl Interrupt {
    /// The exit code of the signal received, if any.
    pub(super) fn code(&self) -> Option<u8> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            c => u8::try_from(c).ok(),
        }
    }

    /// The signal's name, for messages.
    pub(super) fn name(&self) -> &'static str {
        match self.0.load(Ordering::SeqCst) {
            129 => "SIGHUP",
            143 => "SIGTERM",
            _ => "SIGINT",
        }
    }
}

/// Watches for the signals while `rt` runs, stopping `stop`'s plan on the
/// first and exiting on the second.
pub(super) fn stop_on_interrupt(rt: &tokio::runtime::Runtime, stop: Arc<Stop>) -> Arc<Interrupt> {
    let interrupt = Arc::new(Interrupt::default());
    let seen = interrupt.clone();
    rt.spawn(async move {
        let mut signals = Signals::new();
        let code = signals.next().await;
        seen.0.store(code, Ordering::SeqCst);
        stop.interrupt();
        forward(&stop, code);
        let again = signals.next().await;
        eprintln!(
            "Error: interrupted again: exiting without waiting for helm. Run load again: it completes the restores this one left."
        );
        std::process::exit(again);
    });
    interrupt
}

/// Makes SIGINT, SIGTERM and SIGHUP (Ctrl-C on Windows) end the process
/// cleanly while `rt` runs: the temp files of unfinished output are removed,
/// unfinished bucket uploads are aborted (waiting at most 10 s for the
/// store), one line says so, and the exit code is 128 + the signal number.
pub(crate) fn exit_cleanly_on_interrupt(rt: &tokio::runtime::Runtime) {
    rt.spawn(async {
        let code = Signals::new().next().await;
        INTERRUPTED_BY.store(code, Ordering::SeqCst);
        helm_bulk::store::unfinished::abandon(std::time::Duration::from_secs(10)).await;
        exit_interrupted(code);
    });
}

/// The exit code of the signal that interrupted the process (0: none).
static INTERRUPTED_BY: AtomicI32 = AtomicI32::new(0);

/// Ends the process as interrupted if a signal came while the command ran
/// (see [`exit_cleanly_on_interrupt`]).
pub(crate) fn exit_if_interrupted() {
    let signal = INTERRUPTED_BY.load(Ordering::SeqCst);
    if signal != 0 {
        helm_bulk::store::remove_unfinished();
        exit_interrupted(signal);
    }
}

/// Reports the interruption once and exits. The command itself may fail
/// meanwhile (its upload was aborted under it): `main` then ends here too,
/// with the same line and code, instead of reporting that consequence.
fn exit_interrupted(code: i32) -> ! {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::SeqCst) {
        eprintln!("Error: interrupted; the unfinished snapshot was removed");
    }
    std::process::exit(code);
}

/// Passes the signal on to the helm processes running.
#[cfg(unix)]
fn forward(stop: &Stop, code: i32) {
    use rustix::process::{Pid, Signal, kill_process};
    let signal = match code {
        130 => Signal::INT,
        _ => Signal::TERM,
    };
    for pid in stop.running() {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            // It may have ended meanwhile.
            let _ = kill_process(pid, signal);
        }
    }
}

#[cfg(not(unix))]
fn forward(_stop: &Stop, _code: i32) {
    // On Windows, Ctrl-C reaches every process of the console already.
}

/// The three signals, registered once so none is missed between two waits.
struct Signals {
    #[cfg(unix)]
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(i), Ok(t), Ok(h)) => Some([i, t, h]),
            _ => None,
        };
        Signals { streams }
    }

    #[cfg(not(unix))]
    fn new() -> Signals {
        Signals {}
    }

    /// Waits for the next signal; returns its exit code.
    #[cfg(unix)]
    async fn next(&mut self) -> i32 {
        let Some([int, term, hup]) = self.streams.as_mut() else {
            // Without handlers the default dispositions stay: wait forever.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
            _ = hup.recv() => 129,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> i32 {
        match tokio::signal::ctrl_c().await {
            Ok(()) => 130,
            Err(_) => std::future::pending().await,
        }
    }
}
