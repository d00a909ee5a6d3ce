import math
import subprocess
import sys

import numpy as np
import pytest
import sympy

import graphad as ga
from graphad.registry import OPS, elementwise_ops

NAMES = elementwise_ops()
# Ops whose derivative SymPy proves equal symbolically. acosh is missing on purpose:
# its partial 1/sqrt(x**2 - 1) and SymPy's 1/(sqrt(x - 1)*sqrt(x + 1)) differ for real
# x < -1, outside its domain, so SymPy rightly refuses to call the difference zero.
SMOOTH = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos",
          "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "atanh", "erf", "dmul"]


def build(name):
    args = ga.symbols(f"a0:{OPS[name].arity}")
    if name == "where":  # a raw 0/1 condition is not smooth; a comparison is
        return ga.where(args[0] > 0, args[1], args[2]), list(args)
    return ga.expr.apply(name, *args), list(args)


def points(name, args, rng, n=4):
    return [dict(zip(args, OPS[name].sample(rng))) for _ in range(n)]


@pytest.mark.parametrize("name", NAMES)
def test_every_op_round_trips_through_sympy(name, rng):
    f, args = build(name)
    back = ga.from_sympy(ga.to_sympy(f))
    for env in points(name, args, rng):
        assert ga.evaluate(back, env) == pytest.approx(ga.evaluate(f, env), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_every_op_passes_crosscheck_at_order_2(name, rng):
    f, args = build(name)
    report = ga.crosscheck(f, args, order=2, points=points(name, args, rng))
    assert report.passed, str(report)
    assert report.points == 4
    if name in SMOOTH:  # and for smooth ops SymPy proves the difference is zero
        assert all(report.symbolic.values()), str(report)


def test_crosscheck_finds_its_own_points_in_the_domain():
    x, y = ga.symbols("x y")
    f = ga.log(x) * ga.acosh(y) + ga.sqrt(x * y)
    report = ga.crosscheck(f, [x, y], order=2, points=5, domain=(-3, 3))
    assert report.passed and report.points == 5
    text = str(report)
    assert "PASS" in text and "Hessian (forward over reverse)" in text


def test_crosscheck_catches_a_wrong_rule():
    base = OPS["sin"]
    bad = ga.registry.register(base.__class__(**{**vars(base), "name": "sin_wrong",
                                                 "partials": (lambda x, out: 1.01 * ga.cos(x),)}))
    try:
        x = ga.symbols("x")
        report = ga.crosscheck(ga.expr.apply(bad.name, x), [x], points=3)
        assert not report.passed
        assert "FAIL" in str(report) and report.failures
        assert report.symbolic["gradient (reverse mode)"] is False
    finally:
        del OPS["sin_wrong"]


def test_symbolic_check_has_a_time_budget():
    x = ga.symbols("x")
    report = ga.crosscheck(abs(ga.acos(0.9 * ga.tanh(x))), [x], points=1, symbolic_timeout=0.2)
    assert report.symbolic["gradient (forward mode)"] is None  # ran out of time: skipped


def test_crosscheck_argument_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        ga.crosscheck(x * y, [x], order=3)
    with pytest.raises(TypeError, match="one expression"):
        ga.crosscheck([x, y], [x])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.crosscheck(x * y, [x * y])


def test_what_sympy_cannot_differentiate_is_reported_not_a_crash():
    x = ga.symbols("x")
    report = ga.crosscheck(abs(ga.acos(0.9 * ga.tanh(x))), [x], order=2, points=2, symbolic_limit=0)
    assert not report.passed and "INCOMPLETE" in str(report)
    assert "unevaluated" in report.unchecked["Hessian (forward over reverse)"]
    assert report.max_error["gradient (reverse mode)"] < 1e-12  # what could be checked was


def test_symbols_sympy_simplifies_away_still_get_values():
    x0, x1 = ga.symbols("x0 x1")
    report = ga.crosscheck(ga.where(x0 > x0, x0, x1) + 0.5 * x1, [x0, x1], points=2)
    assert report.passed, str(report)


def test_no_point_in_the_domain_is_a_failure_not_a_crash():
    x = ga.symbols("x")
    report = ga.crosscheck(ga.log(-(x**2) - 1), [x], points=3)
    assert not report.passed and "no point" in report.failures[0]


def test_to_sympy_keeps_names_and_sharing():
    x, y = ga.symbols("x y")
    u = ga.sin(x * y)
    out = ga.to_sympy([u * u, u + 1])
    sx = sympy.Symbol("x", real=True)
    assert sx in out[0].free_symbols
    assert out[0].args[0] is out[1].args[1] or sympy.sin(sx * sympy.Symbol("y", real=True)) in out[1].args


def test_from_sympy_shares_subtrees():
    x, y = sympy.symbols("x y")
    s = sympy.exp(sympy.sin(x) ** 2)
    g = ga.from_sympy(s * y + s * x)
    ops = [d["op"] for _, d in ga.to_networkx([g]).nodes(data=True)]
    assert ops.count("exp") == 1 and ops.count("sin") == 1  # built once, used twice


def test_from_sympy_constants_and_constructs():
    x, y = sympy.symbols("x y")
    cases = [
        (sympy.pi * x + sympy.E, {"x": 1.0}, math.pi + math.e),
        (sympy.Rational(1, 3) * x, {"x": 3.0}, 1.0),
        (sympy.sqrt(2) * x, {"x": 1.0}, math.sqrt(2)),
        (sympy.log(x, 2), {"x": 8.0}, 3.0),
        (sympy.Max(x, y, 3), {"x": 1.0, "y": 2.0}, 3.0),
        (sympy.Min(x, y), {"x": 1.0, "y": 2.0}, 1.0),
        (sympy.Piecewise((x, x > 1), (y, sympy.And(x > 0, y > 0)), (0, True)), {"x": 0.5, "y": 2.0}, 2.0),
        (sympy.Piecewise((x, sympy.Or(x < 0, y < 0)), (1, True)), {"x": 0.5, "y": -2.0}, 0.5),
        (sympy.Piecewise((x, sympy.Ne(x, 0)), (7, True)), {"x": 0.0, "y": 0.0}, 7.0),
        (sympy.Piecewise((x, x > 1)), {"x": 0.5}, math.nan),
        (1 / sympy.sqrt(x), {"x": 4.0}, 0.5),
        (sympy.atan2(y, x) + sympy.Abs(x) + sympy.sign(y), {"x": -1.0, "y": 0.0}, math.pi + 1.0),
    ]
    for expr, env, want in cases:
        got = ga.evaluate(ga.from_sympy(expr), env)
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-14), expr


@pytest.mark.parametrize("expr, name", [
    (sympy.gamma(sympy.Symbol("x")), "gamma"),
    (sympy.Function("f")(sympy.Symbol("x")), "f"),
    (sympy.Derivative(sympy.Function("f")(sympy.Symbol("x")), sympy.Symbol("x")), "Derivative"),
    (sympy.I * sympy.Symbol("x"), "I"),
])
def test_from_sympy_names_what_it_cannot_convert(expr, name):
    with pytest.raises(ValueError, match=name):
        ga.from_sympy(expr)


def test_ad_and_compile_never_import_sympy():
    code = ("import sys, graphad as ga; x = ga.symbols('x'); f = ga.exp(x**2);"
            "fn = ga.compile([f, ga.grad(f, x), ga.hessian(f, [x])[0][0]], [x]); fn(2.0);"
            "ga.evaluate(ga.jvp(f, x, 1.0), {x: 1.0});"
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_numpy_module_is_fine_with_sympy_numbers():
    assert np.isclose(ga.evaluate(ga.from_sympy(sympy.Float(0.1) + sympy.Symbol("x")), {"x": 0.2}), 0.3)


def test_compare_symbolic_shows_swell_and_agreement():
    x0, a = ga.symbols("x0 a")
    v = x0
    for _ in range(6):
        v = v * ga.exp(-v) + a
    c = ga.compare_symbolic(v, [x0, a])
    assert c.max_rel_diff < 1e-12
    assert c.sympy_ops > 20 * c.graphad_ops  # SymPy's written-out trees swell
    assert c.sympy_cse_ops < c.sympy_ops
    assert 0 < c.graphad_ops < c.graphad_nodes  # operations: inputs and constants are not counted
    assert c.graphad_eval_us > 0 and c.sympy_eval_us > 0
    # SymPy is timed at its best too: lambdify(cse=True) names shared subexpressions once
    assert c.sympy_cse_lambdify_s > 0 and 0 < c.sympy_cse_eval_us < c.sympy_eval_us
    text = str(c)
    assert "SymPy" in text and "graphad" in text and "max relative difference" in text
    assert f"(with cse {c.sympy_cse_eval_us:.3g} us)" in text and f"graphad {c.graphad_ops} ops" in text


def test_a_comparison_plots_sizes_and_times():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    x, y = ga.symbols("x y")
    c = ga.compare_symbolic(ga.exp(x * y) * ga.sin(x), [x, y])
    fig = c.plot()
    sizes, times = fig.axes
    assert [t.get_text() for t in sizes.get_xticklabels()] == ["SymPy", "SymPy, cse", "graphad"]
    assert [b.get_height() for b in sizes.patches] == [c.sympy_ops, c.sympy_cse_ops, c.graphad_ops]
    assert [b.get_height() for b in times.patches] == pytest.approx(
        [c.sympy_eval_us, c.sympy_cse_eval_us, c.graphad_eval_us])


def test_compare_symbolic_times_out_sympy_not_graphad():
    x0, a = ga.symbols("x0 a")
    v = x0
    for _ in range(14):
        v = v * ga.exp(-v) + a
    c = ga.compare_symbolic(v, [x0, a], timeout=0.3)
    assert "did not finish within 0.3 s" in c.sympy_note
    assert c.sympy_eval_us is None and c.graphad_nodes > 0
    with pytest.raises(TypeError, match="one expression"):
        ga.compare_symbolic([v, a], [x0])


@pytest.mark.parametrize("text", ["x + 1", "__import__('os').system('true')", b"x"])
def test_from_sympy_refuses_strings(text):
    with pytest.raises(TypeError, match="string"):
        ga.from_sympy(text)
    with pytest.raises(TypeError, match="string"):
        ga.from_sympy([sympy.Symbol("x"), text])


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="no interval timers here")
def test_crosscheck_keeps_the_callers_own_timer():
    import signal
    import time

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        x, y = ga.symbols("x y")
        assert ga.crosscheck(ga.exp(x**2) * ga.sin(y), [x, y], order=2).passed
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left < 30.0  # still armed, less the time the check took
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.2)  # the handler runs when the signal arrives
        assert fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_crosscheck_stops_at_its_timeout_with_an_incomplete_report():
    import time

    x = ga.symbols("x")
    v = x
    for k in range(6):  # SymPy's Piecewise of nested conditions grows exponentially
        v = ga.where(v > k * 0.1, v * 2, v - 1)
    t0 = time.perf_counter()
    report = ga.crosscheck(v, [x], timeout=1.0)
    assert time.perf_counter() - t0 < 10
    assert not report.passed and "did not finish" in report.unchecked["everything"]


def test_a_long_sum_converts_in_one_step():
    import time

    xs = ga.symbols("t0:4000")
    s = xs[0]
    for x in xs[1:]:
        s = s + x  # a chain of 3,999 add nodes
    t0 = time.perf_counter()
    converted = ga.to_sympy(s - xs[1])
    assert time.perf_counter() - t0 < 10  # was 30 s: SymPy re-flattened the sum at every term
    assert isinstance(converted, sympy.Add) and len(converted.args) == 3999  # t1 cancels


def test_sums_keep_their_signs_and_sharing():
    a, b = ga.symbols("a b")
    shared = a - b
    got = ga.to_sympy([shared + 2 * (a + b) - shared, ga.sin(a + b) + shared, -(a - b) - (b - a)])
    sa, sb = sympy.symbols("a b", real=True)
    assert got == [2 * sa + 2 * sb, sa - sb + sympy.sin(sa + sb), 0]


def test_too_deep_for_sympy_is_a_report_not_a_crash():
    x = ga.symbols("x")
    v = x
    for _ in range(300):
        v = ga.sin(v)
    report = ga.crosscheck(v, [x], points=2)
    assert not report.passed and "nested too deeply" in report.unchecked["everything"]


def test_from_sympy_warns_about_symbols_that_share_a_name():
    x = ga.symbols("x")
    real_x = ga.to_sympy(x)
    with pytest.warns(UserWarning, match="different symbols named x .* ga.to_sympy"):
        ga.from_sympy(real_x + sympy.Symbol("x"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ga.from_sympy(real_x * 2 + sympy.Symbol("y"))  # no twins, no warning
