"""graphad's speed table: ratios against a hand-written @njit kernel, measured in the same run.

    python benchmarks/run.py            # the full table (a few minutes)
    python benchmarks/run.py --quick    # smaller sizes, for a smoke test
    python benchmarks/run.py --only W1 W2   # some workloads only

W1  gradient of exp(x**2) at x = 2, per call from Python, float in, float out
W2  Rosenbrock in 100 variables: gradient per call (array in, array out), and
    time(gradient) / time(function)
W3  value and both partials of exp(-(x**2+y**2))*sin(3x)*cos(2y) + log(1+x**2*y**2)
    at 1,000,000 points (serial; one row in parallel)
W4  preparation (grad + passes + compile + first call) of the Rosenbrock-n
    gradient written as a Python loop over scalars, in a fresh process, cold
    (empty cache) and from the cache, with the fitted growth exponent, and the
    time per call at each n; both as ga.grad then ga.compile, and as
    ga.compile_grad (cached as one unit: a hit skips building the gradient)
T1-T4  compiled array graphs (benchmarks/array_rows.py says what each row is)
A1  array nodes: building the Rosenbrock-10^6 function and gradient written with
    slices (time and node count), its gradient evaluated by graphad's NumPy
    evaluator against the same gradient written by hand in NumPy; A2 the
    build of an MLP's loss and gradient at two sets of layer widths

Times are medians over rounds of repeats; only ratios within one run mean
anything (medians move 10-60% between runs on a shared machine). JAX, PyTorch,
CasADi and PyTensor rows appear where they are installed. Single-threaded unless a row
says otherwise (BLAS is held to one thread where threadpoolctl is installed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import timeit

import numba
import numpy as np

import graphad as ga

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import array_rows  # noqa: E402  (the T rows, in a file of their own)


def per_call(fn, *args, number=None, rounds=7):
    """Median seconds per call of fn(*args) over ``rounds`` rounds. The statement
    timed is the call itself, ``f(a0, a1, ...)``: a lambda around it would add
    about 40 ns to every row, a third of a small call."""
    fn(*args)
    names = {"f": fn, **{f"a{k}": a for k, a in enumerate(args)}}
    stmt = f"f({', '.join(f'a{k}' for k in range(len(args)))})"
    if number is None:
        t = timeit.timeit(stmt, number=1, globals=names)
        number = max(1, int(0.05 / max(t, 1e-9)))
    return statistics.median(timeit.repeat(stmt, number=number, repeat=rounds, globals=names)) / number


def interleaved(candidates: dict, args, rounds=9):
    """Median per-call times of several functions, measured in alternation."""
    times = {k: [] for k in candidates}
    for f in candidates.values():
        f(*args)
    for _ in range(rounds):
        for k, f in candidates.items():
            times[k].append(per_call(f, *args, rounds=1))
    return {k: statistics.median(v) for k, v in times.items()}


def peers():
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    found = {}
    for name in ("jax", "torch", "casadi", "pytensor"):
        try:
            found[name] = __import__(name)
        except Exception:
            pass
    if "jax" in found:  # every row is float64: JAX computes in float32 unless told
        found["jax"].config.update("jax_enable_x64", True)
    return found


def casadi_trigger(cf, x):
    """CasADi's low-overhead buffer API: inputs written once, the result left in
    its buffer; the timed call is the bare trigger (a lower bound on a real call)."""
    ca_in = np.array(x, dtype=float).reshape(-1)
    ca_out = np.zeros(cf.size1_out(0))
    buf, trigger = cf.buffer()
    buf.set_arg(0, memoryview(ca_in))
    buf.set_res(0, memoryview(ca_out))
    trigger()
    assert np.allclose(ca_out, np.asarray(cf(x)).ravel())
    return lambda *_, keep=(ca_in, ca_out, buf): trigger()  # the buffers must outlive the calls


# -- W1 ------------------------------------------------------------------------------


def w1(rows, peer):
    @numba.njit(cache=False)
    def hand(x):
        return 2.0 * x * math.exp(x * x)

    x = ga.symbols("x")
    g = ga.compile(ga.grad(ga.exp(x**2), x), [x])
    cands = {"hand @njit": hand, "graphad": g, "math.exp (a CPython builtin, for scale)": math.exp}
    if "jax" in peer:
        jax = peer["jax"]
        jg = jax.jit(jax.grad(lambda x: jax.numpy.exp(x**2)))
        cands["JAX jit"] = lambda v: float(jg(v))
    if "torch" in peer:
        torch = peer["torch"]

        def tg(v):
            t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
            torch.exp(t**2).backward()
            return t.grad.item()

        cands["torch eager"] = tg
    if "casadi" in peer:
        ca = peer["casadi"]
        cx = ca.SX.sym("x")
        cf = ca.Function("g", [cx], [ca.gradient(ca.exp(cx**2), cx)])
        cands["CasADi (plain call)"] = lambda v: float(cf(v))
        cands["CasADi (buffer API, bare trigger)"] = casadi_trigger(cf, 2.0)
    if "pytensor" in peer:
        import pytensor.tensor as pt

        px = pt.dscalar("x")
        pf = peer["pytensor"].function([px], peer["pytensor"].grad(pt.exp(px**2), px), mode="NUMBA")
        pf.trust_input = True
        cands["PyTensor Numba (trust_input)"] = lambda v: float(pf(np.asarray(v)))
    times = interleaved(cands, (2.0,))
    for k, t in times.items():
        rows.append(("W1 grad exp(x**2), us/call", k, t * 1e6, t / times["hand @njit"]))


# -- W2 ------------------------------------------------------------------------------


def rosenbrock(xs):
    return sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))


def w2(rows, peer):
    @numba.njit(cache=False)
    def hand_grad(x):
        n = x.shape[0]
        g = np.zeros(n)
        for i in range(n - 1):
            t = x[i + 1] - x[i] * x[i]
            g[i] += -400.0 * x[i] * t - 2.0 * (1.0 - x[i])
            g[i + 1] += 200.0 * t
        return g

    @numba.njit(cache=False)
    def hand_f(x):
        s = 0.0
        for i in range(x.shape[0] - 1):
            s += 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
        return s

    xs = ga.symbols("x0:100")
    f = rosenbrock(xs)
    g = ga.compile_grad(f, xs, value=False)
    g_finite = ga.compile_grad(f, xs, value=False, assume_finite=True)
    fv = ga.compile(f, [xs])
    x0 = np.random.default_rng(0).uniform(-2, 2, 100)
    assert np.allclose(g(x0), hand_grad(x0)) and np.allclose(ga.compile(ga.grad(f, xs), [xs])(x0), g(x0))
    cands = {"hand @njit": hand_grad, "graphad": g, "graphad assume_finite=True": g_finite}
    if "jax" in peer:
        jax = peer["jax"]
        jnp = jax.numpy
        jg = jax.jit(jax.grad(lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)))
        cands["JAX jit"] = lambda x: np.asarray(jg(x))
    if "casadi" in peer:
        ca = peer["casadi"]
        cx = ca.SX.sym("x", 100)
        cf = ca.Function("g", [cx], [ca.gradient(
            ca.sum1(100 * (cx[1:] - cx[:-1] ** 2) ** 2 + (1 - cx[:-1]) ** 2), cx)])
        cands["CasADi (plain call)"] = lambda x: np.asarray(cf(x)).ravel()
        cands["CasADi (buffer API, bare trigger)"] = casadi_trigger(cf, x0)
        try:
            jit = ca.Function("gj", [cx], [cf(cx)], {"jit": True, "compiler": "shell",
                                                     "jit_options": {"flags": ["-O3"], "verbose": False}})
            cands["CasADi gcc -O3 jit (buffer API, bare trigger)"] = casadi_trigger(jit, x0)
        except Exception as e:  # no C compiler
            print(f"CasADi jit skipped: {e}", file=sys.stderr)
    if "pytensor" in peer:
        import pytensor.tensor as pt

        pv = pt.dvector("x")
        pobj = pt.sum(100 * (pv[1:] - pv[:-1] ** 2) ** 2 + (1 - pv[:-1]) ** 2)
        pg = peer["pytensor"].function([pv], peer["pytensor"].grad(pobj, pv), mode="NUMBA")
        pg.trust_input = True
        cands["PyTensor Numba (trust_input)"] = pg
    times = interleaved(cands, (x0,))
    for k, t in times.items():
        rows.append(("W2 Rosenbrock-100 gradient, us/call", k, t * 1e6, t / times["hand @njit"]))
    ft = interleaved({"hand": hand_f, "graphad": fv}, (x0,))
    rows.append(("W2 time(gradient) / time(function)", "hand @njit", times["hand @njit"] / ft["hand"], None))
    rows.append(("W2 time(gradient) / time(function)", "graphad", times["graphad"] / ft["graphad"], None))
    rows.append(("W2 time(gradient) / time(function)", "graphad assume_finite=True",
                 times["graphad assume_finite=True"] / ft["graphad"], None))


# -- W3 ------------------------------------------------------------------------------


def w3(rows, peer, n_points):
    @numba.njit(cache=False)
    def hand(x, y, f, fx, fy):
        for i in range(x.shape[0]):
            a, b = x[i], y[i]
            e = math.exp(-(a * a + b * b))
            s, c = math.sin(3 * a), math.cos(2 * b)
            q = a * a * b * b
            f[i] = e * s * c + math.log(1 + q)
            fx[i] = e * c * (3 * math.cos(3 * a) - 2 * a * s) + 2 * a * b * b / (1 + q)
            fy[i] = e * s * (-2 * math.sin(2 * b) - 2 * b * c) + 2 * a * a * b / (1 + q)

    x, y = ga.symbols("x y")
    f = ga.exp(-(x**2 + y**2)) * ga.sin(3 * x) * ga.cos(2 * y) + ga.log(1 + x**2 * y**2)
    outs = [f, *ga.grad(f, [x, y])]
    serial = ga.compile(outs, [x, y])
    parallel = ga.compile(outs, [x, y], parallel=True)
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(-2, 2, n_points), rng.uniform(-2, 2, n_points)
    bufs = [np.empty(n_points) for _ in range(3)]

    def hand_call(a, b):
        hand(a, b, *bufs)
        return bufs

    got = serial(xs, ys)
    for g_, h_ in zip(got, hand_call(xs, ys)):
        assert np.allclose(g_, h_, rtol=1e-12, atol=1e-12)
    cands = {"hand @njit": hand_call, "graphad": serial}
    if "jax" in peer:
        jax = peer["jax"]
        jnp = jax.numpy

        def jf(a, b):
            return jnp.exp(-(a**2 + b**2)) * jnp.sin(3 * a) * jnp.cos(2 * b) + jnp.log(1 + a**2 * b**2)

        vg = jax.jit(jax.vmap(jax.value_and_grad(jf, argnums=(0, 1))))
        cands["JAX jit+vmap"] = lambda a, b: jax.block_until_ready(vg(a, b))
    if "torch" in peer:
        torch = peer["torch"]

        def tw3(a, b):
            ta, tb = torch.from_numpy(a).requires_grad_(), torch.from_numpy(b).requires_grad_()
            tf = (torch.exp(-(ta**2 + tb**2)) * torch.sin(3 * ta) * torch.cos(2 * tb)
                  + torch.log(1 + ta**2 * tb**2))
            gx, gy = torch.autograd.grad(tf.sum(), [ta, tb])
            return tf.detach().numpy(), gx.numpy(), gy.numpy()

        cands["torch eager"] = tw3
    if "pytensor" in peer:
        import pytensor.tensor as pt

        px, py = pt.dvector("x"), pt.dvector("y")
        pf3 = pt.exp(-(px**2 + py**2)) * pt.sin(3 * px) * pt.cos(2 * py) + pt.log(1 + px**2 * py**2)
        pgx, pgy = peer["pytensor"].grad(pt.sum(pf3), [px, py])
        p3 = peer["pytensor"].function([px, py], [pf3, pgx, pgy], mode="NUMBA")
        p3.trust_input = True
        cands["PyTensor Numba (trust_input)"] = p3
    times = interleaved(cands, (xs, ys), rounds=5)
    times_par = per_call(parallel, xs, ys, rounds=5)
    for k, t in times.items():
        rows.append((f"W3 value+gradient at {n_points:,} points, ms", k, t * 1e3, t / times["hand @njit"]))
    rows.append((f"W3 value+gradient at {n_points:,} points, ms",
                 f"graphad parallel ({numba.get_num_threads()} threads)", times_par * 1e3,
                 times_par / times["hand @njit"]))


# -- W4 ------------------------------------------------------------------------------

W4_SCRIPT = textwrap.dedent("""
    import json, sys, time, timeit
    import numpy as np
    import graphad as ga
    n = int(sys.argv[1])
    xs = ga.symbols(f"x0:{n}")
    f = 0
    for i in range(n - 1):  # the Rosenbrock function as a plain Python loop over scalars
        f = f + 100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2
    t0 = time.perf_counter()
    if sys.argv[2] == "compile_grad":  # gradient and compilation cached as one unit
        fn = ga.compile_grad(f, xs, value=False)
        call_fn = fn
    else:
        g = ga.grad(f, xs)
        fn = ga.compile([g], [xs])
        call_fn = lambda x: fn(x)[0]  # noqa: E731
    x = np.full(n, 0.5)
    call_fn(x)
    prep = time.perf_counter() - t0
    number = max(1, int(2000 / n))
    call = min(timeit.repeat(lambda: call_fn(x), number=number, repeat=5)) / number
    print(json.dumps({"prep": prep, "call": call, "nodes": len(fn.program)}))
""")


def w4(rows, sizes):
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, GRAPHAD_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
        for way in ("grad+compile", "compile_grad"):
            for n in sizes:
                for phase in ("cold", "cached"):
                    out = subprocess.run([sys.executable, "-c", W4_SCRIPT, str(n), way], env=env,
                                         capture_output=True, text=True, check=True)
                    results[n, phase, way] = json.loads(out.stdout)
    for n in sizes:
        for way in ("grad+compile", "compile_grad"):
            cold, cached = results[n, "cold", way], results[n, "cached", way]
            rows.append((f"W4 Rosenbrock-n gradient preparation, s ({way})",
                         f"n={n} cold ({cold['nodes']} nodes)", cold["prep"], None))
            rows.append((f"W4 Rosenbrock-n gradient preparation, s ({way})", f"n={n} from cache",
                         cached["prep"], None))
        rows.append(("W4 Rosenbrock-n gradient, us/call", f"n={n}", results[n, "cold", "grad+compile"]["call"]
                     * 1e6, None))
    big = [n for n in sizes if n >= 100]
    if len(big) >= 2:
        cold = [results[n, "cold", "grad+compile"]["prep"] for n in big]
        slope = np.polyfit(np.log(big), np.log(cold), 1)[0]
        rows.append(("W4 growth exponent of cold preparation", f"n={big[0]}..{big[-1]}", slope, None))


def a1(rows, n):
    """Array nodes: building a gradient costs per op, not per element."""
    import time

    def build():
        with ga.Graph() as g:
            t0 = time.perf_counter()
            x = ga.symbols("x", shape=(n,))
            f = ga.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
            df = ga.grad(f, x)
            return time.perf_counter() - t0, len(g.ancestors([f.id, df.id])), x, df

    seconds = statistics.median(build()[0] for _ in range(7))
    _, nodes, x, df = build()
    rows.append((f"A1 Rosenbrock-{n:,} by slicing: build f + grad, ms", f"graphad ({nodes} nodes)",
                 seconds * 1e3, None))

    def hand(v):  # the gradient written by hand with NumPy
        g = np.zeros_like(v)
        d = v[1:] - v[:-1] ** 2
        g[:-1] = -400 * v[:-1] * d - 2 * (1 - v[:-1])
        g[1:] += 200 * d
        return g

    v = np.random.default_rng(0).uniform(-1, 1, n)
    np.testing.assert_allclose(ga.evaluate(df, {x: v}), hand(v), rtol=1e-12, atol=1e-12)
    times = interleaved({"hand": hand, "graphad": lambda v: ga.evaluate(df, {x: v})}, (v,), rounds=5)
    workload = f"A1 Rosenbrock-{n:,} gradient, ms (hand = NumPy)"
    rows.append((workload, "hand NumPy", times["hand"] * 1e3, 1.0))
    ratio = times["graphad"] / times["hand"]
    rows.append((workload, "graphad evaluate (NumPy)", times["graphad"] * 1e3, ratio))
    for widths in ((64, 32, 10), (784, 256, 10)):
        with ga.Graph() as g:
            t0 = time.perf_counter()
            loss, params, _, _ = array_rows.mlp(widths)
            grads = ga.grad(loss, params)
            seconds = time.perf_counter() - t0
            nodes = len(g.ancestors([loss.id] + [e.id for e in grads]))
        rows.append((f"A2 MLP {'-'.join(map(str, widths))} loss + grad build, ms", f"graphad ({nodes} nodes)",
                     seconds * 1e3, None))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    workloads = ["W1", "W2", "W3", "W4", "T1", "T2", "T3", "T4", "A1"]
    parser.add_argument("--only", nargs="+", choices=workloads, default=workloads, help="only these")
    args = parser.parse_args(argv)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    peer = peers()
    if "torch" in peer:
        peer["torch"].set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:
        pass
    rows: list[tuple] = []
    if "W1" in args.only:
        w1(rows, peer)
    if "W2" in args.only:
        w2(rows, peer)
    if "W3" in args.only:
        w3(rows, peer, 100_000 if args.quick else 1_000_000)
    if "W4" in args.only:
        w4(rows, [10, 100, 1000] if args.quick else [10, 100, 1000, 3000, 10000])
    if "T1" in args.only:
        with ga.Graph():  # each row in a graph of its own: symbol names repeat across rows
            rounds = (lambda c, a, rounds: interleaved(c, a, rounds=3)) if args.quick else interleaved
            array_rows.t1(rows, peer, rounds, batch=32 if args.quick else 128)
    if "T2" in args.only:
        with ga.Graph():
            array_rows.t2(rows, peer, interleaved, 10_000 if args.quick else 1_000_000)
    if "T3" in args.only:
        with ga.Graph():
            array_rows.t3(rows, peer, interleaved, 10_000 if args.quick else 1_000_000)
    if "T4" in args.only:
        array_rows.t4(rows, [256] if args.quick else [256, 1024, 4096])
    if "A1" in args.only:
        a1(rows, 10_000 if args.quick else 1_000_000)
    print(f"graphad {ga.__version__}, numba {numba.__version__}, numpy {np.__version__}; "
          f"peers: {', '.join(sorted(peer)) or 'none installed'}")
    print(f"{'workload':<70}{'system':<34}{'value':>12}{'ratio to hand':>15}")
    for workload, system, value, ratio in rows:
        r = "" if ratio is None else f"{ratio:.2f}x"
        print(f"{workload:<70}{system:<34}{value:>12.4g}{r:>15}")


if __name__ == "__main__":
    main()
