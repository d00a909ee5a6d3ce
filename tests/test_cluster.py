"""graphad on Dask: batch calls on Dask arrays, losses summed over chunks of rows,
and a real LocalCluster with two worker processes (one of them killed mid-way)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import graphad as ga

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

WAIT = 240  # seconds: every wait on the cluster is bounded


def test_dask_is_not_imported_unless_used(tmp_path):
    code = ("import sys, numpy as np, graphad as ga\n"
            "x, y = ga.symbols('x y')\n"
            "fn = ga.compile(ga.exp(x) * y, [x, y])\n"
            "fn(np.ones(3), 2.0); fn(1.0, 2.0)\n"
            "X, w = ga.symbols('X', shape=('n', 2)), ga.symbols('w', shape=(2,))\n"
            "ga.scipy_objective(ga.sum((X @ w) ** 2), [w], data={X: np.ones((4, 2))}).fun(np.ones(2))\n"
            "print('dask' in sys.modules)\n")
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_batch_calls_on_dask_arrays_are_lazy_and_match_numpy():
    """exact_math: SIMD math may round an element differently at a block's end (the
    scalar remainder loop), so bit-for-bit comparisons use libm's scalar functions."""
    x, y = ga.symbols("x y")
    fn = ga.compile(ga.exp(x) * ga.sin(y), [x, y], exact_math=True)
    a = da.random.random((10, 4), chunks=(4, 2))
    b = da.random.random((4,), chunks=2)
    out = fn(a, b)  # broadcast: chunks aligned by Dask
    assert isinstance(out, da.Array) and out.shape == (10, 4) and out.chunks == ((4, 4, 2), (2, 2))
    np.testing.assert_array_equal(out.compute(), fn(a.compute(), b.compute()))
    np.testing.assert_array_equal(fn(a, 0.5).compute(), fn(a.compute(), 0.5))  # with a number
    np.testing.assert_array_equal(fn(a, b.compute()).compute(), fn(a.compute(), b.compute()))  # with NumPy
    ints = da.arange(6, chunks=4)  # converted as NumPy ints are
    np.testing.assert_array_equal(fn(ints, 1.0).compute(), fn(np.arange(6), 1.0))


def test_vector_inputs_and_outputs_keep_their_axis_in_one_chunk():
    x, y = ga.symbols("x y")
    f = ga.exp(x) * y
    g = ga.compile([ga.grad(f, [x, y]), f], [[x, y]], exact_math=True)  # in: a vector of 2; out: 2 and 1
    v = da.random.random((9, 2), chunks=(4, 1))
    grads, values = g(v)
    assert grads.shape == (9, 2) and grads.chunks == ((4, 4, 1), (2,)) and values.chunks == ((4, 4, 1),)
    ref = g(v.compute())
    np.testing.assert_array_equal(grads.compute(), ref[0])
    np.testing.assert_array_equal(values.compute(), ref[1])
    (one,) = ga.compile([f], [x, y], exact_math=True)(v[:, 0], v[:, 1])  # a list of one output: a tuple
    np.testing.assert_array_equal(one.compute(), ga.compile(f, [x, y], exact_math=True)(*v.compute().T))
    simd = ga.compile([f], [x, y])(v[:, 0], v[:, 1])[0].compute()  # SIMD math: within a few ulp
    np.testing.assert_allclose(simd, one.compute(), rtol=1e-15, atol=0)


def test_batch_call_errors_are_raised_at_the_call():
    x, y = ga.symbols("x y")
    g = ga.compile([ga.grad(x * y, [x, y])], [[x, y]])
    with pytest.raises(ValueError, match=r"the 2 values of \[x, y\] in its last axis, got shape \(4, 3\)"):
        g(da.ones((4, 3)))
    with pytest.raises(TypeError, match="dtype <U1"):
        ga.compile(x * y, [x, y])(da.from_array(np.array(["a", "b"])), 1.0)
    with pytest.raises(ValueError, match=r"point shapes \[\(10,\), \(7,\)\] do not broadcast"):
        ga.compile(x * y, [x, y])(da.ones(10, chunks=3), da.ones(7, chunks=3))
    X = ga.symbols("X", shape=("n",))
    with pytest.raises(TypeError, match="takes NumPy arrays, not Dask arrays"):
        ga.compile(ga.sum(X), [X])(da.ones(4, chunks=2))


def _logistic():
    with ga.Graph():
        X, y = ga.symbols("X", shape=("n", 3)), ga.symbols("y", shape=("n",))
        w, b, lam = ga.symbols("w", shape=(3,)), ga.symbols("b"), ga.symbols("lam")
    loss = ga.mean(ga.log1p(ga.exp(-y * (X @ w + b)))) + lam * ga.sum(w**2) + 0.1 * (b - 1) ** 2
    rng = np.random.default_rng(0)
    Xv = rng.normal(size=(1000, 3))
    yv = np.sign(Xv @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=1000))
    return loss, (X, y, w, b, lam), Xv, yv


def test_data_parallel_objective_equals_the_in_memory_one():
    loss, (X, y, w, b, lam), Xv, yv = _logistic()
    mem = ga.scipy_objective(loss, [w, b], data={X: Xv, y: yv, lam: 0.01})
    # X and y chunked differently (Dask aligns them), lam a number bound as data
    lazy = ga.scipy_objective(loss, [w, b], data={X: da.from_array(Xv, chunks=(300, 3)),
                                                  y: da.from_array(yv, chunks=170), lam: 0.01})
    x0, v = np.array([0.1, -0.2, 0.3, 0.05]), np.array([1.0, -2.0, 3.0, 0.5])
    assert lazy.fun(x0) == pytest.approx(mem.fun(x0), rel=1e-14)
    np.testing.assert_allclose(lazy.jac(x0), mem.jac(x0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lazy.hessp(x0, v), mem.hessp(x0, v), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lazy.hess(x0), mem.hess(x0), rtol=1e-12, atol=1e-15)
    # NumPy rows next to Dask rows are chunked like them
    mixed = ga.scipy_objective(loss, [w, b], data={X: da.from_array(Xv, chunks=(250, 3)), y: yv, lam: 0.01})
    np.testing.assert_allclose(mixed.jac(x0), mem.jac(x0), rtol=1e-12, atol=1e-15)


def test_optimisers_take_dask_data():
    loss, (X, y, w, b, lam), Xv, yv = _logistic()
    data = {X: Xv, y: yv, lam: 0.01}
    lazy = {X: da.from_array(Xv, chunks=(400, 3)), y: da.from_array(yv, chunks=400), lam: 0.01}
    for method, kw in ((ga.gradient_descent, {"step": 0.5, "max_iter": 30}), (ga.newton, {"max_iter": 20})):
        a = method(loss, [w, b], [np.zeros(3), 0.0], data=data, **kw)
        b_ = method(loss, [w, b], [np.zeros(3), 0.0], data=lazy, **kw)
        assert b_.iterations == a.iterations and b_.fun == pytest.approx(a.fun, rel=1e-12)
        np.testing.assert_allclose(b_.x, a.x, rtol=1e-9, atol=1e-12)


def test_row_sums_may_be_sliced_stacked_and_rows_may_look_up_an_embedding():
    with ga.Graph():
        X, labels = ga.symbols("X", shape=("n", 3)), ga.symbols("labels", shape=("n",))
        w, E, c = ga.symbols("w", shape=(3,)), ga.symbols("E", shape=(5, 2)), ga.symbols("c")
        sums = ga.stack([ga.sum(X @ w), ga.sum((X @ w) ** 2)])
        loss = (ga.sum(X, axis=0)[0] * w[0] + ga.sum(sums * ga.stack([1.0, 2.0]))
                + ga.sum(ga.take(E, labels) ** 2) + ga.mean(ga.exp(X @ w - c)) + c**2)
    rng = np.random.default_rng(2)
    Xv, lv = rng.normal(size=(40, 3)), np.arange(40) % 5
    mem = ga.scipy_objective(loss, [w, E, c], data={X: Xv, labels: lv})
    for chunks in (1, 7, 40):
        lazy = ga.scipy_objective(loss, [w, E, c], data={X: da.from_array(Xv, chunks=(chunks, 3)),
                                                         labels: da.from_array(lv, chunks=chunks)})
        x0, v = np.linspace(-0.5, 0.5, 14), np.linspace(1.0, 2.0, 14)
        assert lazy.fun(x0) == pytest.approx(mem.fun(x0), rel=1e-13)
        np.testing.assert_allclose(lazy.jac(x0), mem.jac(x0), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(lazy.hessp(x0, v), mem.hessp(x0, v), rtol=1e-12, atol=1e-13)


def test_hessian_products_with_scalar_parameters_and_data_of_other_kinds():
    with ga.Graph():
        x, y = ga.symbols("x", shape=("n",)), ga.symbols("y", shape=("n",))
        a, b, lam = ga.symbols("a b lam")
    loss = ga.mean((y - a * x - b) ** 2) + lam * (a**2 + b**2)
    rng = np.random.default_rng(0)
    xv = rng.normal(size=1000)
    yv = 2 * xv + 1 + rng.normal(size=1000)
    mem = ga.scipy_objective(loss, [a, b], data={x: xv, y: yv, lam: 0.01})
    # lam as a 0-d Dask array: data without rows are computed and sent to every chunk
    lazy = ga.scipy_objective(loss, [a, b], data={x: da.from_array(xv, chunks=250),
                                                  y: da.from_array(yv, chunks=250), lam: da.asarray(0.01)})
    p, v = np.array([0.5, 0.2]), np.array([1.0, 0.0])
    np.testing.assert_allclose(lazy.hessp(p, v), mem.hessp(p, v), rtol=1e-13)
    np.testing.assert_allclose(lazy.hess(p), mem.hess(p), rtol=1e-13)
    r_mem = ga.newton(loss, [a, b], [0.0, 0.0], data={x: xv, y: yv, lam: 0.01})
    r_lazy = ga.newton(loss, [a, b], [0.0, 0.0], data={x: da.from_array(xv, chunks=250),
                                                       y: da.from_array(yv, chunks=250), lam: 0.01})
    assert r_lazy.converged and r_lazy.iterations == r_mem.iterations
    np.testing.assert_allclose(r_lazy.x, r_mem.x, rtol=1e-12)


def test_data_the_loss_does_not_read_are_not_arguments():
    with ga.Graph():
        y = ga.symbols("y", shape=("n",))
        b, c = ga.symbols("b c")
    assert ga.scipy_objective(b**2 + c**2, [b, c], data={y: np.ones(4)}).fun([1.0, 2.0]) == 5.0


def test_least_squares_with_a_row_sum_written_as_a_product():
    X, y, w = ga.symbols("X", shape=("n", 2)), ga.symbols("y", shape=("n",)), ga.symbols("w", shape=(2,))
    r = X @ w - y
    loss = 0.5 * (r @ r) + ga.sum(ga.reshape(X[:, 0:1], ("n",)) * w[1]) + ga.sum(w)  # r @ r: a row sum
    rng = np.random.default_rng(1)
    Xv, yv = rng.normal(size=(500, 2)), rng.normal(size=500)
    mem = ga.scipy_objective(loss, [w], data={X: Xv, y: yv})
    lazy = ga.scipy_objective(loss, [w], data={X: da.from_array(Xv, chunks=(123, 2)),
                                               y: da.from_array(yv, chunks=123)})
    np.testing.assert_allclose(lazy.jac(np.array([0.3, -0.7])), mem.jac(np.array([0.3, -0.7])), rtol=1e-12)


@pytest.mark.parametrize("make, why", [
    (lambda X, w: ga.log(ga.sum(X @ w)), "log of a sum over rows"),
    (lambda X, w: ga.sum(X[1:] - X[:-1]) * w[0], "slice mixes rows"),
    (lambda X, w: ga.max(X @ w), "max mixes rows"),
    (lambda X, w: ga.sum(X @ w) ** 2, "pow of a sum over rows"),
    (lambda X, w: ga.sum(X @ w) * ga.sum(X @ w), "mul of a sum over rows by a sum over rows"),
    (lambda X, w: ga.sum((X - ga.mean(X, axis=0)) @ w), "meets a sum over rows with the rows themselves"),
    (lambda X, w: ga.sum(X.T @ X) * ga.sum(X.T @ X) * w[0], "mul of a sum over rows by a sum over rows"),
    (lambda X, w: ga.sum(X.T * 2) * w[0], "mul of the rows turned into columns"),
    (lambda X, w: ga.sum(ga.sum(X.T, axis=0) + w[0]), "sum of the rows turned into columns"),
    (lambda X, w: w[0] * ga.sum(ga.broadcast_to(ga.mean(X), ("n",))), "spreads a sum over rows back"),
    (lambda X, w: w[0] * ga.sum(ga.broadcast_to(ga.reshape(X[:, 0], ("n", 1)), ("n", "n"))),
     "puts the rows' size 'n' in an axis other than the first"),
    (lambda X, w: w[0] * ga.sum(ga.broadcast_to(w[1], ("n", "n"))), "puts the rows' size 'n' in an axis"),
    (lambda X, w: w[0] / ga.sum(X @ w), "a division by a sum over rows"),
    (lambda X, w: (X @ w)[0], "slice mixes rows"),
    (lambda X, w: ga.mean(X @ w, axis=None) + ga.sum(ga.exp(X), axis=1)[0], "slice mixes rows"),
])
def test_a_loss_that_is_not_a_sum_over_rows_is_refused(make, why):
    X, w = ga.symbols("X", shape=("n", 3)), ga.symbols("w", shape=(3,))
    with pytest.raises(ValueError, match=f"must be a sum \\(or mean\\) over the 'n' rows.*{why}"):
        ga.scipy_objective(make(X, w), [w], data={X: da.ones((10, 3), chunks=(5, 3))})


def test_dask_data_errors():
    X, Z = ga.symbols("X", shape=("n", 3)), ga.symbols("Z", shape=("m", 3))
    w, V = ga.symbols("w", shape=(3,)), ga.symbols("V", shape=("n",))
    with pytest.raises(ValueError, match="must share their first axis"):
        ga.scipy_objective(ga.sum(X @ w) + ga.sum(Z @ w), [w],
                           data={X: da.ones((4, 3), chunks=2), Z: da.ones((5, 3), chunks=2)})
    with pytest.raises(ValueError, match="the parameter V has the rows' size 'n'"):
        ga.scipy_objective(ga.sum(X @ w + V), [w, V], data={X: da.ones((4, 3), chunks=2)})
    unknown = da.ones((6, 3), chunks=2)
    unknown = unknown[unknown[:, 0] > 0]  # rows of unknown count
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        ga.scipy_objective(ga.sum(X @ w), [w], data={X: unknown})


# --- a real cluster: two worker processes -------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("worker_cache")
    env = {"GRAPHAD_CACHE_DIR": str(folder / "graphad"), "NUMBA_CACHE_DIR": str(folder / "numba")}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env=env, silence_logs=40) as lc, \
            distributed.Client(lc, timeout=WAIT) as client:
        client.wait_for_workers(2, timeout=WAIT)
        yield lc, client, folder


def _w3():
    with ga.Graph():
        x, y, z = ga.symbols("x y z")
    f = ga.exp(-x * x) * ga.sin(y) + ga.log1p(z * z) * ga.cos(x * y)
    return ga.compile(f, [x, y, z], exact_math=True)


def test_on_a_local_cluster_results_equal_the_in_memory_ones(cluster):
    lc, client, folder = cluster
    fn = _w3()
    pts = [da.random.RandomState(k).random_sample(200_000, chunks=50_000) for k in range(3)]
    lazy = fn(*pts)
    got = client.compute(lazy).result(timeout=WAIT)
    np.testing.assert_array_equal(got, fn(*[p.compute() for p in pts]))
    # the workers started with an empty graphad cache: they compiled on their own, into it
    assert any(name.endswith(".o") for name in os.listdir(folder / "graphad"))
    loss, (X, y, w, b, lam), Xv, yv = _logistic()
    mem = ga.scipy_objective(loss, [w, b], data={X: Xv, y: yv, lam: 0.01})
    lazy = ga.scipy_objective(loss, [w, b], data={X: da.from_array(Xv, chunks=(300, 3)),
                                                  y: da.from_array(yv, chunks=300), lam: 0.01})
    x0 = np.array([0.1, -0.2, 0.3, 0.05])
    np.testing.assert_allclose(lazy.jac(x0), mem.jac(x0), rtol=1e-12, atol=1e-15)
    assert lazy.fun(x0) == pytest.approx(mem.fun(x0), rel=1e-14)
    # the data stay on the workers between calls: persisted there, not here
    for a in lazy._problem.rows.arrays:
        where = client.who_has(a)
        assert len(where) == a.numblocks[0] and all(where.values())


def test_an_op_the_workers_lack_is_an_error_at_the_caller_not_a_hang(cluster):
    lc, client, _ = cluster
    from graphad.registry import OPS

    softplus = ga.define_op("softplus_only_here", lambda x: np.logaddexp(0.0, x),
                            [lambda x, out: 1 / (1 + ga.exp(-x))],
                            scalar=lambda x: max(x, 0.0) + np.log1p(np.exp(-abs(x))))
    try:
        with ga.Graph():
            x = ga.symbols("x")
        fn = ga.compile(softplus(x), [x])
        with pytest.raises(ValueError, match="softplus_only_here are not registered in this process"):
            client.compute(fn(da.linspace(-1, 1, 10, chunks=5))).result(timeout=WAIT)
    finally:  # other tests run over every registered op
        del OPS["softplus_only_here"]


def test_a_killed_worker_costs_time_not_the_result(cluster):
    lc, client, _ = cluster
    from distributed import as_completed, wait

    fn = _w3()
    pts = [da.random.RandomState(k).random_sample(32_000_000, chunks=1_000_000) for k in range(3)]
    blocks = fn(*pts).to_delayed().ravel().tolist()  # 32 tasks, each a block of points
    futures = client.compute([dask.delayed(np.sum)(b) for b in blocks])
    next(as_completed(futures))  # one finished: the rest are running or waiting
    victim = next(iter(lc.workers.values()))
    os.kill(victim.process.process.pid, signal.SIGKILL)
    assert sum(f.done() for f in futures) < len(futures)  # killed in the middle
    wait(futures, timeout=WAIT)
    totals = client.gather(futures)
    expected = [np.sum(fn(*[p.blocks[k].compute() for p in pts])) for k in range(len(blocks))]
    np.testing.assert_allclose(totals, expected, rtol=1e-13)
    deadline = time.monotonic() + WAIT  # the nanny restarts the worker
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(client.scheduler_info()["workers"]) == 2
