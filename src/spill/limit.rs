//! The default memory limit: a fraction of the machine's physical memory.
//!
//! Read from `/proc/meminfo` (`MemTotal`) on Linux and from cgroup v2's `memory.max` when a
//! container sets a lower ceiling, so that a runtime inside a container does not plan for
//! memory it cannot have. Elsewhere, or when nothing can be read, a conservative 4 GiB.

use std::path::Path;

/// Fraction of physical memory a runtime manages when no `memory_limit` is given.
pub const DEFAULT_FRACTION: f64 = 0.75;

const FALLBACK_BYTES: u64 = 4 << 30;

/// Physical memory in bytes, or the container's limit when lower; `None` when unknown.
pub fn physical_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo(&text));
    let cgroup = read_cgroup_max(Path::new("/sys/fs/cgroup/memory.max"));
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The limit a runtime uses when none is configured.
pub fn default_limit() -> u64 {
    physical_memory()
        .map(|b| (b as f64 * DEFAULT_FRACTION) as u64)
        .unwrap_or(FALLBACK_BYTES)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

fn read_cgroup_max(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parses_kilobytes() {
        let text = "MemTotal:       24596416 kB\nMemFree:        1234 kB\n";
        assert_eq!(parse_meminfo(text), Some(24596416 * 1024));
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn cgroup_max_means_unlimited() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("memory.max");
        std::fs::write(&p, "max\n").unwrap();
        assert_eq!(read_cgroup_max(&p), None);
        std::fs::write(&p, "1073741824\n").unwrap();
        assert_eq!(read_cgroup_max(&p), Some(1 << 30));
        assert_eq!(read_cgroup_max(&dir.path().join("missing")), None);
    }

    #[test]
    fn default_is_a_fraction_of_something_positive() {
        let limit = default_limit();
        assert!(limit > 0);
        if let Some(total) = physical_memory() {
            assert!(limit <= total);
        }
    }
}
