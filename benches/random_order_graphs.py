#!/usr/bin/env python
"""Random DAGs with Dask's exact order, for checking brisk's Dask replica (`order_dask`).

Usage: python benches/random_order_graphs.py OUT_DIR [COUNT]

Writes `OUT_DIR/rand_<i>.json` in the format of `shared/data/order-graphs` and
`OUT_DIR/dask_orders/rand_<i>.json` with Dask's order and pressure list, computed with
`PYTHONHASHSEED=0` on the graph rebuilt from the JSON (string keys, `Task(key, f,
*TaskRef(dep))` in JSON order; the script re-executes itself to set the seed). The graphs mix
isolated tasks, several roots, fan-ins up to 8, near and far dependencies, and (every other
graph) a dict order that is not topological. Then:

    BRISK_ORDER_GRAPHS=OUT_DIR cargo test --test order dask_replica_reproduces
"""
import json
import os
import random
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

from dask._task_spec import Task, TaskRef  # noqa: E402
from dask.order import _f, diagnostics, order  # noqa: E402


def main(out_dir: str, count: int) -> None:
    os.makedirs(os.path.join(out_dir, "dask_orders"), exist_ok=True)
    for g in range(count):
        rng = random.Random(g)
        n = rng.randint(1, 120)
        if g % 3:
            keys = [f"('t-{g % 7}', {i})" for i in range(n)]
        else:
            keys = [f"x{rng.randint(0, 10**6)}-{i}" for i in range(n)]
        tasks = []
        for i in range(n):
            if i == 0 or rng.random() < 0.15:
                deps = []
            else:
                fan_in = rng.choice([1, 1, 1, 2, 2, 3, 5, 8])
                lo = max(0, i - rng.choice([3, 10, 50, i]))
                deps = sorted({keys[rng.randrange(lo, i)] for _ in range(fan_in)})
            tasks.append({"key": keys[i], "deps": deps})
        if g % 2:
            rng.shuffle(tasks)
        dsk = {t["key"]: Task(t["key"], _f, *[TaskRef(d) for d in t["deps"]]) for t in tasks}
        o = order(dsk)
        _, pressure = diagnostics(dsk, o)
        name = f"rand_{g}"
        graph = {
            "name": name,
            "source": f"benches/random_order_graphs.py, seed {g}",
            "tasks": tasks,
            "dask_max_pressure": max(pressure),
            "dask_mean_pressure": sum(pressure) / len(pressure),
            "n_tasks": n,
        }
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(graph, f)
        with open(os.path.join(out_dir, "dask_orders", f"{name}.json"), "w") as f:
            ranked = sorted(o, key=o.__getitem__)
            json.dump({"name": name, "order": ranked, "pressure": pressure}, f)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
