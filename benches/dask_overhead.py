#!/usr/bin/env python3
"""Dask's threaded-scheduler overhead on the same graphs as `brisk bench overhead`.

Optional (needs Python with dask). Prints one line per run in brisk's format:
  shape=<s> tasks=<n> threads=<t> build_ms=<f> order_ms=<f> run_ms=<f> us_per_task=<f>
build_ms: building the graph dict; order_ms: dask.order.order on it; run_ms: dask.threaded.get
(which orders again internally, as any dask compute does). us_per_task counts build + run,
i.e. what a user pays from the first graph call to the result.

What to compare with:
- `dask.threaded.get` runs the graph as given: it fuses nothing, so every task of `chain` is
  scheduled on its own. The comparable brisk figure is `--shape chain --no-fuse`; brisk's
  default fuses the whole chain into one task, which is a different amount of scheduling.
- A user's program gets the first run of a fresh process. By default every line here is one
  (with `--repeat R`, each run starts a new Python process; the time of `import dask` is not
  counted). `--warm` makes all runs in one process, for medians of warm runs, which are
  secondary. The first line `brisk bench overhead` prints is its first run of a fresh process.

  python3 -m venv benches/.venv && benches/.venv/bin/pip install dask
  benches/.venv/bin/python benches/dask_overhead.py --shape tree --tasks 100000 --threads 2
  brisk bench overhead --shape tree --tasks 100000 --threads 2      # first run, fresh process
  brisk bench overhead --shape chain --tasks 100000 --threads 2 --no-fuse
"""
import argparse
import subprocess
import sys
import time

import dask
from dask.order import order
from dask.threaded import get


def noop(*args):
    return None


def build(shape, n):
    dsk = {}
    if shape == "chain":
        dsk[("chain", 0)] = (noop,)
        for i in range(1, n):
            dsk[("chain", i)] = (noop, ("chain", i - 1))
        return dsk, ("chain", n - 1)
    fan_in = 32 if shape == "independent" else 2
    leaf = "noop" if shape == "independent" else "leaf"
    level = []
    for i in range(n):
        dsk[(leaf, i)] = (noop,)
        level.append((leaf, i))
    depth = 0
    last = level[0]
    while len(level) > 1:
        depth += 1
        nxt = []
        for j in range(0, len(level), fan_in):
            group = level[j : j + fan_in]
            if len(group) == 1:
                # a lone leftover moves up a level, as in brisk's shape
                nxt.append(group[0])
                continue
            last = ("reduce", depth, j // fan_in)
            dsk[last] = (noop,) + tuple(group)
            nxt.append(last)
        level = nxt
    return dsk, last


def run_once(shape, tasks, threads):
    t0 = time.perf_counter()
    dsk, out = build(shape, tasks)
    t1 = time.perf_counter()
    order(dsk)
    t2 = time.perf_counter()
    with dask.config.set(num_workers=threads):
        get(dsk, out, num_workers=threads)
    t3 = time.perf_counter()
    total = (t1 - t0) + (t3 - t2)
    print(
        f"shape={shape} tasks={len(dsk)} threads={threads} build_ms={(t1-t0)*1e3:.3f} "
        f"order_ms={(t2-t1)*1e3:.3f} run_ms={(t3-t2)*1e3:.3f} us_per_task={total*1e6/len(dsk):.4f}",
        flush=True,
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", required=True, choices=["independent", "chain", "tree"])
    p.add_argument("--tasks", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--warm",
        action="store_true",
        help="make all runs in this process (default: each run in a fresh process)",
    )
    a = p.parse_args()
    if a.warm or a.repeat <= 1:
        for _ in range(max(a.repeat, 1)):
            run_once(a.shape, a.tasks, a.threads)
        return
    for _ in range(a.repeat):
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--shape",
                a.shape,
                "--tasks",
                str(a.tasks),
                "--threads",
                str(a.threads),
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
