"""Progress lines for long preparations: on a terminal (or GRAPHAD_PROGRESS=1), never in pipes."""

import pytest

import graphad as ga
from graphad import compiler, progress


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compiler, "_functions", {})
    monkeypatch.setattr(progress, "DELAY", 0.0)  # every preparation counts as long here


def test_a_long_compile_says_what_it_is_doing(fresh, monkeypatch, capfd):
    monkeypatch.setenv("GRAPHAD_PROGRESS", "1")
    x, y = ga.symbols("x y")
    ga.compile(ga.exp(x * y) + ga.sin(x), [x, y])
    err = capfd.readouterr().err
    assert "graphad: compiling" in err and "the passes" in err and "compiling machine code (LLVM)..." in err
    assert err.rstrip().splitlines()[-1].startswith("graphad: compiling") and " s" in err.splitlines()[-1]
    t = ga.symbols("t", shape=("n",))
    ga.compile(ga.sum(ga.exp(-x * t)), [x, t])
    assert "compiling the loops (LLVM)" in capfd.readouterr().err


def test_progress_is_silent_off_a_terminal(fresh, monkeypatch, capfd):
    monkeypatch.delenv("GRAPHAD_PROGRESS", raising=False)  # pytest's stderr is not a terminal
    x = ga.symbols("x")
    ga.compile(ga.cos(x) * 3.5, [x])
    assert "graphad:" not in capfd.readouterr().err
    monkeypatch.setenv("GRAPHAD_PROGRESS", "0")
    ga.compile(ga.cos(x) * 4.5, [x])
    assert "graphad:" not in capfd.readouterr().err


def test_a_quick_compile_prints_nothing(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHAD_PROGRESS", "1")
    monkeypatch.setattr(progress, "DELAY", 600.0)
    x = ga.symbols("x")
    ga.compile(ga.cos(x) * 5.5, [x])
    assert "graphad:" not in capfd.readouterr().err
