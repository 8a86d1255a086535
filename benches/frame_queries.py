#!/usr/bin/env python3
"""The seven `brisk bench frame` queries in polars' streaming engine and in dask.dataframe.

Usage (a venv with polars, dask, pandas, pyarrow, e.g. /work/venv/bin/python):

    python benches/frame_queries.py --dir /tmp/frame-ts [--engine polars|dask|both]
        [--threads 2] [--queries q1,q2]

Each query runs in a child process so its peak RSS (ru_maxrss of the child) is its own; one line
per query, in the same format as `brisk bench frame`:

    query=<q> engine=<e> wall_s=<f> peak_rss_mib=<f> check=<sum of the value column>

Dates are parsed only for the two time queries (groupby_month_var, resample_1h_mean), as in
brisk. The clock starts after the engine's modules are imported (brisk's starts after its
runtime is built), so wall_s is the query alone. Dask refuses a row-count rolling window across partitions of unknown divisions, so
rolling_100_mean_sum in dask uses `map_overlap` with `before=99` rows — what a Dask user would
write — and is reported as such.
"""

import argparse
import os
import resource
import subprocess
import sys
import time

QUERIES = [
    "groupby_name_mean",
    "groupby_month_var",
    "filter_groupby_id_sum",
    "resample_1h_mean",
    "rolling_100_mean_sum",
    "sort_x_head",
    "join_names",
]

# The names `brisk gen timeseries` writes, `[A-Z][a-z]ice`; a name's group is its first letter.
NAMES = [chr(a) + chr(b) + "ice" for a in range(ord("A"), ord("Z") + 1)
         for b in range(ord("a"), ord("z") + 1)]
GROUPS = [n[0] for n in NAMES]
NOTES = []


def import_engine(engine):
    """Imports what `engine` runs on, before the clock starts."""
    if engine == "polars":
        import polars  # noqa: F401
    else:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401


def run_polars(q, pattern):
    import polars as pl

    def scan(dates):
        return pl.scan_csv(pattern, try_parse_dates=dates)

    if q == "groupby_name_mean":
        lf, c = scan(False).group_by("name").agg(pl.col("x").mean()), "x"
    elif q == "groupby_month_var":
        lf = (scan(True).with_columns(pl.col("timestamp").dt.month().alias("month"))
              .group_by("month").agg(pl.col("x").var()))
        c = "x"
    elif q == "filter_groupby_id_sum":
        lf, c = scan(False).filter(pl.col("x") > 0).group_by("id").agg(pl.col("y").sum()), "y"
    elif q == "resample_1h_mean":
        lf = scan(True).group_by_dynamic("timestamp", every="1h").agg(pl.col("x").mean())
        c = "x"
    elif q == "rolling_100_mean_sum":
        lf = scan(False).select(pl.col("x").rolling_mean(100).sum().alias("r"))
        c = "r"
    elif q == "sort_x_head":
        lf, c = scan(False).sort("x").head(5), "x"
    elif q == "join_names":
        names = pl.DataFrame({"name": NAMES, "group": GROUPS}).lazy()
        lf = (scan(False).join(names, on="name").group_by("group").agg(pl.col("x").mean()))
        c = "x"
    else:
        raise SystemExit("unknown query " + q)
    df = lf.collect(engine="streaming")
    return float(df[c].cast(pl.Float64).sum()), df.height


def run_dask(q, pattern, threads):
    import dask
    import dask.dataframe as dd
    import pandas as pd

    dask.config.set(scheduler="threads", num_workers=threads)

    def read(dates):
        if dates:
            return dd.read_csv(pattern, parse_dates=["timestamp"], blocksize="64MB")
        return dd.read_csv(pattern, blocksize="64MB")

    if q == "groupby_name_mean":
        r, c = read(False).groupby("name").x.mean().compute().to_frame(), "x"
    elif q == "groupby_month_var":
        d = read(True)
        d = d.assign(month=d.timestamp.dt.month)
        r, c = d.groupby("month").x.var().compute().to_frame(), "x"
    elif q == "filter_groupby_id_sum":
        d = read(False)
        r, c = d[d.x > 0].groupby("id").y.sum().compute().to_frame(), "y"
    elif q == "resample_1h_mean":
        d = read(True).set_index("timestamp", sorted=True)
        r = d.x.resample("1h").mean().compute().dropna().to_frame()
        c = "x"
    elif q == "rolling_100_mean_sum":
        d = read(False)
        try:
            s = d.x.rolling(100).mean().sum().compute()
        except Exception:  # unknown divisions: what a Dask user writes instead
            NOTES.append("refused rolling(100); ran map_overlap")
            s = d.x.map_overlap(lambda p: p.rolling(100).mean(), before=99, after=0).sum().compute()
        r, c = pd.DataFrame({"r": [s]}), "r"
    elif q == "sort_x_head":
        r, c = read(False).nsmallest(5, "x").compute(), "x"
    elif q == "join_names":
        names = pd.DataFrame({"name": NAMES, "group": GROUPS})
        d = read(False).merge(names, on="name")
        r, c = d.groupby("group").x.mean().compute().to_frame(), "x"
    else:
        raise SystemExit("unknown query " + q)
    return float(r[c].astype("float64").sum()), len(r)


def child(args):
    pattern = os.path.join(args.dir, "*.csv")
    import_engine(args.engine)
    t = time.perf_counter()
    if args.engine == "polars":
        check, rows = run_polars(args.child, pattern)
    else:
        check, rows = run_dask(args.child, pattern, args.threads)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    note = (" note=" + ";".join(NOTES).replace(" ", "_")) if NOTES else ""
    print("query=%s engine=%s wall_s=%.2f peak_rss_mib=%.0f check=%.9e rows=%d%s"
          % (args.child, args.engine, wall, peak, check, rows, note), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--engine", default="both")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--queries")
    p.add_argument("--child")
    args = p.parse_args()
    if args.child:
        child(args)
        return
    engines = ["polars", "dask"] if args.engine == "both" else [args.engine]
    queries = args.queries.split(",") if args.queries else QUERIES
    print("# frame_queries.py --dir %s threads=%d" % (args.dir, args.threads), flush=True)
    for q in queries:
        for e in engines:
            env = dict(os.environ, POLARS_MAX_THREADS=str(args.threads))
            out = subprocess.run(
                [sys.executable, __file__, "--dir", args.dir, "--engine", e,
                 "--threads", str(args.threads), "--child", q],
                env=env, capture_output=True, text=True)
            if out.returncode == 0:
                sys.stdout.write(out.stdout)
            else:
                err = out.stderr.strip().splitlines()
                print("query=%s engine=%s failed: %s" % (q, e, err[-1] if err else "?"))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
