"""dask.array versions of `brisk bench array` workloads 1-5, same output format:

    name=<w> wall_s=<f> peak_rss_mib=<f> tasks=<n>

Each workload runs in a fresh child process (so peak RSS, from ru_maxrss, is its own) on the
threaded scheduler with --threads workers. Wall time includes building the graph.

    python benches/dask_array.py [--threads 2] [--only mean0,sum,...] [--blas1]
"""

import argparse
import os
import resource
import subprocess
import sys
import time

WORKLOADS = ["mean0", "sum", "dotstd", "xxt", "svd"]


def run(name, threads, seed):
    import dask
    import dask.array as da
    import numpy as np

    dask.config.set(scheduler="threads", num_workers=threads)
    t0 = time.perf_counter()
    rs = da.random.default_rng(seed)
    if name == "mean0":
        x = rs.random((40000, 40000), chunks=(2000, 2000))
        y = x.mean(axis=1)
    elif name == "sum":
        x = rs.random((40000, 40000), chunks=(2000, 2000))
        y = x.sum()
    elif name == "dotstd":
        x = da.ones((8000, 8000), chunks=(1000, 1000))
        y = (x.dot(x.T + 1) - x.mean()).std()
    elif name == "xxt":
        x = rs.random((8000, 8000), chunks=(1000, 1000))
        y = (x + x.T).sum()
    elif name == "svd":
        x = rs.random((2_000_000, 50), chunks=(100_000, 50))
        u, s, v = da.linalg.svd(x)
        y = s
    else:
        raise SystemExit(f"unknown workload {name}")
    tasks = len(dict(y.__dask_graph__()))
    r = y.compute()
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"name={name} wall_s={wall:.3f} peak_rss_mib={rss:.1f} tasks={tasks}", flush=True)
    print(f"{name}: result check {float(np.asarray(r).ravel()[0])}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--blas1",
        action="store_true",
        help="one BLAS thread per dask worker (OMP/OPENBLAS/MKL_NUM_THREADS=1); default: library defaults",
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        run(a.child, a.threads, a.seed)
        return
    wanted = [w for w in WORKLOADS if not a.only or w in a.only.split(",")]
    env = dict(os.environ)
    if a.blas1:
        for k in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
            env[k] = "1"
    for w in wanted:
        subprocess.run(
            [sys.executable, __file__, "--child", w, "--threads", str(a.threads), "--seed", str(a.seed)],
            check=True,
            env=env,
        )


if __name__ == "__main__":
    main()
