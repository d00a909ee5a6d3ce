import os
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
    dot = ga.picture(f, [x, y], parts=("primal", "tangent", "adjoint"), at={x: 0.5, y: 1.0}).dot
    assert dot.startswith("digraph graphad {") and dot.rstrip().endswith("}")
    for colour in COLOURS.values():
        assert colour in dot
    assert "shape=box" in dot  # inputs
    assert dot.count("peripheries=2") == 4  # f, its tangent, and two adjoints
    assert "\\n1.284" in dot  # exp(0.25) printed on its node
    assert ga.picture(f).dot.count(COLOURS["primal"]) == len(ga.to_networkx([f]))


def test_large_graphs_are_cut_and_say_so():
    xs = ga.symbols("x0:200")
    f = sum(ga.sin(x) * x for x in xs)
    dot = ga.picture(f, xs, parts=("adjoint",), max_nodes=50).dot  # 200 outputs, 1000 nodes
    assert dot.count("fillcolor") == 50
    assert "950 more nodes not shown" in dot
    assert ga.picture(f, max_nodes=30).dot.count("fillcolor") == 30


def test_before_and_after_the_passes_side_by_side():
    x, y = ga.symbols("x y")
    dot = ga.picture_passes([x * y + y * x], [x, y]).dot
    assert "cluster_0" in dot and "cluster_1" in dot
    assert "before the passes: 5 nodes" in dot and "after the passes: 4 nodes" in dot


@pytest.mark.parametrize("ext", ["svg", "png"])
def test_matplotlib_renderer_writes_files(tmp_path, monkeypatch, ext):
    monkeypatch.setenv("PATH", "")  # no Graphviz: the matplotlib fallback
    x = ga.symbols("x")
    path = ga.picture(ga.exp(x**2), [x], parts=("primal", "adjoint"), at={x: 2.0}).save(
        str(tmp_path / f"p.{ext}"))
    data = open(path, "rb").read()
    assert (data.startswith(b"\x89PNG") if ext == "png" else b"<svg" in data[:500])
    assert ga.picture_passes([ga.exp(x**2)], [x]).save(str(tmp_path / f"q.{ext}"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_renderer_writes_files(tmp_path):
    x = ga.symbols("x")
    pic = ga.picture(ga.exp(x**2), [x], parts=("primal", "adjoint"))
    assert b"<svg" in open(pic.save(str(tmp_path / "p.svg")), "rb").read()[:500]
    assert pic._repr_svg_().lstrip().startswith("<?xml")


def test_without_any_renderer_dot_still_works_and_the_rest_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(pictures, "dot_program", lambda: None)  # an install without graphviz-pure
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    x = ga.symbols("x")
    pic = ga.picture(ga.exp(x**2))
    assert "digraph" in open(pic.save(str(tmp_path / "p.dot"))).read()
    with pytest.raises(ga.pictures.PictureError, match="install Graphviz .* or matplotlib"):
        pic.save(str(tmp_path / "p.svg"))
    assert pic._repr_svg_() is None


def test_picture_errors():
    x = ga.symbols("x")
    with pytest.raises(ValueError, match="parts must be"):
        ga.picture(x, [x], parts=("colour",))
    with pytest.raises(ValueError, match="need wrt"):
        ga.picture(x, parts=("adjoint",))
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
    assert pictures.renderer() == "dot"
