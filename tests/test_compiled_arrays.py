"""Compiled array graphs against the reference evaluator: every array op, serial
and parallel, at two bindings of each size name; the call's checks and errors."""

import pickle

import numpy as np
import pytest
from test_arrays import CASES, JOINT, _broadcast_shapes

import graphad as ga
from graphad.registry import OPS, elementwise_ops


def _assert_matches(got, expected, what):
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        assert np.shape(g) == np.shape(e), f"{what}: output {k}"
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-12, err_msg=f"{what}: output {k}")


def _value_and_gradient(f, syms, rng):
    """f and the gradient of a random projection of f, as one list of outputs."""
    weights = rng.standard_normal(tuple(d if isinstance(d, int) else 1 for d in f.shape))
    return [f, *ga.grad(ga.sum(f * weights * (1 + 0.5 * ga.cos(f))), syms)]


NAMES = sorted(CASES)
CHUNK = 8  # cases per compiled function: Numba's compile time grows faster than the function


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("start", range(0, len(NAMES), CHUNK))
def test_every_array_op_matches_the_evaluator(start, parallel):
    rng = np.random.default_rng(start)
    outputs, inputs, values, spans = [], [], [], {}
    with ga.Graph():
        for k, name in enumerate(NAMES[start:start + CHUNK]):
            build, _, shapes = CASES[name]
            syms = [ga.symbols(f"case{k}_{j}", shape=s) for j, s in enumerate(shapes)]
            outs = _value_and_gradient(build(*syms), syms, rng)
            spans[name] = (len(outputs), len(outputs) + len(outs))
            outputs += outs
            inputs += syms
            values += [rng.standard_normal(s) if s else float(rng.standard_normal()) for s in shapes]
        expected = ga.evaluate(outputs, dict(zip(inputs, values)))
        got = ga.compile(outputs, inputs, parallel=parallel)(*values)
    for name, (a, b) in spans.items():
        _assert_matches(got[a:b], expected[a:b], name)


def test_every_elementwise_op_broadcasts_when_compiled(rng):
    outputs, inputs, values = [], [], []
    with ga.Graph():
        for name in elementwise_ops():
            op = OPS[name]
            shapes = _broadcast_shapes(rng, op.arity)
            if name in JOINT:
                shapes = [shapes[0]] * op.arity
            if not any(shapes):
                shapes[0] = (2,)  # at least one array
            draws = [op.sample(rng) for _ in range(max(int(np.prod(s)) for s in shapes))]
            syms = [ga.symbols(f"{name}_{k}", shape=s) for k, s in enumerate(shapes)]
            vals = [np.array([d[k] for d in draws[:int(np.prod(s))]]).reshape(s)
                    for k, s in enumerate(shapes)]
            vals = [v if v.shape else float(v) for v in vals]
            f = ga.expr.apply(name, *syms)
            outputs += _value_and_gradient(f, syms, rng)
            inputs += syms
            values += vals
        expected = ga.evaluate(outputs, dict(zip(inputs, values)))
        got = ga.compile(outputs, inputs)(*values)
    _assert_matches(got, expected, "elementwise ops")


def _named_cases():
    """Graphs over size names, each with inputs for two bindings of the names."""
    x = ga.symbols("x", shape=("n",))
    A = ga.symbols("A", shape=("n", 3))
    B = ga.symbols("B", shape=(3, "m"))
    T = ga.symbols("T", shape=("b", "n", 3))
    h = ga.tanh(A @ B + 1.0)
    return {
        "rosenbrock": (ga.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2), [x]),
        "stencil": (x[2:] - 2 * x[1:-1] + x[:-2], [x]),
        "tail and head": (ga.concatenate([x[-2:], x[:3]]) * 2, [x]),
        "mlp": (ga.mean(ga.logsumexp(h, axis=1) - h[:, 0]), [A, B]),
        "softmax": (ga.softmax(A, axis=0), [A]),
        "max over n": (ga.max(A, axis=0) + ga.max(x), [A, x]),
        "mean and size": (ga.mean(A, axis=0, keepdims=True) * A, [A]),
        "transpose and reshape": (ga.reshape(ga.transpose(A) @ A, (9,)), [A]),
        "batched matmul": (ga.sum(T @ B, axis=1), [T, B]),
        "take named axis": (ga.take(A, np.array([0, 1, 1]), axis=0) * B[:, :1].T, [A, B]),
        "gather from named": (ga.take(x, np.array([2, 0, -1])), [x]),
        "stop_gradient": (ga.sum(x * ga.stop_gradient(ga.exp(x))), [x]),
        "mixed scalar": (ga.sin(x[0]) * x + ga.sum(x[1:2]), [x]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [False, True])
def test_one_compiled_function_serves_two_bindings_of_each_size_name(parallel, rng):
    with ga.Graph():
        cases = _named_cases()
        outputs, spans = [], {}
        for name, (f, syms) in cases.items():
            outs = _value_and_gradient(f, syms, rng)
            spans[name] = (len(outputs), len(outputs) + len(outs))
            outputs += outs
        inputs = [ga.symbols("x", shape=("n",)), ga.symbols("A", shape=("n", 3)),
                  ga.symbols("B", shape=(3, "m")), ga.symbols("T", shape=("b", "n", 3))]
        fn = ga.compile(outputs, inputs, parallel=parallel)
        for n, m, b in [(5, 2, 1), (12, 7, 3)]:
            values = [rng.standard_normal(s) for s in [(n,), (n, 3), (3, m), (b, n, 3)]]
            expected = ga.evaluate(outputs, dict(zip(inputs, values)))
            got = fn(*values)
            for name, (start, stop) in spans.items():
                _assert_matches(got[start:stop], expected[start:stop], f"{name} at n={n}")


def test_elementwise_chains_fuse_into_one_loop_without_temporaries():
    x = ga.symbols("x", shape=("n",))
    f = ga.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    fn = ga.compile([f, ga.grad(f, x)], [x])
    source = fn.source
    assert source.count("for i0") == 1  # the loss and the gradient in one loop, as by hand
    (signature,) = [line for line in source.splitlines() if line.startswith("def kernel")]
    assert signature.count(", v") == 1  # one array: the gradient
    assert "a0[1 + i0]" in source  # x[1:] is read in place, not copied
    assert "[1 + i0] +=" in source  # the adjoint of x[1:] is added into place, not padded


def test_matrix_products_call_blas_and_outputs_are_fresh(rng):
    W, X = ga.symbols("W", shape=(4, 3)), ga.symbols("X", shape=("n", 4))
    loss = ga.sum(ga.tanh(X @ W) ** 2)
    fn = ga.compile([loss, X @ W, W] + ga.grad(loss, [W]), [W, X])
    assert "np.dot(" in fn.source
    Wv, Xv = rng.standard_normal((4, 3)), rng.standard_normal((6, 4))
    value, product, w_out, gW = fn(Wv, Xv)
    assert isinstance(value, float)
    assert w_out is not Wv and not np.shares_memory(w_out, Wv)
    w_out[:] = 0  # a fresh array: the caller's input is untouched
    assert Wv.any()
    np.testing.assert_allclose(product, Xv @ Wv)
    np.testing.assert_allclose(gW, Xv.T @ (2 * np.tanh(Xv @ Wv) / np.cosh(Xv @ Wv) ** 2), rtol=1e-12)


def test_arguments_are_checked_and_converted(rng):
    X, w, s = ga.symbols("X", shape=("n", 3)), ga.symbols("w", shape=(3,)), ga.symbols("s")
    fn = ga.compile(ga.sum(X @ w) * s, [X, w, s])
    Xv, wv = rng.standard_normal((5, 3)), rng.standard_normal(3)
    expected = float(np.sum(Xv @ wv) * 2.0)
    assert fn(Xv, wv, 2.0) == pytest.approx(expected)
    assert fn(Xv, wv, 2) == pytest.approx(expected)  # an int
    assert fn(np.asfortranarray(Xv), wv.astype(np.float32).astype(np.float64), 2.0) == pytest.approx(expected)
    assert fn(Xv.T.copy().T, wv.tolist(), np.float32(2)) == pytest.approx(expected)
    readonly = Xv.copy()
    readonly.flags.writeable = False
    assert fn(readonly, wv, 2.0) == pytest.approx(expected)
    assert fn(Xv[::2], wv, 2.0) == pytest.approx(float(np.sum(Xv[::2] @ wv) * 2.0))  # strided
    with pytest.raises(ValueError, match=r"'X'.*shape \(5, 4\).*\(n, 3\)"):
        fn(np.ones((5, 4)), wv, 2.0)
    with pytest.raises(ValueError, match=r"'w'.*\(3,\)"):
        fn(Xv, np.ones(4), 2.0)
    with pytest.raises(ValueError, match="'s' is a number"):
        fn(Xv, wv, np.ones(2))
    with pytest.raises(TypeError, match="expected 3 argument"):
        fn(Xv, wv)
    with pytest.raises(TypeError, match="'X'"):
        fn("text", wv, 2.0)
    with pytest.raises(TypeError, match="masked"):
        fn(np.ma.masked_array(Xv), wv, 2.0)


def test_a_size_name_bound_twice_in_one_call_is_named():
    a, b = ga.symbols("a", shape=("n",)), ga.symbols("b", shape=("n",))
    fn = ga.compile(ga.sum(a * b), [a, b])
    assert fn(np.ones(3), np.ones(3)) == 3.0
    with pytest.raises(ValueError, match="'n'.*3 and 4"):
        fn(np.ones(3), np.ones(4))


def test_bad_indices_and_short_axes_raise_instead_of_reading_past_the_end():
    x = ga.symbols("x", shape=("n",))
    gather = ga.compile(ga.take(x, np.array([0, 5])), [x])
    np.testing.assert_array_equal(gather(np.arange(6.0)), [0.0, 5.0])
    with pytest.raises(IndexError):
        gather(np.arange(3.0))
    head = ga.compile(x[:4] * 2, [x])
    np.testing.assert_array_equal(head(np.arange(5.0)), [0, 2, 4, 6])
    with pytest.raises(ValueError, match="past the end"):
        head(np.arange(2.0))


def test_compiled_array_functions_pickle_cache_and_run_in_threads(rng, run_threads):
    x = ga.symbols("x", shape=("n",))
    f = ga.sum(ga.exp(-x ** 2))
    fn = ga.compile([f, ga.grad(f, x)], [x])
    again = pickle.loads(pickle.dumps(fn))
    xv = rng.standard_normal(1000)
    for a, b in zip(fn(xv), again(xv)):
        np.testing.assert_array_equal(a, b)
    assert ga.compile([f, ga.grad(f, x)], [x])._kernel is fn._kernel  # one kernel per process
    results = [None] * 4

    def work(k):
        results[k] = fn(xv * k)

    assert run_threads(work, [(k,) for k in range(4)], timeout=120)
    for k in range(4):
        np.testing.assert_array_equal(results[k][1], fn(xv * k)[1])


@pytest.mark.parametrize("parallel", [False, True], ids=["graphad's object file", "Numba's source"])
def test_a_damaged_cached_kernel_is_written_anew(tmp_path, monkeypatch, rng, parallel):
    import graphad.compiled_arrays as ca

    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(ca, "_modules", {})
    x = ga.symbols("x", shape=("n",))
    f = ga.sum(ga.sin(x) * 3.25)
    fn = ga.compile(f, [x], parallel=parallel)
    if parallel:  # Numba compiles parallel kernels, from graphad's source
        (source,) = tmp_path.glob("graphad_arrays_*.py")
        source.write_text(source.read_text().replace("3.25", "4.25"))  # a changed constant: wrong numbers
    else:  # graphad compiles the others to an object file
        (obj,) = tmp_path.glob("graphad_arrays_*.o")
        data = bytearray(obj.read_bytes())
        data[len(data) // 2] ^= 0xFF
        obj.write_bytes(bytes(data))
    monkeypatch.setattr(ca, "_modules", {})
    healed = ga.compile(f, [x], parallel=parallel)
    xv = rng.standard_normal(5)
    assert healed(xv) == pytest.approx(fn(xv)) == pytest.approx(3.25 * np.sin(xv).sum())


def test_generated_source_holds_no_user_text():
    x = ga.symbols("weird_name_zz", shape=("size_name_qq",))
    fn = ga.compile(ga.sum(x * 2), [x])
    kernel_text = fn.source.split("def kernel", 1)[1]
    assert "weird_name_zz" not in kernel_text and "size_name_qq" not in kernel_text
    assert "'weird_name_zz'" in fn.source  # named in the header, as data


def test_compile_grad_takes_array_parameters_and_data(rng):
    W, X, y = ga.symbols("W", shape=(3,)), ga.symbols("X", shape=("n", 3)), ga.symbols("y", shape=("n",))
    loss = ga.mean((X @ W - y) ** 2)
    fg = ga.compile_grad(loss, [W], data=[X, y])
    Wv, Xv, yv = rng.standard_normal(3), rng.standard_normal((8, 3)), rng.standard_normal(8)
    value, (gW,) = fg(Wv, Xv, yv)
    assert value == pytest.approx(np.mean((Xv @ Wv - yv) ** 2))
    np.testing.assert_allclose(gW, 2 * Xv.T @ (Xv @ Wv - yv) / 8)
    only = ga.compile_grad(loss, W, data=[X, y], value=False)
    np.testing.assert_allclose(only(Wv, Xv, yv), gW)


def test_reverse_mode_reuses_the_buffers_of_dead_intermediates(rng):
    depth = 6
    X = ga.symbols("X", shape=("n", 8))
    Ws = [ga.symbols(f"W{k}", shape=(8, 8)) for k in range(depth)]
    h = X
    for W in Ws:
        h = ga.tanh(h @ W)
    loss = ga.sum(h ** 2)
    fn = ga.compile([loss, *ga.grad(loss, Ws)], [*Ws, X])
    batch = [shape for shape, _ in fn._lowered.buffers if shape == ("n", 8)]
    # kept for the adjoint sweep: each layer's tanh and its derivative; every other
    # (n, 8) array (products, adjoints) lives in one of a few shared buffers
    assert len(batch) <= 2 * depth + 1
    values = [rng.standard_normal((8, 8)) * 0.5 for _ in Ws] + [rng.standard_normal((5, 8))]
    expected = ga.evaluate([loss, *ga.grad(loss, Ws)], dict(zip([*Ws, X], values)))
    _assert_matches(fn(*values), expected, "deep chain")


def test_assume_finite_writes_chain_products_as_products(rng):
    t, y = ga.symbols("t y", shape=("n",))
    a, b = ga.symbols("a b")
    loss = ga.sum((a * ga.exp(-b * t) - y) ** 2)
    outputs = [loss, ga.grad(loss, [a, b])]
    safe, finite = (ga.compile(outputs, [[a, b], t, y], assume_finite=flag) for flag in (False, True))
    assert "dmul(" in safe.source and "dmul(" not in finite.source
    values = (np.array([1.5, 0.7]), rng.uniform(0, 3, 50), rng.standard_normal(50))
    for x, z in zip(safe(*values), finite(*values)):
        np.testing.assert_allclose(x, z, rtol=1e-14)


def test_the_adjoint_of_a_fixed_slice_of_a_named_axis_checks_the_axis():
    # a gradient holds only the pads (the adjoints of x[:3] and x[2:5]), not the slices
    x, w = ga.symbols("x", shape=("n",)), ga.symbols("w", shape=(3,))
    fn = ga.compile(ga.grad(ga.sum(x[:3] * ga.exp(w)) + ga.sum(x[2:5] * ga.sin(w)), x), [x, w])
    np.testing.assert_allclose(fn(np.zeros(6), np.zeros(3)), [1, 1, 1, 0, 0, 0])
    for n in (0, 2, 4):
        with pytest.raises(ValueError, match="past the end"):
            fn(np.zeros(n), np.zeros(3))


def test_a_max_over_an_empty_axis_is_an_error_as_in_the_evaluator():
    x, X = ga.symbols("x", shape=("n",)), ga.symbols("X", shape=("n", 2))
    fn = ga.compile([ga.max(x), ga.max(X, axis=0), ga.logsumexp(x)], [x, X])
    assert fn(np.zeros(1), np.zeros((1, 2)))[0] == 0.0
    with pytest.raises(ValueError, match="size 'n' = 0"):
        fn(np.zeros(0), np.zeros((0, 2)))


def test_lists_of_inputs_hold_scalars_and_lists_of_outputs_come_back_as_tuples():
    a, Z = ga.symbols("a"), ga.symbols("Z", shape=(2,))
    with pytest.raises(TypeError, match="Z has shape"):
        ga.compile(ga.sum(Z) * a, [[a, Z]])
    with pytest.raises(NotImplementedError, match="passes= applies to graphs of scalars"):
        ga.compile(ga.sum(Z) * a, [a, Z], passes=[])
    b = ga.symbols("b")
    fn = ga.compile([ga.sum(Z) * a, ga.grad(ga.sum(Z) * a * b, [a, b])], [[a, b], Z])
    value, grads = fn(np.array([2.0, 3.0]), np.array([1.0, 2.0]))
    assert value == 6.0 and grads == (9.0, 6.0)
    loss = ga.sum(Z * Z) * b
    assert ga.compile_grad(loss, b, data=[Z])(2.0, np.ones(2)) == (4.0, 2.0)
    assert ga.compile_grad(loss, [b], data=[Z])(2.0, np.ones(2)) == (4.0, (2.0,))


def test_fixed_inner_axes_are_indexed_flat_and_squares_are_products(rng):
    """J[i, 0], J[i, 1], J[i, 2] of an (n, 3) output go through a flat view (a constant
    stride, which the loop vectoriser can use), and x**2 and x**-1 are x*x and 1/x, as
    the scalar passes make them: equal to pow bit for bit, at no call."""
    t = ga.symbols("t", shape=("n",))
    a, b = ga.symbols("a b")
    X = ga.symbols("X", shape=("n", 2))
    outs = [ga.stack([ga.exp(-b * t), a * t**2, t**-1.0], axis=1), X**2 + X[:, 0:1]]
    fn = ga.compile(outs, [a, b, t, X], exact_math=True)
    assert "f[i0 * 3 + 1" in fn.source and "f[i0 * 2 + i1]" in fn.source
    assert "pow" not in fn.source
    tv, Xv = rng.uniform(-2, 2, 50), rng.uniform(-2, 2, (50, 2))
    got = fn(0.7, 1.3, tv, Xv)
    want = ga.evaluate(outs, {a: 0.7, b: 1.3, t: tv, X: Xv})
    np.testing.assert_allclose(got[0][:, 0], want[0][:, 0], rtol=1e-15)  # libm's exp against NumPy's
    np.testing.assert_array_equal(got[0][:, 1:], want[0][:, 1:])  # the same products and quotients
    np.testing.assert_array_equal(got[1], want[1])


def test_the_chain_product_in_loops_equals_the_evaluators_bit_for_bit():
    """dmul is the product with a fix-up behind a branch that only zero and nan
    products take: 0 * inf and 0 * nan are 0, and -0.0 * 5 is 0.0, as in the evaluator."""
    import numba

    from graphad.lowering.intrinsics import dmul
    from graphad.ops import _dmul_value

    @numba.njit
    def products(a, b):
        out = np.empty(a.size)
        for i in range(a.size):
            out[i] = dmul(a[i], b[i])
        return out

    special = np.array([0.0, -0.0, 1.0, -2.0, np.inf, -np.inf, np.nan, 1e-200, -1e-200, 5e-324])
    a, b = (m.ravel() for m in np.meshgrid(special, special))
    with np.errstate(invalid="ignore", under="ignore"):
        want = _dmul_value(a, b)
    np.testing.assert_array_equal(products(a, b).view(np.int64), want.view(np.int64))


def test_serial_kernels_are_compiled_by_graphad_and_parallel_ones_by_numba(rng):
    import numba

    from graphad.compiled_arrays import NativeKernel

    x = ga.symbols("x", shape=("n",))
    f = ga.sum(ga.tanh(x) ** 2)
    serial, parallel = ga.compile(f, [x]), ga.compile(f, [x], parallel=True)
    assert isinstance(serial._kernel, NativeKernel)
    assert isinstance(parallel._kernel, numba.core.dispatcher.Dispatcher)
    xv = rng.standard_normal(1001)
    assert serial(xv) == pytest.approx(parallel(xv), rel=1e-12) == pytest.approx(np.sum(np.tanh(xv) ** 2))


def test_a_source_the_translator_does_not_take_goes_to_numba(monkeypatch, rng):
    import numba

    import graphad.compiled_arrays as ca
    from graphad.lowering import native

    def refuse(*args, **kwargs):
        raise native.Unsupported("for this test")

    monkeypatch.setattr(native, "translate", refuse)
    monkeypatch.setattr(ca, "_modules", {})
    x = ga.symbols("x", shape=("n",))
    fn = ga.compile(ga.sum(ga.exp(x) * 1.5), [x])
    assert isinstance(fn._kernel, numba.core.dispatcher.Dispatcher)
    xv = rng.standard_normal(7)
    assert fn(xv) == pytest.approx(1.5 * np.exp(xv).sum())


# A kernel in the style of graphad.lowering.loops, run as Python and as graphad's
# machine code: integer division and remainder of negative numbers, slices with
# negative bounds and steps of a named axis, transposes, reshapes, a read guarded
# by its condition, int(), max and raise.
_KERNEL = '''
def kernel(sz, a0, a1, v2, v3, v4):
    d0 = sz[0]
    v5 = a0[-3::-2, 1:]
    v6 = v5.T
    v7 = np.transpose(a0, (1, 0))
    v8 = a1.reshape((d0, 2))
    v2f = v2.reshape(v2.size)
    a1f = a1.reshape(a1.size)
    for i0 in range(d0):
        q = (i0 - 4) // 3
        r = (i0 - 4) % 3
        s = (i0 - 4) % -3
        v3[i0] = float(q * 100 + r * 10 + s) + v8[i0, 1]
        j = v8[i0, 0]
        k = int(j)
        if k != j:
            raise ValueError('not whole')
        if k < 0:
            k += d0
        if k < 0 or k >= d0:
            raise IndexError('out of range')
        v4[i0] = (v7[1, k] if 0 <= i0 - 1 < d0 - 2 else -1.5) + max(a1f[i0 * 2 + 1], 0.25)
    t = 0.0
    for i0 in range(2):
        for i1 in range((d0 - 1) // 2):
            t += v6[i0, i1]
    v2f[0] = t
    return (t, float(d0),)
'''


def _run_native(source, params, dims, args, sizes=None):
    import llvmlite.binding as llvm

    from graphad import kernels
    from graphad.compiled_arrays import NativeKernel
    from graphad.lowering import native

    translated = native.translate(source, params, dims, "graphad_test_kernel", False)
    obj = kernels.compile_object(translated.ir, 3, True)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), kernels._target_machine(1))
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    kernel = NativeKernel(engine, engine.get_function_address("graphad_test_kernel"),
                          engine.get_function_address("graphad_test_kernel.objects"), translated, params)
    sz = np.array(sizes or [args[0].shape[0]], dtype=np.int64)
    assert kernel._objects is not None  # the arguments read in place (CPython and NumPy's layouts)
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = kernel(sz, *args)
    kernel._objects = None  # the entry that takes an array of pointers
    try:
        again = kernel(sz, *copies)
    except (ValueError, IndexError) as e:
        raise AssertionError("only one entry raised") from e
    assert got == again and all(np.array_equal(a, b) for a, b in zip(args, copies))
    return got


@pytest.mark.parametrize("n", [6, 7, 2])
def test_the_translator_keeps_pythons_rules_for_indices_slices_and_errors(n):
    source = _KERNEL
    params = [("n", 3), ("n", 2), (1,), ("n",), ("n",)]
    rng = np.random.default_rng(n)
    a0 = rng.standard_normal((n, 3))
    a1 = np.stack([rng.integers(-n, n, n).astype(float), rng.standard_normal(n)], axis=1)

    def fresh():
        return [a0, a1, np.zeros(1), np.zeros(n), np.zeros(n)]

    want_args, got_args = fresh(), fresh()
    names = {"np": np, "math": __import__("math")}
    exec(source, names)  # the kernel as plain Python, with NumPy arrays
    want = names["kernel"](np.array([n]), *want_args)
    got = _run_native(source, params, ["n"], got_args)
    assert got == pytest.approx(want, rel=1e-14)
    for w, g in zip(want_args[2:], got_args[2:]):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    for bad, error in ((0.5, ValueError), (float(3 * n), IndexError), (np.nan, ValueError)):
        a1[n // 2, 0] = bad
        with pytest.raises(error):
            _run_native(source, params, ["n"], fresh())


def test_matrix_products_of_transposed_and_empty_operands(rng):
    X, W = ga.symbols("X", shape=("n", 3)), ga.symbols("W", shape=(3, "m"))
    f = ga.sum(ga.tanh(X @ W) * (X @ W))
    fn = ga.compile([f, X.T @ X, ga.grad(f, W), ga.grad(f, X)], [X, W])
    for n, m in ((5, 4), (0, 4), (5, 0), (1, 1)):
        Xv, Wv = rng.standard_normal((n, 3)), rng.standard_normal((3, m))
        value, gram, gW, gX = fn(Xv, Wv)
        Z = Xv @ Wv
        dZ = np.tanh(Z) + Z * (1 - np.tanh(Z) ** 2)
        assert value == pytest.approx(np.sum(np.tanh(Z) * Z), abs=1e-12)
        np.testing.assert_allclose(gram, Xv.T @ Xv, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gW, Xv.T @ dZ, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gX, dZ @ Wv.T, rtol=1e-12, atol=1e-12)


def test_the_machine_code_of_dropped_array_functions_is_freed(tmp_path, monkeypatch, memory_growth):
    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))

    def load(k):  # a function made, called and dropped: its kernel comes from the cache
        with ga.Graph():
            x = ga.symbols("x", shape=("n",))
            f = ga.sum(ga.tanh(x * (1.0 + k)) ** 2)
            return ga.compile([f, ga.grad(f, x)], [x])(np.ones(3))[0]

    assert memory_growth(load) < 4  # each load maps about 55 kB of machine code: 16 MB if none were freed


@pytest.mark.parametrize("inner", [2**31 + 3, "k"])
def test_a_matrix_product_too_long_for_blas_is_an_error(inner):
    source = "def kernel(sz, a0, a1, v2):\n    np.dot(a0, a1, v2)\n    return (0.0,)\n"
    params = [(1, inner), (inner, 1), (1, 1)]
    # the arrays are never read: the sizes are checked first
    with pytest.raises(ValueError, match="2\\*\\*31"):
        _run_native(source, params, ["k"], [np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))],
                    sizes=[2**31 + 3])


def test_maximum_and_minimum_order_signed_zeros_as_the_evaluator_in_both_backends():
    x, y = ga.symbols("x y", shape=("n",))
    outs = [ga.maximum(x, y), ga.minimum(x, y)]
    xs, ys = np.array([-0.0, 0.0, np.nan, 1.0, -0.0]), np.array([0.0, -0.0, 1.0, np.nan, -0.0])
    want = ga.evaluate(outs, {x: xs, y: ys})
    for parallel in (False, True):
        for w, g in zip(want, ga.compile(outs, [x, y], parallel=parallel)(xs, ys)):
            np.testing.assert_array_equal(np.signbit(g), np.signbit(w))
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w))


def test_array_kernels_are_cached_per_cpu_and_a_cache_that_cannot_be_written_still_serves(
        tmp_path, monkeypatch, recwarn):
    import graphad.compiled_arrays as ca
    from graphad import kernels

    monkeypatch.setenv("GRAPHAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(ca, "_modules", {})
    x = ga.symbols("x", shape=("n",))
    f = ga.sum(ga.exp(x) * x)
    ga.compile(f, [x], exact_math=True)
    assert len(list(tmp_path.glob("graphad_arrays_*.o"))) == 1
    monkeypatch.setattr(ca, "_modules", {})
    monkeypatch.setattr(kernels, "host", lambda: ("another-cpu", "+sse2"))
    ga.compile(f, [x], exact_math=True)  # machine code for another CPU is never reused
    assert len(list(tmp_path.glob("graphad_arrays_*.o"))) == 2

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    compiled = []
    load = kernels.load_engine
    monkeypatch.setattr(kernels, "load_engine", lambda *a, **k: compiled.append(r := load(*a, **k)) or r)
    monkeypatch.setattr(kernels, "write_file", refuse)
    monkeypatch.setattr(ca, "_modules", {})
    fn = ga.compile(f, [x], exact_math=True)
    assert fn(np.array([1.0, 2.0])) == pytest.approx(np.e + 2 * np.exp(2))
    assert [c[2] for c in compiled] == [False]  # loaded, not compiled again
    assert not [w for w in recwarn if "cache" in str(w.message)]


@pytest.mark.parametrize("parallel", [False, True])
def test_take_checks_its_indices_even_where_it_gathers_nothing(parallel):
    x, i = ga.symbols("x", shape=("m", "k")), ga.symbols("i", shape=("j",))
    fn = ga.compile([ga.take(x, i, axis=0), ga.take(x, i, axis=0) * 2.0], [x, i], parallel=parallel)
    cases = ((np.zeros((0, 0)), [0.0, 1.0], IndexError), (np.zeros((3, 0)), [5.0], IndexError),
             (np.zeros((3, 0)), [9.0, 0.5], ValueError), (np.zeros((3, 0)), [np.nan], ValueError))
    for xv, iv, error in cases:
        with pytest.raises(error):
            ga.evaluate(ga.take(x, i, axis=0), {x: xv, i: np.array(iv)})
        with pytest.raises(error):
            fn(xv, np.array(iv))
    got = fn(np.arange(6.0).reshape(3, 2), np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(got[0], [[4.0, 5.0], [0.0, 1.0], [4.0, 5.0]])
