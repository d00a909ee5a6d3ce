"""graphad on a Dask LocalCluster: the speed and memory figures of the Dask issue.

    python benchmarks/cluster.py [--quick] [--workers 2]

D1  W3 (the value and both partials of exp(-(x**2+y**2))*sin(3x)*cos(2y) +
    log(1+x**2*y**2)) at 10^8 points, streamed through the cluster: each
    worker makes its blocks of points, evaluates them with the compiled
    function and keeps only their sums, so no process holds all the points.
    Against one in-process call on 10^7 points (points made in the same way,
    and the call alone). Peak memory is each worker's maximum resident set.
D2  the gradient of a logistic regression's mean loss over 10^7 rows of 10
    features stored on disk as a stack of .npy files, read chunk by chunk by
    the workers: the first call (reading and persisting), later calls (the
    data already on the workers), and the in-memory gradient for comparison.

Needs graphad[dask]. --quick: 10^7 points and 10^6 rows, for a smoke test.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _warm(fn) -> None:
    fn(np.ones(2), np.ones(2))


def w3():
    import graphad as ga

    with ga.Graph():
        x, y = ga.symbols("x y")
    f = ga.exp(-(x**2 + y**2)) * ga.sin(3 * x) * ga.cos(2 * y) + ga.log(1 + x**2 * y**2)
    return ga.compile([f, *ga.grad(f, [x, y])], [x, y])


def d1(client, n_points: int, chunk: int) -> None:
    import dask
    import dask.array as da

    fn = w3()
    n_local = n_points // 10
    rng = da.random.default_rng(0)
    x, y = (rng.uniform(-2, 2, n_local, chunks=chunk) for _ in range(2))
    t0 = time.perf_counter()
    xs, ys = dask.compute(x, y, scheduler="synchronous")
    t_make = time.perf_counter() - t0
    calls = []
    for _ in range(4):  # the first call loads the batch loop: not counted
        t0 = time.perf_counter()
        fn(xs, ys)
        calls.append(time.perf_counter() - t0)
    t_call = min(calls[1:])
    del xs, ys

    rng = da.random.default_rng(0)
    x, y = (rng.uniform(-2, 2, n_points, chunks=chunk) for _ in range(2))
    sums = [o.sum() for o in fn(x, y)]
    client.run(_warm, fn)  # every worker loads (or compiles) fn before the clock starts
    t0 = time.perf_counter()
    (got,) = dask.compute(sums)
    t_cluster = time.perf_counter() - t0
    peaks = client.run(_peak_mb)
    ns_local = (t_make + t_call) / n_local * 1e9
    ns_cluster = t_cluster / n_points * 1e9
    print(f"D1 W3 value and gradient, {n_points:,} points in blocks of {chunk:,}, "
          f"{len(peaks)} worker processes")
    print(f"   in process, {n_local:,} points: make {t_make:.2f} s + call {t_call:.2f} s "
          f"({t_call / n_local * 1e9:.1f} ns/point for the call alone, {ns_local:.1f} with making them)")
    print(f"   on the cluster, {n_points:,} points: {t_cluster:.2f} s ({ns_cluster:.1f} ns/point, made and "
          f"evaluated); speed-up over one process {ns_local / ns_cluster:.2f}x")
    print(f"   peak memory per worker: {', '.join(f'{m:.0f} MB' for m in peaks.values())} "
          f"(all points with their 3 outputs would take {n_points * 5 * 8 / 1e9:.1f} GB)")
    print(f"   means of f, df/dx, df/dy: {', '.join(f'{s / n_points:.4g}' for s in got)}")


def d2(client, n_rows: int, files: int, folder: str) -> None:
    import dask
    import dask.array as da

    import graphad as ga

    features, rng = 10, np.random.default_rng(1)
    w_true = rng.normal(size=features)
    rows = n_rows // files
    paths = []
    for k in range(files):  # the data set on disk: a stack of .npy files
        X = rng.normal(size=(rows, features))
        y = np.where(X @ w_true + rng.normal(size=rows) > 0, 1.0, -1.0)
        paths.append((os.path.join(folder, f"X{k}.npy"), os.path.join(folder, f"y{k}.npy")))
        np.save(paths[-1][0], X)
        np.save(paths[-1][1], y)
    del X, y
    load = dask.delayed(np.load, pure=True)
    dX = da.concatenate([da.from_delayed(load(p), (rows, features), np.float64) for p, _ in paths])
    dy = da.concatenate([da.from_delayed(load(p), (rows,), np.float64) for _, p in paths])
    with ga.Graph():
        Xs, ys = ga.symbols("X", shape=("n", features)), ga.symbols("y", shape=("n",))
        w, b = ga.symbols("w", shape=(features,)), ga.symbols("b")
    loss = ga.mean(ga.log1p(ga.exp(-ys * (Xs @ w + b)))) + 1e-4 * ga.sum(w**2)
    x0 = np.concatenate([0.1 * w_true, [0.2]])

    t0 = time.perf_counter()
    lazy = ga.scipy_objective(loss, [w, b], data={Xs: dX, ys: dy})
    g_first = lazy.jac(x0)
    t_first = time.perf_counter() - t0
    times = []
    for k in range(7):
        x = x0 + 0.01 * (k + 1)
        t0 = time.perf_counter()
        lazy.jac(x)
        times.append(time.perf_counter() - t0)
    peaks = client.run(_peak_mb)

    Xm = np.concatenate([np.load(p) for p, _ in paths])
    ym = np.concatenate([np.load(p) for _, p in paths])
    mem = ga.scipy_objective(loss, [w, b], data={Xs: Xm, ys: ym})
    g_mem = mem.jac(x0)
    mem_times = []
    for k in range(7):
        t0 = time.perf_counter()
        mem.jac(x0 + 0.01 * (k + 1))
        mem_times.append(time.perf_counter() - t0)
    t_mem = float(np.median(mem_times))
    diff = np.max(np.abs(g_first - g_mem)) / np.max(np.abs(g_mem))
    print(f"D2 logistic regression gradient, {n_rows:,} rows x {features} features in {files} .npy files "
          f"({n_rows * (features + 1) * 8 / 1e9:.2f} GB)")
    print(f"   cluster: first call {t_first:.2f} s (reads and persists), "
          f"then {np.median(times) * 1e3:.0f} ms "
          f"per gradient (median of {len(times)})")
    print(f"   in memory, one process: {t_mem * 1e3:.0f} ms per gradient (median of 7); "
          "largest relative difference "
          f"{diff:.1e}")
    print(f"   peak memory per worker: {', '.join(f'{m:.0f} MB' for m in peaks.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10^7 points and 10^6 rows")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client, \
            tempfile.TemporaryDirectory() as folder:
        d1(client, 10**7 if args.quick else 10**8, 10**6)
        d2(client, 10**6 if args.quick else 10**7, 10, folder)


if __name__ == "__main__":
    main()
