import math
import os
import subprocess
import sys

import pytest

from graphad.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_grad(capsys):
    code, out, _ = run(capsys, "grad", "exp(x**2)*sin(y)", "--at", "x=2,y=1")
    assert code == 0
    assert f"df/dx = {4 * math.exp(4) * math.sin(1):.12g}" in out
    assert f"df/dy = {math.exp(4) * math.cos(1):.12g}" in out
    assert "mode: reverse mode" in out
    code, out, _ = run(capsys, "grad", "exp(x**2)*sin(y)", "--at", "x=2,y=1", "--mode", "forward")
    assert "mode: forward mode" in out and f"{4 * math.exp(4) * math.sin(1):.12g}" in out


@pytest.mark.parametrize("mode, numbers", [("forward", ["54.5982", "218.393"]),
                                           ("reverse", ["54.5982", "218.393"])])
def test_trace(capsys, mode, numbers):
    code, out, _ = run(capsys, "trace", "exp(x**2)", "--at", "x=2", "--mode", mode)
    assert code == 0 and all(n in out for n in numbers)
    code, out, _ = run(capsys, "trace", "exp(x**2)", "--at", "x=2", "--mode", mode, "--format", "latex")
    assert out.startswith(r"\begin{tabular}")


def test_trace_with_several_inputs_takes_a_seed(capsys):
    code, out, _ = run(capsys, "trace", "x*y", "--at", "x=2,y=3", "--seed", "x=0,y=1")
    assert code == 0 and out.rstrip().splitlines()[-1].split()[-1] == "2"


def test_graph_writes_files(capsys, tmp_path):
    for name, extra in (("g.dot", []), ("g.svg", ["--adjoint", "--at", "x=2,y=1"]),
                        ("g.png", ["--tangent", "--adjoint"]), ("o.svg", ["--optimised", "--adjoint"])):
        code, out, _ = run(capsys, "graph", "exp(x**2)*sin(y)", "--out", str(tmp_path / name), *extra)
        assert code == 0 and os.path.getsize(tmp_path / name) > 100
    assert "digraph" in (tmp_path / "g.dot").read_text()


def test_check(capsys):
    code, out, _ = run(capsys, "check", "exp(x**2)*sin(y)", "--order", "2")
    assert code == 0 and "PASS" in out


@pytest.mark.parametrize("argv, message", [
    (["grad", "__import__('os')", "--at", "x=1"], "underscore"),
    (["grad", "x.real", "--at", "x=1"], "attribute access"),
    (["grad", "lambda: 1", "--at", "x=1"], "lambdas"),
    (["grad", "[x for x in y]", "--at", "x=1"], "comprehensions"),
    (["grad", "os", "--at", "x=1"], "no value for os"),
    (["grad", "x*y", "--at", "x=1"], "no value for y"),
    (["grad", "x", "--at", "x=two"], "not a number"),
    (["grad", "x", "--at", "x"], "write name=value"),
    (["trace", "(" * 200 + "x" + ")" * 200, "--at", "x=1"], "nested"),
    (["check", "x" * 20000], "characters long"),
])
def test_bad_input_exits_with_code_2_and_says_why(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("graphad: error:") and message in err and len(err.splitlines()) == 1


def test_console_script_and_module_entry_points(tmp_path):
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "graphad", "grad", "x**3", "--at", "x=2"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "df/dx = 12" in out.stdout
    out = subprocess.run([sys.executable, "-m", "graphad", "grad", "open('x')", "--at", "x=2"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "unknown function open" in out.stderr


def test_demo_without_a_renderer_writes_dot_and_says_so(capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("graphad.pictures.dot_program", lambda: None)  # an install without graphviz-pure
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "demo"))
    assert code == 0 and "(no SVG or PNG: to write .svg files install Graphviz" in out
    assert (tmp_path / "demo" / "adjoint.dot").exists()
    code, _, err = run(capsys, "graph", "x**2", "--out", str(tmp_path / "g.png"))
    assert code == 1 and "install Graphviz" in err


def test_demo(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "demo"))
    assert code == 0
    assert "218.393" in out and "54.5982" in out and "ns per call" in out
    for name in ("computation", "tangent", "adjoint"):
        assert (tmp_path / "demo" / f"{name}.svg").stat().st_size > 100


@pytest.mark.parametrize("argv, message", [
    (["trace", "3", "--at", "x=1"], "no symbols"),
    (["check", "3"], "no symbols"),
    (["graph", "x", "--out", "/no/such/folder/g.svg"], "does not exist"),
    (["graph", "x", "--out", "."], "is a folder"),
    (["graph", "x", "--out", "g.txt"], "must end in"),
    (["graph", "x", "--out", "a" * 300 + ".svg"], "the limit is 255"),
    (["grad", "x + y", "--at", "x=1"], "no value for y"),
])
def test_bad_command_lines_are_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_demo_out_must_be_a_folder(capsys, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("")
    code, _, err = run(capsys, "demo", "--out", str(target))
    assert code == 2 and "is a file" in err


def test_check_has_a_time_budget_and_positive_points(capsys):
    slow = "exp(" + "*".join(f"x{i}" for i in range(120)) + ")"
    code, _, err = run(capsys, "check", slow, "--timeout", "1")
    assert code == 2 and "did not finish within 1 s" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "x", "--points", "-5"])
    assert exit_info.value.code == 2
    assert "not positive" in capsys.readouterr().err


def test_at_is_normalised_like_the_expression(capsys):
    code, out, _ = run(capsys, "grad", "x*y", "--at", "\uff58=2,y=3")  # a full-width x
    assert code == 0 and "df/dx = 3" in out


def test_warnings_are_one_line_each(capsys, monkeypatch):
    import warnings

    import graphad.cli as cli

    def noisy(args):
        warnings.warn("first\nsecond line", RuntimeWarning, stacklevel=1)
        warnings.warn("first\nsecond line", RuntimeWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "cmd_grad", noisy)  # build_parser reads it when main() runs
    code, _, err = run(capsys, "grad", "x", "--at", "x=1")
    assert code == 0 and err.strip() == "graphad: warning: first second line"


def test_a_check_that_cannot_run_says_why(capsys, monkeypatch):
    import graphad as ga
    from graphad.sympy_bridge import CrosscheckReport

    report = CrosscheckReport("x", 2, 0)
    report.unchecked["everything"] = "the expression is nested too deeply for SymPy, which recurses on it"
    monkeypatch.setattr(ga, "crosscheck", lambda *a, **k: report)
    code, _, err = run(capsys, "check", "sin(x)")
    assert code == 2 and "could not run: the expression is nested too deeply" in err and "within" not in err
