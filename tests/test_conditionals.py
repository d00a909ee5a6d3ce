"""The NaN pitfalls of conditionals: the branch not taken must not poison the gradient.

JAX, autograd and Theano all return nan for the gradient of
where(x > 0, sqrt(x), 0) at x = -1 (the untaken branch's partial is nan, and
0 * nan = nan). graphad routes derivatives by selection and multiplies with the
chain product (0 * anything = 0), so each case below is checked in both modes,
interpreted and compiled.
"""

import math

import numpy as np
import pytest

import graphad as ga

x, y = ga.symbols("x y")
r = ga.sqrt(x**2 + y**2)
CASES = [
    # (function, point, expected gradient)
    (ga.where(x > 0, ga.sqrt(x), 0.0), {x: -1.0, y: 0.0}, [0.0, 0.0]),
    (ga.where(x > 0, ga.sqrt(x), 0.0), {x: 0.0, y: 0.0}, [0.0, 0.0]),
    (ga.where(x > 0, ga.sqrt(x), 0.0), {x: 4.0, y: 0.0}, [0.25, 0.0]),
    (ga.where(x > 0, ga.log(x), x), {x: -2.0, y: 0.0}, [1.0, 0.0]),
    (ga.where(x <= 1, 0.0, 1 / (x - 1)), {x: 1.0, y: 0.0}, [0.0, 0.0]),  # untaken: 1/0 = inf
    (ga.where(r > 0, r, 0.0), {x: 0.0, y: 0.0}, [0.0, 0.0]),  # a norm at 0 inside where
    (ga.where(r > 0, ga.sin(r) / r, 1.0), {x: 0.0, y: 0.0}, [0.0, 0.0]),  # sinc
    (r, {x: 0.0, y: 0.0}, [0.0, 0.0]),  # and outside where: 0.5/r = inf times 2x = 0
    (ga.hypot(x, y), {x: 0.0, y: 0.0}, [0.0, 0.0]),
    (ga.maximum(x, ga.sqrt(x)), {x: 0.0, y: 0.0}, [1.0, 0.0]),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_interpreted(case, mode):
    f, at, want = CASES[case]
    g = ga.jacobian([f], [x, y], mode=mode)[0]
    assert ga.evaluate(g, at) == pytest.approx(want, abs=0), f


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_compiled_scalar_and_batch(mode):
    outs = [ga.jacobian([f], [x, y], mode=mode)[0] for f, _, _ in CASES]
    fn = ga.compile(outs, [x, y])
    for k, (f, at, want) in enumerate(CASES):
        assert list(fn(at[x], at[y])[k]) == want, f
    xs = np.array([at[x] for _, at, _ in CASES])
    ys = np.array([at[y] for _, at, _ in CASES])
    batch = fn(xs, ys)
    for k, (_, _, want) in enumerate(CASES):
        assert list(batch[k][k]) == want


def test_second_derivatives_through_where():
    f = ga.where(x >= 0, x**3, ga.sqrt(-x))
    h = ga.hessian(f, [x, y])
    assert ga.evaluate(h[0][0], {x: 2.0, y: 0.0}) == 12.0
    # at 0 the x**3 branch is taken; the untaken sqrt(-x) has infinite partials there
    assert ga.evaluate(h[0][0], {x: 0.0, y: 0.0}) == 0.0
    fn = ga.compile(h[0][0], [x, y])
    assert fn(0.0, 0.0) == 0.0 and fn(2.0, 0.0) == 12.0


def test_the_users_own_nan_is_still_reported():
    f = 0 * ga.sqrt(x)  # no where: the function itself is nan at x = -1
    assert math.isnan(ga.evaluate(f, {x: -1.0}))
    assert math.isnan(ga.compile(f, [x])(-1.0))
