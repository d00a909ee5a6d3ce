"""Least squares with array nodes: fit y = a*exp(-b*t) + c to a million points.

Run it with ``python examples/curve_fit.py``;
``--n`` sets the number of points. The data enter the graph as two array
symbols of shape ("n",), so the residual and its Jacobian are a handful of
nodes whatever n is, and a new data set needs no new graph. SciPy's
``least_squares`` gets the residual and the n x 3 Jacobian (forward mode: one
sweep per parameter) from one compiled function; the same fit through the
NumPy reference evaluator shows what compiling buys.
"""

import argparse
import time
import timeit

import numpy as np
from scipy.optimize import least_squares

import graphad as ga

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=1_000_000, help="number of data points")
n = parser.parse_args().n

t0 = time.perf_counter()
t, y = ga.symbols("t y", shape=("n",))
a, b, c = ga.symbols("a b c")
residual = a * ga.exp(-b * t) + c - y
(jacobian,) = ga.jacobian([residual], [a, b, c], mode="forward")  # three entries of shape (n,)
size = len(ga.to_networkx([residual, *jacobian]))
print(f"residual and Jacobian: {size} nodes, built in {1e3 * (time.perf_counter() - t0):.1f} ms")

rng = np.random.default_rng(0)
tv = np.linspace(0.0, 5.0, n)
truth = (2.5, 1.3, 0.5)
yv = truth[0] * np.exp(-truth[1] * tv) + truth[2] + 0.05 * rng.standard_normal(n)


fit_fn = ga.compile([residual, ga.stack(jacobian, axis=1)], [[a, b, c], t, y])  # one loop: r and J


def fit(fun, jac):
    start = time.perf_counter()
    result = least_squares(fun, x0=[1.0, 1.0, 0.0], jac=jac)
    return result, time.perf_counter() - start


last = {}


def residual_and_jacobian(p):
    """SciPy asks for the residual, then the Jacobian, at the same point: compute both once."""
    key = np.asarray(p, dtype=float).tobytes()
    if key not in last:
        last.clear()
        last[key] = fit_fn(p, tv, yv)
    return last[key]


compiled, seconds = fit(lambda p: residual_and_jacobian(p)[0], lambda p: residual_and_jacobian(p)[1])
print(f"{n:,} points: a, b, c = {', '.join(f'{v:.4f}' for v in compiled.x)} (true {truth}); "
      f"{compiled.nfev} residual and {compiled.njev} Jacobian evaluations in {seconds:.2f} s (compiled)")


def env(p):
    return {t: tv, y: yv, a: p[0], b: p[1], c: p[2]}


reference, _ = fit(lambda p: ga.evaluate(residual, env(p)),
                   lambda p: np.stack(ga.evaluate(jacobian, env(p)), axis=1))
p = compiled.x
ms = [1e3 * min(timeit.repeat(call, number=1, repeat=5)) for call in (
    lambda: fit_fn(p, tv, yv),
    lambda: (ga.evaluate(residual, env(p)), np.stack(ga.evaluate(jacobian, env(p)), axis=1)))]
print(f"one residual and n x 3 Jacobian: {ms[0]:.1f} ms compiled, {ms[1]:.1f} ms with the NumPy evaluator "
      "(the rest of the fit's time is SciPy's own linear algebra)")
assert np.allclose(compiled.x, truth, atol=0.02), compiled.x
assert np.allclose(compiled.x, reference.x, atol=1e-10)
