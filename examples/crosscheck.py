"""graphad against SymPy: convert both ways and cross-check derivatives.

Run it with ``python examples/crosscheck.py``.
"""

import sympy

import graphad as ga

x, y = ga.symbols("x y")
f = ga.exp(-(x**2 + y**2)) * ga.sin(3 * x) * ga.cos(2 * y) + ga.log(1 + x**2 * y**2)

# graphad -> SymPy: the same function, as SymPy sees it
print("f in SymPy:", ga.to_sympy(f))

# graphad's derivatives in both modes, and the Hessian, against sympy.diff
report = ga.crosscheck(f, [x, y], order=2, points=20)
print(report)
assert report.passed

# SymPy -> graphad: build a DAG from a SymPy expression (shared subtrees stay shared)
s, t = sympy.symbols("s t")
g = ga.from_sympy(sympy.atan2(t, s) * sympy.sqrt(s**2 + t**2) + sympy.Max(s, t))
print("\nfrom SymPy:", g)
print("its gradient at (1, 2):", ga.evaluate(ga.grad(g, list(ga.symbols("s t"))), {"s": 1.0, "t": 2.0}))
