import math

import numpy as np
import pytest

import graphad as ga

E4 = math.exp(4)


def seed_example(mode):
    x = ga.symbols("x")
    return ga.trace(ga.exp(x**2), at={x: 2.0}, mode=mode), x


def test_forward_trace_of_the_seed_example():
    t, _ = seed_example("forward")
    assert [r["value"] for r in t.rows] == pytest.approx([2, 4, E4])
    assert [r["tangent"] for r in t.rows] == pytest.approx([1, 4, 4 * E4])
    assert [r["operation"] for r in t.rows] == ["x", "v1**2", "exp(v2)"]
    assert t.rows[1]["local derivative"] == "v\u03072 = 2*v1 * v\u03071"
    assert t.rows[2]["local derivative"] == "v\u03073 = v3 * v\u03072"


def test_reverse_trace_of_the_seed_example():
    t, _ = seed_example("reverse")
    primal = [r for r in t.rows if r["sweep"] == "primal"]
    adjoint = [r for r in t.rows if r["sweep"] == "adjoint"]
    assert [r["value"] for r in primal] == pytest.approx([2, 4, E4])
    assert [r["adjoint"] for r in adjoint] == pytest.approx([1, E4, 4 * E4])
    assert [r["variable"] for r in adjoint] == ["v\u03043", "v\u03042", "v\u03041"]
    assert adjoint[2]["operation"] == "v\u03041 = 2*v1 * v\u03042"


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_every_format_carries_the_numbers(mode):
    t, _ = seed_example(mode)
    derivative = "218.393"
    for text in (str(t), t.markdown(), t.latex(), t._repr_html_()):
        assert "54.5982" in text and derivative in text
    assert t.markdown().splitlines()[1].startswith("|---|")
    assert t.latex().startswith(r"\begin{tabular}") and r"v_{1}^2" in t.latex()
    assert t._repr_html_().startswith("<table>") and "<td>v1**2</td>" in t._repr_html_()
    if mode == "reverse":
        assert r"\bar{v}_{1} = 2 \cdot v_{1}" in t.latex()
    else:
        assert r"\dot{v}_{2} = 2 \cdot v_{1}" in t.latex()
    assert all(isinstance(r, dict) for r in t.rows)  # DataFrame-ready


def test_text_columns_line_up_with_combining_marks():
    t, _ = seed_example("reverse")
    lines = str(t).splitlines()
    header_at = lines[0].index("adjoint")
    assert all(len(line) <= header_at or line[header_at - 2:header_at] == "  " for line in lines[1:])


def test_fan_out_accumulates_adjoints_step_by_step():
    x, y = ga.symbols("x y")
    u = ga.sin(x)
    t = ga.trace(u * u + u * y, at={x: 0.5, y: 2.0}, mode="reverse")
    to_u = [r for r in t.rows if r.get("variable") == "v\u03043"]  # u is v3
    assert len(to_u) == 3  # three uses of u
    assert not to_u[0]["operation"].startswith("v\u03043 = v\u03043 +")
    assert all(r["operation"].startswith("v\u03043 = v\u03043 + ") for r in to_u[1:])
    final = to_u[-1]["adjoint"]
    assert final == pytest.approx(2 * math.sin(0.5) + 2.0)
    grad_x = [r for r in t.rows if r.get("variable") == "v\u03041"][-1]["adjoint"]
    assert grad_x == pytest.approx(ga.evaluate(ga.grad(u * u + u * y, x), {x: 0.5, y: 2.0}))


def test_several_inputs_and_outputs():
    x, y = ga.symbols("x y")
    f, g = x * y, ga.sin(x) + y
    t = ga.trace([f, g], at={x: 1.0, y: 3.0}, mode="forward", seed={x: 1.0, y: 0.0})
    outputs = [r for r in t.rows if "(output)" in r["variable"]]
    assert [r["tangent"] for r in outputs] == pytest.approx([3.0, math.cos(1.0)])
    r = ga.trace([f, g], at={x: 1.0, y: 3.0}, mode="reverse", seed={f: 1.0, g: 2.0})
    adj = {row["variable"]: row["adjoint"] for row in r.rows if row["sweep"] == "adjoint"}
    assert adj["v\u03041"] == pytest.approx(3.0 + 2 * math.cos(1.0))
    assert adj["v\u03042"] == pytest.approx(1.0 + 2.0)


def test_selections_are_shown_as_such():
    x, y = ga.symbols("x y")
    t = ga.trace(ga.maximum(x, y), at={x: 0.5, y: 2.0}, mode="forward", seed={x: 1.0, y: 1.0})
    assert t.rows[-1]["local derivative"].startswith("v\u03073 = select(")
    r = ga.trace(ga.maximum(x, y), at={x: 0.5, y: 2.0}, mode="reverse")
    assert "(v1 >= v2) * v\u03043" in str(r)


def test_trace_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="mode must be"):
        ga.trace(x, at={x: 1.0}, mode="sideways")
    with pytest.raises(ValueError, match=r"differentiate by \(wrt\) or the tangents as seed"):
        ga.trace(x * y, at={x: 1.0, y: 2.0})
    with pytest.raises(ValueError, match="give their weights"):
        ga.trace([x, y], at={x: 1.0, y: 2.0}, mode="reverse")
    with pytest.raises(ValueError, match="single point"):
        ga.trace(x * 2, at={x: [1.0, 2.0]})
    with pytest.raises(TypeError, match="not a symbol"):
        ga.trace(x * 2, at={x: 1.0}, seed={x * 2: 1.0})
    with pytest.raises(ValueError, match="no value given"):
        ga.trace(x * y, at={x: 1.0}, seed={x: 1.0})


def test_traces_of_array_graphs_show_shapes_and_the_array_rules():
    X = ga.symbols("X", shape=("n", 2))
    v = ga.symbols("v", shape=(2,))
    f = ga.mean((X @ v) ** 2)
    at = {X: np.arange(8.0).reshape(4, 2), v: np.array([1.0, -1.0])}
    rev = ga.trace(f, at=at, mode="reverse")
    assert "shape" in rev.columns
    rows = {r["variable"]: r for r in rev.rows if r["sweep"] == "adjoint"}
    np.testing.assert_allclose(rows["v̄2"]["adjoint"], ga.evaluate(ga.grad(f, v), at))
    np.testing.assert_allclose(rows["v̄1"]["adjoint"], ga.evaluate(ga.grad(f, X), at))
    assert "@" in rows["v̄1"]["operation"] and "transpose" in rows["v̄1"]["operation"]
    text = str(rev)
    assert "(n, 2)" in text and "4x2: -0.5 .. 0.5" in text
    fwd = ga.trace(f, at=at, mode="forward", seed={X: 0.0, v: np.array([1.0, 0.0])})
    assert fwd.rows[-1]["tangent"] == pytest.approx(ga.evaluate(ga.grad(f, v), at)[0])
    assert any("sum(v̇" in r.get("local derivative", "") for r in fwd.rows)
    assert "\\dot{v}" in fwd.latex() and "|" in fwd.markdown()


def test_a_broadcast_operands_adjoint_is_summed_in_the_trace():
    x, w = ga.symbols("x", shape=(3,)), ga.symbols("w")
    rev = ga.trace(ga.sum(ga.exp(x) * w), at={x: np.array([0.0, 1.0, 2.0]), w: 2.0}, mode="reverse")
    row = next(r for r in rev.rows if r["variable"] == "v̄2")
    assert row["operation"].startswith("v̄2 = sum(")
    assert row["adjoint"] == pytest.approx(np.exp([0, 1, 2]).sum())


def test_trace_and_picture_take_the_same_arguments():
    x, y = ga.symbols("x y")
    f = x * y + ga.sin(x)
    point = {x: 1.0, y: 2.0}
    forward = ga.trace(f, [x], at=point)  # the tangent along wrt: 1 for x, 0 for y
    assert forward.rows[-1]["tangent"] == pytest.approx(2.0 + math.cos(1.0))
    reverse = ga.trace(f, [x], at=point, mode="reverse")
    assert {r["variable"] for r in reverse.rows if r["sweep"] == "adjoint"} == {"v̄5", "v̄3", "v̄4", "v̄1"}
    full = ga.trace(f, at=point, mode="reverse")
    assert "v̄2" in {r["variable"] for r in full.rows}  # without wrt, every input's adjoint
    ga.picture(f, [x], at=point, parts=("primal", "adjoint"))  # the same call, drawn
    for call in (ga.trace, ga.picture):
        with pytest.raises(TypeError, match=r"give the point as at=\{symbol: value\}"):
            call(f, point)
