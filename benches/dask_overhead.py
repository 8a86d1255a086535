#!/usr/bin/env python3
"""Dask's threaded-scheduler overhead on the same graphs as `brisk bench overhead`.

Optional (needs Python with dask). Prints one line per run in brisk's format:
  shape=<s> tasks=<n> threads=<t> build_ms=<f> order_ms=<f> run_ms=<f> us_per_task=<f>
build_ms: building the graph dict; order_ms: dask.order.order on it; run_ms: dask.threaded.get
(which orders again internally, as any dask compute does). us_per_task counts build + run,
i.e. what a user pays from the first graph call to the result.

  python3 -m venv benches/.venv && benches/.venv/bin/pip install dask
  benches/.venv/bin/python benches/dask_overhead.py --shape tree --tasks 100000 --threads 2
"""
import argparse
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", required=True, choices=["independent", "chain", "tree"])
    p.add_argument("--tasks", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        dsk, out = build(a.shape, a.tasks)
        t1 = time.perf_counter()
        order(dsk)
        t2 = time.perf_counter()
        with dask.config.set(num_workers=a.threads):
            get(dsk, out, num_workers=a.threads)
        t3 = time.perf_counter()
        total = (t1 - t0) + (t3 - t2)
        print(
            f"shape={a.shape} tasks={len(dsk)} threads={a.threads} build_ms={(t1-t0)*1e3:.3f} "
            f"order_ms={(t2-t1)*1e3:.3f} run_ms={(t3-t2)*1e3:.3f} us_per_task={total*1e6/len(dsk):.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
