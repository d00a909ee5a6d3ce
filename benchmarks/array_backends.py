"""Array kernels compiled by graphad (LLVM IR, graphad/lowering/native.py) against the
same kernels compiled by Numba, in one process: time per call, and equal results.

Both run the source that graphad/lowering/loops.py writes for the T1-T3 workloads of
benchmarks/run.py; only the compiler differs. Single-threaded, float64, medians of
interleaved rounds. ``--quick`` for smaller sizes (a smoke test).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time

import numba
import numpy as np
from numba import types

import graphad as ga
import graphad.compiled_arrays as ca

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from array_rows import mlp  # noqa: E402


def numba_twin(fn):
    """``fn`` with its kernel compiled by Numba from the same source."""
    program, lowered = fn.program, fn._lowered
    signature = (types.Array(types.int64, 1, "C"),
                 *(types.Array(types.float64, len(program.nodes[i][3]), "C") if program.nodes[i][3]
                   else types.float64 for i in program.inputs),
                 *(numba.typeof(c) for c in fn._consts),
                 *(types.Array(types.float64, len(shape), "C") for shape, _ in lowered.buffers))
    twin = copy.copy(fn)
    twin._kernel = ca._load(ca._module_text(lowered, False), "f" * 40, signature).kernel
    twin._plans = {}
    return twin


def seconds(f, args, repeat):
    t0 = time.perf_counter()
    for _ in range(repeat):
        f(*args)
    return (time.perf_counter() - t0) / repeat


def workloads(quick: bool):
    n = 10_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    with ga.Graph():
        t, y = ga.symbols("t y", shape=("n",))
        a, b, c = ga.symbols("a b c")
        r = a * ga.exp(-b * t) + c - y
        loss = 0.5 * ga.sum(r * r)
        (jac,) = ga.jacobian([r], [a, b, c], mode="forward")
        tv = np.linspace(0, 5, n)
        args = (np.array([2.0, 1.0, 0.3]), tv, 2.5 * np.exp(-1.3 * tv) + 0.5)
        yield "T3 value + gradient", ga.compile([loss, ga.grad(loss, [a, b, c])], [[a, b, c], t, y]), args
        yield "T3 n x 3 Jacobian", ga.compile(ga.stack(jac, axis=1), [[a, b, c], t, y]), args
    with ga.Graph():
        x = ga.symbols("x", shape=("n",))
        f = ga.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        yield "T2 Rosenbrock by slicing", ga.compile([f, ga.grad(f, x)], [x]), (rng.uniform(-1, 1, n),)
    with ga.Graph():
        batch = 32 if quick else 128
        loss, params, X, Y = mlp((784, 1024, 256, 10))
        values = [rng.normal(0, 0.03, p.shape) for p in params]
        data = rng.normal(size=(batch, 784)), np.eye(10)[rng.integers(0, 10, batch)]
        yield "T1 MLP value + gradient", ga.compile([loss, *ga.grad(loss, params)], [*params, X, Y]), (
            *values, *data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:
        pass
    rounds = 3 if args.quick else 9
    with tempfile.TemporaryDirectory() as cache:  # Numba's twins are compiled afresh
        os.environ["GRAPHAD_CACHE_DIR"] = cache
        print(f"{'workload':<28}{'graphad, ms':>14}{'Numba, ms':>12}{'ratio':>8}")
        for name, fn, call_args in workloads(args.quick):
            twin = numba_twin(fn)
            assert isinstance(fn._kernel, ca.NativeKernel)
            for got, want in zip(fn(*call_args), twin(*call_args)):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
            repeat = max(1, int(0.05 / max(seconds(fn, call_args, 1), 1e-6)))
            times = {"graphad": [], "numba": []}
            for _ in range(rounds):  # interleaved: the machine's noise falls on both
                times["graphad"].append(seconds(fn, call_args, repeat))
                times["numba"].append(seconds(twin, call_args, repeat))
            g, n = (statistics.median(times[k]) * 1e3 for k in ("graphad", "numba"))
            print(f"{name:<28}{g:>14.3f}{n:>12.3f}{g / n:>7.2f}x")


if __name__ == "__main__":
    main()
