//! Helpers shared by the behaviour suites: a guard that turns a hang into a test failure,
//! and a panic hook that keeps deliberately injected panics out of the output.
#![allow(dead_code)]

use std::sync::mpsc;
use std::sync::Once;
use std::time::Duration;

use brisk::Runtime;

/// How long a guarded computation may take before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(30);

/// Runs `f` on its own thread and fails the test if it has not returned within [`HANG`].
pub fn guarded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("guard: {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn guard thread");
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no result after {HANG:?} (hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{what}: the computing thread panicked")
        }
    }
}

/// Silences panics whose message contains "injected panic" (the suites cause them on purpose).
pub fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.contains("injected panic") {
                default(info);
            }
        }));
    });
}

/// A runtime with `threads` workers.
pub fn rt(threads: usize) -> Runtime {
    Runtime::builder().threads(threads).build().unwrap()
}
