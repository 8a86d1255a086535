//! Frame sources and sinks: CSV split by byte ranges (headers, quoted newlines, dates, bad
//! rows, globs), Parquet by row group with projection and predicate, and writing partitions.

mod frame_common;

use std::io::Write;

use brisk::frame::{self, col, lit, CsvOptions, ParquetOptions};
use frame_common::{assert_same, rt, table};
use polars::prelude::*;

fn write_csv(dir: &std::path::Path, name: &str, df: &mut DataFrame) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    CsvWriter::new(&mut f)
        .include_header(true)
        .finish(df)
        .unwrap();
    path
}

fn read_whole(path: &std::path::Path, dates: bool) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .map_parse_options(|o| o.with_try_parse_dates(dates))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

#[test]
fn csv_byte_ranges_match_whole_file_reads() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut parts = Vec::new();
    for i in 0..3 {
        let mut df = table(200 + i * 50);
        write_csv(dir.path(), &format!("part{i}.csv"), &mut df);
        parts.push(read_whole(&dir.path().join(format!("part{i}.csv")), false));
    }
    let mut want = parts[0].clone();
    want.vstack_mut(&parts[1]).unwrap();
    want.vstack_mut(&parts[2]).unwrap();
    let pattern = format!("{}/part*.csv", dir.path().display());
    for size in [64u64, 1000, 1 << 20] {
        let f = frame::read_csv(&pattern, CsvOptions::default().partition_size(size)).unwrap();
        if size == 64 {
            assert!(f.num_partitions() > 100);
        }
        assert_same(
            &format!("size {size}"),
            &rt.compute(&f).unwrap(),
            &want,
            true,
        );
        // Projection pushed into the reader gives the same answer.
        let q = f
            .filter(col("x").gt(lit(0.0)))
            .unwrap()
            .group_by(["k"])
            .agg([col("y").sum()])
            .unwrap();
        let wq = want
            .clone()
            .lazy()
            .filter(col("x").gt(lit(0.0)))
            .group_by([col("k")])
            .agg([col("y").sum()])
            .collect()
            .unwrap();
        assert_same(
            &format!("size {size} query"),
            &rt.compute(&q).unwrap(),
            &wq,
            false,
        );
        assert_eq!(rt.compute(&f.len()).unwrap() as usize, want.height());
    }
}

#[test]
fn csv_dates_on_request_and_overrides() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut df = table(100);
    let path = write_csv(dir.path(), "t.csv", &mut df);
    let f = frame::read_csv(path.to_str().unwrap(), CsvOptions::default()).unwrap();
    assert_eq!(f.schema().get("t"), Some(&DataType::String));
    let f = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default()
            .try_parse_dates(true)
            .partition_size(500),
    )
    .unwrap();
    assert!(matches!(
        f.schema().get("t"),
        Some(DataType::Datetime(_, _))
    ));
    assert_same(
        "dates",
        &rt.compute(&f).unwrap(),
        &read_whole(&path, true),
        true,
    );
    let f = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().dtype("y", DataType::Float64),
    )
    .unwrap();
    assert_eq!(f.schema().get("y"), Some(&DataType::Float64));
    let e = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().dtype("nope", DataType::Float64),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope"), "{e}");
}

/// A CSV of `id,text,v` whose text is plain for ids `0..plain` and then holds a quoted
/// newline and separator up to id `quoted`; returns its path.
fn text_csv(dir: &std::path::Path, name: &str, plain: usize, quoted: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "id,text,v").unwrap();
    for i in 0..quoted {
        if i < plain {
            writeln!(f, "{i},plain text {i},{}", i * 2).unwrap();
        } else {
            writeln!(f, "{i},\"line one\nline, two {i}\",{}", i * 2).unwrap();
        }
    }
    path
}

#[test]
fn csv_quoted_newlines_are_not_cut() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = text_csv(dir.path(), "q.csv", 0, 300);
    let want = read_whole(&path, false);
    let fr = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().partition_size(100),
    )
    .unwrap();
    assert!(fr.num_partitions() > 10);
    assert_same("quoted", &rt.compute(&fr).unwrap(), &want, true);
}

#[test]
fn csv_quotes_first_seen_past_the_sample_are_not_cut() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = text_csv(dir.path(), "late.csv", 400, 700);
    let want = read_whole(&path, false);
    let options = CsvOptions::default()
        .sample_bytes(2048) // the sample sees no quote
        .partition_size(300);
    let fr = frame::read_csv(path.to_str().unwrap(), options).unwrap();
    assert!(fr.num_partitions() > 20);
    assert_same("late quotes", &rt.compute(&fr).unwrap(), &want, true);
}

#[test]
fn csv_crlf_and_quoted_fields_match_whole_file_reads() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    for (name, line_end) in [("lf.csv", "\n"), ("crlf.csv", "\r\n")] {
        let path = dir.path().join(name);
        let mut text = format!("id,name,x,note{line_end}");
        for i in 0..500 {
            let note = match i % 5 {
                0 => String::new(),
                1 => "\"\"".to_string(),
                2 => format!("\"say \"\"{i}\"\", twice\""),
                3 => "\"two\nlines\"".to_string(),
                _ => "plain".to_string(),
            };
            let x = if i % 7 == 0 {
                String::new()
            } else {
                format!("\"{}.5\"", i)
            };
            text.push_str(&format!("{i},\"n{}\",{x},{note}{line_end}", i % 13));
        }
        std::fs::write(&path, &text).unwrap();
        let want = read_whole(&path, false);
        assert_eq!(want.height(), 500);
        for size in [150, 1 << 20] {
            let fr = frame::read_csv(
                path.to_str().unwrap(),
                CsvOptions::default().partition_size(size),
            )
            .unwrap();
            assert_same(name, &rt.compute(&fr).unwrap(), &want, true);
            // A projection that skips the quoted text column.
            let got = rt
                .compute(&fr.select([col("id"), col("x")]).unwrap())
                .unwrap();
            let want_projected = want.select(["id", "x"]).unwrap();
            assert_same(name, &got, &want_projected, true);
        }
    }
}

#[test]
fn csv_bad_input_is_reported_with_file_and_line() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "a,b").unwrap();
    for i in 0..500 {
        if i == 377 {
            writeln!(f, "{i},oops").unwrap();
        } else {
            writeln!(f, "{i},{}.5", i).unwrap();
        }
    }
    drop(f);
    let fr = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default()
            .partition_size(1000)
            .dtype("b", DataType::Float64),
    )
    .unwrap();
    let e = rt.compute(&fr).unwrap_err().to_string();
    // Header is line 1, row i is line i + 2.
    assert!(e.contains(&format!("{}:379", path.display())), "{e}");

    let e = frame::read_csv(
        &format!("{}/*.nothing", dir.path().display()),
        CsvOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no file matches"), "{e}");
    assert!(e.contains("*.nothing"), "{e}");

    // A file whose header differs.
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "a,c\n1,2\n").unwrap();
    let e = frame::read_csv_paths(vec![path.clone(), other], CsvOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("header"), "{e}");

    // A file cut short after the frame was built: an error naming it, not a crash.
    let short = dir.path().join("short.csv");
    let mut f = std::fs::File::create(&short).unwrap();
    writeln!(f, "a,b").unwrap();
    for i in 0..2000 {
        writeln!(f, "{i},{i}.25").unwrap();
    }
    drop(f);
    let fr = frame::read_csv(
        short.to_str().unwrap(),
        CsvOptions::default().partition_size(4096),
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&short)
        .unwrap()
        .set_len(100)
        .unwrap();
    let e = rt.compute(&fr).unwrap_err().to_string();
    assert!(
        e.contains(&short.display().to_string()) && e.contains("shorter"),
        "{e}"
    );
}

#[test]
fn parquet_row_groups_projection_predicate_and_sinks() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let df = table(1000);
    let f = frame::from_polars(df.clone(), 4);
    let written = rt
        .compute(&f.to_parquet(dir.path().join("pq")).unwrap())
        .unwrap();
    assert_eq!(written, 1000);
    let pattern = format!("{}/pq/*.parquet", dir.path().display());
    let back = frame::read_parquet(&pattern, ParquetOptions::default()).unwrap();
    assert!(back.num_partitions() >= 4);
    assert_same("parquet", &rt.compute(&back).unwrap(), &df, true);
    let q = frame::read_parquet(
        &pattern,
        ParquetOptions::default()
            .columns(&["k", "y"])
            .predicate(col("x").gt(lit(0.0))),
    );
    // The predicate reads a column outside the projection: still allowed at the reader.
    let want = df
        .clone()
        .lazy()
        .filter(col("x").gt(lit(0.0)))
        .select([col("k"), col("y")])
        .collect()
        .unwrap();
    match q {
        Ok(q) => assert_same("parquet pushdown", &rt.compute(&q).unwrap(), &want, true),
        Err(e) => panic!("{e}"),
    }
    let n = rt
        .compute(&f.to_csv(dir.path().join("csv")).unwrap())
        .unwrap();
    assert_eq!(n, 1000);
    let back = frame::read_csv(
        &format!("{}/csv/*.csv", dir.path().display()),
        CsvOptions::default().try_parse_dates(true),
    )
    .unwrap();
    assert_eq!(rt.compute(&back.len()).unwrap(), 1000);
    let p = f.persist(&rt).unwrap();
    assert_same("persist", &rt.compute(&p).unwrap(), &df, true);
}

#[test]
fn broadcast_joins_stay_pending_over_csv() {
    // A broadcast join is a pending per-partition op: a later filter on a right-side column,
    // a second join and a group-by all fuse into the CSV partition's chain, and the source
    // parses only what they need. The result must equal polars on the whole file.
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = write_csv(dir.path(), "t.csv", &mut table(700));
    let whole = read_whole(&path, false);
    let names = df!(
        "k" => ["k0", "k1", "k2", "k3", "k4", "k5"],
        "team" => ["a", "b", "a", "c", "b", "a"],
        "x" => [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    )
    .unwrap();
    let teams = df!("team" => ["a", "b"], "weight" => [10i64, 20]).unwrap();
    let query = |lf: LazyFrame, names: LazyFrame, teams: LazyFrame| {
        lf.join(
            names,
            [col("k")],
            [col("k")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("x_right").gt(lit(1.5)))
        .join(
            teams,
            [col("team")],
            [col("team")],
            JoinArgs::new(JoinType::Left),
        )
        .group_by([col("team")])
        .agg([col("x").sum(), col("weight").max(), len().alias("n")])
    };
    let want = query(whole.lazy(), names.clone().lazy(), teams.clone().lazy())
        .collect()
        .unwrap();
    let fr = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().partition_size(2000),
    )
    .unwrap();
    assert!(fr.num_partitions() > 3);
    let opts = || frame::JoinOptions::new(frame::JoinHow::Inner).broadcast(true);
    let got = fr
        .join(&frame::from_polars(names, 2), &["k"], &["k"], opts())
        .unwrap()
        .filter(col("x_right").gt(lit(1.5)))
        .unwrap()
        .join(
            &frame::from_polars(teams, 1),
            &["team"],
            &["team"],
            frame::JoinOptions::new(frame::JoinHow::Left),
        )
        .unwrap()
        .group_by(["team"])
        .agg([col("x").sum(), col("weight").max(), len().alias("n")])
        .unwrap();
    assert_same("joins over csv", &rt.compute(&got).unwrap(), &want, false);
}

#[test]
fn nsmallest_over_csv_parses_only_the_chosen_rows_and_matches_polars() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut df = table(900);
    let plain = write_csv(dir.path(), "plain.csv", &mut df);
    // Quoted fields (and a quoted newline) make the source fall back to a whole parse.
    let quoted = dir.path().join("quoted.csv");
    let mut text = String::from("k,x,note\n");
    for i in 0..300 {
        let note = if i == 7 {
            "\"two\nlines\""
        } else {
            "\"plain\""
        };
        text.push_str(&format!("k{},{}.5,{note}\n", i % 5, (i * 37) % 101));
    }
    std::fs::write(&quoted, text).unwrap();
    for path in [plain, quoted] {
        let whole = read_whole(&path, false);
        let fr = frame::read_csv(
            path.to_str().unwrap(),
            CsvOptions::default().partition_size(1500),
        )
        .unwrap();
        for (n, descending) in [(1, false), (7, false), (25, true), (2000, false)] {
            let want = whole
                .clone()
                .lazy()
                .sort(
                    ["x"],
                    SortMultipleOptions::default()
                        .with_order_descending(descending)
                        .with_nulls_last(true)
                        .with_maintain_order(true),
                )
                .slice(0, n as IdxSize)
                .collect()
                .unwrap();
            let got = if descending {
                fr.nlargest(n, "x").unwrap()
            } else {
                fr.nsmallest(n, "x").unwrap()
            };
            let what = format!("{} n={n} descending={descending}", path.display());
            assert_same(&what, &rt.compute(&got).unwrap(), &want, true);
        }
    }
}

/// brisk's frame and polars' reader on the whole file, with the same options: both fail, or
/// both give the same frame; returns whether they read it.
fn reads_like_polars(
    what: &str,
    path: &std::path::Path,
    brisk: CsvOptions,
    polars: CsvReadOptions,
) -> bool {
    let want = polars
        .with_n_threads(Some(1))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish();
    let got = frame::read_csv(path.to_str().unwrap(), brisk).and_then(|f| rt().compute(&f));
    match (got, want) {
        (Ok(got), Ok(want)) => {
            assert_same(what, &got, &want, true);
            true
        }
        (Err(_), Err(_)) => false,
        (got, want) => panic!("{what}: brisk {got:?}\npolars {want:?}"),
    }
}

/// [`reads_like_polars`], where polars reads the file.
fn assert_reads_like_polars(
    what: &str,
    path: &std::path::Path,
    brisk: CsvOptions,
    polars: CsvReadOptions,
) {
    assert!(
        reads_like_polars(what, path, brisk, polars),
        "{what}: polars fails"
    );
}

#[test]
fn a_ragged_row_in_the_schema_sample_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ragged.csv");
    std::fs::write(&path, "a,b\n1,2\n3,4\n5,6,7\n8,9\n").unwrap();
    let e = frame::read_csv(path.to_str().unwrap(), CsvOptions::default()).unwrap_err();
    assert!(
        matches!(e.kind(), brisk::ErrorKind::Parse { line: 4, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("{}:4", path.display())),
        "{e}"
    );
}

#[test]
fn malformed_rows_past_the_sample_are_parse_errors() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let mut text = String::from("a,b\n");
    for i in 0..300 {
        text.push_str(&format!("{i},{i}.5\n"));
    }
    text.push_str("7,x\n");
    std::fs::write(&path, text).unwrap();
    let fr = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().sample_bytes(100).partition_size(500),
    )
    .unwrap();
    let e = rt.compute(&fr).unwrap_err().to_string();
    assert!(e.contains(&format!("{}:302", path.display())), "{e}");
}

#[test]
fn a_file_with_a_byte_order_mark_reads_like_polars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.csv");
    let mut text = String::from("\u{feff}id,name,x\n");
    for i in 0..200 {
        text.push_str(&format!("{i},n{},{}.25\n", i % 7, i));
    }
    std::fs::write(&path, &text).unwrap();
    for size in [300, 1 << 20] {
        assert_reads_like_polars(
            "bom",
            &path,
            CsvOptions::default().partition_size(size),
            CsvReadOptions::default(),
        );
    }
    // Without a header the mark is not part of the first value either.
    let path = dir.path().join("bom-noheader.csv");
    std::fs::write(&path, "\u{feff}1,a\n2,b\n").unwrap();
    assert_reads_like_polars(
        "bom without header",
        &path,
        CsvOptions::default().has_header(false),
        CsvReadOptions::default().with_has_header(false),
    );
    // Both files of a glob may start with one.
    std::fs::write(dir.path().join("two-1.csv"), "\u{feff}a,b\n1,2\n").unwrap();
    std::fs::write(dir.path().join("two-2.csv"), "\u{feff}a,b\n3,4\n").unwrap();
    let f = frame::read_csv(
        &format!("{}/two-*.csv", dir.path().display()),
        CsvOptions::default(),
    )
    .unwrap();
    assert_eq!(rt().compute(&f).unwrap().height(), 2);
}

/// `timestamp,x` lines from the given timestamp texts.
fn stamp_csv(dir: &std::path::Path, name: &str, stamps: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text = String::from("timestamp,x\n");
    for (i, t) in stamps.iter().enumerate() {
        text.push_str(&format!("{t},{i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn timestamps_polars_parses_are_parsed_as_polars_parses_them() {
    let dir = tempfile::tempdir().unwrap();
    let us = DataType::Datetime(TimeUnit::Microseconds, None);
    let overwrite = Arc::new(Schema::from_iter([Field::new(
        "timestamp".into(),
        us.clone(),
    )]));
    let mut cases: Vec<(&str, Vec<&str>)> = vec![
        // A space-separated column with one value of another layout polars still reads.
        (
            "odd value",
            vec![
                "2000-01-01 00:00:00",
                "2000-01-01 00:00",
                "2000-01-01 00:00:02.5",
            ],
        ),
        // A quoted empty value is null.
        (
            "quoted empty",
            vec!["2000-01-01 00:00:00", "\"\"", "", "\"2000-01-01 00:00:02\""],
        ),
        // polars has no second 60, and fixes its layout on the first value.
        (
            "second 60",
            vec!["2000-01-01 00:00:00", "2000-01-01 23:59:60"],
        ),
        (
            "mixed separators",
            vec!["2000-01-01 00:00:00", "2000-01-01T00:00:01"],
        ),
        (
            "mixed separators, T first",
            vec!["2000-01-01T00:00:00", "2000-01-01 00:00:01"],
        ),
    ];
    // Enough rows for several partitions, the odd value in the middle one.
    let mut long = vec!["2000-01-01 00:00:00"; 300];
    long[150] = "2000-01-01 00:00";
    cases.push(("odd value in a long file", long));
    for (what, stamps) in cases {
        let path = stamp_csv(dir.path(), "t.csv", &stamps);
        for fast in [true, false] {
            assert_reads_like_polars(
                what,
                &path,
                CsvOptions::default()
                    .dtype("timestamp", us.clone())
                    .fast_datetimes(fast),
                CsvReadOptions::default().with_schema_overwrite(Some(overwrite.clone())),
            );
        }
        assert_reads_like_polars(
            what,
            &path,
            CsvOptions::default()
                .try_parse_dates(true)
                .partition_size(1000),
            CsvReadOptions::default()
                .with_infer_schema_length(None)
                .map_parse_options(|o| o.with_try_parse_dates(true)),
        );
    }
}

#[test]
fn a_long_quoted_field_past_the_first_block_is_not_cut() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long-quoted.csv");
    // Cuts fall about every `size` bytes; the quoted field starts and ends halfway between
    // two, so no quote lies within 64 KiB of any cut.
    let size = 200_000;
    let mut text = String::from("id,text\n");
    let mut i = 0;
    // Plain rows past the schema sample (the first block, 1 MiB).
    while text.len() < 6 * size + size / 2 {
        text.push_str(&format!("{i},plain {i}\n"));
        i += 1;
    }
    // One quoted field of two partitions' length, with newlines.
    text.push_str(&format!("{i},\""));
    let mut k = 0;
    while text.len() < 8 * size + size / 2 {
        text.push_str(&format!(
            "quoted line {k} with, a comma and some more text\n"
        ));
        k += 1;
    }
    text.push_str("\"\n");
    for j in 0..(2 * size / 12) {
        text.push_str(&format!("{},after {j}\n", i + 1 + j));
    }
    std::fs::write(&path, &text).unwrap();
    let want = read_whole(&path, false);
    let fr = frame::read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().partition_size(size as u64),
    )
    .unwrap();
    assert!(fr.num_partitions() > 8);
    assert_same("long quoted field", &rt.compute(&fr).unwrap(), &want, true);
}

#[test]
fn every_reader_option_reads_like_polars_with_that_option() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let rows = |f: &dyn Fn(usize) -> String| (0..400).map(f).collect::<String>();
    let default = CsvReadOptions::default;

    // null_values, for all columns and per column.
    let path = write(
        "nulls.csv",
        &format!(
            "a,b,s\n{}",
            rows(&|i| match i % 5 {
                0 => "NA,1.5,x\n".to_string(),
                1 => format!("{i},-,NA\n"),
                _ => format!("{i},{i}.5,t{i}\n"),
            })
        ),
    );
    for (brisk, polars) in [
        (
            NullValues::AllColumns(vec!["NA".into(), "-".into()]),
            NullValues::AllColumns(vec!["NA".into(), "-".into()]),
        ),
        (
            NullValues::AllColumnsSingle("NA".into()),
            NullValues::AllColumnsSingle("NA".into()),
        ),
        (
            NullValues::Named(vec![("a".into(), "NA".into()), ("b".into(), "-".into())]),
            NullValues::Named(vec![("a".into(), "NA".into()), ("b".into(), "-".into())]),
        ),
    ] {
        for size in [500, 1 << 20] {
            assert_reads_like_polars(
                "null_values",
                &path,
                CsvOptions::default()
                    .null_values(Some(brisk.clone()))
                    .partition_size(size),
                default().map_parse_options(|o| o.with_null_values(Some(polars.clone()))),
            );
        }
    }

    // missing_is_null = false: empty text is an empty string.
    let path = write(
        "missing.csv",
        &format!(
            "a,s\n{}",
            rows(&|i| if i % 3 == 0 {
                format!("{i},\n")
            } else {
                format!("{i},v\n")
            })
        ),
    );
    assert_reads_like_polars(
        "missing_is_null",
        &path,
        CsvOptions::default()
            .missing_is_null(false)
            .partition_size(500),
        default().map_parse_options(|o| o.with_missing_is_null(false)),
    );

    // truncate_ragged_lines: a line past the sample with extra fields.
    let path = write(
        "ragged.csv",
        &format!(
            "a,b\n{}",
            rows(&|i| if i == 350 {
                format!("{i},1,extra\n")
            } else {
                format!("{i},1\n")
            })
        ),
    );
    assert_reads_like_polars(
        "truncate_ragged_lines",
        &path,
        CsvOptions::default()
            .truncate_ragged_lines(true)
            .sample_bytes(200)
            .partition_size(500),
        default().map_parse_options(|o| o.with_truncate_ragged_lines(true)),
    );

    // comment_prefix: comment lines before the header and among the rows.
    let path = write(
        "comments.csv",
        &format!(
            "# a title\na,b\n{}",
            rows(&|i| if i % 50 == 3 {
                "# a note, with a comma\n".to_string()
            } else {
                format!("{i},{i}.5\n")
            })
        ),
    );
    for prefix in ["#", "# a"] {
        assert_reads_like_polars(
            "comment_prefix",
            &path,
            CsvOptions::default()
                .comment_prefix(Some(prefix))
                .partition_size(500),
            default().map_parse_options(|o| o.with_comment_prefix(Some(prefix))),
        );
    }

    // skip_rows: rows before the header (one of them quoted over two lines).
    let path = write(
        "skip.csv",
        &format!(
            "title line\n\"quoted\ntitle\"\na,b\n{}",
            rows(&|i| format!("{i},{i}.5\n"))
        ),
    );
    assert_reads_like_polars(
        "skip_rows",
        &path,
        CsvOptions::default().skip_rows(2).partition_size(500),
        default().with_skip_rows(2),
    );

    // skip_rows_after_header.
    let path = write(
        "after.csv",
        &format!("a,b\nunits,none\n{}", rows(&|i| format!("{i},{i}.5\n"))),
    );
    assert_reads_like_polars(
        "skip_rows_after_header",
        &path,
        CsvOptions::default()
            .skip_rows_after_header(1)
            .partition_size(500),
        default().with_skip_rows_after_header(1),
    );

    // encoding: invalid UTF-8 read lossily.
    let path = dir.path().join("lossy.csv");
    let mut bytes = b"a,s\n".to_vec();
    for i in 0..400 {
        bytes.extend_from_slice(format!("{i},t").as_bytes());
        if i % 9 == 0 {
            bytes.push(0xff);
        }
        bytes.push(b'\n');
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_reads_like_polars(
        "encoding",
        &path,
        CsvOptions::default()
            .encoding(CsvEncoding::LossyUtf8)
            .partition_size(500),
        default().map_parse_options(|o| o.with_encoding(CsvEncoding::LossyUtf8)),
    );

    // decimal_comma, with another separator.
    let path = write(
        "comma.csv",
        &format!("a;b\n{}", rows(&|i| format!("{i};{i},5\n"))),
    );
    assert_reads_like_polars(
        "decimal_comma",
        &path,
        CsvOptions::default()
            .separator(b';')
            .decimal_comma(true)
            .partition_size(500),
        default().map_parse_options(|o| o.with_separator(b';').with_decimal_comma(true)),
    );

    // ignore_errors: a value past the sample that does not parse.
    let path = write(
        "errors.csv",
        &format!(
            "a,b\n{}",
            rows(&|i| if i == 300 {
                format!("{i},oops\n")
            } else {
                format!("{i},{i}.5\n")
            })
        ),
    );
    assert_reads_like_polars(
        "ignore_errors",
        &path,
        CsvOptions::default()
            .ignore_errors(true)
            .dtype("b", DataType::Float64)
            .partition_size(500),
        default()
            .with_ignore_errors(true)
            .with_schema_overwrite(Some(Arc::new(Schema::from_iter([Field::new(
                "b".into(),
                DataType::Float64,
            )])))),
    );

    // infer_schema_length: a column empty in the rows inferred from is text, else integers.
    let path = write(
        "infer.csv",
        &format!(
            "a,b\n{}",
            rows(&|i| if i < 20 {
                format!("{i},\n")
            } else {
                format!("{i},{i}\n")
            })
        ),
    );
    for rows in [Some(10), None] {
        assert_reads_like_polars(
            "infer_schema_length",
            &path,
            CsvOptions::default()
                .infer_schema_length(rows)
                .partition_size(500),
            default().with_infer_schema_length(rows),
        );
    }
    let bad = write(
        "infer-bad.csv",
        &format!(
            "a,b\n{}",
            rows(&|i| if i == 20 {
                format!("{i},x\n")
            } else {
                format!("{i},{i}\n")
            })
        ),
    );
    assert!(!reads_like_polars(
        "infer_schema_length too short",
        &bad,
        CsvOptions::default().infer_schema_length(Some(10)),
        default().with_infer_schema_length(Some(10)),
    ));

    // separator and quote_char.
    let path = write(
        "dialect.csv",
        &format!("a|s\n{}", rows(&|i| format!("{i}|'x|{i}'\n"))),
    );
    assert_reads_like_polars(
        "separator, quote_char",
        &path,
        CsvOptions::default()
            .separator(b'|')
            .quote_char(Some(b'\''))
            .partition_size(500),
        default().map_parse_options(|o| o.with_separator(b'|').with_quote_char(Some(b'\''))),
    );

    // try_parse_dates.
    let path = write(
        "dates.csv",
        &format!(
            "d,t\n{}",
            rows(&|i| format!(
                "2000-01-{:02},2000-01-01T00:00:{:02}.123\n",
                i % 28 + 1,
                i % 60
            ))
        ),
    );
    assert_reads_like_polars(
        "try_parse_dates",
        &path,
        CsvOptions::default()
            .try_parse_dates(true)
            .partition_size(500),
        default().map_parse_options(|o| o.with_try_parse_dates(true)),
    );
}

#[test]
fn globs_that_match_nothing_name_the_pattern_and_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = format!("{}/*.parquet", dir.path().display());
    let e = frame::read_parquet(&pattern, ParquetOptions::default()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("read_parquet: no file matches") && text.contains(&pattern),
        "{text}"
    );
    assert!(matches!(e.kind(), brisk::ErrorKind::Input(_)), "{text}");
    // Under a directory that does not exist.
    for (reader, pattern) in [
        (
            "read_csv",
            format!("{}/missing/*.csv", dir.path().display()),
        ),
        (
            "read_parquet",
            format!("{}/missing/*.parquet", dir.path().display()),
        ),
    ] {
        let e = if reader == "read_csv" {
            frame::read_csv(&pattern, CsvOptions::default()).unwrap_err()
        } else {
            frame::read_parquet(&pattern, ParquetOptions::default()).unwrap_err()
        };
        let text = e.to_string();
        assert!(text.contains(reader) && text.contains(&pattern), "{text}");
        assert!(matches!(e.kind(), brisk::ErrorKind::Io { .. }), "{text}");
    }
}
