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
