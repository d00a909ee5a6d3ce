"""The T rows of benchmarks/run.py: compiled array graphs against hand-written code.

T1  MLP 784-1024-256-10 (tanh, softmax cross-entropy, 1.07M parameters), batch
    128: value + gradient, and the loss alone; hand = NumPy forward and backward
    written by hand; peak memory of one call (NumPy allocations, tracemalloc)
T2  Rosenbrock, n = 10^6, written with slicing: value + gradient; hand = @njit loop
T3  fit of a*exp(-b*t) + c to 10^6 points: value + gradient of 0.5*sum(r**2),
    and the n x 3 Jacobian of r; hand = @njit loops
T4  preparation of T1 (build, grad, compile, first call) at first-layer widths
    256, 1024 and 4096, in a fresh process: cold (empty caches) and from the cache
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc

import numba
import numpy as np

import graphad as ga


def mlp(widths):
    """The T1 model: loss and parameters, over a batch of any size ("n")."""
    X, Y = ga.symbols("X", shape=("n", widths[0])), ga.symbols("Y", shape=("n", widths[-1]))
    params, h = [], X
    for k, (a, b) in enumerate(zip(widths, widths[1:])):
        W, c = ga.symbols(f"W{k}", shape=(a, b)), ga.symbols(f"c{k}", shape=(b,))
        params += [W, c]
        h = h @ W + c
        if k < len(widths) - 2:
            h = ga.tanh(h)
    loss = ga.mean(ga.logsumexp(h, axis=1) - ga.sum(Y * h, axis=1))
    return loss, params, X, Y


def _hand_mlp(values, X, Y):
    """Value and gradient of the T1 loss, written by hand with NumPy."""
    W0, c0, W1, c1, W2, c2 = values
    h1 = np.tanh(X @ W0 + c0)
    h2 = np.tanh(h1 @ W1 + c1)
    z = h2 @ W2 + c2
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    n = X.shape[0]
    loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(Y * z, axis=1)))
    dz = (e / s - Y) / n
    dh2 = (dz @ W2.T) * (1 - h2 * h2)
    dh1 = (dh2 @ W1.T) * (1 - h1 * h1)
    return loss, [X.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0)]


def _hand_mlp_loss(values, X, Y):
    W0, c0, W1, c1, W2, c2 = values
    z = np.tanh(np.tanh(X @ W0 + c0) @ W1 + c1) @ W2 + c2
    m = z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z - m).sum(axis=1)) + m[:, 0] - np.sum(Y * z, axis=1)))


def _ratio_rows(rows, workload: str, times: dict, reference: str) -> None:
    """One row per system: milliseconds, and the ratio to ``reference`` measured in the same run."""
    for system, seconds in times.items():
        rows.append((workload, system, seconds * 1e3, seconds / times[reference]))


def _jax_float64(jax, fn):
    """``fn``, once checked to compute in float64 (JAX computes in float32 unless x64 is on)."""
    dtypes = {str(x.dtype) for x in jax.tree_util.tree_leaves(fn())}
    assert dtypes == {"float64"}, f"JAX computed in {dtypes}, not float64"
    return fn


def _peak_mb(fn, *args) -> float:
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def t1(rows, peer, interleaved, batch=128, widths=(784, 1024, 256, 10)):
    loss, params, X, Y = mlp(widths)
    grads = ga.grad(loss, params)
    fg = ga.compile([loss, *grads], [*params, X, Y])
    f = ga.compile(loss, [*params, X, Y])
    rng = np.random.default_rng(0)
    values = [rng.normal(0, 1 / math.sqrt(p.shape[0]), p.shape) if p.ndim == 2 else np.zeros(p.shape)
              for p in params]
    Xv, Yv = rng.normal(size=(batch, widths[0])), np.eye(widths[-1])[rng.integers(0, widths[-1], batch)]
    got, hand = fg(*values, Xv, Yv), _hand_mlp(values, Xv, Yv)
    assert abs(got[0] - hand[0]) < 1e-10
    assert all(np.allclose(a, b, atol=1e-12) for a, b in zip(got[1:], hand[1]))
    name = f"T1 MLP {'-'.join(map(str, widths))} batch {batch}"
    cands = {"hand NumPy": lambda: _hand_mlp(values, Xv, Yv), "graphad": lambda: fg(*values, Xv, Yv)}
    loss_cands = {"hand NumPy": lambda: _hand_mlp_loss(values, Xv, Yv), "graphad": lambda: f(*values, Xv, Yv)}
    if "jax" in peer:
        jax, jnp = peer["jax"], peer["jax"].numpy

        def jloss(ps, x, y):
            h = x
            for k in range(0, len(ps), 2):
                h = h @ ps[k] + ps[k + 1]
                if k < len(ps) - 2:
                    h = jnp.tanh(h)
            return jnp.mean(jax.nn.logsumexp(h, axis=1) - jnp.sum(y * h, axis=1))

        jv = [jnp.asarray(v) for v in values]
        jx, jy = jnp.asarray(Xv), jnp.asarray(Yv)
        vg, lo = jax.jit(jax.value_and_grad(jloss)), jax.jit(jloss)
        cands["JAX jit"] = _jax_float64(jax, lambda: jax.block_until_ready(vg(jv, jx, jy)))
        loss_cands["JAX jit"] = _jax_float64(jax, lambda: jax.block_until_ready(lo(jv, jx, jy)))
    if "torch" in peer:
        torch = peer["torch"]
        tv = [torch.tensor(v, requires_grad=True) for v in values]
        tx, ty = torch.tensor(Xv), torch.tensor(Yv)

        def tloss():
            h = tx
            for k in range(0, len(tv), 2):
                h = h @ tv[k] + tv[k + 1]
                if k < len(tv) - 2:
                    h = torch.tanh(h)
            return (torch.logsumexp(h, 1) - (ty * h).sum(1)).mean()

        cands["torch eager"] = lambda: torch.autograd.grad(tloss(), tv)
        with torch.no_grad():
            loss_cands["torch eager"] = lambda: float(tloss())
    times = interleaved(cands, (), rounds=7)
    loss_times = interleaved(loss_cands, (), rounds=7)
    _ratio_rows(rows, f"{name}: value + gradient, ms", times, "hand NumPy")
    _ratio_rows(rows, f"{name}: loss alone, ms", loss_times, "hand NumPy")
    for k in times:
        rows.append((f"{name}: gradient / loss", k, times[k] / loss_times[k], None))
    rows.append((f"{name}: peak memory of a gradient call, MB", "hand NumPy",
                 _peak_mb(_hand_mlp, values, Xv, Yv), None))
    rows.append((f"{name}: peak memory of a gradient call, MB", "graphad",
                 _peak_mb(fg, *values, Xv, Yv), None))


def t2(rows, peer, interleaved, n):
    @numba.njit(cache=False)
    def hand(x):  # returns a fresh gradient, as every other row does
        total = 0.0
        g = np.zeros(x.shape[0])
        for i in range(x.shape[0] - 1):
            d = x[i + 1] - x[i] * x[i]
            e = 1.0 - x[i]
            total += 100.0 * d * d + e * e
            g[i] += -400.0 * x[i] * d - 2.0 * e
            g[i + 1] += 200.0 * d
        return total, g

    x = ga.symbols("x", shape=("n",))
    f = ga.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    fg = ga.compile([f, ga.grad(f, x)], [x])
    finite = ga.compile([f, ga.grad(f, x)], [x], assume_finite=True)  # chain products without 0*inf = 0
    v = np.random.default_rng(0).uniform(-1, 1, n)
    (value, grad), (want, g) = fg(v), hand(v)
    assert abs(value - want) < 1e-9 * abs(value) and np.allclose(grad, g, rtol=1e-12, atol=1e-12)
    cands = {"hand @njit": lambda: hand(v), "graphad": lambda: fg(v),
             "graphad assume_finite=True": lambda: finite(v)}
    if "jax" in peer:
        jax, jnp = peer["jax"], peer["jax"].numpy
        jf = lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)  # noqa: E731
        jvg = jax.jit(jax.value_and_grad(jf))
        jv = jnp.asarray(v)
        cands["JAX jit"] = _jax_float64(jax, lambda: jax.block_until_ready(jvg(jv)))
    if "torch" in peer:
        torch = peer["torch"]
        tv = torch.tensor(v, requires_grad=True)
        cands["torch eager"] = lambda: torch.autograd.grad(
            torch.sum(100 * (tv[1:] - tv[:-1] ** 2) ** 2 + (1 - tv[:-1]) ** 2), tv)
    times = interleaved(cands, (), rounds=7)
    _ratio_rows(rows, f"T2 Rosenbrock-{n:,} by slicing: value + gradient, ms", times, "hand @njit")


def t3(rows, peer, interleaved, n):
    @numba.njit(cache=False)
    def hand(p, t, y):
        a, b, c = p
        total, ga_, gb, gc = 0.0, 0.0, 0.0, 0.0
        for i in range(t.shape[0]):
            e = math.exp(-b * t[i])
            r = a * e + c - y[i]
            total += r * r
            ga_ += r * e
            gb += -r * a * t[i] * e
            gc += r
        return 0.5 * total, np.array([ga_, gb, gc])

    @numba.njit(cache=False)
    def hand_jac(p, t, J):
        a, b = p[0], p[1]
        for i in range(t.shape[0]):
            e = math.exp(-b * t[i])
            J[i, 0] = e
            J[i, 1] = -a * t[i] * e
            J[i, 2] = 1.0
        return J

    t, y = ga.symbols("t y", shape=("n",))
    a, b, c = ga.symbols("a b c")
    r = a * ga.exp(-b * t) + c - y
    loss = 0.5 * ga.sum(r * r)
    fg = ga.compile([loss, ga.grad(loss, [a, b, c])], [[a, b, c], t, y])
    finite = ga.compile([loss, ga.grad(loss, [a, b, c])], [[a, b, c], t, y], assume_finite=True)
    (jac,) = ga.jacobian([r], [a, b, c], mode="forward")
    J = ga.compile(ga.stack(jac, axis=1), [[a, b, c], t, y])
    rng = np.random.default_rng(0)
    tv = np.linspace(0, 5, n)
    yv = 2.5 * np.exp(-1.3 * tv) + 0.5 + 0.05 * rng.standard_normal(n)
    p = np.array([2.0, 1.0, 0.3])
    Jbuf = np.empty((n, 3))
    got, want = fg(p, tv, yv), hand(p, tv, yv)
    assert abs(got[0] - want[0]) < 1e-9 * want[0] and np.allclose(got[1], want[1], rtol=1e-9)
    assert np.allclose(J(p, tv, yv), hand_jac(p, tv, Jbuf), rtol=1e-14)
    cands = {"hand @njit": lambda: hand(p, tv, yv), "graphad": lambda: fg(p, tv, yv),
             "graphad assume_finite": lambda: finite(p, tv, yv)}
    jac_cands = {"hand @njit": lambda: hand_jac(p, tv, np.empty((n, 3))), "graphad": lambda: J(p, tv, yv)}
    if "jax" in peer:
        jax, jnp = peer["jax"], peer["jax"].numpy

        def jr(q, t, y):
            return q[0] * jnp.exp(-q[1] * t) + q[2] - y

        jvg = jax.jit(jax.value_and_grad(lambda q, t, y: 0.5 * jnp.sum(jr(q, t, y) ** 2)))
        jjac = jax.jit(jax.jacfwd(jr))
        jp, jt, jy = jnp.asarray(p), jnp.asarray(tv), jnp.asarray(yv)
        cands["JAX jit"] = _jax_float64(jax, lambda: jax.block_until_ready(jvg(jp, jt, jy)))
        jac_cands["JAX jit jacfwd"] = _jax_float64(jax, lambda: jax.block_until_ready(jjac(jp, jt, jy)))
    if "torch" in peer:
        torch = peer["torch"]
        tp, tt, ty = torch.tensor(p, requires_grad=True), torch.tensor(tv), torch.tensor(yv)
        cands["torch eager"] = lambda: torch.autograd.grad(
            0.5 * torch.sum((tp[0] * torch.exp(-tp[1] * tt) + tp[2] - ty) ** 2), tp)
    times = interleaved(cands, (), rounds=7)
    jac_times = interleaved(jac_cands, (), rounds=7)
    _ratio_rows(rows, f"T3 fit at {n:,} points: value + gradient, ms", times, "hand @njit")
    _ratio_rows(rows, f"T3 fit at {n:,} points: n x 3 Jacobian, ms", jac_times, "hand @njit")


T4_SCRIPT = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import graphad as ga
    sys.path.insert(0, sys.argv[2])
    from array_rows import mlp
    width = int(sys.argv[1])
    rng = np.random.default_rng(0)  # the data are made first: they are not preparation
    shapes = [(784, width), (width,), (width, 256), (256,), (256, 10), (10,)]
    values = [rng.normal(size=s) * 0.01 for s in shapes]
    data = rng.normal(size=(128, 784)), np.eye(10)[rng.integers(0, 10, 128)]
    t1 = time.perf_counter()
    loss, params, X, Y = mlp((784, width, 256, 10))
    fg = ga.compile([loss, *ga.grad(loss, params)], [*params, X, Y])
    fg(*values, *data)
    print(json.dumps({"prep": time.perf_counter() - t1, "imports": t1 - t0}))
""")


def t4(rows, widths):
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, GRAPHAD_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
        for width in widths:
            for phase in ("cold", "from the cache"):
                out = subprocess.run([sys.executable, "-c", T4_SCRIPT, str(width), here], env=env,
                                     capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(("T4 preparation of T1 (build, grad, compile, first call), s",
                             f"width {width}, {phase}", result["prep"], None))
