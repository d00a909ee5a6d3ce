"""AD against symbolic differentiation: same values, different cost.

For families of growing size, the gradient is obtained two ways: SymPy
(diff, then lambdify as is and with cse=True, SymPy at its best) and graphad
(grad, passes, compile). Sizes are counted in operations on both sides
(SymPy's count_ops, graphad's operation nodes). The script prints a table and
writes it (ad_vs_symbolic_table.md), with log-scale plots of the sizes and the
evaluation times (ad_vs_symbolic.png), to --out (default ./ad_vs_symbolic_out);
docs/ad_vs_symbolic.md shows the copy made with --out docs/img. SymPy gets a
time budget per case; where it runs out, the table says so.

    python examples/ad_vs_symbolic.py            # the full table (several minutes)
    python examples/ad_vs_symbolic.py --quick    # small sizes
"""

import argparse
import os
import tempfile

import graphad as ga


def product(n):
    xs = ga.symbols(f"x0:{n}")
    f = xs[0]
    for x in xs[1:]:
        f = f * x
    return f, list(xs)


def nested_sin(n):
    x = ga.symbols("x")
    f = x
    for _ in range(n):
        f = ga.sin(f)
    return f, [x]


def recurrence(n):
    x0, a = ga.symbols("x0 a")
    v = x0
    for _ in range(n):  # x_{k+1} = x_k * exp(-x_k) + a
        v = v * ga.exp(-v) + a
    return v, [x0, a]


def lennard_jones(n):
    p = ga.symbols(f"p0:{3 * n}")
    energy = 0
    for i in range(n):
        for j in range(i + 1, n):
            r2 = sum((p[3 * i + k] - p[3 * j + k]) ** 2 for k in range(3))
            energy = energy + 4 * (r2**-6 - r2**-3)
    return energy, list(p)


FAMILIES = {
    "product x1*...*xn": (product, [10, 30, 100, 300, 1000], [5, 10, 30]),
    "nested sin(sin(...sin(x)))": (nested_sin, [5, 10, 20, 40, 80], [5, 10, 20]),
    "recurrence x = x*exp(-x) + a": (recurrence, [2, 4, 6, 8, 10, 12], [2, 4, 6]),
    "Lennard-Jones cluster, n atoms": (lennard_jones, [3, 5, 8, 12, 20], [3, 5]),
}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description="AD against symbolic differentiation")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--out", default="ad_vs_symbolic_out", help="folder for the table and the plot")
    parser.add_argument("--timeout", type=float, default=None, help="SymPy's budget per case, s")
    args = parser.parse_args(argv)
    timeout = args.timeout or (10.0 if args.quick else 60.0)
    # compile cold: a fresh cache, so graphad's times include compiling
    os.environ["GRAPHAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="graphad-ad-vs-symbolic-")

    header = ("| family | n | SymPy ops | SymPy ops after cse | graphad ops | SymPy diff+lambdify s "
              "| graphad grad+compile s | SymPy eval us | SymPy eval us, cse | graphad eval us "
              "| max rel. difference |")
    lines = [header, "|" + "---|" * 11]
    results = {}
    for family, (build, sizes, quick_sizes) in FAMILIES.items():
        for n in quick_sizes if args.quick else sizes:
            with ga.Graph():
                f, wrt = build(n)
                c = ga.compare_symbolic(f, wrt, timeout=timeout)
            results.setdefault(family, []).append((n, c))
            sym_time = None if c.sympy_lambdify_s is None else c.sympy_diff_s + c.sympy_lambdify_s
            row = (f"| {family} | {n} | {fmt(c.sympy_ops, ',')} | {fmt(c.sympy_cse_ops, ',')} | "
                   f"{c.graphad_ops:,} | {fmt(sym_time, '.3g')} | "
                   f"{c.graphad_grad_s + c.graphad_compile_s:.3g} | {fmt(c.sympy_eval_us, '.3g')} | "
                   f"{fmt(c.sympy_cse_eval_us, '.3g')} | {c.graphad_eval_us:.3g} | "
                   f"{fmt(c.max_rel_diff, '.1e')} |")
            if c.sympy_note:
                row = row[:-1] + f"{c.sympy_note} |"
            lines.append(row)
            print(row, flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ad_vs_symbolic_table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib is not installed (pip install 'graphad[examples]'): table only")
        return
    fig, axes = plt.subplots(2, len(results), figsize=(4.2 * len(results), 7.0), squeeze=False)
    panels = [("size of the gradient (operations)",
               [("SymPy", "sympy_ops", "o-"), ("SymPy after cse", "sympy_cse_ops", "s--"),
                ("graphad", "graphad_ops", "^-")]),
              ("time per gradient evaluation (us)",
               [("SymPy lambdify", "sympy_eval_us", "o-"),
                ("SymPy lambdify, cse=True", "sympy_cse_eval_us", "s--"),
                ("graphad", "graphad_eval_us", "^-")])]
    for row, (ylabel, curves) in zip(axes, panels):
        for ax, (family, rows) in zip(row, results.items()):
            for label, key, style in curves:
                pts = [(n, getattr(c, key)) for n, c in rows if getattr(c, key) is not None]
                if pts:
                    ax.plot(*zip(*pts), style, label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xticks([n for n, _ in rows])
            ax.set_title(family, fontsize=9)
            ax.set_xlabel("n")
            ax.grid(True, which="both", alpha=0.3)
        row[0].set_ylabel(ylabel)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(args.out, "ad_vs_symbolic.png")
    fig.savefig(path, dpi=110)
    print(f"wrote {path} and {os.path.join(args.out, 'ad_vs_symbolic_table.md')}")


if __name__ == "__main__":
    main()
