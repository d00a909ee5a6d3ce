import ast
import math
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
import sympy

import graphad as ga
from graphad.registry import OPS, elementwise_ops


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("graphad-cache")
    old = os.environ.get("GRAPHAD_CACHE_DIR")
    os.environ["GRAPHAD_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        del os.environ["GRAPHAD_CACHE_DIR"]
    else:
        os.environ["GRAPHAD_CACHE_DIR"] = old


def all_ops_function():
    """Every op on its own symbols; outputs: values, gradients, Hessian diagonals."""
    inputs, outputs, samplers = [], [], []
    for name in elementwise_ops():
        op = OPS[name]
        args = ga.symbols(f"{name}_a0:{op.arity}")
        f = ga.where(args[0] > 0, args[1], args[2]) if name == "where" else ga.expr.apply(name, *args)
        g = ga.grad(f, list(args))
        h = [ga.derivative(gi, a, mode="forward") for gi, a in zip(g, args)]
        inputs += args
        outputs += [f, *g, *h]
        samplers.append(op.sample)  # where's condition a0 > 0 is smooth in a0 = -1, 0 or 1
    return inputs, outputs, samplers


def sample_point(samplers, rng):
    return [v for s in samplers for v in s(rng)]


@pytest.mark.parametrize("parallel", [False, True])
def test_every_op_matches_the_reference_evaluator(parallel, rng):
    inputs, outputs, samplers = all_ops_function()
    fn = ga.compile(outputs, inputs, parallel=parallel)
    for _ in range(3):  # single points
        p = sample_point(samplers, rng)
        got = fn(*p)
        want = ga.evaluate(outputs, dict(zip(inputs, p)))
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    pts = np.array([sample_point(samplers, rng) for _ in range(64)]).T  # a batch
    got = fn(*pts)
    want = ga.evaluate(outputs, dict(zip(inputs, pts)))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def test_special_values_match_the_evaluator():
    x, y = ga.symbols("x y")
    outs = [ga.log(x), 1 / x, ga.sqrt(x), ga.maximum(x, y), ga.minimum(x, y), ga.sign(x), x < y,
            ga.where(x, y, 2.0), x**y, ga.atan2(x, y), ga.expr.apply("dmul", x, y)]
    fn = ga.compile(outs, [x, y])
    for x0 in [0.0, -0.0, -1.0, math.inf, -math.inf, math.nan]:
        for y0 in [0.0, 2.0, math.nan, math.inf]:
            got = np.array(fn(x0, y0))
            want = np.array(ga.evaluate(outs, {x: x0, y: y0}))
            np.testing.assert_array_equal(got, want, err_msg=f"x={x0}, y={y0}")


def rosenbrock(xs):
    return sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))


def test_vector_inputs_and_outputs(rng):
    xs = ga.symbols("x0:100")
    f = rosenbrock(xs)
    fg = ga.compile([f, ga.grad(f, xs)], [xs])
    x0 = rng.uniform(-2, 2, 100)
    value, grad = fg(x0)
    assert isinstance(value, float) and grad.shape == (100,)
    want = ga.evaluate([f, *ga.grad(f, xs)], dict(zip(xs, x0)))
    np.testing.assert_allclose([value, *grad], want, rtol=1e-13)
    points = rng.uniform(-2, 2, (5, 100))  # a batch: vectors gain a leading axis
    values, grads = fg(points)
    assert values.shape == (5,) and grads.shape == (5, 100)
    np.testing.assert_allclose(grads[3], fg(points[3])[1], rtol=1e-15)
    readonly = np.broadcast_to(x0, (100,))
    assert not readonly.flags.writeable
    np.testing.assert_array_equal(fg(readonly)[1], grad)
    np.testing.assert_array_equal(fg(x0[::-1].copy()[::-1])[1], grad)  # not contiguous
    np.testing.assert_array_equal(fg(list(x0))[1], grad)
    with pytest.raises(ValueError, match=r"takes the 100 values of \[x0, x1, \.\.\., x99\], got 99"):
        fg(np.ones(99))
    with pytest.raises(ValueError, match=r"takes the 100 values of \[x0, x1, \.\.\., x99\] in its last axis"):
        fg(np.ones((3, 99)))


def test_mixed_scalar_and_vector_inputs_broadcast():
    a, b = ga.symbols("a b")
    ws = ga.symbols("w0:3")
    f = a * ws[0] + b * ws[1] * ws[2]
    fn = ga.compile([f, [a * w for w in ws]], [a, b, ws])
    v, aw = fn(2.0, 3.0, np.array([1.0, 2.0, 3.0]))
    assert v == 2 + 18 and aw.tolist() == [2.0, 4.0, 6.0]
    v, aw = fn(np.array([[1.0], [2.0]]), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert v.shape == (2, 3) and aw.shape == (2, 3, 3)
    assert v[1, 2] == 2 * 1 + 3 * 2 * 3


def test_batches_of_any_memory_layout():
    x, y = ga.symbols("x y")
    ws = ga.symbols("w0:2")
    fn = ga.compile([x * ws[0] - y, [ws[1] * x, y]], [x, y, ws])
    rng = np.random.default_rng(1)
    big = rng.uniform(-1, 1, (4, 6))
    w = np.asfortranarray(rng.uniform(-1, 1, (4, 3, 2)))
    readonly = big[:, 1].copy()
    readonly.flags.writeable = False
    cases = [(big[:, ::2], big[:, 1::2], w),  # strided views, Fortran order
             (readonly[:, None], big[:, :3], w),  # read-only, broadcast
             (np.arange(3), 2, w[0]),  # ints
             (big[:, :1].astype(np.float32), 1.0, w)]  # float32
    for xs, ys, wv in cases:
        v, vec = fn(xs, ys, wv)
        points = np.broadcast_shapes(np.shape(xs), np.shape(ys), wv.shape[:-1])
        X, Y, W = np.broadcast_to(xs, points), np.broadcast_to(ys, points), np.broadcast_to(wv, points + (2,))
        assert v.shape == points and vec.shape == points + (2,)
        for i in np.ndindex(points):
            pv, pvec = fn(float(X[i]), float(Y[i]), np.ascontiguousarray(W[i]))
            assert v[i] == pv and vec[i].tolist() == pvec.tolist()
    empty = fn(np.zeros(0), 1.0, np.zeros((0, 2)))
    assert empty[0].shape == (0,) and empty[1].shape == (0, 2)


def test_single_output_and_int_arguments():
    x, y = ga.symbols("x y")
    fn = ga.compile(x * y + 1, [x, y])
    assert fn(2, 3) == 7.0 and type(fn(2, 3)) is float
    assert fn(np.float64(2), 3.0) == 7.0
    np.testing.assert_array_equal(fn(np.arange(3), 2), [1.0, 3.0, 5.0])
    assert ga.compile([x * y], [x, y])(2.0, 3.0) == (6.0,)
    assert ga.compile(x + 1, x)(1.0) == 2.0  # a single symbol as inputs


def test_constant_and_input_outputs():
    x, y = ga.symbols("x y")
    fn = ga.compile([x, ga.grad(x * 3.0, x), [y, 2.5]], [x, y])
    assert fn(1.5, 4.0)[0] == 1.5 and fn(1.5, 4.0)[1] == 3.0
    assert fn(1.5, 4.0)[2].tolist() == [4.0, 2.5]
    out = fn(np.ones(4), 0.0)
    assert out[1].tolist() == [3.0] * 4


@pytest.mark.parametrize("args, error, match", [
    (("a", 1.0), TypeError, "argument 'x' is 'a'"),
    ((1.0,), TypeError, r"expected 2 argument\(s\) \(x, y\), got 1$"),
    ((1.0, 2.0, 3.0), TypeError, r"expected 2 argument\(s\) \(x, y\), got 3"),
    (([1.0, 2.0],), TypeError, r"got 1; each symbol is an argument of its own: .* fn\(\*v\)"),
    ((np.ones((5, 2)),), TypeError, r"fn\(\*V\.T\)"),
    ((np.zeros(3), np.zeros(4)), ValueError, "do not broadcast"),
    ((np.array(["a"]), 1.0), TypeError, "dtype <U1"),
    ((np.array([True]), 1.0), TypeError, "dtype bool"),
    ((1 + 2j, 1.0), TypeError, "real number"),
    ((None, 1.0), TypeError, "real number"),
])
def test_bad_calls_give_clear_errors(args, error, match):
    x, y = ga.symbols("x y")
    fn = ga.compile(x * y, [x, y])
    with pytest.raises(error, match=match):
        fn(*args)


def test_a_wrong_vector_names_its_symbols():
    a, b = ga.symbols("a b")
    fn = ga.compile(a * b, [[a, b]])
    for args in [(np.ones(3),), ([1.0, 2.0, 3.0],)]:
        with pytest.raises(ValueError, match=r"^argument 1 takes the 2 values of \[a, b\], got 3$"):
            fn(*args)
    with pytest.raises(ValueError, match=r"values of \[a, b\] in its last axis, got shape \(4, 3\)"):
        fn(np.ones((4, 3)))
    with pytest.raises(TypeError, match=r"it takes one array of the 2 values: fn\(np.array"):
        fn(1.0, 2.0)
    xs = ga.symbols("x0:100")
    with pytest.raises(ValueError, match=r"the 100 values of \[x0, x1, \.\.\., x99\], got 99"):
        ga.compile_grad(sum(xs), xs)(np.ones(99))


def test_bad_compile_arguments_give_clear_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="depend on symbol.* y, which are not among the inputs"):
        ga.compile(x * y, [x])
    with pytest.raises(TypeError, match=r"inputs\[1\] is x\*y, not a symbol"):
        ga.compile(x, [x, x * y])
    with pytest.raises(ValueError, match="more than once"):
        ga.compile(x, [x, [x, y]])
    with pytest.raises(TypeError, match=r"outputs\[0\]"):
        ga.compile(["a"], [x])
    with pytest.raises(ValueError, match="empty list"):
        ga.compile([x, []], [x])


def test_large_graph_is_split_into_chunks(rng):
    xs = ga.symbols("x0:30")
    f = rosenbrock(xs)
    outs = [f, ga.grad(f, xs)]
    small = ga.compile(outs, [xs], chunk_size=7)
    assert small.llvm_ir.count("noinline") > 20
    p = rng.uniform(-1, 1, 30)
    v, g = small(p)
    want = ga.evaluate([f, *ga.grad(f, xs)], dict(zip(xs, p)))
    np.testing.assert_allclose([v, *g], want, rtol=1e-13)


def test_output_stores_are_chunked_too():
    # a sparse Jacobian stores one constant 0 into thousands of slots: those stores
    # must be spread over chunks like any other work (one huge block of them took
    # LLVM 1.5 s at 4,000 stores)
    xs = ga.symbols("x0:400")
    outs = [[xs[i] * xs[i] for i in range(400)], [ga.expr.constant(0.0)] * 2000, [xs[3]] * 2000]
    fn = ga.compile(outs, [xs], chunk_size=100)
    functions = fn.llvm_ir.split("\ndefine ")
    assert max(f.count("\n  store") for f in functions) <= 50
    sq, zeros, x3 = fn(np.arange(400.0))
    assert sq.tolist() == [i * i for i in range(400)] and not zeros.any() and (x3 == 3.0).all()


def test_readable_source_and_ir():
    x = ga.symbols("x")
    fn = ga.compile(ga.grad(ga.exp(x**2), x), [x])
    src = fn.source
    assert src.startswith("def f(x):") and "math.exp(" in src
    assert src.rstrip().splitlines()[-1].startswith("    return")
    assert "@llvm.exp.f64" in fn.llvm_ir
    assert "cse" in str(fn.report)
    namespace = {"math": math, "np": np}
    exec(src, namespace)  # the listing is runnable Python
    assert namespace["f"](2.0) == pytest.approx(fn(2.0), rel=1e-14)


def test_threads_share_one_function_safely(run_threads):
    xs = ga.symbols("x0:50")
    f = rosenbrock(xs)
    fg = ga.compile([f, ga.grad(f, xs)], [xs])
    points = np.random.default_rng(0).uniform(-1, 1, (8, 50))
    want = [fg(p) for p in points]
    errors = []

    def hammer(k):
        for _ in range(2000):
            v, g = fg(points[k])
            if v != want[k][0] or not np.array_equal(g, want[k][1]):
                errors.append(k)
                return

    assert run_threads(hammer, [(k,) for k in range(8)], timeout=120) and not errors


def test_threads_compile_call_and_drop_functions_while_numba_compiles(run_threads):
    """LLVM's global context is shared with Numba and is not thread-safe: graphad's
    compiles, loads and frees take Numba's compiler lock. (A race there is rare:
    this checks values and that nothing crashes, but would not reliably catch a
    missing lock.)"""
    errors = []

    def work(k):
        try:
            for j in range(12):
                c = 1.0 + k + j / 64  # a new function every time: compiled, called and dropped
                with ga.Graph():
                    x, y = ga.symbols("x y")
                    f = ga.sin(x * c) * y
                    value, gradient = ga.compile([f, ga.grad(f, [x, y])], [x, y])(0.5, 2.0)
                if value != pytest.approx(math.sin(0.5 * c) * 2.0, rel=1e-14) or \
                        gradient[1] != pytest.approx(math.sin(0.5 * c), rel=1e-14):
                    errors.append((k, j))
                if numba.njit(lambda a, c=c: a * c)(2.0) != 2.0 * c:  # Numba compiling meanwhile
                    errors.append((k, j, "numba"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    assert run_threads(work, [(k,) for k in range(4)], timeout=600) and not errors


@pytest.mark.parametrize("n", [0, 1, 4095, 4097, 3 * 4096 + 5, 100_003])
def test_a_parallel_batch_equals_the_serial_one(n, rng, monkeypatch):
    from graphad import compiler

    monkeypatch.setattr(compiler, "_threads", lambda: 3)  # three shares, whatever the machine
    xs = ga.symbols("x0:3")
    f = rosenbrock(xs) * ga.exp(xs[2] / 10)
    outs, ins = [f, ga.grad(f, xs)], [xs]
    points = rng.uniform(-2, 2, (n, 3))
    serial, parallel = ga.compile(outs, ins)(points), ga.compile(outs, ins, parallel=True)(points)
    assert serial[0].shape == (n,) and serial[1].shape == (n, 3)
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)


def test_an_interrupted_parallel_batch_waits_for_its_threads(monkeypatch):
    """Ctrl-C in the calling thread must not return while graphad's threads still
    write into the call's arrays (which would then be freed under them)."""
    import threading
    import time

    from graphad import compiler

    monkeypatch.setattr(compiler, "_threads", lambda: 3)  # shares for threads, whatever the machine
    caller, done, n = threading.get_ident(), [], 5 * compiler.BLOCK

    def loop(lo, hi, *pointers):
        if threading.get_ident() == caller:
            done.append((lo, hi))
            raise KeyboardInterrupt  # Ctrl-C, as the caller's own share ends
        time.sleep(0.3)
        done.append((lo, hi))

    with pytest.raises(KeyboardInterrupt):
        compiler._run_parallel(loop, n, [], None)
    assert len(done) > 1 and sum(hi - lo for lo, hi in done) == n  # every share finished first


def test_a_share_holds_what_it_writes_into_if_its_caller_returns_early(monkeypatch):
    """Ctrl-C inside ``submit``, once the share is queued: the caller has no future to
    wait for, so the share itself holds the function and the arrays until it is done."""
    import gc
    import threading
    import weakref
    from concurrent.futures import ThreadPoolExecutor

    from graphad import compiler

    class Interrupted:  # a pool whose submit is interrupted just after it queued the work
        def __init__(self, pool):
            self.pool = pool

        def submit(self, *args):
            self.pool.submit(*args)
            raise KeyboardInterrupt

    class Arrays:
        pass

    caller, started, release = threading.get_ident(), threading.Event(), threading.Event()

    def loop(lo, hi, *pointers):
        if threading.get_ident() != caller:
            started.set()
            release.wait(30)

    pool = ThreadPoolExecutor(2)
    monkeypatch.setattr(compiler, "_threads", lambda: 3)
    monkeypatch.setattr(compiler, "_pool", (os.getpid(), Interrupted(pool)))
    kept = Arrays()
    held = weakref.ref(kept)
    with pytest.raises(KeyboardInterrupt) as info:
        compiler._run_parallel(loop, 5 * compiler.BLOCK, [], kept)
    info.value.__traceback__ = None  # the caller's frames, gone
    del info, kept
    gc.collect()
    assert started.wait(30) and held() is not None  # the running share holds them
    release.set()
    pool.shutdown(wait=True)
    gc.collect()
    assert held() is None  # ...and only until it is done


THREADS_SCRIPT = textwrap.dedent("""
    import atexit, sys, threading
    import numba
    import numpy as np
    import graphad as ga

    if sys.argv[1] == "one":
        numba.set_num_threads(1)
    x = ga.symbols("x")
    f = ga.compile(ga.sin(x) * 2, [x], parallel=True)
    points = np.linspace(0, 1, 100_000)
    want = f(points)
    print("threads", sum(t.name.startswith("graphad") for t in threading.enumerate()))
    atexit.register(lambda: print("at exit", np.array_equal(f(points), want)))  # the pool is shut down
""")


def test_parallel_batches_take_numbas_thread_count_and_run_at_exit(tmp_path):
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path), NUMBA_NUM_THREADS="3")
    for setting, threads in (("three", "2"), ("one", "0")):  # besides the calling thread
        out = subprocess.run([sys.executable, "-c", THREADS_SCRIPT, setting], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["threads", threads, "at", "exit", "True"], out.stderr


def test_the_machine_code_of_dropped_functions_is_freed(tmp_path, monkeypatch, memory_growth):
    import weakref

    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))

    def load(k):  # a function made, called (at a point and on a batch) and dropped
        with ga.Graph():
            x, y = ga.symbols("x y")
            f = ga.exp(x * (1.0 + k)) * ga.sin(y)
            fn = ga.compile([f, ga.grad(f, [x, y])], [x, y])
            return fn(0.5, 1.5)[0] + fn(np.ones(3), 1.5)[0].sum(), weakref.ref(fn)

    assert load(0)[1]() is None  # freed at once: nothing refers back to it
    assert memory_growth(load) < 4  # each load took about 200 kB that Numba never freed: 60 MB


def test_pickle_round_trip_in_process():
    x, y = ga.symbols("x y")
    fn = ga.compile([ga.sin(x) * y, ga.grad(ga.sin(x) * y, [x, y])], [x, y])
    back = pickle.loads(pickle.dumps(fn))
    assert back(0.3, 2.0)[0] == fn(0.3, 2.0)[0]


SCRIPT = textwrap.dedent("""
    import pickle, sys, graphad as ga
    xs = ga.symbols("x0:20")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(19))
    fn = ga.compile([f, ga.grad(f, xs)], [xs])
    print(int(fn._from_cache), fn([0.5] * 20)[0])
    if len(sys.argv) > 1:
        sys.stdout.buffer.write(b"PICKLE" + pickle.dumps(fn))
""")


def run(code, cache, *args):
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def test_a_second_process_loads_from_the_cache(tmp_path):
    first = run(SCRIPT, tmp_path).split()
    second = run(SCRIPT, tmp_path).split()
    assert first[0] == b"0"  # compiled
    assert second[0] == b"1"  # loaded, not compiled
    assert first[1] == second[1]


def test_corrupt_cache_entries_are_rebuilt(tmp_path):
    run(SCRIPT, tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage\x00")
    out = run(SCRIPT, tmp_path).split()
    assert out[0] == b"0" and float(out[1]) == pytest.approx(6.5 * 19)


def test_compiled_functions_pickle_into_a_fresh_process(tmp_path):
    blob = run(SCRIPT, tmp_path, "pickle").split(b"PICKLE", 1)[1]
    code = "import pickle, sys; fn = pickle.loads(sys.stdin.buffer.read()); print(fn([0.5] * 20)[0])"
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], input=blob, env=env, capture_output=True, check=True)
    assert float(out.stdout) == pytest.approx(6.5 * 19)


def square_sum(fn_and_x):
    fn, x = fn_and_x
    return fn(x)


def test_multiprocessing_pool():
    import multiprocessing

    x = ga.symbols("x")
    fn = ga.compile(ga.grad(ga.exp(x**2), x), [x])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(square_sum, [(fn, 2.0), (fn, 1.0)])
    assert got == [fn(2.0), fn(1.0)]


def test_compile_grad_matches_grad_then_compile(rng):
    xs = ga.symbols("x0:30")
    f = rosenbrock(xs) + ga.sin(xs[0] * xs[5])
    both = ga.compile_grad(f, xs)
    only = ga.compile_grad(f, xs, value=False)
    p = rng.uniform(-1, 1, 30)
    value, g = both(p)
    want = ga.evaluate([f, *ga.grad(f, xs)], dict(zip(xs, p)))
    np.testing.assert_allclose([value, *g], want, rtol=1e-13)
    np.testing.assert_array_equal(only(p), g)
    assert only(np.tile(p, (4, 1))).shape == (4, 30)  # batches too
    assert len(both.program) > 0 and "dce" in str(both.report)  # built lazily when asked
    assert pickle.loads(pickle.dumps(both))(p)[0] == value


def test_compile_grad_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(TypeError, match="one expression"):
        ga.compile_grad([x, y], [x, y])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.compile_grad(x * y, [x, x * y])
    with pytest.raises(ValueError, match="more than once"):
        ga.compile_grad(x * y, [x, x])
    with pytest.raises(ValueError, match="not among the inputs"):
        ga.compile_grad(x * y, [x])


GRAD_SCRIPT = textwrap.dedent("""
    import graphad as ga, graphad.compiler as C
    built = []
    original = C.GradientSource.program
    C.GradientSource.program = lambda self: built.append(1) or original(self)
    xs = ga.symbols("x0:50")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(49))
    fg = ga.compile_grad(f, xs)
    print(len(built), fg([0.5] * 50)[0])
""")


def test_compile_grad_cache_hit_skips_building_the_gradient(tmp_path):
    first = run(GRAD_SCRIPT, tmp_path).split()
    second = run(GRAD_SCRIPT, tmp_path).split()
    assert first[0] == b"1" and second[0] == b"0"  # built once, then loaded
    assert float(second[1]) == pytest.approx(6.5 * 49)


# -- user text is data, never code --------------------------------------------------------

HOSTILE = [
    "x')\nimport os; os.environ['GRAPHAD_PWNED'] = '1'\n#",
    'x"\nimport os; os.environ["GRAPHAD_PWNED"] = "1"\n#',
    "x\\\nimport os",
    "x}{0}'''\"\"\"",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_symbol_names_never_become_code(name, cache_dir):
    s, t = sympy.Symbol(name), sympy.Symbol(name + "1")
    f, g = ga.from_sympy([sympy.sin(s) * t, s + t])
    x, y = (ga.Expr(f.graph, f.graph.symbol_id(n)) for n in (name, name + "1"))
    scalar = ga.compile([f, g], [x, y])
    vector = ga.compile([f, [f, g]], [[x, y]])  # a vector input: its name is in a length check
    assert "GRAPHAD_PWNED" not in os.environ
    assert scalar(0.5, 2.0)[0] == pytest.approx(math.sin(0.5) * 2.0)
    assert vector(np.array([0.5, 2.0]))[0] == pytest.approx(math.sin(0.5) * 2.0)
    with pytest.raises(ValueError, match="takes the 2 values of"):
        vector(np.array([0.5, 2.0, 3.0]))
    for fn in (scalar, vector):  # the Numba functions that @njit code calls: generated Python modules
        fn._dispatcher()
    modules = list(cache_dir.glob("*.py"))
    assert len(modules) >= 2 and "GRAPHAD_PWNED" not in os.environ
    for path in modules:  # they import only what graphad writes
        imported = {a.name for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
        assert "os" not in imported
    with pytest.raises(ValueError, match="must have length 2"):
        numba.njit(lambda v: vector(v))(np.array([0.5, 2.0, 3.0]))
    assert ga.crosscheck(f, [x, y], points=1)  # SymPy's lambdify gets the name as data too
    assert "GRAPHAD_PWNED" not in os.environ


@pytest.mark.parametrize("option, value", [
    ("parallel", "print(1) or False"), ("parallel", 1), ("assume_finite", "True"),
    ("chunk_size", "3"), ("chunk_size", 0), ("chunk_size", True), ("passes", "cse"), ("passes", [print]),
])
def test_options_are_type_checked(option, value):
    x = ga.symbols("x")
    with pytest.raises(TypeError, match=option if option != "passes" else "pass"):
        ga.compile(ga.sin(x), [x], **{option: value})
    with pytest.raises(TypeError):
        ga.compile_grad(ga.sin(x), [x], **{option: value})


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, -3.0, 5e-324, 1e308, math.inf, -math.inf, math.nan]


def test_every_op_matches_the_evaluator_at_special_values_sign_of_zero_included():
    """One convention for both backends: nan, +-inf, signed zeros, subnormals and
    the edges of each domain give the same value (and sign) compiled and evaluated;
    libm and NumPy may differ in the last bits of a transcendental function."""
    xs = ga.symbols("s0:3")
    names = elementwise_ops()
    outs = [ga.expr.apply(name, *xs[:OPS[name].arity]) for name in names]
    fn = ga.compile(outs, list(xs))
    for a in SPECIAL:
        for b in SPECIAL:
            for c in (0.0, 1.0):
                got = fn(a, b, c)
                want = ga.evaluate(outs, {xs[0]: a, xs[1]: b, xs[2]: c})
                for name, g, w in zip(names, got, want):
                    where = f"{name} at {a}, {b}, {c}: compiled {g}, evaluated {w}"
                    assert math.isnan(g) == math.isnan(w), where
                    if not math.isnan(g):
                        assert g == pytest.approx(w, rel=1e-15, abs=0), where
                        assert math.copysign(1, g) == math.copysign(1, w), where


def test_masked_arrays_are_refused_not_unmasked():
    x = ga.symbols("x")
    fn = ga.compile(ga.sin(x), [x])
    with pytest.raises(TypeError, match="masked array"):
        fn(np.ma.masked_array([1.0, 2.0], mask=[False, True]))


FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import numpy as np
    import graphad as ga

    x = ga.symbols("x")
    parallel = ga.compile(ga.sin(x) * 2, [x], parallel=True)
    serial = ga.compile(ga.sin(x) * 3, [x])
    v = ga.symbols("v", shape=("n",))
    numba_threads = ga.compile(ga.sum(ga.sin(v)), [v], parallel=True)  # array loops: Numba's threads
    points = np.linspace(0, 1, 100_000)

    def use(fn):
        return float(np.sum(fn(points)))

    if __name__ == "__main__":
        for fn in (parallel, numba_threads):  # the parent's threads start here
            use(fn)
        with mp.get_context("fork").Pool(2) as pool:
            for name, fn in (("serial", serial), ("parallel", parallel)):
                print("fork", name, pool.map(use, [fn, fn]) == [use(fn)] * 2)
            try:
                pool.map(use, [numba_threads])
            except RuntimeError as e:
                print("fork Numba's threads refused:", "spawn" in str(e))
        with mp.get_context("spawn").Pool(2) as pool:
            print("spawn Numba's threads", pool.map(use, [numba_threads] * 2) == [use(numba_threads)] * 2)
""")


def test_parallel_functions_and_fork_a_clear_error_never_a_hang(tmp_path):
    script = tmp_path / "forking.py"
    script.write_text(FORK_SCRIPT)
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")[:4]
    assert lines == ["fork serial True", "fork parallel True", "fork Numba's threads refused: True",
                     "spawn Numba's threads True"]


# -- a cache that heals: a cache problem costs a recompile and at most one warning --------


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """GRAPHAD_CACHE_DIR set for one test, and the fallbacks it makes forgotten afterwards."""
    from graphad import compiler

    def use(path):
        monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(path))
        return path

    yield use
    compiler._fallbacks.clear()


def _fresh_function(k):
    """A function no other test compiles (its constant is new), so it is a new cache entry."""
    x = ga.symbols("x")
    return ga.compile(ga.sin(x) * (k + 0.125), [x]), k + 0.125  # a new constant: a new cache entry


@pytest.mark.parametrize("where", ["a file", "under a file", "in /proc"])
def test_an_unusable_cache_folder_costs_one_warning(tmp_path, own_cache, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    path = {"a file": blocker, "under a file": blocker / "sub", "in /proc": "/proc/graphad-test"}[where]
    own_cache(path)
    with pytest.warns(RuntimeWarning, match="cannot be used") as caught:
        fn, c = _fresh_function(200 + len(where))
        fn2, c2 = _fresh_function(300 + len(where))
    assert len(caught) == 1
    assert fn(1.0) == pytest.approx(math.sin(1.0) * c)
    assert fn2(np.ones(2))[0] == pytest.approx(math.sin(1.0) * c2)


def test_a_cache_folder_that_vanishes_under_a_running_function(tmp_path, own_cache):
    import shutil

    own_cache(tmp_path / "cache")
    fn, c = _fresh_function(407)
    assert fn(1.0) == pytest.approx(math.sin(1.0) * c)
    shutil.rmtree(tmp_path / "cache")
    np.testing.assert_allclose(fn(np.ones(3)), np.sin(1.0) * c)  # the batch loop's first compile


def test_a_full_disk_costs_a_warning_and_leaves_no_temporary_files(tmp_path, own_cache, monkeypatch):
    import errno

    from graphad import kernels

    own_cache(tmp_path / "cache")
    real = kernels.write_file

    def full(path, data, optional_only):
        if not optional_only or path.endswith(".pkl"):
            with open(f"{path}.tmp", "w"):  # a write that starts, then fails as a full disk does
                pass
            os.remove(f"{path}.tmp")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(kernels, "write_file", lambda p, d: full(p, d, optional_only=True))
    fn, c = _fresh_function(511)  # only the optional program pickle fails: no warning
    assert fn(2.0) == pytest.approx(math.sin(2.0) * c)
    assert fn.program is not None  # recomputed
    monkeypatch.setattr(kernels, "write_file",
                        lambda p, d: full(p, d, optional_only=False) if str(tmp_path) in p else real(p, d))
    with pytest.warns(RuntimeWarning, match="No space left"):
        fn, c = _fresh_function(512)
    assert fn(2.0) == pytest.approx(math.sin(2.0) * c)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


CACHE_SCRIPT = "import graphad as ga; x = ga.symbols('x'); print(ga.compile(ga.sin(x) * 5.5, [x])(1.0))"


def test_a_cache_file_replaced_by_a_folder_is_repaired(tmp_path):
    run(CACHE_SCRIPT, tmp_path)
    files = list(tmp_path.glob("graphad_*.ll")) + list(tmp_path.glob("graphad_*.o"))
    assert len(files) == 2
    for path in files:
        path.unlink()
        path.mkdir()
    assert float(run(CACHE_SCRIPT, tmp_path)) == pytest.approx(math.sin(1.0) * 5.5)
    assert all(path.is_file() for path in files)


STALE_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import graphad as ga

    factor = float(sys.argv[1])

    def slope(x):  # a helper the partial calls: its value must reach the cache key
        return factor * ga.cos(x)

    op = ga.define_op("wave_t", lambda x: factor * np.sin(x), [lambda x, out: slope(x)],
                      scalar=lambda x: np.sin(x))
    x = ga.symbols("x")
    print(ga.compile_grad(op(x), [x], value=False)(np.array([0.0]))[0])
""")


def test_a_custom_rules_helper_is_part_of_the_cache_key(tmp_path):
    assert float(run(STALE_SCRIPT, tmp_path, "2.0")) == 2.0
    assert float(run(STALE_SCRIPT, tmp_path, "3.0")) == 3.0  # was 2.0: the old derivative


def test_passes_with_one_name_are_told_apart():
    import types

    from graphad.passes import cse

    def make(extra):
        module = types.ModuleType("my_pass")

        def run_pass(program, **options):
            return cse.run(program, **options) if extra else program

        module.run = run_pass
        return module

    x, y = ga.symbols("x y")
    f = x * y + y * x  # two nodes until CSE puts commuted operands in one order
    with_cse, without = (ga.compile(f, [x, y], passes=[make(extra)]) for extra in (True, False))
    assert len(with_cse.program) < len(without.program)


FLIP_SCRIPT = "import graphad as ga; x = ga.symbols('x'); fn = ga.compile(x * 2.5 + 1.25, [x]); " \
              "print(fn(2.0), repr(fn.source))"
# a change in each kind of cache file that would give a wrong value or a wrong program if trusted
FLIPS = {".ll": (b"0x4004000000000000", b"0x4005000000000000"),  # 2.5 -> 2.625 in the kernel
         ".o": (struct.pack("<d", 2.5), struct.pack("<d", 2.625)),  # the same constant in machine code
         ".pkl": (struct.pack(">d", 2.5), struct.pack(">d", 2.625))}  # the optimised program's 2.5


@pytest.mark.parametrize("ext", sorted(FLIPS))
def test_a_changed_cache_file_is_rewritten_not_trusted(tmp_path, ext, monkeypatch):
    first = run(FLIP_SCRIPT, tmp_path)
    assert first.split()[0] == b"6.25"
    (path,) = tmp_path.glob(f"graphad_*{ext}")
    old, new = FLIPS[ext]
    assert old in path.read_bytes()
    path.write_bytes(path.read_bytes().replace(old, new))
    assert run(FLIP_SCRIPT, tmp_path) == first  # the value, and the optimised program, as before


CORRUPT_SCRIPT = textwrap.dedent("""
    import numba
    import numpy as np
    import graphad as ga
    x, y = ga.symbols("x y")
    f = ga.exp(x * 0.75) * ga.sin(y)
    fn = ga.compile([f, ga.grad(f, [x, y])], [x, y])
    value, gradient = fn(0.5, 1.5)
    batch = fn(np.array([0.5, 0.25]), 1.5)[0]
    floats = ga.compile([f, *ga.grad(f, [x, y])], [x, y])(0.5, 1.5)
    from_numba = numba.njit(lambda a: fn(a, 1.5)[0])(0.5)  # Numba's function for @njit callers
    print(repr(value), repr(list(gradient)), repr(list(batch)), repr(floats), repr(from_numba))
    v = ga.symbols("v", shape=("n",))
    a = ga.sum(ga.exp(v * 0.75) * v)
    points = np.array([0.5, 1.0, 1.5])
    own, grad = ga.compile([a, ga.grad(a, v)], [v])(points)  # array loops compiled by graphad
    by_numba = ga.compile(a, [v], parallel=True)(points)  # array loops compiled by Numba
    print(repr(own), repr(list(grad)), repr(by_numba))
""")
TRIALS = int(os.environ.get("GRAPHAD_CORRUPTION_TRIALS", "24"))


def test_random_damage_to_any_cache_file_never_crashes_or_lies(tmp_path, monkeypatch):
    """Flip a byte, zero 64 bytes or truncate a random cache file (graphad's and
    Numba's, of scalar and array functions), then run again in a fresh process:
    the same numbers, no crash (``-s`` prints each trial)."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    expected = run(CORRUPT_SCRIPT, tmp_path)
    rng = np.random.default_rng(2026)
    for trial in range(TRIALS):
        files = sorted(p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
        path = files[rng.integers(len(files))]
        data = bytearray(path.read_bytes())
        kind = ("flip", "zeros", "truncate")[trial % 3]
        if data and kind == "flip":
            data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        elif data and kind == "zeros":
            at = int(rng.integers(len(data)))
            data[at:at + 64] = bytes(len(data[at:at + 64]))
        else:
            data = data[:int(rng.integers(len(data) + 1))]
        path.write_bytes(bytes(data))
        env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", CORRUPT_SCRIPT], env=env, capture_output=True,
                             timeout=300)
        what = f"trial {trial}: {kind} {path.name}"
        print(what, out.returncode, out.stdout == expected)
        assert out.returncode == 0, f"{what}: exit {out.returncode}: {out.stderr[-500:]}"
        assert out.stdout == expected, f"{what}: {out.stdout} != {expected}"


def test_a_gradient_list_compiles_to_one_array_and_a_plain_list_to_floats():
    xs = ga.symbols("x0:4")
    f = sum(x**3 for x in xs)
    g = ga.grad(f, xs)
    assert isinstance(g, ga.Vector) and isinstance(ga.jvp([f, f], xs, [1.0] * 4), ga.Vector)
    x = np.arange(4.0)
    got = ga.compile(g, [xs])(x)
    assert type(got) is np.ndarray and got.tolist() == (3 * x**2).tolist()
    assert ga.compile([*g], [xs])(x) == tuple(3 * x**2)  # a plain list: one float each
    value, grad = ga.compile([f, g], [xs])(x)
    assert value == 36.0 and grad.tolist() == (3 * x**2).tolist()
    batch = ga.compile(g, [xs])(np.stack([x, x + 1]))
    assert batch.shape == (2, 4)
