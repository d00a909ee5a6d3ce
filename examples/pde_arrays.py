"""A PDE written with slicing, solved at n = 1,000,000 unknowns by Newton's method.

The Bratu problem u'' + lam * exp(u) = 0 on (0, 1), u(0) = u(1) = 0 (as in
examples/sparse_pde.py, which unrolls one node per unknown), written here on
one array symbol: the residual is ``(u[:-2] - 2 u[1:-1] + u[2:]) / h**2 +
lam * exp(u[1:-1])``, a few nodes whatever n is. Its Jacobian is tridiagonal,
so three compiled Jacobian-vector products (forward mode, along directions
that colour the unknowns by i mod 3) give all of it; SciPy's banded solver
does each Newton step.

    python examples/pde_arrays.py [--n 1000000]
"""

import argparse
import time

import numpy as np
from scipy.linalg import solve_banded

import graphad as ga

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=1_000_000, help="interior grid points")
n = parser.parse_args().n
lam, h = 1.0, 1.0 / (n + 1)

t0 = time.perf_counter()
u, v = ga.symbols("u v", shape=("m",))  # the grid with its two boundary points: m = n + 2
residual = (u[:-2] - 2 * u[1:-1] + u[2:]) / h**2 + lam * ga.exp(u[1:-1])
step = ga.compile([residual, ga.jvp(residual, u, v)], [u, v])  # F(u) and J(u) v in one loop
print(f"residual and Jacobian-vector product: {len(ga.to_networkx([residual, ga.jvp(residual, u, v)]))} "
      f"nodes; built and compiled in {time.perf_counter() - t0:.2f} s")

grid = np.zeros(n + 2)  # boundary values stay 0
colours = [np.where(np.arange(n + 2) % 3 == k, 1.0, 0.0) for k in range(3)]
for c in colours:
    c[[0, -1]] = 0.0  # the boundary values are not unknowns
for iteration in range(1, 20):
    start = time.perf_counter()
    products = [step(grid, c) for c in colours]
    F, Jv = products[0][0], [p[1] for p in products]
    # row i (interior point i + 1) touches grid points i, i + 1, i + 2; J[i, j] = Jv[j % 3][i]
    r = np.arange(n)
    bands = np.zeros((3, n))
    bands[0, 1:] = np.choose((r + 2) % 3, Jv)[:-1]  # J[i, i+1] (unknowns numbered 0..n-1)
    bands[1] = np.choose((r + 1) % 3, Jv)  # J[i, i]
    bands[2, :-1] = np.choose(r % 3, Jv)[1:]  # J[i+1, i]
    update = solve_banded((1, 1), bands, F)
    grid[1:-1] -= update
    change = float(np.max(np.abs(update)))
    # F carries a factor 1/h**2: h**2 F is the residual on the scale of u
    print(f"Newton step {iteration}: max |h^2 F| = {h**2 * np.max(np.abs(F)):.1e}, "
          f"max |step| = {change:.1e}, {1e3 * (time.perf_counter() - start):.0f} ms "
          "(3 compiled products and a banded solve)")
    if change < 1e-9:  # quadratic convergence, to the rounding floor (about 1e-11 at n = 10^6)
        break

print(f"n = {n:,}: converged in {iteration} Newton steps; max u = {grid.max():.6f} "
      "(Bratu, lam = 1: 0.140539)")
assert change < 1e-9 and abs(grid.max() - 0.140539) < 1e-4
