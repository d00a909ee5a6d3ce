"""AD meets optimisation: graphad's gradients and Hessians against finite differences.

Run it with ``python examples/optimize.py`` (needs SciPy: pip install ".[examples]").
Prints, for each problem and method: iterations, function evaluations, time
and the final loss.
"""

import time

import numpy as np
from scipy.optimize import minimize

import graphad as ga


def rosenbrock(xs):
    return sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))


def logistic_regression(n_samples=500, n_features=5, seed=0):
    """Mean logistic loss on a data set generated with a fixed seed."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    true_w = rng.standard_normal(n_features)
    labels = np.where(X @ true_w + 0.5 * rng.standard_normal(n_samples) > 0, 1.0, -1.0)
    ws = list(ga.symbols(f"w0:{n_features}"))
    b = ga.symbols("b")
    loss = 0
    for xi, yi in zip(X, labels):
        margin = yi * (sum(float(c) * w for c, w in zip(xi, ws)) + b)
        loss = loss + ga.log1p(ga.exp(-margin))
    return loss / n_samples, ws + [b]


def row(problem, method, iterations, evaluations, seconds, loss):
    print(f"{problem:<28}{method:<44}{iterations:>7}{evaluations:>8}{seconds:>10.3f}{loss:>14.6g}")


def run(problem, f, wrt, x0):
    t = time.perf_counter()
    obj = ga.scipy_objective(f, wrt)
    obj.fun(x0), obj.jac(x0)
    if len(wrt) <= 100:
        obj.hessp(x0, x0)
    print(f"\n{problem}: {len(wrt)} variables, graphad prepared in {time.perf_counter() - t:.2f} s")
    print(f"{'problem':<28}{'method':<44}{'iters':>7}{'evals':>8}{'seconds':>10}{'final loss':>14}")

    r = ga.newton(f, wrt, x0)
    row(problem, "graphad Newton (compiled Hessian)", r.iterations, r.evaluations, r.seconds, r.fun)
    r = ga.gradient_descent(f, wrt, x0, step=1.0, line_search=True, tol=1e-6, max_iter=20_000)
    row(problem, "graphad gradient descent + backtracking", r.iterations, r.evaluations, r.seconds, r.fun)
    for label, kwargs in [("SciPy BFGS, graphad gradient", {"jac": obj.jac}),
                          ("SciPy BFGS, finite-difference gradient", {}),
                          ("SciPy trust-ncg, graphad gradient + Hv", {"jac": obj.jac, "hessp": obj.hessp})]:
        method = "trust-ncg" if "trust" in label else "BFGS"
        t = time.perf_counter()
        r = minimize(obj.fun, x0, method=method, options={"maxiter": 20_000}, **kwargs)
        row(problem, label, r.nit, r.nfev, time.perf_counter() - t, r.fun)


x, y = ga.symbols("x y")
run("Rosenbrock, from (-1.2, 1)", rosenbrock([x, y]), [x, y], np.array([-1.2, 1.0]))
xs = list(ga.symbols("x0:100"))
run("Rosenbrock-100, from 0", rosenbrock(xs), xs, np.zeros(100))
loss, params = logistic_regression()
run("logistic regression", loss, params, np.zeros(len(params)))
