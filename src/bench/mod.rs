//! Benchmark workloads shared by `brisk bench` and the criterion benches, so both measure the
//! same graphs.

pub mod array;
pub mod frame;
pub mod overhead;
pub mod spill;

/// Parses a byte size for the command line (`8GiB`, `64 MiB`, `2GB`, `1000`), so that clap
/// rejects a bad one with its usage error before anything runs.
///
/// # Errors
/// The text is not a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    crate::sched::parse_bytes(s).map_err(|e| match e.kind() {
        // clap already says the value is invalid; the message says why.
        crate::ErrorKind::Config(msg) => msg.clone(),
        _ => e.to_string(),
    })
}

/// A memory limit given on the command line: a byte size, or `none` for no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// Nothing spills: the in-memory baseline.
    Unlimited,
    /// At most this many bytes held in memory.
    Bytes(u64),
}

impl MemoryLimit {
    /// The bytes to give the runtime: a limit nothing reaches when unlimited.
    pub fn bytes(self) -> u64 {
        match self {
            MemoryLimit::Unlimited => u64::MAX / 4,
            MemoryLimit::Bytes(b) => b,
        }
    }
}

impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryLimit::Unlimited => f.write_str("none"),
            MemoryLimit::Bytes(b) => f.write_str(&format_size(*b)),
        }
    }
}

/// Parses `--memory-limit`: a byte size or `none`.
///
/// # Errors
/// The text is neither `none` nor a byte size.
pub fn parse_memory_limit(s: &str) -> std::result::Result<MemoryLimit, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        Ok(MemoryLimit::Unlimited)
    } else {
        parse_size(s)
            .map(MemoryLimit::Bytes)
            .map_err(|e| format!("{e}, or `none` for no limit"))
    }
}

/// `bytes` in the largest binary unit that divides it exactly (`2GiB`, `64MiB`, `1000B`), a
/// form [`parse_size`] reads back.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// The number of cores, the default of every `--threads`.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Makes mimalloc keep freed pages instead of returning them to the OS.
///
/// Fresh memory costs a page fault and zeroing per page, and on this project's machines that
/// runs at ~0.6 GB/s against ~20 GB/s for memory already touched. The `brisk`
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_limits_parse_and_print_back() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2 GB"), Ok(2_000_000_000));
        assert!(parse_size("12XB").unwrap_err().contains("12XB"));
        assert_eq!(parse_memory_limit("None"), Ok(MemoryLimit::Unlimited));
        assert_eq!(parse_memory_limit("2GiB"), Ok(MemoryLimit::Bytes(2 << 30)));
        assert!(parse_memory_limit("lots").unwrap_err().contains("none"));
        assert_eq!(MemoryLimit::Bytes(2 << 30).to_string(), "2GiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0B");
    }
}
