"""The ``graphad`` command (also ``python -m graphad``).

    graphad grad  "exp(x**2)*sin(y)" --at x=2,y=1
    graphad trace "exp(x**2)" --at x=2 --mode reverse [--format markdown]
    graphad graph "exp(x**2)*sin(y)" --out graph.svg [--adjoint] [--tangent] [--optimised] [--at x=2,y=1]
    graphad check "exp(x**2)*sin(y)" [--order 2]
    graphad demo [--out DIR]

Expressions are read by graphad's own safe parser (:mod:`graphad.parse`), never
evaluated as Python. Bad input exits with code 2 and one line saying why.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import unicodedata
import warnings

from .parse import ParseError, parse
from .pictures import PictureError


class UsageError(Exception):
    """Bad input on the command line: exit code 2."""


def _point(text: str | None) -> dict[str, float]:
    """``x=2,y=1`` as {"x": 2.0, "y": 1.0}; names are NFKC-normalised, as Python
    normalises them in the expression (so a full-width ｘ is x on both sides)."""
    if not text:
        return {}
    text = unicodedata.normalize("NFKC", text)
    point = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"cannot read {part!r} in --at: write name=value, e.g. --at x=2,y=1")
        try:
            point[name] = float(value)
        except ValueError:
            raise UsageError(f"the value of {name} in --at is {value!r}, not a number") from None
    return point


def _expression(text: str, at: dict[str, float], need_symbols: str = ""):
    import graphad as ga

    f = parse(text)
    names = sorted(f.graph.symbol_names([f.id]))
    if need_symbols and not names:
        raise UsageError(f"{text!r} has no symbols: there is nothing to {need_symbols}")
    symbols = [ga.symbols(n) for n in names]
    missing = [n for n in names if n not in at]
    if at and missing:
        raise UsageError(f"no value for {', '.join(missing)} in --at")
    return f, symbols, {s: at[s.name] for s in symbols if s.name in at}


def cmd_grad(args) -> int:
    import graphad as ga

    at = _point(args.at)
    f, symbols, env = _expression(args.expression, at)
    if not at:
        raise UsageError("grad needs a point: --at x=2,y=1")
    # one output: reverse mode gets every partial in one sweep (auto picks it, as jacobian would)
    mode = "reverse" if args.mode == "auto" else args.mode
    if mode == "forward":
        gradient = ga.jacobian([f], symbols, mode="forward")[0]
        why = f"forward mode: {len(symbols)} tangent sweep(s), one per input"
    else:
        gradient = ga.grad(f, symbols)
        why = f"reverse mode: one adjoint sweep for all {len(symbols)} input(s) (one output)"
    print(f"f = {f}")
    print(f"f({args.at}) = {ga.evaluate(f, env):.12g}")
    for s, g in zip(symbols, ga.evaluate(gradient, env) if symbols else []):
        print(f"df/d{s.name} = {g:.12g}")
    print(f"mode: {why}")
    return 0


def cmd_trace(args) -> int:
    import graphad as ga

    at = _point(args.at)
    f, symbols, env = _expression(args.expression, at, need_symbols="trace")
    if not at:
        raise UsageError("trace needs a point: --at x=2")
    seed = None
    if args.mode == "forward" and len(symbols) > 1:
        given = _point(args.seed) if args.seed else {symbols[0].name: 1.0}
        seed = {s: given.get(s.name, 0.0) for s in symbols}
    t = ga.trace(f, at=env, mode=args.mode, seed=seed)
    print({"text": str, "markdown": lambda t: t.markdown(), "latex": lambda t: t.latex(),
           "html": lambda t: t._repr_html_()}[args.format](t))
    return 0


def cmd_graph(args) -> int:
    import graphad as ga

    _output_file(args.out, (".dot", ".svg", ".png"))
    at = _point(args.at)
    f, symbols, env = _expression(args.expression, at)
    if args.optimised:
        pic = ga.picture_passes([f, *ga.grad(f, symbols)] if args.adjoint else [f], symbols)
    else:
        parts = ("primal",) + (("tangent",) if args.tangent else ()) + (("adjoint",) if args.adjoint else ())
        pic = ga.picture(f, symbols, parts=parts, at=env or None)
    pic.save(args.out)
    print(f"wrote {args.out}")
    return 0


def _output_file(path: str, extensions: tuple[str, ...]) -> None:
    """A file that can be written: its folder exists, it is no folder, its name fits."""
    name = os.path.basename(path)
    if not name or os.path.isdir(path):
        raise UsageError(f"--out {path!r} is a folder; give a file name ending in {', '.join(extensions)}")
    if os.path.splitext(name)[1].lower() not in extensions:
        raise UsageError(f"--out {path!r}: the file name must end in {', '.join(extensions)}")
    if len(os.fsencode(name)) > 255:
        raise UsageError(f"--out: the file name is {len(os.fsencode(name))} bytes long; the limit is 255")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise UsageError(f"--out {path!r}: the folder {folder!r} does not exist")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def cmd_check(args) -> int:
    import graphad as ga

    f, symbols, _ = _expression(args.expression, {}, need_symbols="check")
    # one budget for the whole check, SymPy's differentiation included
    report = ga.crosscheck(f, symbols, order=args.order, points=args.points, timeout=args.timeout)
    why = report.unchecked.get("everything")  # the check did not run at all
    if why and "timeout" in why:
        raise UsageError(f"the check did not finish within {args.timeout:g} s (--timeout); SymPy "
                         "is slow on large expressions: try --order 1 or a smaller expression")
    if why:
        raise UsageError(f"the check could not run: {why}")
    print(report)
    return 0 if report.passed else 1


def cmd_demo(args) -> int:
    """The seed example end to end: f = exp(x**2) at x = 2."""
    import numpy as np

    import graphad as ga

    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} is a file; give a folder for the pictures")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot make the folder {out!r}: {e.strerror}") from None
    x = ga.symbols("x")
    f = ga.exp(x**2)
    print("graphad demo: f(x) = exp(x**2) at x = 2; f'(2) = 4*exp(4) =", f"{4 * math.exp(4):.6f}\n")
    print("1. The computation graph (a DAG in networkx):")
    for v, node in ga.to_networkx([f]).nodes(data=True):
        print(f"   node {v}: {node['op']} {node.get('name', node.get('value', ''))}")
    print("\n2. Forward mode: push the tangent dx = 1 from x to f\n")
    print(ga.trace(f, at={x: 2.0}, mode="forward"))
    print("\n3. Reverse mode: pull the adjoint df = 1 from f back to x\n")
    print(ga.trace(f, at={x: 2.0}, mode="reverse"))
    print("\n4. Pictures")
    for name, parts in (("computation", ("primal",)), ("tangent", ("primal", "tangent")),
                        ("adjoint", ("primal", "adjoint"))):
        pic = ga.picture(f, [x], parts=parts, at={x: 2.0})
        print(f"   wrote {pic.save(os.path.join(out, f'{name}.dot'))}")
        try:
            for ext in (".svg", ".png"):
                print(f"   wrote {pic.save(os.path.join(out, name + ext))}")
        except PictureError as e:
            print(f"   (no SVG or PNG: {e})")
    print("\n5. Compiled gradient")
    t0 = time.perf_counter()
    df = ga.compile(ga.grad(f, x), [x])
    prep = time.perf_counter() - t0
    value = df(2.0)
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        df(2.0)
    per_call = (time.perf_counter() - t0) / n
    print(f"   prepared in {prep:.2f} s; df(2.0) = {value:.10f}; {per_call * 1e9:.0f} ns per call "
          "from Python (loop included)")
    print(f"   at a million points: {df(np.linspace(0, 2, 1_000_000))[-1]:.10f} at x = 2")
    assert math.isclose(value, 4 * math.exp(4), rel_tol=1e-14)
    return 0


def cmd_cache(args) -> int:
    from . import cache

    if args.clear:
        n, size = cache.clear()
        print(f"removed {n} compiled function(s), {_bytes(size)}")
        return 0
    found, cap = cache.entries(), cache.limit()
    for folder in cache.folders():
        print(f"folder: {folder}")
    print(f"{len(found)} compiled function(s), {_bytes(sum(e.size for e in found))}; "
          f"cap {_bytes(cap) if cap else 'none'} (GRAPHAD_CACHE_MAX); "
          "clear it with: graphad cache --clear")
    return 0


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphad", description="Automatic differentiation on graphs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("grad", help="value and gradient at a point")
    p.add_argument("expression")
    p.add_argument("--at", required=True, help="the point, e.g. x=2,y=1")
    p.add_argument("--mode", choices=["auto", "forward", "reverse"], default="auto")
    p.set_defaults(run=cmd_grad)
    p = sub.add_parser("trace", help="the evaluation trace table")
    p.add_argument("expression")
    p.add_argument("--at", required=True)
    p.add_argument("--mode", choices=["forward", "reverse"], default="forward")
    p.add_argument("--seed", help="input tangents in forward mode, e.g. x=1,y=0")
    p.add_argument("--format", choices=["text", "markdown", "latex", "html"], default="text")
    p.set_defaults(run=cmd_trace)
    p = sub.add_parser("graph", help="a picture of the graph (.dot, .svg, .png)")
    p.add_argument("expression")
    p.add_argument("--out", required=True)
    p.add_argument("--at", help="show values at this point")
    p.add_argument("--adjoint", action="store_true", help="add the adjoint graph")
    p.add_argument("--tangent", action="store_true", help="add the tangent graph")
    p.add_argument("--optimised", action="store_true", help="before and after the compiler's passes")
    p.set_defaults(run=cmd_graph)
    p = sub.add_parser("check", help="cross-check derivatives against SymPy")
    p.add_argument("expression")
    p.add_argument("--order", type=int, choices=[1, 2], default=2)
    p.add_argument("--points", type=_positive, default=10)
    p.add_argument("--timeout", type=_seconds, default=60.0, help="seconds for the whole check (default 60)")
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("cache", help="where compiled functions are cached, how much, and clearing it")
    p.add_argument("--clear", action="store_true", help="remove every cached compiled function")
    p.set_defaults(run=cmd_cache)
    p = sub.add_parser("demo", help="the seed example end to end")
    p.add_argument("--out", default="graphad-demo", help="folder for the pictures")
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv=None) -> int:
    """Run the command; any failure is one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = args.run(args)
        except (ParseError, UsageError, ValueError, TypeError, NotImplementedError, OSError) as e:
            print(f"graphad: error: {_one_line(e)}", file=sys.stderr)
            code = 2
        except PictureError as e:
            print(f"graphad: error: {_one_line(e)}", file=sys.stderr)
            code = 1
        except Exception as e:  # a defect of graphad's: still one line, with what to report
            print(f"graphad: internal error: {type(e).__name__}: {_one_line(e)} (please report it)",
                  file=sys.stderr)
            code = 1
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"graphad: warning: {_one_line(message)}", file=sys.stderr)
    return code


def _one_line(e) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
