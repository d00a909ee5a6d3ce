import os
import re
import shutil
import subprocess
import sys

import pytest

import graphad as ga
from graphad import pictures
from graphad.pictures import COLOURS


def test_dot_marks_parts_inputs_outputs_and_values():
    x, y = ga.symbols("x y")
    f = ga.exp(x**2) * ga.sin(y)
    for view in ("sweep", "expression"):
        parts = ("primal", "tangent", "adjoint")
        dot = ga.picture(f, [x, y], parts=parts, at={x: 0.5, y: 1.0}, view=view).dot
        assert dot.startswith("digraph graphad {") and dot.rstrip().endswith("}")
        for colour in COLOURS.values():
            assert colour in dot
        assert "shape=box" in dot  # inputs
        assert dot.count("peripheries=2") == 4  # f, its tangent, and two adjoints
        assert "\\n1.284" in dot  # exp(0.25) printed on its node
        assert "∂f/∂x = " in dot and "∂f/∂y = " in dot
    # the expression view folds constants into their users: no node for the 2 of x**2
    dot = ga.picture(f).dot
    assert dot.count(COLOURS["primal"]) == len(ga.to_networkx([f])) - 1 and "□**2" in dot


def _svg_nodes(svg: str) -> dict[str, list[str]]:
    """The text lines of each node of an SVG that dot wrote, by node name."""
    import xml.etree.ElementTree as ET

    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes = {}
    for g in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "node":
            nodes[g.find("s:title", ns).text] = [t.text for t in g.findall("s:text", ns)]
    return nodes


def test_the_seed_adjoint_picture_reads_like_the_reverse_trace(tmp_path):
    """exp(x**2) at x = 2: v̄3 = 1, v̄2 = v3·v̄3 = 54.6, v̄1 = 2v1·v̄2 = 218.4, read back from the SVG."""
    x = ga.symbols("x")
    pic = ga.picture(ga.exp(x**2), [x], parts=("primal", "adjoint"), at={x: 2.0})
    nodes = _svg_nodes(open(pic.save(str(tmp_path / "seed.svg")), encoding="utf-8").read())
    assert nodes["p1"] == ["v1 = x", "2"] and nodes["p2"] == ["v2 = v1**2", "4"]
    assert nodes["p3"] == ["v3 = exp(v2)", "54.6"]
    assert nodes["a3"] == ["v̄3 = 1", "(seed)"]
    assert nodes["a2"] == ["v̄2 = v3 * v̄3", "54.6"]
    assert nodes["a1"] == ["v̄1 = 2*v1 * v̄2", "∂f/∂x = 218.4"]
    # the adjoint edges carry the local factors and point from the output back to the input
    assert 'a1 -> a2 [label="× 2*v1", dir=back' in pic.dot and 'a2 -> a3 [label="× v3", dir=back' in pic.dot
    assert "p3 -> a3 [style=dashed" in pic.dot  # the sweep starts at the output
    assert "p1 -> p2;" in pic.dot  # one argument that is not a constant: no number


def _picture_nodes(dot: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'^\s+([pta]\d+) \[label="([^"]*)"', dot, re.M))


def test_the_sweep_picture_mirrors_the_trace_tables_node_for_node():
    x, y = ga.symbols("x y")
    f = x * y + ga.sin(x) - y / x
    at = {x: 2.0, y: 3.0}
    dot = ga.picture(f, [x, y], parts=("primal", "tangent", "adjoint"), at=at).dot
    nodes = _picture_nodes(dot)
    forward = ga.trace(f, [x, y], at=at, mode="forward")
    reverse = ga.trace(f, [x, y], at=at, mode="reverse")
    for row in forward.rows:
        v = row["variable"].split()[0]
        label = nodes["p" + v[1:]]
        assert label.startswith(f"{v} = ") and ga.expr.format_value(row["value"]) in label
        assert nodes["t" + v[1:]].endswith(ga.expr.format_value(row["tangent"]))
    adjoint_rows = [r for r in reverse.rows if r["sweep"] == "adjoint"]
    final = {r["variable"]: r["adjoint"] for r in adjoint_rows}
    assert sorted(k for k in nodes if k[0] == "a") == sorted("a" + v[2:] for v in final)
    for v, value in final.items():
        assert nodes["a" + v[2:]].replace("\\n(seed)", "").endswith(ga.expr.format_value(value))
    # one red edge per contribution row (the seed row has none), and x's adjoint sums three of them
    assert dot.count("dir=back") == len(adjoint_rows) - 1
    assert nodes["a1"].count(" + ") == 2 and "∂f/∂x = 3.334" in nodes["a1"] and "∂f/∂y = 1.5" in nodes["a2"]
    # argument order shows where it matters: v6 = v2/v1 gets numbered edges, v3 = v1*v2 does not
    assert 'p2 -> p6 [label="1"]' in dot and 'p1 -> p6 [label="2"]' in dot and "p1 -> p3;" in dot
    assert ga.trace(f, [x, y], at=at, mode="reverse").picture().dot.count("dir=back") == len(adjoint_rows) - 1
    assert "cluster_tangent" in forward.picture().dot


def test_the_expression_view_says_what_each_output_is():
    """x*y + sin(x): the input x is also ∂f/∂y, and the picture says so."""
    x, y = ga.symbols("x y")
    dot = ga.picture(x * y + ga.sin(x), [x, y], parts=("primal", "adjoint"), view="expression").dot
    assert 'label="x\\n∂f/∂y", shape=box' in dot
    assert "∂f/∂x" in dot and 'label="+\\nf"' in dot
    dot = ga.picture(x - y, [x, y], parts=("primal",)).dot  # argument order on a non-commutative op
    assert re.search(r'n0_0 -> n0_(\d+) \[label="1"\];\n  n0_1 -> n0_\1 \[label="2"\]', dot)
    assert 'label="1"' not in ga.picture(x * y).dot


def test_names_are_data_in_the_dot_text(tmp_path):
    import sympy as sp

    with ga.Graph():  # a SymPy name may hold any text: quotes, brackets, backslashes, newlines
        f = ga.from_sympy(sp.exp(sp.Symbol('a"];\n b [label="x\\')))
        (a,) = f.args
        for view in ("sweep", "expression"):
            pic = ga.picture(f, [a], parts=("primal", "adjoint"), at={a: 1.0}, view=view)
            nodes = _svg_nodes(open(pic.save(str(tmp_path / "n.svg")), encoding="utf-8").read())
            assert len(nodes) == (4 if view == "sweep" else 2)  # exp(a) is its own derivative
            first = [lines[0].replace("\xa0", " ") for lines in nodes.values()]  # dot writes nbsp
            assert any(line.endswith('a"];  b [label="x\\') for line in first)


def test_large_graphs_are_cut_and_say_so():
    xs = ga.symbols("x0:200")
    f = sum(ga.sin(x) * x for x in xs)
    dot = ga.picture(f, xs, parts=("adjoint",), max_nodes=50).dot  # 200 outputs, 1000 nodes
    assert dot.count("fillcolor") == 50
    assert "950 more nodes not shown" in dot
    assert ga.picture(f, max_nodes=30).dot.count("fillcolor") == 30
    # with a point, a graph too large for the sweep view is drawn as expressions, cut the same way
    dot = ga.picture(f, xs, parts=("primal", "adjoint"), at={x: 1.0 for x in xs}, max_nodes=50).dot
    assert "cluster_adjoint" not in dot and "more nodes not shown" in dot


def test_before_and_after_the_passes_side_by_side():
    x, y = ga.symbols("x y")
    dot = ga.picture_passes([x * y + y * x], [x, y]).dot
    assert "cluster_0" in dot and "cluster_1" in dot
    assert "before the passes: 5 nodes" in dot and "after the passes: 4 nodes" in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_renderer_writes_files(tmp_path):
    x = ga.symbols("x")
    pic = ga.picture(ga.exp(x**2), [x], parts=("primal", "adjoint"))
    assert b"<svg" in open(pic.save(str(tmp_path / "p.svg")), "rb").read()[:500]
    assert pic._repr_svg_().lstrip().startswith("<?xml")


def test_without_any_renderer_dot_still_works_and_the_rest_says_what_to_install(tmp_path, monkeypatch):

    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(pictures, "dot_program", lambda: None)  # an install without graphviz-pure
    x = ga.symbols("x")
    pic = ga.picture(ga.exp(x**2))
    assert "digraph" in open(pic.save(str(tmp_path / "p.dot"))).read()
    with pytest.raises(ga.pictures.PictureError, match="install Graphviz .* or graphviz-pure"):
        pic.save(str(tmp_path / "p.svg"))
    assert pic._repr_svg_() is None


def test_picture_errors():
    x = ga.symbols("x")
    with pytest.raises(ValueError, match="parts must be"):
        ga.picture(x, [x], parts=("colour",))
    with pytest.raises(ValueError, match="need wrt"):
        ga.picture(x, parts=("adjoint",))
    with pytest.raises(ValueError, match="view must be"):
        ga.picture(x, view="table")
    with pytest.raises(ValueError, match="sweep view shows values"):
        ga.picture(x, view="sweep")
    with pytest.raises(ValueError, match="cannot write .jpg"):
        ga.picture(x).save("p.jpg")


def test_the_demo_writes_svg_and_png_with_no_system_graphviz(tmp_path):
    """pip install . brings graphviz-pure: with no Graphviz on PATH (only the
    environment's own scripts), the demo still writes SVG and PNG pictures."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable), GRAPHAD_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "graphad", "demo", "--out", str(tmp_path / "demo")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for name in ("computation", "tangent", "adjoint"):
        svg = (tmp_path / "demo" / f"{name}.svg").read_text()
        assert svg.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in svg
        assert (tmp_path / "demo" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "218.4" in (tmp_path / "demo" / "adjoint.svg").read_text()


def test_without_dot_pictures_use_graphviz_pure(monkeypatch):
    real_which = pictures.shutil.which
    monkeypatch.setattr(pictures.shutil, "which", lambda name: None if name == "dot" else real_which(name))
    program = pictures.dot_program()
    assert program is not None and os.path.basename(program).startswith("graphviz-pure")


def test_the_sweep_view_agrees_with_the_traces_at_the_edges_of_the_cases():
    """Found by a hostile review: seeds as trace takes them, outputs that are inputs or
    feed other outputs, constant outputs, repeated outputs, symbols f does not read."""
    from graphad.expr import constant

    with ga.Graph():
        x, y, z = ga.symbols("x y z")
    f = x * y + ga.sin(x)
    at = {x: 2.0, y: 3.0}
    want = ga.trace(f, [x, y], at=at, mode="forward", seed={x: 1.0, y: 0.0}).rows[-1]["tangent"]
    nodes = _picture_nodes(ga.picture(f, [x, y], parts=("primal", "tangent"), at=at, seed={x: 1.0}).dot)
    assert nodes["t5"].endswith(f"∂f/∂x = {ga.expr.format_value(want)}")  # the seed of y is 0
    assert _picture_nodes(ga.picture(x, [x], parts=("primal", "adjoint"), at=at).dot)["a1"] == \
        "v̄1 = 1\\n∂f/∂x = 1"
    u = ga.sin(x)
    nodes = _picture_nodes(ga.picture([u, 2 * u], [x], parts=("primal", "adjoint"), at={x: 1.0}).dot)
    assert nodes["a2"] == "v̄2 = 1 + 2 * v̄3\\n3"  # its own seed, then what v3 passes back
    dot = ga.picture(constant(3.0, x.graph), [x], parts=("primal", "adjoint"), at=at).dot
    assert 'label="3\\nf = 3"' in dot and "∂f/∂x = 0" in dot  # drawn as an expression
    twice = ga.picture([u * y, u * y], [x], parts=("primal", "adjoint"), at=at)
    once = ga.grad(2 * u * y, x)
    assert f"= {ga.expr.format_value(ga.evaluate(once, at))}" in _picture_nodes(twice.dot)["a1"]
    assert "∂f/∂z = 0" in ga.picture(x * y, [z], parts=("primal", "adjoint"), at=at).dot
    # forward edges only where a partial is not zero: none into the comparison x > y
    dot = ga.picture(ga.where(x > y, x * x, y), [x, y], parts=("primal", "tangent"), at=at).dot
    assert not re.search(r"-> t3\b", dot) and "v̇3 = 0" in dot


def test_picture_arguments_are_checked():
    x, y = ga.symbols("x y")
    for bad in ({"seed": 2.0}, {"seed": [1.0]}, {"seed": {ga.symbols("q"): 1.0}}):
        with pytest.raises(ValueError, match="seed"):
            ga.picture(x * y, [x, y], parts=("primal", "tangent"), at={x: 1.0, y: 2.0}, **bad)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_nodes"):
            ga.picture(x * y, max_nodes=bad)


def test_control_characters_in_names_still_draw(tmp_path):
    import sympy as sp

    with ga.Graph():
        f = ga.from_sympy(sp.exp(sp.Symbol("a\x00b\ud800c")))
        (a,) = f.args
        path = ga.picture(f, [a], parts=("primal", "adjoint"), at={a: 1.0}).save(str(tmp_path / "c.svg"))
        assert "a b?c" in open(path, encoding="utf-8").read()
