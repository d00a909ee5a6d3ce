"""AD meets optimisation: graphad's gradients and Hessians against finite differences.

Run it with ``python examples/optimize.py``.
Prints, for each problem and method: iterations, function evaluations, time
and the final loss. The logistic regression takes its data as array inputs
(docs/arrays.md), so one graph and one compiled function serve every data set.
"""

import time

import numpy as np
from scipy.optimize import minimize

import graphad as ga


def rosenbrock(xs):
    return sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))


def logistic_regression_data(n_samples, n_features=5, seed=0):
    """A data set generated with a fixed seed: features and +-1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    true_w = rng.standard_normal(n_features)
    labels = np.where(X @ true_w + 0.5 * rng.standard_normal(n_samples) > 0, 1.0, -1.0)
    return X, labels


def logistic_regression(n_features=5):
    """The mean logistic loss, with the data as inputs: one graph for every data set."""
    X = ga.symbols("X", shape=("n", n_features))
    y = ga.symbols("y", shape=("n",))
    w = ga.symbols("w", shape=(n_features,))
    b = ga.symbols("b")
    loss = ga.mean(ga.log1p(ga.exp(-y * (X @ w + b))))
    return loss, [w, b], [X, y]


def fit_logistic_regression():
    """Fit the model to two data sets with one graph and one compiled gradient: SciPy's
    BFGS with graphad's gradient, and graphad's Newton-CG (Hessian-vector products)."""
    with ga.Graph() as graph:
        loss, (w, b), (X, y) = logistic_regression()
        size = len(graph.ancestors(e.id for e in [loss, *ga.grad(loss, [w, b])]))
    print(f"\nlogistic regression: data as inputs, loss and gradient in {size} nodes for any n")
    t = time.perf_counter()  # compiles the gradient and the Hessian-vector product, once
    ga.newton(loss, [w, b], [np.zeros(5), 0.0], data=dict(zip([X, y], logistic_regression_data(10))))
    print(f"gradient and Hessian-vector product compiled in {time.perf_counter() - t:.2f} s")
    print(f"{'samples':>9}  {'method':<24}{'iters':>7}{'evals':>7}{'seconds':>10}{'final loss':>14}")
    for n in (500, 100_000):
        data = dict(zip([X, y], logistic_regression_data(n)))
        obj = ga.scipy_objective(loss, [w, b], data=data)  # the same compiled code for each n
        t = time.perf_counter()
        r = minimize(obj.fun, obj.flat([np.zeros(5), 0.0]), jac=obj.jac, method="BFGS")
        seconds = time.perf_counter() - t
        print(f"{n:>9}  {'SciPy BFGS':<24}{r.nit:>7}{r.nfev:>7}{seconds:>10.3f}{r.fun:>14.6g}")
        newton = ga.newton(loss, [w, b], [np.zeros(5), 0.0], data=data)
        print(f"{n:>9}  {'graphad Newton-CG':<24}{newton.iterations:>7}{newton.evaluations:>7}"
              f"{newton.seconds:>10.3f}{newton.fun:>14.6g}")
        assert abs(newton.fun - r.fun) < 1e-6 * max(1.0, abs(r.fun))


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
fit_logistic_regression()
