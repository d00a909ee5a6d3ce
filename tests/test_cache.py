"""The on-disk cache as users see it: where it is, how big, clearing it, its cap."""

import os
import subprocess
import sys
import time

import pytest

import graphad as ga
from graphad import cache, cli, compiler


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GRAPHAD_CACHE_MAX", raising=False)
    monkeypatch.setattr(compiler, "_functions", {})  # compile afresh into this folder
    return tmp_path


def _compile(k: float):
    x = ga.symbols("x")
    fn = ga.compile(ga.sin(x) * k, [x])
    assert fn(1.0) == pytest.approx(0.8414709848078965 * k)
    return fn


def test_entries_count_every_compiled_function_with_all_its_files(folder):
    _compile(2.0)
    _compile(3.0)
    found = cache.entries()
    assert len(found) == 2
    for entry in found:
        names = {os.path.basename(p)[len(entry.key):] for p in entry.files}
        assert {".ll", ".o", ".pkl", ".sum"} == names
        assert entry.size == sum(os.path.getsize(p) for p in entry.files)


def test_the_cache_command_tells_where_and_how_much_and_clears(folder, capsys):
    fn = _compile(2.0)
    assert cli.main(["cache"]) == 0
    out = capsys.readouterr().out
    assert f"folder: {folder}" in out and "1 compiled function(s)" in out and "cap 2.0 GB" in out
    assert cli.main(["cache", "--clear"]) == 0
    assert "removed 1 compiled function(s)" in capsys.readouterr().out
    assert cache.entries() == [] and not any(p.name.startswith("graphad_") for p in folder.iterdir())
    assert fn(1.0) == pytest.approx(2 * 0.8414709848078965)  # loaded code keeps working


def test_a_cleared_cache_is_written_anew(folder):
    _compile(2.0)
    cache.clear()
    code = "import graphad as ga\nx = ga.symbols('x')\nprint(ga.compile(ga.sin(x) * 2.0, [x])(1.0))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(2 * 0.8414709848078965) and len(cache.entries()) == 1


def test_over_its_cap_the_cache_drops_the_entries_used_longest_ago(folder, monkeypatch):
    for k in (2.0, 3.0, 4.0):
        _compile(k)
    found = cache.entries()
    for age, entry in zip((3000, 2000, 1000), found):  # the first used longest ago
        for path in entry.files:
            os.utime(path, (os.path.getmtime(path) - age,) * 2)
    oldest, middle, newest = cache.entries()
    monkeypatch.setenv("GRAPHAD_CACHE_MAX", str(middle.size + newest.size))
    assert cache.trim() == 1
    assert [e.key for e in cache.entries()] == [middle.key, newest.key]
    monkeypatch.setenv("GRAPHAD_CACHE_MAX", "1")  # a compile trims too, and keeps what it wrote
    _compile(5.0)
    assert len(cache.entries()) == 1


def test_using_an_entry_marks_it_as_used(folder):
    _compile(2.0)
    (entry,) = cache.entries()
    for path in entry.files:
        os.utime(path, (os.path.getmtime(path) - 5000,) * 2)
    assert cache.entries()[0].used < time.time() - 4000
    code = "import graphad as ga\nx = ga.symbols('x')\nga.compile(ga.sin(x) * 2.0, [x])\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=dict(os.environ))
    assert cache.entries()[0].used > time.time() - 600


@pytest.mark.parametrize("text, size", [("500M", 500_000_000), ("2G", 2_000_000_000), ("1.5kB", 1500),
                                        ("123", 123), ("0", 0)])
def test_the_cap_reads_sizes(monkeypatch, text, size):
    monkeypatch.setenv("GRAPHAD_CACHE_MAX", text)
    assert cache.limit() == size


def test_a_bad_cap_costs_a_warning_not_a_compile(folder, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHAD_CACHE_MAX", "lots")
    with pytest.warns(RuntimeWarning, match="GRAPHAD_CACHE_MAX='lots'"):
        _compile(2.0)
    monkeypatch.setenv("GRAPHAD_CACHE_MAX", "lots")
    assert cli.main(["cache"]) == 2
    assert "give a size such as 500M" in capsys.readouterr().err
