"""The seed example: d/dx exp(x**2) at x = 2, in forward and in reverse mode.

Run it with ``python examples/seed.py``. The exact answer is 4*exp(4) = 218.39...
"""

import math

import graphad as ga

# 1. Build an expression. Every operation adds a node to one DAG.
x = ga.symbols("x")
f = ga.exp(x**2)
print("f(x)            =", f)
print("f(2)            =", ga.evaluate(f, {x: 2.0}))

# 2. The DAG itself, as networkx holds it: node id, op, argument ids.
G = ga.to_networkx([f])
print("\nthe DAG of f:")
for v in G:
    node = G.nodes[v]
    extra = node.get("name", node.get("value", ""))
    print(f"  node {v}: {node['op']:<6} args={node['args']} {extra}")

# 3. Forward mode: push a tangent (dx = 1) from x to f, node by node.
df_forward = ga.derivative(f, x, mode="forward")
# 4. Reverse mode: pull an adjoint (df = 1) from f back to x.
df_reverse = ga.derivative(f, x, mode="reverse")
print("\nforward mode: f'(x) =", df_forward)
print("reverse mode: f'(x) =", df_reverse)

# 5. Derivatives are ordinary expressions: evaluate them like f.
fwd = ga.evaluate(df_forward, {x: 2.0})
rev = ga.evaluate(df_reverse, {x: 2.0})
exact = 4 * math.exp(4)
print(f"\nf'(2) forward = {fwd:.10f}")
print(f"f'(2) reverse = {rev:.10f}")
print(f"4*exp(4)      = {exact:.10f}")
assert math.isclose(fwd, exact, rel_tol=1e-14) and math.isclose(rev, exact, rel_tol=1e-14)

# 6. ... and differentiate them again, to any order.
d2 = ga.derivative(f, x, n=2)
print(f"f''(2)        = {ga.evaluate(d2, {x: 2.0}):.10f}   (exact: 18*exp(4) = {18 * math.exp(4):.10f})")

# 7. Many points at once: arrays broadcast like NumPy.
print("f'([0, 1, 2]) =", ga.evaluate(df_reverse, {x: [0.0, 1.0, 2.0]}))
