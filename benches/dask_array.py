"""dask.array versions of `brisk bench array` workloads 1-6, same output format:

    name=<w> wall_s=<f> peak_rss_mib=<f> tasks=<n> result=<f> check=<k:v,...> check_ok=<bool>

Each workload runs in a fresh child process (so peak RSS, from ru_maxrss, is its own) on the
threaded scheduler with --threads workers. Wall time includes building the graph; wall time and
peak RSS are taken before the check. The workloads are the same as brisk's (see
src/bench/array.rs), at the same sizes and chunks, scaled alike by --scale:

  mean0       random((40000, 40000), chunks 2000).mean(axis=1)
  sum         the same array's total
  dotstd      x = random((8000, 8000), chunks 1000); (x.dot(x.T + 1) - x.mean()).std()
  xxt         the same x; (x + x.T).sum()
  svd         u, s, v = da.linalg.svd(random((2_000_000, 50), chunks (100_000, 50))), all three
              computed
  svd_values  only s of the same svd (dask culls the Q products but its local QRs, numpy's,
              still form Q; brisk's svd_values forms none)

The check (same fields as brisk's) recomputes the answer outside the reduction graph: the
random array is computed again a strip of blocks at a time (or whole, for dotstd and svd) and
reduced with numpy (`recomputed`, `rel_err`); the answer is compared with its expectation for
uniform data within six standard deviations (`expect`, `tol`); the SVD is checked by
||A - U S V^T|| / ||A||, ||U^T U - I||, ||V^T V - I||, sum s^2 = ||A||^2 and
sum s^4 = ||A^T A||^2.

    python benches/dask_array.py [--threads 2] [--only mean0,sum,...] [--scale 1] [--blas1]
"""

import argparse
import math
import os
import resource
import subprocess
import sys
import time

WORKLOADS = ["mean0", "sum", "dotstd", "xxt", "svd", "svd_values"]
SVD_COLS = 50
EXACT_TOL = 1e-9


def sizes(scale):
    """(side, block) of the mean0/sum array, of the dotstd/xxt array, and (rows, block) of svd."""
    if not (math.isfinite(scale) and scale > 0):
        raise SystemExit(f"--scale must be a positive number, got {scale}")

    def at(side, block):
        b = max(1, math.floor(block * scale + 0.5))
        return max(b, math.floor(side * scale + 0.5)), b

    return at(40_000, 2_000), at(8_000, 1_000), at(2_000_000, 100_000)


def sci(x, digits=6):
    """A number as brisk prints it: 1.234568e8, 1.5e-16."""
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    mantissa, exp = f"{x:.{digits}e}".split("e")
    return f"{mantissa}e{int(exp)}"


class Check:
    def __init__(self):
        self.fields = []
        self.ok = True

    def text(self):
        return ",".join(self.fields)

    def value(self, name, v):
        self.fields.append(f"{name}:{sci(v)}")

    def small(self, name, err, tol):
        self.fields.append(f"{name}:{sci(err, 1)}")
        self.ok = self.ok and err <= tol

    def recomputed(self, got, again):
        self.value("recomputed", again)
        self.small("rel_err", rel_err(got, again), EXACT_TOL)

    def expect(self, got, expect, tol):
        self.value("expect", expect)
        self.value("tol", tol)
        self.ok = self.ok and abs(got - expect) <= tol

    def flag(self, name, holds):
        self.fields.append(f"{name}:{str(bool(holds)).lower()}")
        self.ok = self.ok and bool(holds)


def rel_err(got, want):
    return abs(got - want) / max(abs(want), sys.float_info.min)


def sum_tol(n):
    """Six standard deviations of the sum of n uniform [0, 1) numbers."""
    return 6.0 * math.sqrt(n / 12.0)


def strips(x):
    """The rows of blocks of x, each computed on its own (outside the reduction graph)."""
    for i in range(x.numblocks[0]):
        yield x.blocks[i].compute()


def svd_identities(c, a, s, u=None, v=None):
    import numpy as np

    norm2 = float((a * a).sum())
    gram = a.T @ a
    c.value("s_max", float(s[0]) if len(s) else float("nan"))
    c.small("sum_s2_rel_err", rel_err(float((s**2).sum()), norm2), EXACT_TOL)
    c.small("sum_s4_rel_err", rel_err(float((s**4).sum()), float((gram * gram).sum())), EXACT_TOL)
    c.flag(
        "sorted",
        len(s) == min(SVD_COLS, a.shape[0]) and bool((s >= 0).all()) and bool((np.diff(s) <= 0).all()),
    )
    if u is not None:
        resid = a - (u * s) @ v
        c.small("recon_rel_err", math.sqrt(float((resid * resid).sum()) / norm2), EXACT_TOL)
        k = u.shape[1]
        c.small("u_orth_err", float(np.abs(u.T @ u - np.eye(k)).max()), EXACT_TOL)
        c.small("v_orth_err", float(np.abs(v @ v.T - np.eye(v.shape[0])).max()), EXACT_TOL)


def run(name, threads, seed, scale):
    import dask
    import dask.array as da
    import numpy as np

    (big, big_block), (mid, mid_block), (svd_rows, svd_block) = sizes(scale)
    dask.config.set(scheduler="threads", num_workers=threads)
    t0 = time.perf_counter()
    rs = da.random.default_rng(seed)
    if name in ("mean0", "sum"):
        x = rs.random((big, big), chunks=(big_block, big_block))
        outs = [x.mean(axis=1) if name == "mean0" else x.sum()]
    elif name in ("dotstd", "xxt"):
        x = rs.random((mid, mid), chunks=(mid_block, mid_block))
        outs = [(x.dot(x.T + 1) - x.mean()).std() if name == "dotstd" else (x + x.T).sum()]
    elif name in ("svd", "svd_values"):
        x = rs.random((svd_rows, SVD_COLS), chunks=(svd_block, SVD_COLS))
        u, s, v = da.linalg.svd(x)
        outs = [u, s, v] if name == "svd" else [s]
    else:
        raise SystemExit(f"unknown workload {name}")
    graph = {}
    for o in outs:
        graph.update(dict(o.__dask_graph__()))
    tasks = len(graph)
    results = [np.asarray(r) for r in dask.compute(*outs)]
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    c = Check()
    if name == "mean0":
        got = results[0]
        again = np.concatenate([b.sum(axis=1) for b in strips(x)]) / big
        c.flag("len_ok", len(again) == len(got))
        c.small("recomputed_max_rel_err", float(np.abs(got - again).max() / np.abs(again).max()), EXACT_TOL)
        n = big * big
        result = float(got.mean())
        c.expect(result, 0.5, sum_tol(n) / n)
    elif name == "sum":
        result = float(results[0])
        c.recomputed(result, float(sum(b.sum() for b in strips(x))))
        n = big * big
        c.expect(result, n / 2.0, sum_tol(n))
    elif name == "xxt":
        result = float(results[0])
        c.recomputed(result, 2.0 * float(sum(b.sum() for b in strips(x))))
        n = mid * mid
        c.expect(result, n, 2.0 * sum_tol(n))
    elif name == "dotstd":
        result = float(results[0])
        xn = x.compute()
        z = xn @ xn.T
        z += xn.sum(axis=1)[:, None]
        z -= xn.mean()
        c.recomputed(result, float(z.std()))
        del z
        expect = math.sqrt(2.0 * mid / 9.0)
        c.expect(result, expect, expect * 4.0 / math.sqrt(mid))
    elif name == "svd":
        u, s, v = results
        result = float(s[0])
        svd_identities(c, x.compute(), s, u, v)
    else:  # svd_values
        s = results[0]
        result = float(s[0])
        svd_identities(c, x.compute(), s)
    print(
        f"name={name} wall_s={wall:.3f} peak_rss_mib={rss:.1f} tasks={tasks} result={sci(result)} "
        f"check={c.text()} check_ok={str(c.ok).lower()}",
        flush=True,
    )
    if not c.ok:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies array and chunk sizes (e.g. 0.01)")
    p.add_argument(
        "--blas1",
        action="store_true",
        help="one BLAS thread per dask worker (OMP/OPENBLAS/MKL_NUM_THREADS=1); default: library defaults",
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    sizes(a.scale)
    if a.child:
        run(a.child, a.threads, a.seed, a.scale)
        return
    only = [w for w in a.only.split(",") if w]
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {WORKLOADS}")
    wanted = [w for w in WORKLOADS if not only or w in only]
    env = dict(os.environ)
    if a.blas1:
        for k in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
            env[k] = "1"
    failed = []
    for w in wanted:
        r = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                w,
                "--threads",
                str(a.threads),
                "--seed",
                str(a.seed),
                "--scale",
                repr(a.scale),
            ],
            env=env,
        )
        if r.returncode != 0:
            failed.append(w)
    if failed:
        raise SystemExit(f"workloads failed or gave wrong results: {', '.join(failed)}")


if __name__ == "__main__":
    main()
