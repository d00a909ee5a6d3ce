import os

import numba
import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

import graphad as ga
from graphad import wrapper
from graphad.llvm import Layout


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))


def test_returned_arrays_are_fresh_writable_numpy_arrays():
    xs = ga.symbols("x0:3")
    fg = ga.compile_grad(xs[0] * xs[1] * xs[2], xs)
    x = np.array([1.0, 2.0, 3.0])
    v1, g1 = fg(x)
    v2, g2 = fg(x)
    assert v1 == 6.0 and type(g1) is np.ndarray and g1.dtype == np.float64 and g1.shape == (3,)
    assert g1.tolist() == [6.0, 3.0, 2.0]
    assert g1 is not g2 and not np.shares_memory(g1, g2)
    g1[:] = 0.0  # ours to change, and changing it changes nothing else
    assert g2.tolist() == [6.0, 3.0, 2.0] and fg(x)[1].tolist() == [6.0, 3.0, 2.0]


def test_returned_arrays_are_freed():
    xs = ga.symbols("x0:4")
    fg = ga.compile([ga.grad(xs[0] * xs[3], xs), xs[1] + xs[2], [xs[2], xs[1]]], [xs])
    x = np.arange(4.0)
    fg(x)
    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    before = rtsys.get_allocation_stats()
    point = fg._dispatcher()  # the Numba function that @njit code calls, whose arrays NRT allocates
    for _ in range(1000):
        g, s, v = point(x)
    assert g.tolist() == [3.0, 0.0, 0.0, 0.0] and s == 3.0 and v.tolist() == [2.0, 1.0]
    del g, v
    after = rtsys.get_allocation_stats()
    if not enabled:
        _nrt_python.memsys_disable_stats()
    assert after.alloc - before.alloc >= 2000  # two arrays a call...
    assert after.alloc - before.alloc == after.free - before.free  # ...and every one freed


def test_the_generated_module_returns_result_arrays():
    text = wrapper.source("k", "kernel", Layout((3,), (0, 3)), ("x",), False, False, True)
    assert "return (r, as_result(o1),)" in text
    compile(text, "wrapper", "exec")  # valid Python


def test_returning_an_array_skips_numbas_per_call_unpickle():
    @numba.njit
    def plain(n):
        return np.empty(n)

    @numba.njit
    def ours(n):
        return wrapper.as_result(np.empty(n))

    def unpickles(fn):  # calls in the function's IR, error paths included
        fn(3)
        lines = "".join(fn.inspect_llvm().values()).splitlines()
        return sum(" call " in line and "@numba_unpickle(" in line for line in lines)

    assert type(ours(3)) is np.ndarray and ours(3).shape == (3,)
    assert unpickles(ours) == unpickles(plain) - 1  # the one on every return is gone


def test_njit_code_calls_a_big_kernel_by_symbol_even_after_the_function_is_dropped():
    import gc

    from graphad import compiler

    xs = ga.symbols("x0:150")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(149))
    fg = ga.compile([f, ga.grad(f, xs)], [xs])
    assert fg._nodes > compiler.OPTIMISE_NODES  # not linked into Numba's code: called by symbol
    x = np.linspace(-1, 1, 150)
    value, grad = fg(x)

    @numba.njit
    def caller(v):
        return fg(v)  # noqa: F821 (fg is deleted below, after the compile)

    def same(got):
        return got[0] == value and np.array_equal(got[1], grad)

    assert same(caller(x))
    del fg
    gc.collect()
    assert same(caller(x))  # its machine code stays while Numba's code may call it


CACHED_CALLER = """
import sys
import os

import numba
import numpy as np
import graphad as ga

n, scale = int(sys.argv[1]), float(sys.argv[2])
xs = ga.symbols(f"x0:{n}")
f = scale * sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1))
fg = ga.compile([f, ga.grad(f, xs)], [xs])


@numba.njit(cache=True)
def caller(v):
    return fg(v)


v = np.linspace(-1, 1, n)
got, want = caller(v), fg(v)
print(got[0] == want[0] and np.array_equal(got[1], want[1]))
"""


@pytest.mark.parametrize("n", [3, 150])  # a kernel Numba compiles, and a big one it calls by symbol
def test_a_cached_njit_caller_works_in_later_processes(tmp_path, n):
    import subprocess
    import sys

    script = tmp_path / "cached_caller.py"  # Numba caches the caller next to its file
    script.write_text(CACHED_CALLER)
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_CACHE_DIR", None)
    def run(scale):
        return subprocess.run([sys.executable, str(script), str(n), scale], env=env, capture_output=True,
                              text=True, timeout=300)

    for _ in range(2):  # compiled, then loaded from Numba's cache, which names graphad's module
        out = run("1")
        assert out.returncode == 0 and out.stdout.split() == ["True"], out.stderr[-2000:]
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))
    # another graph: Numba's cached caller names a graphad function this process does not have
    # (Numba's cache does not follow globals): an error that says what to do, never a crash
    out = run("2")
    assert out.returncode == 1 and "clear that function's cache" in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("n", [3, 150])
def test_njit_callers_may_pass_strided_arrays(n):
    xs = ga.symbols(f"x0:{n}")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1))
    fg = ga.compile([f, ga.grad(f, xs)], [xs])
    caller = numba.njit(lambda v: fg(v))
    data = np.linspace(-1, 1, 2 * n)
    for v in (data[::2], data[:n][::-1], data[1:n + 1]):
        got, want = caller(v), fg(np.ascontiguousarray(v))
        assert got[0] == want[0] and np.array_equal(got[1], want[1])


def test_generated_modules_are_compiled_from_their_source_never_from_a_pyc(monkeypatch):
    """Python trusts a .pyc by its header: a damaged one would break the module for good."""
    import importlib.util
    import py_compile
    import sys

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    x = ga.symbols("x")
    fn = ga.compile(x * 3.5, [x])
    path = fn._numba_module()
    pyc = py_compile.compile(path, cfile=importlib.util.cache_from_source(path))
    with open(pyc, "r+b") as f:  # the header still matches the source; the code does not
        f.seek(24)
        f.write(b"\xff" * 20)
    assert numba.njit(lambda a: fn(a))(2.0) == 7.0


def test_the_first_njit_use_needs_no_cache_file(tmp_path, monkeypatch):
    """The cache folder removed, or the kernel's IR changed on disk, before the first
    @njit use: the module is written again, from IR that graphad checked or made anew."""
    import shutil

    folder = tmp_path / "cache"
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(folder))
    x, y = ga.symbols("x y")
    removed, changed = ga.compile(x * y + 1.25, [x, y]), ga.compile(x * y + 2.5, [x, y])
    with open(changed._base + ".ll") as f:
        text = f.read()
    assert "0x4004000000000000" in text
    with open(changed._base + ".ll", "w") as f:
        f.write(text.replace("0x4004000000000000", "0x4024000000000000"))  # 2.5 -> 10.0
    assert changed(2.0, 3.0) == 8.5 and "0x4024000000000000" not in changed.llvm_ir
    assert numba.njit(lambda a: changed(a, 3.0))(2.0) == 8.5
    shutil.rmtree(folder)
    assert numba.njit(lambda a: removed(a, 3.0))(2.0) == 7.25 and "0x3FF4000000000000" in removed.llvm_ir


def test_a_numba_cache_file_replaced_by_a_folder_is_written_anew(tmp_path):
    from graphad import numba_cache

    @numba.njit(cache=True)
    def twice(a):
        return 2 * a

    numba_cache.seal(twice)
    cache_file = twice._cache._cache_file
    if os.path.isfile(cache_file._index_path):  # from an earlier run
        os.remove(cache_file._index_path)
    os.makedirs(os.path.join(cache_file._index_path, "sub"))
    assert twice(3.0) == 6.0  # compiled, and its index written where the folder was
    assert os.path.isfile(cache_file._index_path)
