"""Conditionals with safe gradients: the branch not taken never poisons the derivative.

Run it with ``python examples/conditionals.py``.
"""

import graphad as ga

x, y = ga.symbols("x y")
cases = {
    "where(x > 0, sqrt(x), 0) at x = -1": (ga.where(x > 0, ga.sqrt(x), 0.0), {x: -1.0, y: 0.0}),
    "where(x <= 1, 0, 1/(x - 1)) at x = 1": (ga.where(x <= 1, 0.0, 1 / (x - 1)), {x: 1.0, y: 0.0}),
    "sqrt(x**2 + y**2) at the origin": (ga.sqrt(x**2 + y**2), {x: 0.0, y: 0.0}),
    "sinc: where(r > 0, sin(r)/r, 1) at 0": (
        ga.where(ga.hypot(x, y) > 0, ga.sin(ga.hypot(x, y)) / ga.hypot(x, y), 1.0), {x: 0.0, y: 0.0}),
}
print(f"{'function':<42}{'forward mode':<16}{'reverse mode':<16}compiled")
for label, (f, at) in cases.items():
    fwd = ga.evaluate(ga.jacobian([f], [x, y], mode="forward")[0], at)
    rev = ga.evaluate(ga.grad(f, [x, y]), at)
    compiled = ga.compile([ga.grad(f, [x, y])], [x, y])(at[x], at[y])[0].tolist()
    print(f"{label:<42}{str(fwd):<16}{str(rev):<16}{compiled}")
print("\nJAX, autograd and Theano give nan for the first of these; graphad gives 0 in both modes.")
