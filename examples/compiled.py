"""Compile a value-and-gradient function once, call it many times.

Run it with ``python examples/compiled.py``.
"""

import time

import numpy as np

import graphad as ga

# The Rosenbrock function in 100 variables, written as a plain Python loop.
n = 100
xs = ga.symbols(f"x0:{n}")
f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1))

# One reverse sweep gives the whole gradient; compile value and gradient together.
t = time.perf_counter()
fg = ga.compile([f, ga.grad(f, xs)], [xs])  # [xs]: the function takes one array
print(f"prepared in {time.perf_counter() - t:.2f} s (a second run loads it from the cache)")
print("node counts through the passes:")
print(fg.report)

x0 = np.full(n, -1.2)
value, gradient = fg(x0)
print(f"\nf(x0) = {value:.4f}, |grad f(x0)| = {np.linalg.norm(gradient):.4f}")

# Called a million times, the per-call cost is what matters.
t = time.perf_counter()
for _ in range(100_000):
    fg(x0)
print(f"{(time.perf_counter() - t) / 100_000 * 1e6:.2f} us per call (value + 100-entry gradient)")

# Many points at once: a vector input gains a leading axis of points.
points = np.random.default_rng(0).uniform(-2, 2, (10_000, n))
values, gradients = fg(points)
print(f"batch: values {values.shape}, gradients {gradients.shape}")

# Plain gradient descent with the compiled gradient.
x = x0.copy()
for _ in range(20_000):
    value, gradient = fg(x)
    x -= 1e-3 * gradient
print(f"after 20,000 steps of gradient descent: f = {fg(x)[0]:.6f}")

# What was compiled, as a readable listing (first lines):
print("\n".join(fg.source.splitlines()[:6]), "\n    ...")
