"""A discretised 1-D PDE with n = 10,000 unknowns: sparse Jacobian and Hessian in 3 sweeps.

The Bratu problem u'' + lam * exp(u) = 0 on (0, 1), u(0) = u(1) = 0, on a grid of
n interior points. Its residual has a tridiagonal Jacobian, so graph colouring
needs 3 tangent sweeps, not n. Newton's method with the compiled sparse
Jacobian then solves it. The energy whose gradient is the residual has a
tridiagonal Hessian: 3 Hessian-vector products.

    python examples/sparse_pde.py [--n 10000]
"""

import argparse
import time

import numpy as np
import scipy.sparse.linalg as spla

import graphad as ga

parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=10_000)
n = parser.parse_args().n
lam, h = 1.0, 1.0 / (n + 1)
u = ga.symbols(f"u0:{n}")


def at(i):
    return u[i] if 0 <= i < n else 0.0  # the boundary values are 0


t = time.perf_counter()
residual = [(at(i - 1) - 2 * u[i] + at(i + 1)) / h**2 + lam * ga.exp(u[i]) for i in range(n)]
# its gradient is minus the residual: sum over the n + 1 grid edges, minus lam * sum exp(u)
energy = sum(((at(i + 1) - at(i)) / h) ** 2 / 2 for i in range(-1, n)) - lam * sum(ga.exp(ui) for ui in u)
print(f"n = {n}: residual and energy built in {time.perf_counter() - t:.2f} s")

t = time.perf_counter()
J = ga.sparse_jacobian(residual, u)
print(f"sparse Jacobian: {J}, prepared in {time.perf_counter() - t:.2f} s")
t = time.perf_counter()
H = ga.sparse_hessian(energy, u)
print(f"sparse Hessian:  {H}, prepared in {time.perf_counter() - t:.2f} s")
F = ga.compile([residual], [u])

# Newton's method with the sparse Jacobian
x = np.zeros(n)
for it in range(20):
    r = F(x)[0]
    norm = np.linalg.norm(r) * np.sqrt(h)
    print(f"  Newton {it}: |residual| = {norm:.3e}")
    if norm < 1e3 * np.finfo(float).eps / h**2:  # rounding in (u[i-1] - 2 u[i] + u[i+1]) / h**2
        break
    x = x - spla.spsolve(J(x).tocsc(), r)
print(f"max u = {x.max():.10f} (the exact solution of Bratu's problem for lam = 1 has max 0.1405...)")

# Checks: J v against a finite difference of the residual, and H against J (the
# energy's gradient is minus the residual, so its Hessian is -J).
v = np.random.default_rng(0).standard_normal(n)
eps = 1e-7
fd = (F(x + eps * v)[0] - F(x - eps * v)[0]) / (2 * eps)
print(f"|J v - finite difference| / |J v| = {np.linalg.norm(J(x) @ v - fd) / np.linalg.norm(fd):.1e}")
print(f"max |H + J| / max |J| = {abs(H(x) + J(x)).max() / abs(J(x)).max():.1e}")

t = time.perf_counter()
for _ in range(100):
    J(x)
print(f"one sparse Jacobian: {(time.perf_counter() - t) / 100 * 1e3:.2f} ms "
      f"({J.sweeps} sweeps; a dense Jacobian would need {n} tangent sweeps)")
