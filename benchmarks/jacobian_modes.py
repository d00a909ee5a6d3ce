"""Forward against reverse mode for Jacobians across a grid of (n inputs, m outputs).

    python benchmarks/jacobian_modes.py [--quick]

The function has a deep shared trunk, the case the cost rule is about: the
inputs meet in u = tanh(w . x), 64 steps u <- sin(u) + u/2 follow, and output
i is c_i * u + x_(i mod n), so the Jacobian is dense. Each tangent sweep
(forward mode, one per input) and each adjoint sweep (reverse mode, one per
output) walks the whole trunk, so forward costs about n * (64 + m) nodes and
reverse about m * (64 + n). For each (n, m) it prints the node count of each
compiled Jacobian, its time per evaluation, which mode ga.jacobian(mode="auto")
picks, and whether that is the cheaper one. Single thread; times are medians,
compared only within one run.
"""

import argparse
import statistics
import timeit

import numpy as np

import graphad as ga


def trunk(n, m, depth=64, seed=0):
    rng = np.random.default_rng(seed)
    w, c = rng.standard_normal(n) / np.sqrt(n), rng.standard_normal(m)
    xs = list(ga.symbols(f"x0:{n}"))
    u = ga.tanh(sum(float(w[j]) * xs[j] for j in range(n)))
    for _ in range(depth):
        u = ga.sin(u) + 0.5 * u
    ys = [float(c[i]) * u + xs[i % n] for i in range(m)]
    return ys, xs


def per_call(fn, x):
    fn(x)
    return statistics.median(timeit.repeat(lambda: fn(x), number=200, repeat=7)) / 200


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    sizes = [2, 8] if parser.parse_args(argv).quick else [2, 8, 32, 64]
    print(f"{'n':>4}{'m':>4}{'fwd nodes':>11}{'rev nodes':>11}{'fwd us':>9}{'rev us':>9}"
          f"{'auto picks':>12}{'cheaper (time)':>16}{'agree':>7}")
    agree = 0
    for n in sizes:
        for m in sizes:
            with ga.Graph():
                ys, xs = trunk(n, m)
                fns, nodes, times = {}, {}, {}
                x0 = np.random.default_rng(1).uniform(-1, 1, n)
                for mode in ("forward", "reverse"):
                    J = ga.jacobian(ys, xs, mode=mode)
                    fns[mode] = ga.compile([sum(J, [])], [xs])
                    nodes[mode] = len(fns[mode].program)
                    times[mode] = per_call(fns[mode], x0)
                np.testing.assert_allclose(fns["forward"](x0)[0], fns["reverse"](x0)[0], rtol=1e-12)
                auto = ga.jacobian(ys, xs)
                picked = "forward" if auto == ga.jacobian(ys, xs, mode="forward") else "reverse"
            cheaper = min(times, key=times.get)
            # when the two modes are within 10% of each other, either choice is fine
            ok = picked == cheaper or abs(times["forward"] - times["reverse"]) < 0.1 * min(times.values())
            agree += ok
            print(f"{n:>4}{m:>4}{nodes['forward']:>11}{nodes['reverse']:>11}{times['forward'] * 1e6:>9.2f}"
                  f"{times['reverse'] * 1e6:>9.2f}{picked:>12}{cheaper:>16}{'yes' if ok else 'NO':>7}")
    print(f"auto picked the cheaper mode (or one within 10%) in {agree} of {len(sizes) ** 2} cases")


if __name__ == "__main__":
    main()
