"""Evaluation trace tables, as in the textbooks: forward and reverse mode.

Run it with ``python examples/trace_tables.py``.
"""

import graphad as ga

x = ga.symbols("x")
f = ga.exp(x**2)

print("f = exp(x**2) at x = 2, forward mode (tangent of x = 1):\n")
print(ga.trace(f, at={x: 2.0}, mode="forward"))

print("\nthe same in reverse mode (adjoint of f = 1):\n")
print(ga.trace(f, at={x: 2.0}, mode="reverse"))

# Fan-out: u = sin(x) is used three times, so its adjoint accumulates in three steps.
x, y = ga.symbols("x y")
u = ga.sin(x)
g = u * u + u * y
print("\ng = sin(x)**2 + sin(x)*y, reverse mode: watch v̄3 (the adjoint of sin(x)) accumulate\n")
print(ga.trace(g, at={x: 0.5, y: 2.0}, mode="reverse"))

print("\nas Markdown:\n")
print(ga.trace(f, at={ga.symbols("x"): 2.0}, mode="forward").markdown())
