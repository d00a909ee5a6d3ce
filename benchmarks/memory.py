"""Memory of compiled functions in a long-running program: how much each one that is
made, called and dropped leaves behind.

    python benchmarks/memory.py            # 300 functions a row
    python benchmarks/memory.py --quick    # 30 (a smoke test)

Each row runs in a fresh process with a fresh cache folder. A function is a small
value and gradient, scalar (``exp(a*x)*sin(y)``) or array (``sum(tanh(a*x)**2)``),
built in its own graph, called at a point and on a batch, then dropped:

- fresh: every function is new (a new constant ``a``): compiled, cached, dropped;
- cached: ten functions compiled first, then made again and again from the cache
  (each is freed when dropped, so each is loaded anew).

The growth of the resident memory (``/proc/self/statm``, Linux) between the end of
a warm-up and the end of the loop, divided by the number of functions, is what
each one leaves behind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

SCRIPT = """
import gc, os, sys, time
import numpy as np
import graphad as ga

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def make(kind, k):
    with ga.Graph():
        a = 1.0 + k / 1024
        if kind == "scalar":
            x, y = ga.symbols("x y")
            f = ga.exp(a * x) * ga.sin(y)
            fn = ga.compile([f, ga.grad(f, [x, y])], [x, y])
            return fn(0.5, 1.5)[0] + fn(np.ones(3), 1.5)[0].sum()
        x = ga.symbols("x", shape=("n",))
        f = ga.sum(ga.tanh(a * x) ** 2)
        fn = ga.compile([f, ga.grad(f, x)], [x])
        return fn(np.ones(3))[0] + fn(np.ones(5))[1].sum()

kind, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for k in range(20):  # warm-up: the allocator, and for "cached" the ten cache entries
    make(kind, k % 10 if mode == "cached" else 10_000 + k)
gc.collect()
before, start = rss_mb(), time.perf_counter()
for k in range(n):
    make(kind, k % 10 if mode == "cached" else k)
gc.collect()
print(before, rss_mb(), (time.perf_counter() - start) / n)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 functions a row, not 300")
    n = 30 if parser.parse_args().quick else 300
    if not os.path.exists("/proc/self/statm"):
        sys.exit("memory.py reads the resident memory from /proc (Linux)")
    print(f"{'functions':<28}{'RSS before, MB':>16}{'after, MB':>12}{'kB each':>10}{'ms each':>10}")
    for kind in ("scalar", "array"):
        for mode in ("fresh", "cached"):
            with tempfile.TemporaryDirectory() as folder:
                env = dict(os.environ, GRAPHAD_CACHE_DIR=os.path.join(folder, "graphad"),
                           NUMBA_CACHE_DIR=os.path.join(folder, "numba"))
                out = subprocess.run([sys.executable, "-c", SCRIPT, kind, mode, str(n)], env=env,
                                     capture_output=True, text=True, check=True)
            before, after, seconds = map(float, out.stdout.split())
            print(f"{f'{n} {kind}, {mode}':<28}{before:>16.1f}{after:>12.1f}"
                  f"{(after - before) * 1024 / n:>10.1f}{seconds * 1e3:>10.1f}")


if __name__ == "__main__":
    main()
