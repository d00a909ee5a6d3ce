"""The fast door for calls with floats (graphad.fastcall): it is there for
float-only functions, gives the same values, conversions and errors as the
Python path without it, leaks nothing, and is absent where it must be."""

import gc
import os
import pickle
import subprocess
import sys
import tracemalloc

import numba
import numpy as np
import pytest

import graphad as ga
from graphad import fastcall
from graphad.compiler import Compiled

needs_door = pytest.mark.skipif(fastcall.door_type(Compiled) is None,
                                reason="no fast door on this interpreter")


def _without_door(fn):
    """The same compiled function (the same machine code) with no door: every call
    takes the Python path, and a single point runs as a batch of one."""
    plain = object.__new__(Compiled)
    plain.__dict__.update(fn.__dict__)
    return plain


def _outcome(call, *args, **kwargs):
    try:
        result = call(*args, **kwargs)
    except Exception as e:  # the type and message of the error are the outcome
        return type(e), str(e)
    return "ok", repr(result)


@pytest.fixture(scope="module")
def fns():
    x, y = ga.symbols("x y")
    f = ga.exp(x**2) * ga.sin(y)
    return {
        "single": ga.compile(f, [x, y]),
        "listed": ga.compile([f], [x, y]),
        "several": ga.compile([f, *ga.grad(f, [x, y])], [x, y]),
        "vector": ga.compile([f, ga.grad(f, [x, y])], [x, y]),
    }


@pytest.fixture(scope="module")
def rosenbrock():
    xs = ga.symbols("x0:12")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(11))
    return ga.compile_grad(f, xs), ga.compile_grad(f, xs, value=False)


@needs_door
def test_compiled_functions_get_the_door(fns, rosenbrock):
    for fn in [*fns.values(), *rosenbrock]:
        assert fastcall.has_door(fn) and isinstance(fn, Compiled)


@needs_door
@pytest.mark.parametrize("key", ["single", "listed", "several"])
def test_the_door_gives_what_the_python_path_gives(fns, key):
    fn = fns[key]
    plain = _without_door(fn)
    args_list = [
        (0.5, 1.25), (-0.0, float("inf")), (float("nan"), 2.0), (1, 2), (np.float64(0.5), 1.0),
        (np.float32(0.5), 1.0), (True, 1.0), (10**400, 1.0), ("1", 2.0), (None, 2.0), (1j, 2.0),
        (0.5,), (0.5, 1.0, 2.0), (), (np.array([0.5, 1.0]), 2.0), (np.array(0.5), 1.0), ([0.5], 1.0),
    ]
    for args in args_list:
        assert _outcome(fn, *args) == _outcome(plain, *args), args
    assert _outcome(fn, 0.5, y=1.0) == _outcome(plain, 0.5, y=1.0)


class _Sub(np.ndarray):
    """An ndarray subclass: not an exact ndarray, so the Python path."""


@needs_door
@pytest.mark.parametrize("which", [0, 1])
def test_the_door_gives_what_the_python_path_gives_for_arrays(rosenbrock, which):
    fn = rosenbrock[which]
    plain = _without_door(fn)
    x = np.linspace(-1.0, 1.5, 12)
    big_endian = x.astype(">f8")
    readonly = x.copy()
    readonly.flags.writeable = False
    args_list = [(x,), (x.astype(np.float32),), (x[::-1],), (np.linspace(0, 1, 24)[::2],), (x[:11],),
                 (x.reshape(3, 4),), (list(x),), (readonly,), (big_endian,), (np.ma.masked_array(x),),
                 (x.astype(np.int64),), (x.astype(complex),), (x.view(_Sub),), (1.0,), (None,), (x, x), ()]
    for args in args_list:
        assert _outcome(fn, *args) == _outcome(plain, *args), args


def test_float64_arrays_whose_dtype_is_another_object_are_taken(rosenbrock):
    """An unpickled array's float64 dtype, or one with metadata, equals NumPy's but is
    another object, which the door compares: such arrays once went round for ever."""
    fn = rosenbrock[1]
    x = np.linspace(-1.0, 1.5, 12)
    other = x.astype(np.dtype(np.float64, metadata={"unit": "m"}))
    assert other.dtype == np.float64 and other.dtype is not np.dtype(np.float64)
    for a in (pickle.loads(pickle.dumps(x)), other):
        np.testing.assert_array_equal(fn(a), fn(x))
        np.testing.assert_array_equal(fn(np.stack([a, a]))[1], fn(x))


@needs_door
def test_array_results_are_fresh_and_leak_nothing(rosenbrock):
    fn = rosenbrock[1]
    x = np.linspace(-1.0, 1.5, 12)
    first, second = fn(x), fn(x)
    assert first is not second and first.flags.owndata and first.flags.writeable and first.flags.c_contiguous
    np.testing.assert_array_equal(first, second)
    first[:] = 0.0
    assert fn(x).any()
    before = sys.getrefcount(x)
    for _ in range(10_000):
        fn(x)
    assert sys.getrefcount(x) == before
    gc.collect()
    tracemalloc.start()
    for _ in range(20_000):
        rosenbrock[0](x)
    snap1 = tracemalloc.take_snapshot()
    for _ in range(100_000):
        rosenbrock[0](x)
    snap2 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert sum(s.size_diff for s in snap2.compare_to(snap1, "filename")) < 10_000


@needs_door
def test_results_have_the_compiled_types(fns):
    v = fns["single"](0.5, 1.25)
    assert type(v) is float and v == pytest.approx(np.exp(0.25) * np.sin(1.25), rel=1e-15)
    assert type(fns["listed"](0.5, 1.25)) is tuple and len(fns["listed"](0.5, 1.25)) == 1
    value, gx, gy = fns["several"](0.5, 1.25)
    assert gx == pytest.approx(2 * 0.5 * np.exp(0.25) * np.sin(1.25), rel=1e-14)
    assert gy == pytest.approx(np.exp(0.25) * np.cos(1.25), rel=1e-14)


@needs_door
def test_the_door_leaks_no_references_and_no_memory(fns):
    fn = fns["several"]
    a, b = 0.75, -1.5
    before = sys.getrefcount(a), sys.getrefcount(b)
    for _ in range(10_000):
        fn(a, b)
    assert (sys.getrefcount(a), sys.getrefcount(b)) == before
    gc.collect()
    tracemalloc.start()
    for _ in range(20_000):
        fn(a, b)
    snap1 = tracemalloc.take_snapshot()
    for _ in range(200_000):
        fn(a, b)
    snap2 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap2.compare_to(snap1, "filename"))
    assert grown < 10_000  # bytes; a leak of one float per call would be 4.8 MB


@needs_door
def test_eight_threads_share_a_door(fns, run_threads):
    fn, errors = fns["single"], []
    want = {j: fn(j / 1000, 1.0) for j in range(2008)}  # one thread first

    def work(k):
        try:
            for i in range(2000):
                if fn((k + i) / 1000, 1.0) != want[k + i]:
                    errors.append((k, i))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    assert run_threads(work, [(k,) for k in range(8)], timeout=60) and not errors


@needs_door
def test_the_door_survives_pickling_and_njit_callers(fns):
    fn = fns["single"]
    again = pickle.loads(pickle.dumps(fn))
    assert again(0.5, 1.25) == fn(0.5, 1.25) and fastcall.has_door(again)

    @numba.njit
    def caller(a):
        return fn(a, 1.25) + 1.0

    assert caller(0.5) == fn(0.5, 1.25) + 1.0


def test_without_the_door_calls_take_the_python_path(tmp_path):
    code = ("import numpy as np\nimport graphad as ga\nfrom graphad.compiler import Compiled\n"
            "from graphad.expr import as_expr\n"
            "x, y = ga.symbols('x y')\nfn = ga.compile(ga.exp(x) * y, [x, y])\n"
            "print(type(fn) is Compiled, fn(0.0, 2.0), fn(1, 2), type(fn(0.0, 2.0)).__name__)\n"
            "g = ga.compile([x * y, [y, x]], [[x, y]])(np.array([2.0, 3.0]))\n"
            "print(g[0], g[1].tolist(), ga.compile(as_expr(2.5), [])())\n")
    env = dict(os.environ, GRAPHAD_FAST_CALL="0", GRAPHAD_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "2.0", str(2 * np.e), "float", "6.0", "[3.0,", "2.0]", "2.5"]


@needs_door
def test_a_masked_array_is_refused_even_after_another_subclass(rosenbrock):
    fn = rosenbrock[1]
    x = np.linspace(-1.0, 1.5, 12)
    fn(x.view(_Sub))  # Numba now types this dtype and shape of subclass from its table
    with pytest.raises(TypeError, match="masked array"):
        fn(np.ma.masked_array(x, mask=x > 1.0))


def test_a_misaligned_array_is_copied_not_retried_for_ever(rosenbrock):
    fn = rosenbrock[1]
    x = np.linspace(-1.0, 1.5, 12)
    fn(x.astype(">f8"))
    raw = np.frombuffer(bytearray(12 * 8 + 1), np.float64, offset=1, count=12)
    raw[:] = x
    assert not raw.flags.aligned
    np.testing.assert_array_equal(fn(raw), fn(x))


@needs_door
def test_the_door_class_pickles():
    assert pickle.loads(pickle.dumps(fastcall.door_type(Compiled))) is fastcall.door_type(Compiled)


@needs_door
def test_replacing_the_fallback_never_leaves_a_door_calling_freed_memory(tmp_path):
    """The door holds the address of the function that takes every other call: it
    must stay alive even when the class attribute is replaced and nothing else holds it."""
    code = ("import gc\nimport graphad as ga\nfrom graphad.compiler import Compiled\n"
            "x = ga.symbols('x')\nfn = ga.compile(x * 2.5, [x])\n"
            "Compiled._door_fallback = lambda self, *args, **kwargs: 'replaced'\n"
            "gc.collect()\njunk = [object() for _ in range(100_000)]\nprint(fn(2), fn(2.0))\n")
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["5.0", "5.0"]  # the door's own fallback: ints converted, as before
