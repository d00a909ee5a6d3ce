import math

import numpy as np
import pytest

import graphad as ga


def test_seed_example_reverse():
    x = ga.symbols("x")
    df = ga.grad(ga.exp(x**2), x)
    assert ga.evaluate(df, {x: 2.0}) == pytest.approx(4 * math.exp(4), rel=1e-15)


def rosenbrock(xs):
    return sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def test_rosenbrock_100_gradient_in_one_reverse_sweep(rng):
    xs = ga.symbols("x0:100")
    g = ga.grad(rosenbrock(xs), xs)
    for _ in range(3):
        point = rng.uniform(-2, 2, 100)
        got = ga.evaluate(g, dict(zip(xs, point)))
        np.testing.assert_allclose(got, rosenbrock_grad(point), rtol=1e-13, atol=1e-10)


def size(exprs):
    return ga.to_networkx(list(exprs)).number_of_nodes()


@pytest.mark.parametrize("family", ["rosenbrock", "dense"])
def test_adjoint_graph_is_a_constant_multiple_of_the_function(family):
    """The cost of reverse mode does not grow with the number of inputs: the
    gradient of a function of n inputs has O(size f) nodes, not O(n size f)."""
    ratios = []
    for n in (10, 100, 1000):
        with ga.Graph():
            xs = ga.symbols(f"x0:{n}")
            if family == "rosenbrock":
                f = rosenbrock(xs)
            else:  # every input interacts with every other through s
                s = sum(xs)
                f = sum(ga.sin(x * s) for x in xs)
            ratios.append(size([f, *ga.grad(f, xs)]) / size([f]))
    assert max(ratios) < 5, ratios
    assert ratios[-1] < ratios[0] * 1.2, ratios  # does not grow with n


def test_fan_out_adjoints_accumulate():
    x = ga.symbols("x")
    u = ga.sin(x)
    f = u * u + u  # u is used three times
    assert ga.evaluate(ga.grad(f, x), {x: 0.5}) == pytest.approx((2 * math.sin(0.5) + 1) * math.cos(0.5))


def test_vjp_weights_outputs():
    x, y = ga.symbols("x y")
    gx, gy = ga.vjp([x * y, x + y], [x, y], [1.0, 0.5])
    assert ga.evaluate([gx, gy], {x: 2.0, y: 3.0}) == [3.5, 2.5]
    w = ga.symbols("w")
    assert ga.evaluate(ga.vjp(x * y, x, w), {x: 2.0, y: 3.0, w: 2.0}) == 6.0


def test_gradient_wrt_unused_symbol_is_zero():
    x, y = ga.symbols("x y")
    assert ga.grad(ga.sin(x), [x, y])[1].value == 0.0


def test_reverse_errors_are_clear():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="vjp cotangents: got 1 value.* 2 entries"):
        ga.vjp([x, y], [x, y], [1.0])
    with pytest.raises(TypeError, match=r"wrt\[1\] is sin\(x\), not a symbol"):
        ga.grad(x * y, [x, ga.sin(x)])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.grad(x * y, 2.0)
    with pytest.raises(TypeError, match="one expression"):
        ga.grad([x, y], x)
    with pytest.raises(ValueError, match="no expressions"):
        ga.vjp([], [x], [])
