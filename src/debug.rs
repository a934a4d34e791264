//! `--debug` output (HELM_DEBUG): one `debug: ` line per event on stderr.

use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// Turns debug output on for the rest of the process.
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether debug output is on.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Prints `debug: <message>` when debug output is on; the message is only
/// built then.
pub fn note(message: impl FnOnce() -> String) {
    if enabled() {
        eprintln!("debug: {}", message());
    }
}
