//! Benchmark workloads shared by `brisk bench` and the criterion benches, so both measure the
//! same graphs.

pub mod array;
pub mod frame;
pub mod overhead;
pub mod spill;

/// Makes mimalloc keep freed pages instead of returning them to the OS.
///
/// Fresh memory costs a page fault and zeroing per page, and on this project's machines that
/// runs at ~0.6 GB/s against ~20 GB/s for memory already touched (design §9). The `brisk`
/// binary and the benches use mimalloc as global allocator and call this first, so a
/// computation reuses the pages of the one before instead of faulting them in again.
/// Has no effect (beyond setting an option) when mimalloc is not the global allocator.
pub fn keep_freed_pages() {
    set_purge_delay(-1);
}

/// Makes mimalloc return freed pages to the OS at once (the opposite of [`keep_freed_pages`]).
///
/// Under a memory limit the process's resident size matters more than the cost of fresh
/// pages: a larger-than-memory computation frees and allocates far more than the limit over
/// its run, and pages kept in mimalloc's fragmented segments would add to RSS what the store
/// already gave back. The larger-than-memory benches call this when they set a limit.
pub fn return_freed_pages() {
    set_purge_delay(0);
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`, …) in MiB; `None` off Linux.
pub(crate) fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn set_purge_delay(millis: std::os::raw::c_long) {
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the same in its v2 and v3);
    // libmimalloc-sys does not export a constant for it. -1 means "never purge".
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: `mi_option_set` only stores an option value in mimalloc's option table; it is
    // safe to call at any time, from any thread, before or after mimalloc is initialised.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, millis);
    }
}
