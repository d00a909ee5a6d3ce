"""Every registered op, checked at random points of its domain.

Tests are parametrised over the registry, so a new op is tested as soon as it
is registered.
"""

import math

import numpy as np
import pytest
import sympy

import graphad as ga
from graphad.registry import OPS, elementwise_ops
from graphad.testing import check_grads

NAMES = elementwise_ops()
POINTS = 5


def build(name, smooth=False):
    """The op applied to fresh symbols a0, a1, ...

    With ``smooth``, where's condition becomes ``a0 > 0``: a raw 0/1 condition
    would flip under the finite-difference step."""
    args = ga.symbols(f"a0:{OPS[name].arity}")
    if smooth and name == "where":
        return ga.where(args[0] > 0, args[1], args[2]), list(args)
    return ga.expr.apply(name, *args), list(args)


def points(name, rng, n=POINTS):
    return [OPS[name].sample(rng) for _ in range(n)]


def test_registry_has_the_required_ops():
    required = """add sub mul div neg pow exp log log1p expm1 sqrt sin cos tan asin acos atan
        atan2 sinh cosh tanh asinh acosh atanh erf abs sign hypot maximum minimum where""".split()
    assert set(required) <= set(OPS)


@pytest.mark.parametrize("name", NAMES)
def test_first_and_second_derivatives(name, rng):
    """Forward mode against central differences, reverse against forward
    (<u, Jv> = <J^T u, v>), and the same for every second-order combination."""
    f, args = build(name, smooth=True)
    for p in points(name, rng):
        check_grads(f, args, at=p, order=2)


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_sympy_counterpart(name, rng):
    f, args = build(name)
    sargs = sympy.symbols(f"a0:{len(args)}", real=True)
    sexpr = OPS[name].sympy(sympy, *sargs)
    for p in points(name, rng):
        expected = float(sexpr.subs(dict(zip(sargs, p))).evalf(30))
        assert ga.evaluate(f, dict(zip(args, p))) == pytest.approx(expected, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_partials_match_sympy_diff(name, rng):
    """The gradient (both modes) against sympy.diff of the counterpart."""
    f, args = build(name)
    sargs = sympy.symbols(f"a0:{len(args)}", real=True)
    sexpr = OPS[name].sympy(sympy, *sargs)
    for mode in ("forward", "reverse"):
        jac = ga.jacobian([f], args, mode=mode)[0]
        for p in points(name, rng):
            env = dict(zip(sargs, p))
            for i, s in enumerate(sargs):
                expected = float(sympy.diff(sexpr, s).subs(env).evalf(30))
                got = ga.evaluate(jac[i], dict(zip(args, p)))
                assert got == pytest.approx(expected, rel=1e-10, abs=1e-12), (mode, i, p)


@pytest.mark.parametrize("name", NAMES)
def test_code_template_matches_value(name, rng):
    """The lowering template, run as plain Python, agrees with the evaluator."""
    op = OPS[name]
    code = op.code.format(*(f"a{i}" for i in range(op.arity)))
    for p in points(name, rng):
        env = {f"a{i}": v for i, v in enumerate(p)}
        got = eval(code, {"math": math, "np": np}, env)
        assert float(got) == pytest.approx(float(op.value(*map(np.float64, p))), rel=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_batch_evaluation_matches_pointwise(name, rng):
    f, args = build(name)
    pts = np.array(points(name, rng, 7))
    batch = ga.evaluate(f, {a: pts[:, i] for i, a in enumerate(args)})
    pointwise = [ga.evaluate(f, dict(zip(args, p))) for p in pts]
    np.testing.assert_array_equal(batch, pointwise)


@pytest.mark.parametrize("name", NAMES)
def test_op_is_documented(name):
    op = OPS[name]
    assert op.doc and getattr(ga.ops, name).__doc__ == op.doc


# -- conventions at non-differentiable points ------------------------------------


def d(f, x, at, mode):
    return ga.evaluate(ga.derivative(f, x, mode=mode), {x: at})


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_kink_conventions(mode):
    x, y = ga.symbols("x y")
    assert d(abs(x), x, 0.0, mode) == 0.0
    assert d(ga.sign(x), x, 0.0, mode) == 0.0
    assert d(ga.sqrt(x), x, 0.0, mode) == math.inf
    assert d(ga.maximum(x, 1.0), x, 1.0, mode) == 1.0  # tie: the first argument's
    assert d(ga.maximum(1.0, x), x, 1.0, mode) == 0.0
    assert d(ga.minimum(x, 1.0), x, 1.0, mode) == 1.0
    assert d(ga.maximum(x, x), x, 0.5, mode) == 1.0
    assert d(ga.hypot(x, 0.0), x, 0.0, mode) == 0.0
    assert d(ga.where(x > 0, x**2, -x), x, 1.0, mode) == 2.0


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_selection_does_not_leak_nan_from_the_branch_not_taken(mode):
    x = ga.symbols("x")
    # The tangent of sqrt(x) at 0 is inf; maximum picks x, whose tangent is 1.
    assert d(ga.maximum(x, ga.sqrt(x)), x, 0.0, mode) == 1.0
    assert d(ga.hypot(x, x), x, 0.0, mode) == 0.0
    assert d(ga.sqrt(x**2), x, 0.0, mode) == 0.0  # inf * 0 in the chain rule is 0


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_chain_product_keeps_zero_derivatives_zero(mode):
    x = ga.symbols("x")
    f = ga.where(x > 0, ga.sqrt(x), 0.0)
    assert d(f, x, -1.0, mode) == 0.0
    assert d(f, x, 0.0, mode) == 0.0
    assert d(f, x, 4.0, mode) == 0.25
    # ... but a nan of the user's own function is never hidden
    assert math.isnan(ga.evaluate(0 * ga.sqrt(x), {x: -1.0}))


def test_ieee_domain_errors_give_nan_and_inf():
    x = ga.symbols("x")
    assert math.isnan(ga.evaluate(ga.log(x), {x: -1.0}))
    assert ga.evaluate(1 / x, {x: 0.0}) == math.inf
    assert ga.evaluate(ga.log(x), {x: 0.0}) == -math.inf
    assert math.isnan(ga.evaluate(ga.sqrt(x), {x: -1.0}))
    assert math.isnan(ga.evaluate(ga.maximum(x, 1.0), {x: math.nan}))
    assert ga.evaluate(x**0, {x: math.nan}) == 1.0
