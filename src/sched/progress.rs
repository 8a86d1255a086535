//! A terminal progress bar driven by scheduler [`Event`]s.
//!
//! [`ProgressBar`] is an [`EventHook`]: install it on a computation and it shows, on stderr,
//! the tasks done out of the total, the average rate, the elapsed time, an ETA and the number of
//! failed attempts, if any:
//!
//! ```text
//! [00:00:12] ##########>-------------  4211/10000 tasks  351 tasks/s  ETA 16s · 1 failed
//! ```
//!
//! # Design
//!
//! * **Cheap per task.** The worker threads only count: a finished task costs one atomic load
//!   (is this the run being shown?) and one relaxed atomic increment. No lock, no clock read,
//!   no terminal I/O on a worker.
//! * **Drawn by its own thread.** When the bar is visible, a background thread started at the
//!   first run redraws it from the counters every 100 ms (every second when stderr is not a
//!   terminal), so the bar appears and its clock keeps moving even while a few long tasks run
//!   and no task finishes. The thread sleeps on a condition variable between runs and exits
//!   when the `ProgressBar` is dropped. A hidden bar ([`ProgressMode::Never`], or `Auto`
//!   without a terminal) starts no thread and creates no indicatif state: it only counts.
//! * **Quiet for short computations.** Nothing is drawn until the run has been going for one
//!   second (configurable with [`ProgressBar::with_delay`]): a compute that takes 200 ms does
//!   not flash a bar.
//! * **Runs in sequence.** `RunStarted` resets the counters and sets the total; `RunFinished`
//!   clears the bar (on success) or leaves it where it stopped (on failure). While a run is in
//!   progress, events of other runs (a nested `compute` called from inside a task, or a
//!   concurrent computation sharing the hook) are ignored: the bar follows the first run.
//! * **Rate and ETA** are averages over the whole run (tasks done / elapsed), which is steadier
//!   than an exponentially smoothed rate for task graphs, whose tasks have very uneven costs.
//!
//! `ProgressMode::Auto` draws only when stderr is a terminal (checked once, when the bar is
//! created). `ProgressMode::Always` draws even when stderr is redirected; then each redraw
//! starts with a carriage return instead of terminal escape codes, so a log file stays readable.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};
use parking_lot::{Condvar, Mutex};

use crate::sched::event::{Event, EventHook};

/// No run in progress (run ids are never this value in practice).
const NO_RUN: u64 = u64::MAX;
/// Time between two redraws by the drawing thread, on a terminal.
const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// Time between two redraws when stderr is not a terminal (`Always`): keeps logs small.
const PLAIN_TICK_INTERVAL: Duration = Duration::from_secs(1);
/// Default time a run must have been going before the bar appears.
const DEFAULT_DELAY: Duration = Duration::from_secs(1);
/// The bar's layout; `rate`, `eta_avg` and `failures` are our keys.
const TEMPLATE: &str =
    "[{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len} tasks  {rate}  ETA {eta_avg}{failures}";
/// Redraws per second allowed by indicatif's own limiter, on a terminal.
const REFRESH_HZ: u8 = 20;

/// When a [`ProgressBar`] is shown. A library draws nothing unless asked, so the default (of
/// this type and of [`RuntimeBuilder::progress`](crate::RuntimeBuilder::progress)) is
/// `Never`; `Auto` is what a command-line program usually wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProgressMode {
    /// Show it when stderr is a terminal.
    Auto,
    /// Always show it, even when stderr is redirected to a file or a pipe.
    Always,
    /// Never show it (the counters still work). The default.
    #[default]
    Never,
}

impl ProgressMode {
    /// Whether a bar in this mode would draw, given the current stderr.
    ///
    /// ```
    /// use brisk::sched::progress::ProgressMode;
    /// assert!(ProgressMode::Always.shows());
    /// assert!(!ProgressMode::Never.shows());
    /// ```
    pub fn shows(self) -> bool {
        match self {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Always => true,
            ProgressMode::Never => false,
        }
    }
}

impl FromStr for ProgressMode {
    type Err = String;

    /// Parses `auto`, `always` or `never` (case-insensitive), as a `--progress` flag would.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ProgressMode::Auto),
            "always" | "yes" | "on" => Ok(ProgressMode::Always),
            "never" | "no" | "off" => Ok(ProgressMode::Never),
            _ => Err(format!(
                "invalid progress mode `{s}`: expected `auto`, `always` or `never`"
            )),
        }
    }
}

impl fmt::Display for ProgressMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgressMode::Auto => "auto",
            ProgressMode::Always => "always",
            ProgressMode::Never => "never",
        })
    }
}

/// Where the bar draws, decided once at construction.
#[derive(Clone, Debug)]
enum Target {
    /// Draw nothing; only count.
    Hidden,
    /// stderr is a terminal: indicatif's own stderr target.
    Terminal,
    /// `Always` with a redirected stderr: plain carriage-return redraws.
    PlainStderr,
    /// Tests: draw into a string.
    #[cfg(test)]
    Capture(Arc<Mutex<String>>),
}

impl Target {
    fn for_mode(mode: ProgressMode) -> Self {
        let tty = std::io::stderr().is_terminal();
        match mode {
            ProgressMode::Never => Target::Hidden,
            ProgressMode::Auto if !tty => Target::Hidden,
            ProgressMode::Auto => Target::Terminal,
            ProgressMode::Always if tty => Target::Terminal,
            ProgressMode::Always => Target::PlainStderr,
        }
    }

    fn draw_target(&self) -> ProgressDrawTarget {
        match self {
            Target::Hidden => ProgressDrawTarget::hidden(),
            Target::Terminal => ProgressDrawTarget::stderr_with_hz(REFRESH_HZ),
            Target::PlainStderr => ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 1),
            #[cfg(test)]
            Target::Capture(buf) => {
                ProgressDrawTarget::term_like(Box::new(tests::CaptureTerm(buf.clone())))
            }
        }
    }

    fn tick_interval(&self) -> Duration {
        match self {
            Target::PlainStderr => PLAIN_TICK_INTERVAL,
            _ => TICK_INTERVAL,
        }
    }

    /// Ends the line of a bar left on screen, so that what follows starts on a new line.
    fn end_line(&self) {
        match self {
            Target::Hidden => {}
            Target::Terminal | Target::PlainStderr => {
                let _ = std::io::stderr().lock().write_all(b"\n");
            }
            #[cfg(test)]
            Target::Capture(buf) => buf.lock().push('\n'),
        }
    }
}

/// A progress bar for computations, drawn on stderr. Install it as an [`EventHook`].
///
/// Counts tasks finished out of the run's total, failed attempts and retries. Several runs in
/// sequence each get a fresh bar. When visible, a background thread (`brisk-progress`, started
/// at the first run, stopped when the bar is dropped) does the drawing. See the
/// [module docs](self) for the design.
///
/// ```
/// use std::time::Instant;
/// use brisk::sched::event::{Event, EventHook};
/// use brisk::sched::progress::{ProgressBar, ProgressMode};
///
/// let bar = ProgressBar::new(ProgressMode::Never);
/// // The executors call this; here we feed it by hand.
/// bar.on_event(&Event::RunStarted { run: 1, tasks: 10, workers: 4, at: Instant::now() });
/// assert_eq!((bar.done(), bar.total()), (0, 10));
/// ```
pub struct ProgressBar {
    inner: Arc<Inner>,
    /// Whether to start the drawing thread (tests call `Inner::tick` by hand instead).
    spawn_ticker: bool,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

/// What the workers and the drawing thread share.
struct Inner {
    target: Target,
    /// Time a run must have been going before the bar appears, in ns.
    delay_ns: AtomicU64,
    /// The run being shown, or `NO_RUN`.
    run: AtomicU64,
    total: AtomicU64,
    done: AtomicU64,
    /// Shared with the bar's style, which shows them (so a redraw is one call, one draw).
    failed: Arc<AtomicU64>,
    retried: Arc<AtomicU64>,
    /// Locked on run start and finish and by the drawing thread; never by task events.
    state: Mutex<DrawState>,
    /// Wakes the drawing thread on run start, run finish and shutdown.
    wake: Condvar,
    /// Serializes terminal output between the drawing thread and `RunFinished`, so that a frame
    /// cannot be drawn after the bar was cleared. Never taken by workers for task events.
    io: Mutex<()>,
}

#[derive(Default)]
struct DrawState {
    /// Start of the run being shown.
    run_start: Option<Instant>,
    bar: Option<indicatif::ProgressBar>,
    /// The `ProgressBar` is being dropped: the drawing thread exits.
    shutdown: bool,
}

/// What the drawing thread does next.
#[derive(Debug, PartialEq, Eq)]
enum Tick {
    /// Draw again at this instant (or earlier if woken).
    At(Instant),
    /// No run in progress: sleep until woken.
    Idle,
    /// Shut down.
    Exit,
}

impl ProgressBar {
    /// A progress bar shown according to `mode` (whether stderr is a terminal is checked now).
    pub fn new(mode: ProgressMode) -> Self {
        Self::with_target(Target::for_mode(mode), true)
    }

    fn with_target(target: Target, spawn_ticker: bool) -> Self {
        ProgressBar {
            inner: Arc::new(Inner {
                target,
                delay_ns: AtomicU64::new(duration_ns(DEFAULT_DELAY)),
                run: AtomicU64::new(NO_RUN),
                total: AtomicU64::new(0),
                done: AtomicU64::new(0),
                failed: Arc::new(AtomicU64::new(0)),
                retried: Arc::new(AtomicU64::new(0)),
                state: Mutex::new(DrawState::default()),
                wake: Condvar::new(),
                io: Mutex::new(()),
            }),
            spawn_ticker,
            ticker: Mutex::new(None),
        }
    }

    /// Shows the bar only once a run has been going for `delay` (default one second, so that
    /// short computations do not flash a bar). `Duration::ZERO` shows it at once.
    pub fn with_delay(self, delay: Duration) -> Self {
        self.inner
            .delay_ns
            .store(duration_ns(delay), Ordering::Relaxed);
        self
    }

    /// Whether this bar draws anything at all.
    pub fn is_visible(&self) -> bool {
        self.inner.is_visible()
    }

    /// Tasks finished successfully in the current (or last) run.
    pub fn done(&self) -> u64 {
        self.inner.done.load(Ordering::Relaxed)
    }

    /// Number of tasks of the current (or last) run, from its `RunStarted` event.
    pub fn total(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// Task attempts that failed for good (no retry left) in the current (or last) run.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Task attempts that failed and will be retried, in the current (or last) run.
    pub fn retried(&self) -> u64 {
        self.inner.retried.load(Ordering::Relaxed)
    }

    fn run_started(&self, run: u64, tasks: usize, at: Instant) {
        if self.inner.run_started(run, tasks, at) {
            self.ensure_ticker();
        }
    }

    /// Starts the drawing thread if this bar is visible and it is not running yet.
    fn ensure_ticker(&self) {
        if !self.spawn_ticker || !self.inner.is_visible() {
            return;
        }
        let mut ticker = self.ticker.lock();
        if ticker.is_some() {
            return;
        }
        let inner = Arc::clone(&self.inner);
        // If the thread cannot be started the bar is simply not drawn.
        *ticker = std::thread::Builder::new()
            .name("brisk-progress".to_owned())
            .spawn(move || inner.ticker_loop())
            .ok();
    }
}

impl Inner {
    fn is_visible(&self) -> bool {
        !matches!(self.target, Target::Hidden)
    }

    fn run_started(&self, run: u64, tasks: usize, at: Instant) -> bool {
        let old_bar = {
            let mut st = self.state.lock();
            if self.run.load(Ordering::Acquire) != NO_RUN {
                // Another run is being shown (nested or concurrent compute): keep following it.
                return false;
            }
            self.total.store(tasks as u64, Ordering::Relaxed);
            self.done.store(0, Ordering::Relaxed);
            self.failed.store(0, Ordering::Relaxed);
            self.retried.store(0, Ordering::Relaxed);
            st.run_start = Some(at);
            // Publish the run last: task events of this run count from here on.
            self.run.store(run, Ordering::Release);
            st.bar.take()
        };
        self.wake.notify_all();
        // Only if a previous run never sent `RunFinished`.
        if let Some(bar) = old_bar {
            let _io = self.io.lock();
            bar.finish_and_clear();
        }
        true
    }

    fn run_finished(&self, run: u64, ok: bool) {
        let bar = {
            let mut st = self.state.lock();
            if self.run.load(Ordering::Acquire) != run {
                return;
            }
            self.run.store(NO_RUN, Ordering::Release);
            st.run_start = None;
            st.bar.take()
        };
        self.wake.notify_all();
        let Some(bar) = bar else { return };
        let _io = self.io.lock();
        bar.set_position(self.done.load(Ordering::Relaxed));
        if ok {
            bar.finish_and_clear();
        } else {
            // Leave the bar where the run stopped so the user sees how far it got.
            bar.abandon();
            self.target.end_line();
        }
    }

    /// One step of the drawing thread at `now`: draws the bar if a run has been going for the
    /// delay, and says when to come back.
    fn tick(&self, now: Instant) -> Tick {
        let bar = {
            let mut st = self.state.lock();
            if st.shutdown {
                return Tick::Exit;
            }
            let Some(start) = st.run_start else {
                return Tick::Idle;
            };
            let delay = Duration::from_nanos(self.delay_ns.load(Ordering::Relaxed));
            let Some(show_at) = start.checked_add(delay) else {
                return Tick::Idle;
            };
            if now < show_at {
                return Tick::At(show_at);
            }
            st.bar.get_or_insert_with(|| self.make_bar(start)).clone()
        };
        // Terminal I/O without the state lock; `io` keeps it from racing `RunFinished`.
        {
            let _io = self.io.lock();
            if !bar.is_finished() {
                bar.set_position(self.done.load(Ordering::Relaxed));
            }
        }
        Tick::At(now + self.target.tick_interval())
    }

    /// The drawing thread: ticks while a run is shown, sleeps otherwise, exits on shutdown.
    fn ticker_loop(&self) {
        loop {
            match self.tick(Instant::now()) {
                Tick::Exit => return,
                Tick::Idle => {
                    let mut st = self.state.lock();
                    while !st.shutdown && st.run_start.is_none() {
                        self.wake.wait(&mut st);
                    }
                }
                Tick::At(when) => {
                    let mut st = self.state.lock();
                    if !st.shutdown {
                        self.wake.wait_until(&mut st, when);
                    }
                }
            }
        }
    }

    fn make_bar(&self, run_start: Instant) -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(self.total.load(Ordering::Relaxed)),
            self.target.draw_target(),
        )
        .with_style(bar_style(
            Arc::clone(&self.failed),
            Arc::clone(&self.retried),
        ));
        // The bar appears after the delay: make its clock start with the run.
        bar.set_elapsed(Instant::now().saturating_duration_since(run_start));
        bar
    }
}

impl EventHook for ProgressBar {
    fn on_event(&self, event: &Event<'_>) {
        let inner = &*self.inner;
        match *event {
            // The hot path: one atomic load and one atomic increment.
            Event::TaskFinished { run, .. } if inner.run.load(Ordering::Acquire) == run => {
                inner.done.fetch_add(1, Ordering::Relaxed);
            }
            Event::TaskFailed {
                run, will_retry, ..
            } if inner.run.load(Ordering::Acquire) == run => {
                let counter = if will_retry {
                    &inner.retried
                } else {
                    &inner.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Event::RunStarted { run, tasks, at, .. } => self.run_started(run, tasks, at),
            Event::RunFinished { run, ok, .. } => inner.run_finished(run, ok),
            _ => {}
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.inner.state.lock().shutdown = true;
        self.inner.wake.notify_all();
        if let Some(ticker) = self.ticker.get_mut().take() {
            let _ = ticker.join();
        }
        // A run that never finished: clear its bar rather than leave it half drawn.
        let bar = self.inner.state.lock().bar.take();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
}

impl fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressBar")
            .field("visible", &self.is_visible())
            .field("done", &self.done())
            .field("total", &self.total())
            .field("failed", &self.failed())
            .field("retried", &self.retried())
            .finish()
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn failure_message(failed: u64, retried: u64) -> String {
    match (failed, retried) {
        (0, 0) => String::new(),
        (f, 0) => format!(" · {f} failed"),
        (0, r) => format!(" · {r} retried"),
        (f, r) => format!(" · {f} failed, {r} retried"),
    }
}

fn bar_style(failed: Arc<AtomicU64>, retried: Arc<AtomicU64>) -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
        .with_key("rate", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&format_rate(s.pos(), s.elapsed()));
        })
        .with_key("eta_avg", |s: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&format_eta(s.pos(), s.len(), s.elapsed()));
        })
        .with_key(
            "failures",
            move |_: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = w.write_str(&failure_message(
                    failed.load(Ordering::Relaxed),
                    retried.load(Ordering::Relaxed),
                ));
            },
        )
}

/// Average rate over the run: `"351 tasks/s"`.
fn format_rate(done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if done == 0 || secs <= 0.0 {
        return "- tasks/s".to_owned();
    }
    let rate = done as f64 / secs;
    if rate >= 100.0 {
        format!("{rate:.0} tasks/s")
    } else if rate >= 10.0 {
        format!("{rate:.1} tasks/s")
    } else {
        format!("{rate:.2} tasks/s")
    }
}

/// Remaining time at the average rate so far: `"16s"`, `"3m05s"`, `"2h07m"`, or `"?"`.
fn format_eta(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let Some(total) = total else {
        return "?".to_owned();
    };
    if done >= total {
        return "0s".to_owned();
    }
    if done == 0 || elapsed.is_zero() {
        return "?".to_owned();
    }
    let secs = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
    if !secs.is_finite() || secs > 1e9 {
        return "?".to_owned();
    }
    let secs = secs.ceil() as u64;
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// stderr for `ProgressMode::Always` when it is not a terminal: no cursor movement, each
/// redraw starts with `\r`. The bar is one line of fixed width, so redraws overwrite fully.
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|&c| c >= 20)
            .unwrap_or(80)
    }

    fn move_cursor_up(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _n: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let mut err = std::io::stderr().lock();
        err.write_all(s.as_bytes())?;
        err.write_all(b"\n")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(s.as_bytes())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(b"\r")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::graph::{Key, TaskId};

    /// A terminal that records what is drawn.
    #[derive(Debug)]
    pub(super) struct CaptureTerm(pub(super) Arc<Mutex<String>>);

    impl TermLike for CaptureTerm {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _n: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _n: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _n: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _n: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            let mut b = self.0.lock();
            b.push_str(s);
            b.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.0.lock().push('\r');
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn started(run: u64, tasks: usize, at: Instant) -> Event<'static> {
        Event::RunStarted {
            run,
            tasks,
            workers: 2,
            at,
        }
    }

    fn finished<'a>(run: u64, key: &'a Key, i: u32, at: Instant) -> Event<'a> {
        Event::TaskFinished {
            run,
            task: TaskId(i),
            key,
            op: "load",
            worker: (i % 2) as usize,
            started: at,
            finished: at,
            bytes: 8,
        }
    }

    fn failed<'a>(run: u64, key: &'a Key, will_retry: bool, at: Instant) -> Event<'a> {
        Event::TaskFailed {
            run,
            task: TaskId(0),
            key,
            op: "load",
            worker: 0,
            started: at,
            finished: at,
            message: "boom",
            will_retry,
        }
    }

    fn run_finished(run: u64, ok: bool, at: Instant) -> Event<'static> {
        Event::RunFinished { run, at, ok }
    }

    #[test]
    fn never_mode_counts_and_draws_nothing() {
        let bar = ProgressBar::new(ProgressMode::Never);
        assert!(!bar.is_visible());
        let t0 = Instant::now();
        let key = Key::from(("load", 1));
        bar.on_event(&started(7, 10, t0));
        for i in 0..6 {
            bar.on_event(&finished(7, &key, i, t0));
        }
        bar.on_event(&failed(7, &key, true, t0));
        bar.on_event(&failed(7, &key, false, t0));
        assert_eq!(bar.done(), 6);
        assert_eq!(bar.total(), 10);
        assert_eq!(bar.retried(), 1);
        assert_eq!(bar.failed(), 1);
        assert!(bar.ticker.lock().is_none(), "a hidden bar starts no thread");
        // Even far past the delay, a hidden bar creates no indicatif state.
        assert_eq!(
            bar.inner.tick(t0 + Duration::from_secs(60)),
            Tick::At(t0 + Duration::from_secs(60) + TICK_INTERVAL)
        );
        bar.on_event(&run_finished(7, false, t0));
        assert_eq!(bar.done(), 6, "counts of the last run stay readable");

        // A second run starts from zero.
        bar.on_event(&started(8, 3, t0));
        assert_eq!(
            (bar.done(), bar.total(), bar.failed(), bar.retried()),
            (0, 3, 0, 0)
        );
        bar.on_event(&finished(8, &key, 0, t0));
        assert_eq!(bar.done(), 1);
        assert!(bar.ticker.lock().is_none());
    }

    #[test]
    fn events_of_other_runs_are_ignored() {
        let bar = ProgressBar::new(ProgressMode::Never);
        let t0 = Instant::now();
        let key = Key::from("x");
        bar.on_event(&finished(1, &key, 0, t0)); // before any run
        bar.on_event(&started(1, 5, t0));
        bar.on_event(&started(2, 100, t0)); // nested run: ignored while run 1 is shown
        bar.on_event(&finished(2, &key, 0, t0));
        bar.on_event(&failed(2, &key, false, t0));
        bar.on_event(&run_finished(2, true, t0));
        bar.on_event(&finished(1, &key, 1, t0));
        assert_eq!((bar.done(), bar.total(), bar.failed()), (1, 5, 0));
        bar.on_event(&run_finished(1, true, t0));
        bar.on_event(&finished(1, &key, 2, t0)); // after the run finished
        assert_eq!(bar.done(), 1);
    }

    #[test]
    fn counts_from_many_threads() {
        let bar = ProgressBar::new(ProgressMode::Never);
        let t0 = Instant::now();
        bar.on_event(&started(3, 4000, t0));
        std::thread::scope(|s| {
            for w in 0..4u32 {
                let bar = &bar;
                s.spawn(move || {
                    let key = Key::from(("t", i64::from(w)));
                    for i in 0..1000 {
                        bar.on_event(&finished(3, &key, i, t0));
                    }
                });
            }
        });
        assert_eq!(bar.done(), 4000);
    }

    fn captured() -> (ProgressBar, Arc<Mutex<String>>) {
        let out = Arc::new(Mutex::new(String::new()));
        let bar = ProgressBar::with_target(Target::Capture(out.clone()), false);
        (bar, out)
    }

    #[test]
    fn draws_only_after_the_delay() {
        let (bar, out) = captured();
        assert!(bar.is_visible());
        let t0 = Instant::now();
        let key = Key::from(("load", 1));
        assert_eq!(bar.inner.tick(t0), Tick::Idle, "no run yet");
        bar.on_event(&started(1, 10, t0));
        bar.on_event(&finished(1, &key, 0, t0));
        let show_at = t0 + DEFAULT_DELAY;
        assert_eq!(
            bar.inner.tick(t0 + Duration::from_millis(300)),
            Tick::At(show_at)
        );
        assert!(out.lock().is_empty(), "nothing drawn before the delay");
        assert!(bar.inner.state.lock().bar.is_none());

        bar.on_event(&finished(1, &key, 1, t0));
        let t = t0 + Duration::from_millis(1500);
        assert_eq!(bar.inner.tick(t), Tick::At(t + TICK_INTERVAL));
        let text = out.lock().clone();
        assert!(text.contains("2/10 tasks"), "{text:?}");
        assert!(!text.contains("failed"), "{text:?}");

        bar.on_event(&failed(1, &key, false, t0));
        bar.on_event(&failed(1, &key, true, t0));
        bar.on_event(&finished(1, &key, 2, t0));
        bar.on_event(&finished(1, &key, 3, t0));
        bar.inner.tick(t0 + Duration::from_millis(1600));
        let text = out.lock().clone();
        assert!(text.contains("4/10 tasks"), "{text:?}");
        assert!(text.contains("1 failed, 1 retried"), "{text:?}");
        assert!(text.contains("tasks/s"), "{text:?}");

        bar.on_event(&run_finished(1, true, t0 + Duration::from_secs(2)));
        assert!(bar.inner.state.lock().bar.is_none());
        assert_eq!(bar.inner.tick(t0 + Duration::from_secs(3)), Tick::Idle);
        assert_eq!(bar.done(), 4);
    }

    #[test]
    fn zero_delay_draws_at_once_and_failed_runs_leave_the_bar() {
        let (bar, out) = captured();
        let bar = bar.with_delay(Duration::ZERO);
        let t0 = Instant::now();
        let key = Key::from("k");
        bar.on_event(&started(1, 2, t0));
        bar.on_event(&finished(1, &key, 0, t0));
        bar.inner.tick(t0);
        assert!(out.lock().contains("1/2 tasks"));
        bar.on_event(&failed(1, &key, false, t0));
        bar.on_event(&run_finished(1, false, t0));
        let text = out.lock().clone();
        let last = text.rsplit('\r').next().unwrap_or_default();
        assert!(
            last.contains("1/2 tasks") && last.contains("1 failed"),
            "{text:?}"
        );
    }

    #[test]
    fn drawing_thread_starts_and_stops() {
        let out = Arc::new(Mutex::new(String::new()));
        let bar = ProgressBar::with_target(Target::Capture(out.clone()), true)
            .with_delay(Duration::from_secs(3600));
        let t0 = Instant::now();
        let key = Key::from("k");
        assert!(bar.ticker.lock().is_none(), "started lazily");
        for run in 1..=3 {
            bar.on_event(&started(run, 1, t0));
            assert!(bar.ticker.lock().is_some());
            bar.on_event(&finished(run, &key, 0, t0));
            bar.on_event(&run_finished(run, true, t0));
        }
        // A run left unfinished is cleaned up by drop, which also joins the thread.
        bar.on_event(&started(4, 1, t0));
        drop(bar);
        assert!(out.lock().is_empty(), "the delay was never reached");
    }

    #[test]
    fn auto_mode_does_not_panic() {
        let bar = ProgressBar::new(ProgressMode::Auto);
        let t0 = Instant::now();
        let key = Key::from("k");
        bar.on_event(&started(1, 1, t0));
        bar.on_event(&finished(1, &key, 0, t0));
        bar.on_event(&run_finished(1, true, t0));
        assert_eq!(bar.done(), 1);
    }

    #[test]
    fn mode_parsing_and_display() {
        for mode in [
            ProgressMode::Auto,
            ProgressMode::Always,
            ProgressMode::Never,
        ] {
            assert_eq!(mode.to_string().parse::<ProgressMode>(), Ok(mode));
        }
        assert_eq!("OFF".parse::<ProgressMode>(), Ok(ProgressMode::Never));
        assert!("sometimes".parse::<ProgressMode>().is_err());
        assert_eq!(ProgressMode::default(), ProgressMode::Never);
    }

    #[test]
    fn rate_and_eta_formatting() {
        assert_eq!(format_rate(0, Duration::from_secs(1)), "- tasks/s");
        assert_eq!(format_rate(500, Duration::from_secs(2)), "250 tasks/s");
        assert_eq!(format_rate(25, Duration::from_secs(2)), "12.5 tasks/s");
        assert_eq!(format_rate(1, Duration::from_secs(4)), "0.25 tasks/s");
        assert_eq!(format_eta(0, Some(10), Duration::from_secs(1)), "?");
        assert_eq!(format_eta(5, Some(10), Duration::from_secs(10)), "10s");
        assert_eq!(format_eta(1, Some(20), Duration::from_secs(10)), "3m10s");
        assert_eq!(format_eta(1, Some(1000), Duration::from_secs(10)), "2h46m");
        assert_eq!(format_eta(10, Some(10), Duration::from_secs(10)), "0s");
        assert_eq!(failure_message(0, 0), "");
        assert_eq!(failure_message(2, 1), " · 2 failed, 1 retried");
    }

    #[test]
    fn style_template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let _ = bar_style(Arc::default(), Arc::default());
    }
}
