#!/usr/bin/env python
"""Export Dask task-graph shapes, with Dask's own order pressure, for checking `brisk order`.

Writes one JSON file per graph in the format of `shared/data/order-graphs` (see its README):

    {"name", "source", "tasks": [{"key", "deps"}], "dask_max_pressure",
     "dask_mean_pressure", "n_tasks"}

Keys are `str(k)` for strings and `repr(k)` for tuples (memory addresses stripped);
dependencies are Dask's own (`dask._task_spec.DependenciesMapping`), deduplicated and sorted.
Dask's pressure is measured on the *exported* graph: `dsk` is rebuilt from the JSON
(`Task(key, f, *TaskRef(dep))` in JSON order), then `dask.order.order` and
`dask.order.diagnostics`, with `PYTHONHASHSEED=0` (the script re-executes itself to set it).

Families (name prefixes):

* `array_*`  dask.array collections: dot products followed by reductions
  (`(x.dot(x.T + 1) - x.mean()).std()`, `x.dot(y).sum(axis=..)`, matmul + mean/var/std),
  element-wise + transpose sums, map_overlap, rechunk, cumsum, tensordot, tsqr, over several
  sizes and chunkings. Each workload is exported un-optimized (`dict(c.__dask_graph__())`),
  optimized the way test_order.py does it
  (`collections_to_expr([c], optimize_graph=True).optimize().__dask_graph__()`, suffix
  `_opt`) and after `dask.optimize(c)` (suffix `_dopt`, only when its shape differs).
* `df_*`  dask.dataframe workloads on `dask.datasets.timeseries`, lowered and optimized,
  with task shuffles.
* `test_*`  every graph handed to `order`/`diagnostics` while running Dask's
  `dask/tests/test_order.py` (needs pytest).

Graphs whose shape was already exported (same keys and dependencies) are skipped.

Usage:  python benches/export_order_graphs.py OUT_DIR [--families array,df,test,arraybig]
                                                     [--max-tasks N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import dask  # noqa: E402
from dask._task_spec import DependenciesMapping, Task, TaskRef  # noqa: E402
from dask.order import diagnostics, order  # noqa: E402

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def key_str(k) -> str:
    s = k if isinstance(k, str) else repr(k)
    return ADDRESS.sub("", s)


def _f(*args):
    return None


def dask_pressure(tasks):
    dsk = {}
    for t in tasks:
        dsk[t["key"]] = Task(t["key"], _f, *[TaskRef(d) for d in t["deps"]])
    o = order(dsk)
    _, pressure = diagnostics(dsk, o)
    return max(pressure), sum(pressure) / len(pressure)


class Exporter:
    def __init__(self, out_dir: str, max_tasks: int):
        self.out_dir = out_dir
        self.max_tasks = max_tasks
        self.seen: set[str] = set()
        self.names: set[str] = set()
        self.rows: list[str] = []
        os.makedirs(out_dir, exist_ok=True)

    def export(self, name: str, source: str, dsk) -> None:
        dsk = dict(dsk)
        if not dsk or len(dsk) > self.max_tasks:
            print(f"skip {name}: {len(dsk)} tasks", file=sys.stderr)
            return
        deps = DependenciesMapping(dsk)
        strs = {k: key_str(k) for k in dsk}
        if len(set(strs.values())) != len(strs):
            print(f"skip {name}: key strings not injective", file=sys.stderr)
            return
        tasks = []
        dropped = 0
        for k in dsk:
            ds = sorted({strs[d] for d in deps[k] if d in dsk})
            dropped += sum(1 for d in deps[k] if d not in dsk)
            tasks.append({"key": strs[k], "deps": ds})
        shape = hashlib.sha1(json.dumps(tasks).encode()).hexdigest()
        if shape in self.seen:
            return
        self.seen.add(shape)
        base, i = name, 2
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        if dropped:
            source += f" ({dropped} out-of-graph dependencies dropped)"
        start = time.time()
        mx, mean = dask_pressure(tasks)
        doc = {
            "name": name,
            "source": source,
            "tasks": tasks,
            "dask_max_pressure": mx,
            "dask_mean_pressure": mean,
            "n_tasks": len(tasks),
        }
        with open(os.path.join(self.out_dir, name + ".json"), "w") as f:
            json.dump(doc, f)
        self.rows.append(f"{name}\t{len(tasks)}\t{mx}\t{mean:.6f}")
        print(
            f"{name}: {len(tasks)} tasks, dask max {mx} mean {mean:.4f} "
            f"({time.time() - start:.1f}s)",
            file=sys.stderr,
        )

    def collection(self, name: str, source: str, colls) -> None:
        from dask.base import collections_to_expr

        if not isinstance(colls, (list, tuple)):
            colls = [colls]
        graph = {}
        for c in colls:
            graph.update(dict(c.__dask_graph__()))
        self.export(name, f"{source}; graph = dict(c.__dask_graph__()) (un-optimized)", graph)
        opt = collections_to_expr(list(colls), optimize_graph=True).optimize()
        self.export(
            name + "_opt",
            f"{source}; graph = collections_to_expr(colls, optimize_graph=True)"
            ".optimize().__dask_graph__()",
            opt.__dask_graph__(),
        )
        optimized = dask.optimize(*colls)
        graph = {}
        for c in optimized:
            graph.update(dict(c.__dask_graph__()))
        self.export(name + "_dopt", f"{source}; graph after dask.optimize(*colls)", graph)

    def finish(self) -> None:
        with open(os.path.join(self.out_dir, "summary.tsv"), "a") as f:
            for r in self.rows:
                f.write(r + "\n")


def array_family(ex: Exporter) -> None:
    import dask.array as da

    def src(text):
        return f"dask.array: {text}"

    def ones_or_random(kind, shape, chunks):
        if kind == "ones":
            return da.ones(shape, chunks=chunks)
        da.random.seed(0)
        return da.random.random(shape, chunks=chunks)

    # Dot products followed by reductions, the family of the held-back regression.
    for kind in ("ones", "random"):
        for n, c in [(6, 2), (9, 3), (10, 5), (12, 3), (12, 4), (15, 5), (16, 4), (20, 5),
                     (20, 4), (24, 6), (25, 5), (30, 5), (30, 6), (32, 8), (40, 10), (40, 5),
                     (50, 10), (60, 10), (64, 8), (80, 10), (100, 10), (100, 20), (120, 12)]:
            x = ones_or_random(kind, (n, n), (c, c))
            tag = f"{kind}_{n}x{n}_c{c}"
            ex.collection(f"array_dot_std_{tag}",
                          src(f"x = {kind}(({n},{n}), chunks=({c},{c})); "
                              "(x.dot(x.T + 1) - x.mean()).std()"),
                          (x.dot(x.T + 1) - x.mean()).std())
            if n // c <= 8:
                ex.collection(f"array_dot_var_axis0_{tag}",
                              src(f"x = {kind}(({n},{n}), chunks=({c},{c})); "
                                  "(x.dot(x.T + 1) - x.mean()).var(axis=0)"),
                              (x.dot(x.T + 1) - x.mean()).var(axis=0))
    for (m, k, n), (cm, ck, cn) in [
        ((20, 20, 20), (5, 5, 5)), ((30, 20, 10), (10, 5, 5)), ((40, 40, 40), (10, 10, 10)),
        ((60, 30, 60), (10, 10, 10)), ((100, 50, 20), (10, 10, 10)), ((24, 48, 24), (6, 8, 6)),
        ((80, 80, 80), (10, 20, 10)), ((50, 100, 50), (10, 10, 10)),
        ((36, 36, 36), (6, 6, 6)), ((64, 16, 64), (8, 4, 8)),
    ]:
        tag = f"{m}x{k}x{n}_c{cm}x{ck}x{cn}"
        da.random.seed(0)
        x = da.random.random((m, k), chunks=(cm, ck))
        y = da.random.random((k, n), chunks=(ck, cn))
        base = f"x = random(({m},{k}), chunks=({cm},{ck})); y = random(({k},{n}), chunks=({ck},{cn}))"
        ex.collection(f"array_dot_sum0_{tag}", src(base + "; x.dot(y).sum(axis=0)"),
                      x.dot(y).sum(axis=0))
        ex.collection(f"array_dot_sum1_{tag}", src(base + "; x.dot(y).sum(axis=1)"),
                      x.dot(y).sum(axis=1))
        ex.collection(f"array_matmul_mean_{tag}", src(base + "; (x @ y).mean()"), (x @ y).mean())
        ex.collection(f"array_matmul_var0_{tag}", src(base + "; (x @ y).var(axis=0)"),
                      (x @ y).var(axis=0))
        ex.collection(f"array_matmul_std1_{tag}", src(base + "; (x @ y).std(axis=1)"),
                      (x @ y).std(axis=1))
        ex.collection(f"array_matmul_centered_{tag}",
                      src(base + "; ((x @ y) - (x @ y).mean(axis=0)).sum(axis=1)"),
                      ((x @ y) - (x @ y).mean(axis=0)).sum(axis=1))
        ex.collection(f"array_gram_mean_{tag}", src(base + "; (x.T @ x).mean(axis=1)"),
                      (x.T @ x).mean(axis=1))
    # Other array families of the shared set, with other sizes and chunkings.
    for n, c in [(1000, 100), (2000, 250), (4000, 500), (3000, 300), (2000, 100)]:
        da.random.seed(0)
        x = da.random.random((n, n), chunks=(c, c))
        tag = f"{n}_c{c}"
        ex.collection(f"array_x_plus_xT_sum_{tag}", src(f"x = random(({n},{n}), ({c},{c})); (x + x.T).sum()"),
                      (x + x.T).sum())
        ex.collection(f"array_mean_axis1_{tag}", src(f"random(({n},{n}), ({c},{c})).mean(axis=1)"),
                      x.mean(axis=1))
        ex.collection(f"array_map_overlap_sum_{tag}",
                      src(f"ones(({n},{n}), ({c},{c})).map_overlap(identity, depth=1).sum()"),
                      da.ones((n, n), chunks=(c, c)).map_overlap(_identity, depth=1).sum())
        ex.collection(f"array_cumsum_sum_{tag}", src(f"random(({n},{n}), ({c},{c})).cumsum(axis=0).sum()"),
                      x.cumsum(axis=0).sum())
        ex.collection(f"array_tensordot_{tag}",
                      src(f"x = random(({n},{n}), ({c},{c})); da.tensordot(x, x.T, axes=1).max(axis=0)"),
                      da.tensordot(x, x.T, axes=1).max(axis=0))
    for n, rows in [(2000, 100), (4000, 200), (3000, 50)]:
        ex.collection(f"array_rechunk_sum_{n}_r{rows}",
                      src(f"ones(({n},{n}), ({rows},{n})).rechunk(({n},{rows}), method='tasks').sum()"),
                      da.ones((n, n), chunks=(rows, n)).rechunk((n, rows), method="tasks").sum())
    for rows, chunk in [(100000, 10000), (200000, 5000)]:
        da.random.seed(0)
        x = da.random.random((rows, 20), chunks=(chunk, 20))
        q, r = da.linalg.tsqr(x)
        ex.collection(f"array_tsqr_{rows}_{chunk}", src(f"tsqr(random(({rows},20), ({chunk},20)))"),
                      [q, r])


def array_big_family(ex: Exporter) -> None:
    """Dot products followed by reductions with many blocks per side (peaks in the hundreds)."""
    import dask.array as da

    for kind in ("ones", "random"):
        for n, c in [(1200, 100), (1500, 100), (1600, 100), (2000, 100), (1800, 100),
                     (2100, 100), (2500, 100), (2200, 100)]:
            if kind == "ones":
                x = da.ones((n, n), chunks=(c, c))
            else:
                da.random.seed(0)
                x = da.random.random((n, n), chunks=(c, c))
            ex.collection(f"array_dot_std_{kind}_{n}x{n}_c{c}",
                          f"dask.array: x = {kind}(({n},{n}), chunks=({c},{c})); "
                          "(x.dot(x.T + 1) - x.mean()).std()",
                          (x.dot(x.T + 1) - x.mean()).std())
            if kind == "random" and n <= 1600:
                y = da.random.random((n, n // 2), chunks=(c, c))
                ex.collection(f"array_dot_sum0_{kind}_{n}x{n}_c{c}",
                              f"dask.array: x = random(({n},{n}), ({c},{c})); "
                              f"y = random(({n},{n // 2}), ({c},{c})); x.dot(y).sum(axis=0)",
                              x.dot(y).sum(axis=0))
                ex.collection(f"array_matmul_var1_{kind}_{n}x{n}_c{c}",
                              f"dask.array: x = random(({n},{n}), ({c},{c})); "
                              f"y = random(({n},{n // 2}), ({c},{c})); (x @ y).var(axis=1)",
                              (x @ y).var(axis=1))


def _identity(b):
    return b


def df_family(ex: Exporter) -> None:
    import dask.dataframe  # noqa: F401
    from dask.datasets import timeseries

    dask.config.set({"dataframe.shuffle.method": "tasks"})
    for end, pfreq in [("2000-01-11", "1D"), ("2000-01-31", "1D"), ("2000-02-10", "12h"),
                       ("2000-03-01", "1D")]:
        def make():
            return timeseries(start="2000-01-01", end=end, freq="60s", partition_freq=pfreq,
                              seed=0)
        df = make()
        tag = f"{end}_{pfreq}"
        base = f"timeseries(start='2000-01-01', end='{end}', freq='60s', partition_freq='{pfreq}', seed=0)"
        workloads = {
            "groupby_mean": lambda d: d.groupby("name").x.mean(),
            "groupby_mean_so1": lambda d: d.groupby("name").x.mean(split_out=1),
            "groupby_agg": lambda d: d.groupby("name").agg({"x": "sum", "y": "max"}),
            "groupby_std": lambda d: d.groupby("id").y.std(),
            "resample_mean": lambda d: d.x.resample("1h").mean(),
            "rolling_mean_sum": lambda d: d[["id", "x", "y"]].rolling(100).mean().sum(),
            "set_index": lambda d: d.set_index("x", shuffle_method="tasks"),
            "shuffle_id": lambda d: d.shuffle("id"),
            "value_counts": lambda d: d.name.value_counts(),
            "nunique": lambda d: d.name.nunique(),
            "merge_self": lambda d: d.merge(d[["id", "y"]], on="id", shuffle_method="tasks"),
            "x_minus_mean_std": lambda d: (d.x - d.x.mean()).std(),
            "cumsum_max": lambda d: d.x.cumsum().max(),
        }
        for wname, build in workloads.items():
            try:
                c = build(df)
                from dask.base import collections_to_expr

                g = collections_to_expr([c], optimize_graph=True).optimize().__dask_graph__()
            except Exception as e:  # some workloads need a newer pandas feature
                print(f"skip df_{wname}_{tag}: {e!r}", file=sys.stderr)
                continue
            ex.export(f"df_{wname}_{tag}",
                      f"dask.dataframe: df = {base}; {wname}; graph = collections_to_expr([c], "
                      "optimize_graph=True).optimize().__dask_graph__(); shuffle method 'tasks'",
                      g)


def test_family(ex: Exporter) -> None:
    import pytest

    import dask.tests.test_order as t

    state = {"test": None, "count": {}}
    recorded = []

    def record(dsk):
        name = state["test"] or "unknown"
        try:
            recorded.append((name, dict(dsk)))
        except Exception:
            pass

    real_order, real_diag = t.order, t.diagnostics

    def order_wrap(dsk, *a, **kw):
        record(dsk)
        return real_order(dsk, *a, **kw)

    def diag_wrap(dsk, *a, **kw):
        record(dsk)
        return real_diag(dsk, *a, **kw)

    class Plugin:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_call(self, item):
            state["test"] = item.originalname or item.name
            t.order, t.diagnostics = order_wrap, diag_wrap
            yield
            t.order, t.diagnostics = real_order, real_diag

    pytest.main([t.__file__, "-q", "-p", "no:cacheprovider", "--no-header",
                 "-p", "no:randomly"], plugins=[Plugin()])
    for name, dsk in recorded:
        try:
            ex.export(name, f"dask/tests/test_order.py::{name}", dsk)
        except Exception as e:
            print(f"skip {name}: {e!r}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--families", default="array,df,test")
    ap.add_argument("--max-tasks", type=int, default=60000)
    args = ap.parse_args()
    ex = Exporter(args.out_dir, args.max_tasks)
    fams = args.families.split(",")
    try:
        if "test" in fams:
            test_family(ex)
        if "array" in fams:
            array_family(ex)
        if "arraybig" in fams:
            array_big_family(ex)
        if "df" in fams:
            df_family(ex)
    finally:
        ex.finish()


if __name__ == "__main__":
    main()
