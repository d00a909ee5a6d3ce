import itertools
import math

import numpy as np
import pytest

import graphad as ga
from graphad.registry import OPS, elementwise_ops
from graphad.testing import check_grads


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_higher_derivatives(mode):
    x = ga.symbols("x")
    f = ga.exp(2 * x) * ga.sin(x)
    # d^n/dx^n Im(exp((2+i)x)) = Im((2+i)^n exp((2+i)x))
    for n in range(5):
        d = ga.derivative(f, x, mode=mode, n=n)
        want = ((2 + 1j) ** n * np.exp((2 + 1j) * 0.3)).imag
        assert ga.evaluate(d, {x: 0.3}) == pytest.approx(want, rel=1e-12)


def test_derivative_argument_errors():
    x = ga.symbols("x")
    with pytest.raises(ValueError, match="mode must be one of 'forward', 'reverse'"):
        ga.derivative(x, x, mode="sideways")
    for n in (-1, 1.5, True):
        with pytest.raises(ValueError, match="n must be"):
            ga.derivative(x, x, n=n)
    with pytest.raises(TypeError, match="not a symbol"):
        ga.derivative(x**2, x**2)


def test_jacobian_modes_agree_and_auto_picks_the_cheaper():
    x, y = ga.symbols("x y")
    tall = [x * y, ga.sin(x) + y, ga.exp(x - y)]  # 2 inputs < 3 outputs: forward
    wide = [x * y + ga.sin(x * y)]  # 2 inputs > 1 output: reverse
    env = {x: 0.4, y: -1.3}
    for outs in (tall, wide):
        fwd = ga.jacobian(outs, [x, y], mode="forward")
        rev = ga.jacobian(outs, [x, y], mode="reverse")
        np.testing.assert_allclose(ga.evaluate(sum(fwd, []), env), ga.evaluate(sum(rev, []), env))
    # hash-consing makes the mode visible: auto builds exactly the nodes of one mode
    assert ga.jacobian(tall, [x, y]) == ga.jacobian(tall, [x, y], mode="forward")
    assert ga.jacobian(wide, [x, y]) == ga.jacobian(wide, [x, y], mode="reverse")
    assert len(ga.jacobian(tall, [x, y])) == 3 and len(ga.jacobian(tall, [x, y])[0]) == 2


def test_hessian_is_symmetric_and_matches_finite_differences(rng):
    xs = ga.symbols("x0:4")
    f = ga.exp(xs[0] * xs[1]) + ga.sin(xs[2]) * xs[3] ** 3 + ga.log(1 + xs[0] ** 2 * xs[3] ** 2)
    h = ga.hessian(f, xs)
    assert all(h[i][j] == h[j][i] for i in range(4) for j in range(4))
    p = rng.uniform(-1, 1, 4)
    env = dict(zip(xs, p))
    got = np.array([ga.evaluate(row, env) for row in h])
    g = ga.grad(f, xs)
    eps = 1e-6

    def grad_at(point):
        return np.array(ga.evaluate(g, dict(zip(xs, point))))

    fd = np.array([(grad_at(p + eps * e) - grad_at(p - eps * e)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-7)


def test_hvp_equals_hessian_times_vector(rng):
    xs = ga.symbols("x0:3")
    f = ga.sin(xs[0] * xs[1]) * ga.exp(xs[2]) + xs[0] ** 4
    v = rng.standard_normal(3)
    env = dict(zip(xs, rng.uniform(-1, 1, 3)))
    hv = ga.evaluate(ga.hvp(f, xs, list(v)), env)
    h = np.array([ga.evaluate(row, env) for row in ga.hessian(f, xs)])
    np.testing.assert_allclose(hv, h @ v, rtol=1e-12)


def test_mixed_functions_pass_the_checker_to_third_order():
    x, y = ga.symbols("x y")
    f = ga.atan2(y, x) * ga.tanh(x * y) + ga.hypot(x, y) ** 1.5 - ga.erf(x / (1 + y**2))
    check_grads(f, [x, y], at=[0.7, -0.4], order=3)
    check_grads([f, ga.maximum(x, y) * ga.cosh(y)], [x, y], at={x: 0.3, y: 0.9}, order=2)


def test_derivatives_are_expressions_that_differentiate_again():
    x = ga.symbols("x")
    d3 = ga.grad(ga.jvp(ga.grad(ga.sin(x) * x, x), x, 1.0), x)
    assert ga.evaluate(d3, {x: 0.5}) == pytest.approx(-3 * math.sin(0.5) - 0.5 * math.cos(0.5), rel=1e-14)


INDETERMINATE = {"add", "sub", "mul", "div", "dmul"}  # inf - inf, 0 * inf, 0 / 0: IEEE partials


@pytest.mark.parametrize("name", [n for n in elementwise_ops() if n not in INDETERMINATE])
def test_outside_the_domain_the_derivative_is_nan_like_the_value(name):
    """log(-1), log1p(-3), atanh(2), acosh(-2), sqrt(-1), (-8)**0.5 ...: where an op's
    value is nan at numbers, each partial is nan too, in both modes and at order 2."""
    op = OPS[name]
    args = ga.symbols(f"d0:{op.arity}")
    f = ga.expr.apply(name, *args)
    grads = {"reverse": ga.grad(f, list(args)), "forward": ga.jacobian([f], list(args), mode="forward")[0]}
    second = ga.hessian(f, list(args))
    points = [-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, math.inf, -math.inf]
    for p in itertools.product(points, repeat=op.arity):
        env = dict(zip(args, p))
        if not math.isnan(ga.evaluate(f, env)):
            continue
        for mode, g in grads.items():
            assert all(math.isnan(d) for d in ga.evaluate(g, env)), f"{name}{p}: {mode} mode"
        if all(math.isfinite(v) and v != 0 for v in p):  # the chain product keeps 0 * nan = 0 (docs)
            for row in second:
                assert all(math.isnan(d) for d in ga.evaluate(row, env)), f"{name}{p}: second derivatives"


def test_power_of_zero_has_derivative_zero():
    x = ga.symbols("x")
    assert ga.evaluate(ga.grad(0.0**x, x), {x: 2.0}) == 0.0
    assert ga.evaluate(ga.jvp(0.0**x, x, 1.0), {x: 2.0}) == 0.0
