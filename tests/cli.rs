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

/// Asserts `args` is refused by clap before anything runs: usage exit code 2 and clap's
/// "invalid value" error naming the value (clap points at `--help` for the usage).
fn assert_usage_error(args: &[&str], bad: &str) -> String {
    let out = brisk().args(args).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} ran");
    assert!(err.contains("invalid value"), "{err}");
    assert!(err.contains(bad), "{err}");
    assert!(err.contains("--help"), "{err}");
    err
}

#[test]
fn unknown_shape_is_a_usage_error_listing_the_shapes() {
    let err = assert_usage_error(
        &["bench", "overhead", "--shape", "bogus", "--tasks", "10"],
        "bogus",
    );
    for shape in ["independent", "chain", "tree"] {
        assert!(err.contains(shape), "{err}");
    }
}

#[test]
fn bad_byte_sizes_are_usage_errors() {
    assert_usage_error(&["bench", "spill", "--bytes", "12XB"], "12XB");
    assert_usage_error(&["bench", "outofcore", "--memory-limit", "lots"], "lots");
    assert_usage_error(&["bench", "array", "--memory-limit", "2QB"], "2QB");
    assert_usage_error(&["bench", "frame-join", "--memory-limit=-1GiB"], "-1GiB");
}

#[test]
fn bad_choices_are_usage_errors() {
    assert_usage_error(&["bench", "array", "--only", "svdd"], "svdd");
    assert_usage_error(
        &["bench", "frame", "--dir", ".", "--engine", "pandas"],
        "pandas",
    );
    assert_usage_error(
        &["bench", "frame", "--dir", ".", "--queries", "nope"],
        "nope",
    );
}

fn help(args: &[&str]) -> String {
    let out = brisk().args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_lists_the_choices() {
    let top = help(&[]);
    for cmd in ["demo", "order", "bench", "gen"] {
        assert!(top.contains(cmd), "{top}");
    }
    let overhead = help(&["bench", "overhead"]);
    for shape in ["independent", "chain", "tree"] {
        assert!(overhead.contains(shape), "{overhead}");
    }
    let array = help(&["bench", "array"]);
    for w in ["mean0", "svd_values", "outofcore"] {
        assert!(array.contains(w), "{array}");
    }
    let frame = help(&["bench", "frame"]);
    for e in ["brisk", "polars", "both", "groupby_name_mean", "join_names"] {
        assert!(frame.contains(e), "{frame}");
    }
}

#[test]
fn every_limited_bench_takes_memory_limit_and_threads_default_to_all_cores() {
    for bench in ["spill", "outofcore", "array", "frame-join"] {
        let text = help(&["bench", bench]);
        assert!(text.contains("--memory-limit"), "{bench}: {text}");
        assert!(!text.contains("--limit"), "{bench}: {text}");
    }
    for cmd in [
        &["demo"][..],
        &["bench", "overhead"],
        &["bench", "spill"],
        &["bench", "outofcore"],
        &["bench", "array"],
        &["bench", "frame"],
        &["bench", "frame-join"],
    ] {
        let text = help(cmd);
        assert!(text.contains("--threads"), "{cmd:?}: {text}");
        assert!(text.contains("default: all cores"), "{cmd:?}: {text}");
    }
}

#[test]
fn help_does_not_point_at_internal_documents() {
    let mut cmds: Vec<Vec<&str>> = vec![vec![], vec!["order"], vec!["demo"], vec!["bench"]];
    for b in [
        "overhead",
        "spill",
        "outofcore",
        "array",
        "frame",
        "frame-join",
    ] {
        cmds.push(vec!["bench", b]);
    }
    for cmd in &cmds {
        let text = help(cmd).to_lowercase();
        for internal in ["issue ", "design", "shared/data", "§"] {
            assert!(
                !text.contains(internal),
                "{cmd:?} mentions {internal}: {text}"
            );
        }
    }
}

#[test]
fn the_old_limit_flag_still_sets_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = brisk()
        .args(["bench", "spill", "--bytes", "16MiB", "--limit", "4MiB"])
        .args(["--chunk", "1MiB", "--threads", "2", "--spill-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Under the default limit of 1 GiB nothing would spill.
    let spilled: f64 = field(&line, "spilled_gib").parse().unwrap();
    assert!(spilled > 0.0, "{line}");
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
        .args(["--memory-limit", "4MiB", "--dir"])
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
        .args([
            "bench",
            "spill",
            "--bytes",
            "32MiB",
            "--memory-limit",
            "8MiB",
        ])
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
