"""Property-based tests: random expression DAGs over every op, with shared subexpressions,
over scalars and over arrays (broadcasting and the structural ops).

At random points inside the domain: forward mode = reverse mode = finite
differences = SymPy, for first and second derivatives, interpreted and compiled.

The default profile is quick. The long profile runs thousands of cases:

    HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import graphad as ga
from graphad.registry import OPS, elementwise_ops
from graphad.testing import check_grads

settings.register_profile("default", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
COMPILED_EXAMPLES = 300 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 4

KINKED = {"abs", "sign", "maximum", "minimum", "where", "lt", "le", "gt", "ge"}


def into_domain(name, args):
    """Map arbitrary real arguments into the op's domain, away from its edges."""
    a = args[0]
    if name in ("log", "sqrt", "acosh"):
        return (1.5 + a * a,)
    if name == "log1p":
        return (a * a,)
    if name in ("asin", "acos", "atanh"):
        return (0.9 * ga.tanh(a),)
    if name in ("exp", "expm1", "sinh", "cosh", "tan"):
        return (ga.tanh(a),)  # bounded: no overflow, tan away from its poles
    if name == "div":
        return (a, 1.5 + args[1] * args[1])
    if name == "pow":
        return (1.5 + a * a, 2 * ga.tanh(args[1]))
    if name in ("atan2", "hypot"):
        return (a, 1.5 + args[1] * args[1])  # away from the origin
    return args


@st.composite
def expressions(draw, smooth=False, max_ops=8):
    """A random DAG: each new node applies an op to earlier nodes (so nodes are shared)."""
    names = [n for n in elementwise_ops() if not (smooth and n in KINKED)]
    xs = list(ga.symbols("x0:3"))
    nodes = list(xs)
    for _ in range(draw(st.integers(1, max_ops))):
        name = draw(st.sampled_from(names))
        args = [nodes[draw(st.integers(0, len(nodes) - 1))] for _ in range(OPS[name].arity)]
        if name == "where":
            args[0] = args[0] > args[1]
        nodes.append(ga.expr.apply(name, *into_domain(name, args)))
    # the output mixes the last node with a shared earlier one
    return nodes[-1] + 0.5 * nodes[draw(st.integers(0, len(nodes) - 1))], xs


def sample(seed, n=3):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, n)


@given(expressions(smooth=True), st.integers(0, 2**32 - 1))
def test_smooth_graphs_match_finite_differences_to_second_order(case, seed):
    f, xs = case
    check_grads(f, xs, at=sample(seed), order=2, rtol=1e-4, atol=1e-6)


@given(expressions(), st.integers(0, 2**32 - 1))
def test_forward_equals_reverse_for_every_op(case, seed):
    f, xs = case
    env = dict(zip(xs, sample(seed)))
    fwd = ga.evaluate(ga.jacobian([f], xs, mode="forward")[0], env)
    rev = ga.evaluate(ga.grad(f, xs), env)
    np.testing.assert_allclose(fwd, rev, rtol=1e-10, atol=1e-12)
    h = ga.hessian(f, xs)
    rev_over_fwd = [ga.grad(d, xs) for d in ga.jacobian([f], xs, mode="forward")[0]]
    np.testing.assert_allclose([ga.evaluate(r, env) for r in h],
                               [ga.evaluate(r, env) for r in rev_over_fwd], rtol=1e-9, atol=1e-10)


@settings(max_examples=max(5, settings().max_examples // 3))
@given(expressions(max_ops=5), st.integers(0, 2**32 - 1))
def test_every_mode_matches_sympy(case, seed):
    f, xs = case
    report = ga.crosscheck(f, xs, order=2, points=[dict(zip(xs, sample(seed)))], symbolic_limit=0,
                           rtol=1e-8, atol=1e-10)
    assume(not report.unchecked)  # SymPy could not differentiate it (e.g. Abs of acos)
    assert report.passed, str(report)


@settings(max_examples=COMPILED_EXAMPLES)
@given(expressions(), st.integers(0, 2**32 - 1), st.sampled_from([500, 7, 2]))
def test_compiled_matches_the_evaluator(case, seed, chunk_size):
    f, xs = case
    outs = [f, ga.grad(f, xs), sum(ga.hessian(f, xs), [])]  # constant and repeated outputs too
    fn = ga.compile(outs, [xs], chunk_size=chunk_size)  # small chunks: values cross chunks
    point = sample(seed)
    value, g, h = fn(point)
    want = ga.evaluate([f, *outs[1], *outs[2]], dict(zip(xs, point)))
    np.testing.assert_allclose([value, *g, *h], want, rtol=1e-12, atol=1e-13)
    batch = np.random.default_rng(seed).uniform(-1.5, 1.5, (5, 3))
    values = fn(batch)[0]
    np.testing.assert_allclose(values, [fn(p)[0] for p in batch], rtol=1e-15)


# -- random array graphs -----------------------------------------------------------------------

SMOOTH_UNARY = [n for n in elementwise_ops() if OPS[n].arity == 1 and n not in KINKED]
SMOOTH_BINARY = ["add", "sub", "mul", "div", "pow", "atan2", "hypot"]
STRUCTURAL = ["sum", "mean", "max", "transpose", "reshape", "slice", "matmul", "softmax", "logsumexp",
              "concatenate", "take", "broadcast", "index"]


def _array_step(kind, a, b, draw):
    """One random array op on earlier nodes ``a`` (and ``b``); ValueError if the shapes do not fit."""
    if kind == "unary":
        name = draw(st.sampled_from(SMOOTH_UNARY))
        return ga.expr.apply(name, *into_domain(name, (a,)))
    if kind == "binary":
        name = draw(st.sampled_from(SMOOTH_BINARY))
        return ga.expr.apply(name, *into_domain(name, (a, b)))
    if kind == "matmul":
        return a @ b
    if not a.ndim:
        raise ValueError("a scalar")
    axis = draw(st.sampled_from([None, *range(a.ndim)]))
    if kind in ("sum", "mean", "max", "logsumexp"):
        return getattr(ga, kind)(a, axis=axis, keepdims=draw(st.booleans()))
    if kind == "softmax":
        return ga.softmax(a, axis=-1 if axis is None else axis)
    if kind == "transpose":
        return a.T
    if kind == "reshape":
        return a.reshape(-1)
    if kind == "slice":
        return a[1:] if a.shape[0] > 1 else a[::-1]
    if kind == "concatenate":
        return ga.concatenate([a, a[:1]], axis=0)
    if kind == "take":
        return ga.take(a, np.array([a.shape[0] - 1, 0, a.shape[0] - 1]))
    if kind == "broadcast":
        return ga.broadcast_to(a, (2,) + a.shape)
    return a[..., 0] if a.shape[-1] else a  # index


@st.composite
def array_expressions(draw, max_ops=6):
    """A random DAG over array symbols of shapes (3, 4), (4,) and (): elementwise ops
    with broadcasting and the structural ops, with shared nodes."""
    X, y, s = ga.symbols("X", shape=(3, 4)), ga.symbols("y", shape=(4,)), ga.symbols("s")
    nodes = [X, y, s]
    for _ in range(draw(st.integers(1, max_ops))):
        a, b = (nodes[draw(st.integers(0, len(nodes) - 1))] for _ in range(2))
        kind = draw(st.sampled_from(["unary", "binary", *STRUCTURAL]))
        try:
            nodes.append(_array_step(kind, a, b, draw))
        except ValueError:  # the shapes do not fit this op: draw again
            continue
    return nodes[-1] + 0.5 * ga.sum(nodes[draw(st.integers(0, len(nodes) - 1))]), [X, y, s]


@given(array_expressions(), st.integers(0, 2**32 - 1))
def test_random_array_graphs_match_finite_differences_to_second_order(case, seed):
    f, wrt = case
    rng = np.random.default_rng(seed)
    at = {w: rng.uniform(-1.5, 1.5, w.shape) for w in wrt}
    check_grads(f, wrt, at=at, order=2, rtol=1e-4, atol=1e-6)


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory):
    old = os.environ.get("GRAPHAD_CACHE_DIR")
    os.environ["GRAPHAD_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        del os.environ["GRAPHAD_CACHE_DIR"]
    else:
        os.environ["GRAPHAD_CACHE_DIR"] = old


@settings(max_examples=COMPILED_EXAMPLES)
@given(array_expressions(), st.integers(0, 2**32 - 1), st.booleans())
def test_compiled_array_graphs_match_the_evaluator(case, seed, parallel):
    f, wrt = case
    outputs = [f, *ga.grad(ga.sum(f * ga.cos(f)), wrt)]
    rng = np.random.default_rng(seed)
    values = [rng.uniform(-1.5, 1.5, w.shape) if w.shape else float(rng.uniform(-1.5, 1.5)) for w in wrt]
    got = ga.compile(outputs, wrt, parallel=parallel)(*values)
    want = ga.evaluate(outputs, dict(zip(wrt, values)))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)
