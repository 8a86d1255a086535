//! The `brisk` command: output formats and errors for bad input.

use std::path::PathBuf;
use std::process::Command;

fn brisk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_brisk"))
}

fn shared_graph(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/order-graphs")
        .join(name);
    p.exists().then_some(p)
}

#[test]
fn order_prints_one_line_in_the_documented_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diamond.json");
    std::fs::write(
        &path,
        r#"{"name":"diamond","tasks":[{"key":"a","deps":[]},{"key":"b","deps":["a"]},
            {"key":"c","deps":["a"]},{"key":"d","deps":["b","c"]}]}"#,
    )
    .unwrap();
    let out = brisk().arg("order").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = line.trim().split(' ').collect();
    assert_eq!(fields.len(), 4, "{line}");
    assert_eq!(fields[0], "max_pressure=2");
    assert!(fields[1].starts_with("mean_pressure="));
    assert!(fields[2].starts_with("order_ms="));
    assert_eq!(fields[3], "tasks=4");
}

#[test]
fn order_of_a_shared_graph_matches_or_beats_dask() {
    let Some(path) = shared_graph("test_avoid_upwards_branching.json") else {
        eprintln!("shared data not found; skipped");
        return;
    };
    let out = brisk().arg("order").arg(&path).output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let max: u64 = line
        .split(' ')
        .find_map(|f| f.strip_prefix("max_pressure="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(max <= 2, "{line}");
}

#[test]
fn order_reports_bad_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(
        &path,
        r#"{"name":"broken","tasks":[{"key":"a","deps":["ghost"]}]}"#,
    )
    .unwrap();
    let out = brisk().arg("order").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("broken.json"), "{err}");
    assert!(err.contains("ghost"), "{err}");

    let missing = dir.path().join("nope.json");
    let out = brisk().arg("order").arg(&missing).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("nope.json"));
}

#[test]
fn overhead_bench_prints_the_documented_line() {
    let out = brisk()
        .args([
            "bench",
            "overhead",
            "--shape",
            "tree",
            "--tasks",
            "1000",
            "--threads",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = line
        .trim()
        .split(' ')
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "shape",
            "tasks",
            "threads",
            "build_ms",
            "order_ms",
            "run_ms",
            "us_per_task"
        ]
    );
    assert!(
        line.starts_with("shape=tree tasks=1999 threads=2 "),
        "{line}"
    );
}

#[test]
fn unknown_shape_is_a_clear_error() {
    let out = brisk()
        .args(["bench", "overhead", "--shape", "star", "--tasks", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown shape `star`"), "{err}");
}

/// `key=value` fields of a line.
fn fields(line: &str) -> Vec<(&str, &str)> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    fields(line)
        .into_iter()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        .1
}

#[test]
fn array_bench_workloads_pass_their_checks_at_a_tiny_scale() {
    let dir = tempfile::tempdir().unwrap();
    let out = brisk()
        .args(["bench", "array", "--scale", "0.002", "--threads", "2"])
        .args([
            "--outofcore-bytes",
            "8000000",
            "--outofcore-block-bytes",
            "400000",
        ])
        .args(["--limit", "4MiB", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| field(l, "name")).collect();
    assert_eq!(
        names,
        [
            "mean0",
            "sum",
            "dotstd",
            "xxt",
            "svd",
            "svd_values",
            "outofcore"
        ]
    );
    for line in &lines {
        let keys: Vec<&str> = fields(line).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "name",
                "wall_s",
                "peak_rss_mib",
                "tasks",
                "result",
                "check",
                "check_ok"
            ],
            "{line}"
        );
        assert_eq!(field(line, "check_ok"), "true", "{line}");
    }
    let svd = lines[4];
    for part in [
        "recon_rel_err:",
        "u_orth_err:",
        "v_orth_err:",
        "sum_s2_rel_err:",
    ] {
        assert!(field(svd, "check").contains(part), "{svd}");
    }
}

#[test]
fn array_bench_rejects_a_bad_scale_and_workload() {
    let out = brisk()
        .args(["bench", "array", "--scale", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scale"));
    let out = brisk()
        .args(["bench", "array", "--only", "svdd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("svdd"));
}

#[test]
fn spill_bench_prints_disk_bytes_beside_the_uncompressed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = brisk()
        .args(["bench", "spill", "--bytes", "32MiB", "--limit", "8MiB"])
        .args(["--chunk", "2MiB", "--threads", "2", "--spill-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let num = |k: &str| -> f64 { field(&line, k).parse().unwrap() };
    let spilled = num("spilled_gib");
    let on_disk = num("disk_written_gib");
    assert!(spilled > 0.0, "{line}");
    // Half the chunks compress, so fewer bytes reach the files than the values hold.
    assert!(on_disk <= spilled, "{line}");
    assert!(num("disk_write_gbps") <= num("write_gbps"), "{line}");
    assert!(num("disk_read_gib") > 0.0, "{line}");
    for k in ["disk_read_gbps", "device_read_gib", "page_cache_read_frac"] {
        field(&line, k);
    }
}
