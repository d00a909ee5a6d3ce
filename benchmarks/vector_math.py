"""Accuracy and speed of the SIMD math in compiled batch loops (graphad.vecmath).

For each function that has libmvec versions on this machine, a batch call of
``op(x)`` compiled by graphad runs over random points in a wide domain, once
with SIMD math (the default) and once with ``exact_math=True`` (scalar libm).
Both are compared with mpmath at 100 bits: the largest error in ulp of the
correctly rounded value. The time is per point of a batch of 10^6, one thread.

    python benchmarks/vector_math.py            # 20,000 points per function
    python benchmarks/vector_math.py --quick    # 2,000
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import mpmath  # noqa: E402
import numpy as np  # noqa: E402

import graphad as ga  # noqa: E402
from graphad import vecmath  # noqa: E402

# op -> (mpmath function, domain of each argument, log-uniform?)
CASES = {
    "exp": (mpmath.exp, [(-700, 700)], False),
    "log": (mpmath.log, [(1e-300, 1e300)], True),
    "sin": (mpmath.sin, [(-1e4, 1e4)], False),
    "cos": (mpmath.cos, [(-1e4, 1e4)], False),
    "tan": (mpmath.tan, [(-1e4, 1e4)], False),
    "pow": (mpmath.power, [(1e-3, 1e3), (-50, 50)], False),
    "log1p": (mpmath.log1p, [(-0.999, 1e3)], False),
    "expm1": (mpmath.expm1, [(-50, 700)], False),
    "asin": (mpmath.asin, [(-1, 1)], False),
    "acos": (mpmath.acos, [(-1, 1)], False),
    "atan": (mpmath.atan, [(-1e3, 1e3)], False),
    "atan2": (mpmath.atan2, [(-10, 10), (-10, 10)], False),
    "sinh": (mpmath.sinh, [(-700, 700)], False),
    "cosh": (mpmath.cosh, [(-700, 700)], False),
    "tanh": (mpmath.tanh, [(-20, 20)], False),
    "asinh": (mpmath.asinh, [(-1e5, 1e5)], False),
    "acosh": (mpmath.acosh, [(1, 1e5)], False),
    "atanh": (mpmath.atanh, [(-1, 1)], False),
    "erf": (mpmath.erf, [(-6, 6)], False),
    "hypot": (lambda a, b: mpmath.sqrt(a * a + b * b), [(-1e3, 1e3), (-1e3, 1e3)], False),
}


def errors(got: np.ndarray, exact: list) -> tuple[float, int]:
    """The largest error of ``got`` against the 100-bit values ``exact`` in ulp of
    the correctly rounded value, and how many points are finite in one but not
    the other."""
    worst, mismatched = 0.0, 0
    for g, e in zip(got, exact):
        r = float(e)
        if math.isfinite(g) and math.isfinite(r):
            worst = max(worst, float(abs(mpmath.mpf(g) - e)) / np.spacing(abs(r)))
        elif math.isfinite(g) != math.isfinite(r) and not (math.isnan(g) and isinstance(e, mpmath.mpc)):
            mismatched += 1
    return worst, mismatched


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    n = 2_000 if p.parse_args().quick else 20_000
    found = vecmath.variants()
    widths = sorted({w for v in found.values() for _, w in v})
    print(f"# {platform.machine()}, glibc {platform.libc_ver()[1]}, libmvec widths {widths or 'none'}, "
          f"{n:,} points per function")
    if not found:
        print("no SIMD math on this machine: batch loops call scalar libm")
        return
    mpmath.mp.prec = 100
    rng = np.random.default_rng(0)
    print(f"{'op':7} {'SIMD ulp':>9} {'libm ulp':>9} {'SIMD ns/pt':>11} {'libm ns/pt':>11} "
          f"{'inf/nan differ':>15}")
    for op, (ref, domains, log) in CASES.items():
        callee = next(c for c, (name, _) in vecmath.FUNCTIONS.items() if name == op)
        if callee not in found:
            print(f"{op:7} {'(no libmvec version)':>31}")
            continue
        args = [np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if log else rng.uniform(lo, hi, n)
                for lo, hi in domains]
        xs = ga.symbols(" ".join(f"x{k}" for k in range(len(args))))
        xs = xs if isinstance(xs, tuple) else (xs,)
        f = getattr(ga, op)(*xs) if op != "pow" else xs[0] ** xs[1]
        exact = [ref(*(mpmath.mpf(float(a[i])) for a in args)) for i in range(n)]
        many = [np.resize(a, 10**6) for a in args]  # for the timing
        row = []
        for exact_math in (False, True):
            fn = ga.compile(f, list(xs), exact_math=exact_math)
            worst, mismatched = errors(fn(*args), exact)
            fn(*many)
            t0 = time.perf_counter()
            for _ in range(5):
                fn(*many)
            row += [worst, (time.perf_counter() - t0) / 5 / len(many[0]) * 1e9, mismatched]
        print(f"{op:7} {row[0]:9.2f} {row[3]:9.2f} {row[1]:11.2f} {row[4]:11.2f} {row[2]:>9} / {row[5]}")


if __name__ == "__main__":
    main()
