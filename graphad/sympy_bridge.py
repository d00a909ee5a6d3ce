"""The SymPy bridge: graphad's referee, never its engine.

``to_sympy`` and ``from_sympy`` convert both ways; ``crosscheck`` compares
graphad's derivatives, in both modes, against ``sympy.diff``. Nothing in the AD
or compile path imports this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from .evaluate import evaluate
from .expr import Expr, as_expr_list, as_symbol_list, constant
from .graph import current_graph
from .registry import OPS


def _sympy_number(value: float):
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value.is_integer() and abs(value) < 2**53:
        return sp.Integer(int(value))
    return sp.Float(value, 17)


def to_sympy(exprs):
    """SymPy expressions for graphad expressions (one for one, a list for a list).

    Symbols become real SymPy symbols of the same names; shared nodes become
    the same SymPy objects.

    >>> import graphad as ga
    >>> x, y = ga.symbols("x y")
    >>> ga.to_sympy(ga.exp(x**2) * ga.sin(y) + 3)
    exp(x**2)*sin(y) + 3
    """
    items, single = as_expr_list(exprs, "to_sympy")
    graph = items[0].graph
    memo: dict[int, sp.Expr] = {}
    for v in graph.ancestors(e.id for e in items):
        op, payload = graph.ops[v], graph.payload[v]
        if op == "const":
            memo[v] = _sympy_number(payload)
        elif op == "symbol":
            memo[v] = sp.Symbol(payload, real=True)
        else:
            memo[v] = OPS[op].sympy(sp, *(memo[a] for a in graph.args[v]))
    out = [memo[e.id] for e in items]
    return out[0] if single else out


# -- from SymPy ---------------------------------------------------------------------


def _fold(op, args):
    out = args[0]
    for a in args[1:]:
        out = op(out, a)
    return out


def _boolean(node, args):
    """Relationals and logic as 0/1-valued graphad expressions."""
    from . import ops

    kind = type(node)
    if kind in (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan):
        a, b = args
        return {sp.StrictLessThan: a < b, sp.LessThan: a <= b,
                sp.StrictGreaterThan: a > b, sp.GreaterThan: a >= b}[kind]
    if kind is sp.Unequality:  # a != b as where(a - b, 1, 0): exact for finite a, b
        a, b = args
        return ops.where(a if (b.is_constant and b.value == 0) else a - b, 1.0, 0.0)
    if kind is sp.Equality:
        a, b = args
        return ops.where(a if (b.is_constant and b.value == 0) else a - b, 0.0, 1.0)
    if kind is sp.And:
        return _fold(lambda p, q: p * q, args)
    if kind is sp.Or:
        return _fold(ops.maximum, args)
    if kind is sp.Not:
        return 1.0 - args[0]
    return None


def _convert(node, args, graph):
    from . import ops

    if node.is_Symbol:
        return Expr(graph, graph.add("symbol", name=node.name))
    if node is sp.true or node is sp.false:
        return constant(float(bool(node)), graph)
    if node.is_number and not node.free_symbols and not isinstance(node, sp.Piecewise):
        value = complex(node.evalf(17))
        if value.imag != 0:
            raise ValueError(f"from_sympy: {node} is not a real number")
        return constant(value.real, graph)
    if isinstance(node, sp.Add):
        return _fold(lambda p, q: p + q, args)
    if isinstance(node, sp.Mul):
        return _fold(lambda p, q: p * q, args)
    if isinstance(node, sp.Pow):
        base, exponent = args
        e = node.args[1]
        if e == sp.Rational(1, 2):
            return ops.sqrt(base)
        if e == -1:
            return 1.0 / base
        if e == sp.Rational(-1, 2):
            return 1.0 / ops.sqrt(base)
        return base**exponent
    if isinstance(node, sp.log) and len(args) == 2:
        return ops.log(args[0]) / ops.log(args[1])
    if isinstance(node, ExprCondPair):
        return tuple(args)
    if isinstance(node, sp.Piecewise):
        value, cond = args[-1]
        out = value if node.args[-1].cond is sp.true else ops.where(cond, value, math.nan)
        for value, cond in reversed(args[:-1]):
            out = ops.where(cond, value, out)
        return out
    if isinstance(node, (sp.Max, sp.Min)):
        return _fold(ops.maximum if isinstance(node, sp.Max) else ops.minimum, args)
    boolean = _boolean(node, args)
    if boolean is not None:
        return boolean
    name = _FUNCTIONS.get(type(node).__name__)
    if name is not None:
        return getattr(ops, name)(*args)
    raise ValueError(f"from_sympy: graphad has no op for {type(node).__name__} (in {node})")


_FUNCTIONS = {
    "exp": "exp", "log": "log", "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin",
    "acos": "acos", "atan": "atan", "atan2": "atan2", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
    "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "erf": "erf", "Abs": "abs", "sign": "sign",
    "log1p": "log1p", "expm1": "expm1", "hypot": "hypot",  # sympy.codegen.cfunctions
}


_STRUCTURE = (sp.Add, sp.Mul, sp.Pow, sp.Piecewise, ExprCondPair, sp.Max, sp.Min, sp.log,
              sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan, sp.Unequality,
              sp.Equality, sp.And, sp.Or, sp.Not)


def _check_supported(node) -> None:
    """Name an unsupported construct before descending into its arguments."""
    if (node.is_Symbol or node is sp.true or node is sp.false or isinstance(node, _STRUCTURE)
            or type(node).__name__ in _FUNCTIONS):
        return
    if node.is_number and not node.has(sp.I):
        return
    raise ValueError(f"from_sympy: graphad has no op for {type(node).__name__} (in {node})")


def from_sympy(exprs):
    """graphad expressions for SymPy expressions (one for one, a list for a list).

    Shared SymPy subtrees become shared nodes. A construct graphad has no op
    for (``gamma``, an undefined function, a derivative, ...) raises a
    ValueError naming it.

    >>> import graphad as ga
    >>> import sympy
    >>> x = sympy.Symbol("x")
    >>> ga.from_sympy(sympy.exp(x**2) / (1 + x))
    exp(x**2)/(x + 1)
    """
    single = not isinstance(exprs, (list, tuple))
    roots = [sp.sympify(e) for e in ([exprs] if single else exprs)]
    graph = current_graph()
    memo: dict = {}
    for root in roots:
        stack = [root]
        while stack:  # iterative post-order: arguments first
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            _check_supported(node)
            pending = [a for a in node.args if a not in memo]
            if pending and not (node.is_number and not isinstance(node, sp.Piecewise)):
                stack.extend(pending)
                continue
            stack.pop()
            memo[node] = _convert(node, [memo.get(a) for a in node.args], graph)
    out = [memo[r] for r in roots]
    return out[0] if single else out


# -- the cross-check -----------------------------------------------------------------


@dataclass
class CrosscheckReport:
    """The outcome of :func:`crosscheck`; ``str()`` gives a readable summary."""

    expression: str
    order: int
    points: int
    max_error: dict[str, float] = field(default_factory=dict)  # per check: max relative error
    symbolic: dict[str, bool | None] = field(default_factory=dict)  # proved zero / not / skipped
    rtol: float = 1e-9
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures and self.points > 0

    def __str__(self) -> str:
        lines = [f"crosscheck of {self.expression} to order {self.order} at {self.points} points: "
                 f"{'PASS' if self.passed else 'FAIL'}"]
        for check, err in self.max_error.items():
            sym = self.symbolic.get(check)
            sym_text = {True: "difference simplifies to 0", False: "not proved symbolically",
                        None: "symbolic check skipped"}[sym]
            lines.append(f"  {check:<30} max relative error {err:.2e}  ({sym_text})")
        lines += [f"  failure: {f}" for f in self.failures]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


_NUMERIC_MODULES = [{"DiracDelta": lambda x, *k: np.zeros_like(np.asarray(x, dtype=float)),
                     "Heaviside": lambda x, h=0.5: np.heaviside(x, h)}, "numpy"]


def crosscheck(f, wrt, order: int = 1, points=10, *, domain=(-2.0, 2.0), rtol: float = 1e-9,
               atol: float = 1e-12, symbolic_limit: int = 40, seed: int = 0,
               verbose: bool = False) -> CrosscheckReport:
    """Compare graphad's derivatives of ``f`` against ``sympy.diff``.

    Checks the gradient from forward mode and from reverse mode, and at
    ``order=2`` the Hessian (forward over reverse), numerically at ``points``
    (a number of random points in ``domain`` where everything is finite, or a
    list of dicts {symbol: value}) with relative tolerance ``rtol``, and
    symbolically (the difference simplifies to zero) when ``f`` has at most
    ``symbolic_limit`` operations. Returns a :class:`CrosscheckReport`.

    >>> import graphad as ga
    >>> x, y = ga.symbols("x y")
    >>> report = ga.crosscheck(ga.exp(x**2) * ga.sin(y), [x, y], order=2)
    >>> report.passed
    True
    """
    from .derivatives import hessian, jacobian
    from .reverse import grad

    if order not in (1, 2):
        raise ValueError(f"crosscheck: order must be 1 or 2, not {order!r}")
    items, single = as_expr_list(f, "crosscheck")
    if not single:
        raise TypeError("crosscheck: f must be one expression")
    f = items[0]
    syms, _ = as_symbol_list(list(wrt) if isinstance(wrt, (list, tuple)) else [wrt], "crosscheck")
    sf = to_sympy(f)
    ssyms = [sp.Symbol(s.name, real=True) for s in syms]
    free = sorted((s for s in sf.free_symbols), key=lambda s: s.name)
    reference = {"gradient (forward mode)": [sp.diff(sf, s) for s in ssyms]}
    reference["gradient (reverse mode)"] = reference["gradient (forward mode)"]
    ours = {"gradient (forward mode)": jacobian([f], syms, mode="forward")[0],
            "gradient (reverse mode)": grad(f, syms)}
    if order == 2:
        reference["Hessian (forward over reverse)"] = [sp.diff(d, s) for d in reference[
            "gradient (forward mode)"] for s in ssyms]
        ours["Hessian (forward over reverse)"] = sum(hessian(f, syms), [])
    report = CrosscheckReport(str(f), order, 0, rtol=rtol)

    all_names = [s.name for s in free]
    lambdas = {k: sp.lambdify(free, ex, modules=_NUMERIC_MODULES) for k, ex in reference.items()}
    value_fn = sp.lambdify(free, sf, modules=_NUMERIC_MODULES)
    graph = f.graph
    handles = {n: Expr(graph, graph.symbol_id(n)) for n in all_names}
    for env in _points(points, all_names, domain, seed, value_fn, lambdas):
        args = [env[n] for n in all_names]
        report.points += 1
        for check, exprs in ours.items():
            want = np.array(lambdas[check](*args), dtype=float).ravel()
            got = np.array(evaluate(exprs, {handles[n]: env[n] for n in all_names}), dtype=float).ravel()
            err = np.abs(got - want) / np.maximum(np.abs(want), atol / rtol)
            report.max_error[check] = max(report.max_error.get(check, 0.0), float(np.max(err, initial=0)))
            if not np.all(np.abs(got - want) <= atol + rtol * np.abs(want)):
                report.failures.append(f"{check} at {env}: graphad {got.tolist()}, SymPy {want.tolist()}")
    if report.points == 0:
        report.failures.append("no point in the domain where f and its derivatives are finite")
    small = sp.count_ops(sf) <= symbolic_limit
    for check, exprs in ours.items():
        if not small:
            report.symbolic[check] = None
            continue
        diffs = [_negligible(sp.simplify(a - b)) for a, b in zip(to_sympy(exprs), reference[check])]
        report.symbolic[check] = all(d == 0 for d in diffs)
    if verbose:
        print(report)
    return report


def _negligible(d):
    """``d`` with float rounding residue dropped: graphad keeps constants such as
    2/sqrt(pi) as floats, so a correct rule can leave 1e-17*exp(-x**2) behind."""
    if d == 0:
        return d
    d = sp.expand(d.evalf())
    return sp.simplify(d.replace(lambda e: e.is_Float and abs(e) < 1e-12, lambda e: sp.Integer(0)))


def _points(points, names, domain, seed, value_fn, lambdas):
    if not isinstance(points, int):
        for p in points:
            yield {(k.name if isinstance(k, Expr) else k): float(v) for k, v in p.items()}
        return
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(100 * max(points, 1)):
        if found == points:
            return
        env = {n: rng.uniform(*domain) for n in names}
        args = [env[n] for n in names]
        with np.errstate(all="ignore"):
            try:
                values = [value_fn(*args)] + [v for fn in lambdas.values()
                                              for v in np.ravel(fn(*args))]
            except (ValueError, ZeroDivisionError, TypeError):
                continue
        if all(np.isfinite(complex(v)) and complex(v).imag == 0 for v in values):
            found += 1
            yield env
