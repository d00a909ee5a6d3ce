"""Least squares with array nodes: fit y = a*exp(-b*t) + c to a million points.

Run it with ``python examples/curve_fit.py`` (needs SciPy: pip install ".[examples]");
``--n`` sets the number of points. The data enter the graph as two array
symbols of shape ("n",), so the residual and its Jacobian are a handful of
nodes whatever n is, and a new data set needs no new graph. SciPy's
``least_squares`` gets the residual and the Jacobian (forward mode: one sweep
per parameter), both evaluated by graphad's NumPy evaluator.
"""

import argparse
import time

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


def fun(p):
    return ga.evaluate(residual, {t: tv, y: yv, a: p[0], b: p[1], c: p[2]})


def jac(p):
    return np.stack(ga.evaluate(jacobian, {t: tv, y: yv, a: p[0], b: p[1], c: p[2]}), axis=1)


t0 = time.perf_counter()
fit = least_squares(fun, x0=[1.0, 1.0, 0.0], jac=jac)
seconds = time.perf_counter() - t0
print(f"{n:,} points: a, b, c = {', '.join(f'{v:.4f}' for v in fit.x)} (true {truth}); "
      f"{fit.nfev} residual and {fit.njev} Jacobian evaluations in {seconds:.2f} s")
assert np.allclose(fit.x, truth, atol=0.02), fit.x
