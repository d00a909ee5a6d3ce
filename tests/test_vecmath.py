"""SIMD math in compiled loops (graphad.vecmath): the vector calls are really made
where libmvec exists, results stay within the documented ulp bound of scalar libm,
special values agree, ``exact_math=True`` is exact, and the fallback works."""

import re

import numpy as np
import pytest

import graphad as ga
from graphad import vecmath
from graphad.lowering import intrinsics
from graphad.registry import OPS

SIMD = bool(vecmath.variants())
needs_simd = pytest.mark.skipif(not SIMD, reason="no libmvec on this machine")
ULP = 4  # the bound docs/compiler.md gives for libmvec against scalar libm (measured: <= 2.6)

# every op whose IR calls a function that libmvec may have
VECTOR_OPS = sorted(op for op, spec in OPS.items() if spec.ir and spec.shape is None and any(
    m.group(1) in vecmath.FUNCTIONS for m in vecmath.CALL.finditer(spec.ir)))
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.0, -1.0,
                    0.5, 709.78, 710.0, -745.2, -746.0, 1e300, -1e300, 1e-300])


def _op_graph(op):
    xs = ga.symbols("x0 x1")[: OPS[op].arity]
    return getattr(ga, op)(*xs) if op != "pow" else xs[0] ** xs[1], xs


def _ulps(a, b):
    """|a - b| in ulp of b, where both are finite."""
    return np.abs(a - b) / np.spacing(np.abs(b))


def test_every_libmvec_function_is_reached_by_an_op():
    called = {m.group(1) for op in VECTOR_OPS for m in vecmath.CALL.finditer(OPS[op].ir)}
    assert called == set(vecmath.FUNCTIONS)


@needs_simd
def test_batch_loops_call_the_vector_functions():
    x, y = ga.symbols("x y")
    f = ga.exp(-(x**2 + y**2)) * ga.sin(3 * x) + ga.log(1 + x**2 * y**2)
    fn = ga.compile([f, ga.grad(f, [x, y])], [x, y])
    assert "vector-function-abi-variant" in fn.llvm_ir
    with open(fn._base + ".o", "rb") as f:  # the machine code calls libmvec's functions
        assert re.search(rb"_ZGV[bde]N[248]v_exp", f.read())
    points = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(fn(points, 0.5)[0], [fn(x, 0.5)[0] for x in points], rtol=1e-14)


@needs_simd
@pytest.mark.parametrize("op", VECTOR_OPS)
def test_simd_results_stay_within_the_ulp_bound_of_libm(op):
    f, xs = _op_graph(op)
    rng = np.random.default_rng(abs(hash(op)) % 2**32)
    args = [np.array(a) for a in zip(*(OPS[op].sample(rng) for _ in range(2000)))]
    fast = ga.compile(f, list(xs))(*args)
    exact = ga.compile(f, list(xs), exact_math=True)(*args)
    assert np.all(np.isfinite(exact)) and np.all(np.isfinite(fast))
    assert _ulps(fast, exact).max() <= ULP, op


@needs_simd
@pytest.mark.parametrize("op", VECTOR_OPS)
def test_simd_special_values_match_libm(op):
    f, xs = _op_graph(op)
    grid = np.meshgrid(*[SPECIAL] * len(xs))
    args = [g.ravel() for g in grid]
    fast = ga.compile(f, list(xs))(*args)
    exact = ga.compile(f, list(xs), exact_math=True)(*args)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(exact), err_msg=op)
    infinite = np.isinf(exact) | np.isinf(fast)
    np.testing.assert_array_equal(fast[infinite], exact[infinite], err_msg=op)
    zero = exact == 0.0
    np.testing.assert_array_equal(np.signbit(fast[zero]), np.signbit(exact[zero]), err_msg=op)
    finite = np.isfinite(exact) & (exact != 0.0)
    # near over- and underflow, libmvec may round differently in the last bits of a tiny result
    assert (_ulps(fast[finite], exact[finite]) <= ULP).all() or np.abs(exact[finite]).min() < 1e-300, op


def test_exact_math_gives_the_point_values_bitwise():
    x, y = ga.symbols("x y")
    f = ga.tanh(x) * ga.exp(y) + ga.atan2(x, y)
    fn = ga.compile([f, ga.grad(f, [x, y])], [x, y], exact_math=True)
    xs, ys = np.random.default_rng(1).normal(size=(2, 257))
    values, grads = fn(xs, ys)
    for i in range(0, 257, 16):
        v, g = fn(xs[i], ys[i])
        assert values[i] == v and (grads[i] == g).all()
    assert "vector-function-abi-variant" not in fn.llvm_ir


def test_exact_math_is_type_checked():
    x = ga.symbols("x")
    with pytest.raises(TypeError, match="exact_math must be True or False"):
        ga.compile(ga.exp(x), [x], exact_math="yes")


@pytest.fixture
def no_libmvec(monkeypatch):
    """As on a machine without libmvec (macOS, Windows, musl, or GRAPHAD_VECTOR_MATH=0)."""
    monkeypatch.setenv("GRAPHAD_VECTOR_MATH", "0")
    vecmath.variants.cache_clear()
    yield
    monkeypatch.undo()
    vecmath.variants.cache_clear()


def test_without_libmvec_loops_call_scalar_libm(no_libmvec):
    assert vecmath.variants() == {} and intrinsics.simd_ops() == frozenset()
    x, y = ga.symbols("x y")
    f = ga.exp(x) * ga.sin(y) + ga.log1p(x * x)
    fn = ga.compile([f, ga.grad(f, [x, y])], [x, y])
    exact = ga.compile([f, ga.grad(f, [x, y])], [x, y], exact_math=True)
    assert "_ZGV" not in fn.llvm_ir
    xs, ys = np.random.default_rng(2).normal(size=(2, 300))
    for a, b in zip(fn(xs, ys), exact(xs, ys)):
        np.testing.assert_array_equal(a, b)
    t = ga.symbols("t", shape=("n",))
    g = ga.compile(ga.sum(ga.exp(-x * t)), [x, t])
    assert "simd_" not in g.source and "math.exp" in g.source
    tv = np.linspace(0, 3, 50)
    assert g(0.7, tv) == pytest.approx(np.exp(-0.7 * tv).sum(), rel=1e-14)


@needs_simd
def test_array_loops_use_simd_math_within_the_bound():
    t, y = ga.symbols("t y", shape=("n",))
    a, b, c = ga.symbols("a b c")
    r = a * ga.exp(-b * t) + c - y
    loss = 0.5 * ga.sum(r * r)
    outs = [ga.tanh(t - 2.5), loss, ga.grad(loss, [a, b, c])]
    fast = ga.compile(outs, [a, b, c, t, y])
    exact = ga.compile(outs, [a, b, c, t, y], exact_math=True)
    assert "simd_exp(" in fast.source and "simd_tanh(" in fast.source
    assert "simd_" not in exact.source and "math.exp(" in exact.source
    tv = np.linspace(0, 5, 10_001)
    yv = 2 * np.exp(-1.3 * tv) + 0.5
    got, want = fast(1.0, 1.1, 0.2, tv, yv), exact(1.0, 1.1, 0.2, tv, yv)
    nonzero = want[0] != 0.0
    assert _ulps(got[0][nonzero], want[0][nonzero]).max() <= ULP
    assert got[1] == pytest.approx(want[1], rel=1e-13)
    for g, w in zip(got[2], want[2]):
        assert g == pytest.approx(w, rel=1e-12)
