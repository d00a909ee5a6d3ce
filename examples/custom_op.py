"""Your own elementary function: a numerically stable softplus and log-sum-exp.

Run it with ``python examples/custom_op.py``.
"""

import math

import numpy as np

import graphad as ga
from graphad.testing import check_grads

# softplus(x) = log(1 + exp(x)), written so that it never overflows.
softplus = ga.define_op(
    "softplus",
    value=lambda x: np.logaddexp(0.0, x),                # NumPy: the reference evaluator
    partials=[lambda x, out: 1 / (1 + ga.exp(-x))],      # d/dx, built from graphad ops
    scalar=lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),  # compiled code calls this
    sympy=lambda sp, x: sp.log(1 + sp.exp(x)),           # optional: for the SymPy bridge
    doc="log(1 + exp(x)), stable for large |x|.",
)


def _logsumexp(a, b):
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


# log(exp(a) + exp(b)); its partials exp(a - out) and exp(b - out) reuse the output.
logsumexp = ga.define_op(
    "logsumexp",
    value=np.logaddexp,
    partials=[lambda a, b, out: ga.exp(a - out), lambda a, b, out: ga.exp(b - out)],
    scalar=_logsumexp,
)

x, y = ga.symbols("x y")
f = softplus(x * y) + logsumexp(x, y**2)

# Both modes, any order: check against finite differences up to third order.
check_grads(f, [x, y], at=[0.3, -1.2], order=3)
print("f =", f)
print("gradient at (1, 2):", ga.evaluate(ga.grad(f, [x, y]), {x: 1.0, y: 2.0}))

# Compiled: large arguments that would overflow exp stay finite.
fg = ga.compile([f, ga.grad(f, [x, y])], [x, y])
print("compiled at (800, 1):", fg(800.0, 1.0))

# The trace table and the SymPy cross-check see it like any built-in op.
print(ga.trace(softplus(x**2), at={x: 1.0}, mode="reverse"))
print(ga.crosscheck(softplus(x) * x, [x], order=2))
