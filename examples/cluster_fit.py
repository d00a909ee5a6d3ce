"""graphad on a Dask cluster: a batch of points and a model fitted to data that live on the workers.

    pip install "graphad[dask]"
    python examples/cluster_fit.py [--quick] [--scheduler tcp://host:8786]

Without --scheduler it starts a LocalCluster of two worker processes on this
machine; with it, the same code runs on an existing cluster (the workers need
graphad installed). docs/cluster.md tells the whole story.

1. A compiled function called with Dask arrays returns Dask arrays: one task
   per block, run by the workers, which load the function from their own
   cache or compile it.
2. A logistic regression on rows made on the workers (they never come here):
   ga.scipy_objective with Dask data computes each chunk's loss and gradient
   where the chunk is, and SciPy's L-BFGS drives the fit from here. Only the
   parameters and the gradient travel.
"""

import argparse
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from scipy.optimize import minimize

import graphad as ga


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke test")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler")
    args = parser.parse_args()
    if args.scheduler:
        client = Client(args.scheduler, timeout=60)
    else:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                     silence_logs=40))
    print(client)
    points, rows, features = (10**6, 10**5, 8) if args.quick else (10**7, 2 * 10**6, 8)

    # 1. A batch of points: 10^7 evaluations of a function and its gradient
    x, y = ga.symbols("x y")
    f = ga.exp(-(x**2 + y**2)) * ga.sin(3 * x) + ga.log1p(x**2 * y**2)
    fg = ga.compile([f, *ga.grad(f, [x, y])], [x, y])
    rng = da.random.default_rng(0)
    xs, ys = (rng.uniform(-2, 2, points, chunks=points // 10) for _ in range(2))
    values, dfdx, dfdy = fg(xs, ys)  # Dask arrays: nothing has run yet
    t0 = time.perf_counter()
    mean_value, largest_slope = da.compute(values.mean(), da.maximum(abs(dfdx), abs(dfdy)).max())
    print(f"1. {points:,} points in {xs.numblocks[0]} blocks: mean f = {mean_value:.6f}, "
          f"largest |partial| = {largest_slope:.4f} ({time.perf_counter() - t0:.2f} s)")

    # 2. A logistic regression on rows that are made, and stay, on the workers
    w_true = np.linspace(-1.0, 1.0, features)
    X = rng.normal(size=(rows, features), chunks=(rows // 8, features))
    noise = rng.normal(size=rows, chunks=rows // 8)
    labels = da.where(X @ w_true + 0.5 + noise > 0, 1.0, -1.0)
    Xs, ys_ = ga.symbols("X", shape=("n", features)), ga.symbols("labels", shape=("n",))
    w, b = ga.symbols("w", shape=(features,)), ga.symbols("b")
    # a mean over the rows, plus a penalty free of the data
    loss = ga.mean(ga.log1p(ga.exp(-ys_ * (Xs @ w + b)))) + 1e-4 * ga.sum(w**2)
    objective = ga.scipy_objective(loss, [w, b], data={Xs: X, ys_: labels})
    t0 = time.perf_counter()
    result = minimize(objective.fun, np.zeros(features + 1), jac=objective.jac, method="L-BFGS-B")
    w_fit, b_fit = objective.params(result.x)
    accuracy = da.mean(da.sign(X @ w_fit + b_fit) == labels).compute()
    print(f"2. logistic regression on {rows:,} rows in {X.numblocks[0]} chunks: {result.nit} iterations, "
          f"{result.nfev} gradients, {time.perf_counter() - t0:.2f} s")
    print(f"   loss {result.fun:.5f}, accuracy {accuracy:.3f}; direction of w against the truth: "
          f"cos = {w_fit @ w_true / np.linalg.norm(w_fit) / np.linalg.norm(w_true):.4f}")
    client.close()


if __name__ == "__main__":
    main()
