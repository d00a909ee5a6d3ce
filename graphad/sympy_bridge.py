"""The SymPy bridge: graphad's referee, never its engine.

``to_sympy`` and ``from_sympy`` convert both ways; ``crosscheck`` compares
graphad's derivatives, in both modes, against ``sympy.diff``. Nothing in the AD
or compile path imports this module.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from . import shapes as S
from .evaluate import evaluate
from .expr import Expr, as_expr_list, as_one_expr, as_symbol_list, constant
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
    the same SymPy objects. An array expression (of fixed sizes) becomes a
    NumPy array of SymPy expressions, its array symbols arrays of symbols
    named ``W[0,1]``.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.to_sympy(ga.exp(x**2) * ga.sin(y) + 3)
        exp(x**2)*sin(y) + 3
    """
    items, single = as_expr_list(exprs, "to_sympy")
    graph = items[0].graph
    order = graph.ancestors(e.id for e in items)
    for v in order:
        if S.size(graph.shapes[v]) is None:
            raise ValueError(f"to_sympy: {Expr(graph, v)} has shape {S.fmt(graph.shapes[v])}; "
                             "give array symbols fixed sizes to convert them")
    # A chain of scalar sums becomes one sp.Add of all its terms: adding terms one
    # at a time makes SymPy flatten the sum again at each step (quadratic).
    wanted = {e.id for e in items}
    for v in order:
        if not (graph.ops[v] in _SUMS and not graph.shapes[v]):
            wanted.update(graph.args[v])
    memo: dict[int, sp.Expr] = {}
    try:
        for v in order:
            op, payload, shape = graph.ops[v], graph.payload[v], graph.shapes[v]
            if op == "const":
                memo[v] = _sympy_number(payload) if not shape else _each(_sympy_number, payload)
            elif op == "symbol":
                memo[v] = sp.Symbol(payload, real=True) if not shape else _element_symbols(payload, shape)
            elif op in _SUMS and not shape:
                if v in wanted:
                    memo[v] = sp.Add(*_sum_terms(graph, v, memo))
            else:
                memo[v] = _sympy_node(OPS[op], payload, shape, [memo[a] for a in graph.args[v]])
    except RecursionError:
        raise RecursionError("to_sympy: the expression is nested too deeply for SymPy, which recurses "
                             f"on it ({len(order)} nodes)") from None
    out = [memo[e.id] for e in items]
    return out[0] if single else out


_SUMS = ("add", "sub")


def _sum_terms(graph, v: int, memo: dict) -> list:
    """The terms of the scalar sum rooted at node ``v`` (its add and sub nodes
    walked through, iteratively), each a SymPy expression with its sign."""
    terms, stack = [], [(v, 1)]
    while stack:
        u, sign = stack.pop()
        if graph.ops[u] in _SUMS and not graph.shapes[u]:
            a, b = graph.args[u]
            stack.append((b, -sign if graph.ops[u] == "sub" else sign))
            stack.append((a, sign))
        else:
            terms.append(memo[u] if sign > 0 else -memo[u])
    return terms


def _each(fn, values) -> np.ndarray:
    """``fn`` applied to each element (broadcast), as an array of SymPy objects."""
    return np.frompyfunc(fn, 1, 1)(values).astype(object)


def _element_symbols(name: str, shape: tuple) -> np.ndarray:
    """An array symbol as an array of SymPy symbols ``W[0,1]``, ``W[0,2]``..."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = sp.Symbol(_element_name(name, index), real=True)
    return out


def _element_name(name: str, index: tuple) -> str:
    return f"{name}[{','.join(map(str, index))}]"


def _sympy_node(rule, params, shape, args):
    """One node of an array graph on SymPy values: elementwise ops element by
    element, array ops through their own NumPy value on arrays of SymPy objects."""
    if rule.shape is None:
        if not shape:
            return rule.sympy(sp, *args)
        return np.frompyfunc(lambda *a: rule.sympy(sp, *a), rule.arity, 1)(*args).astype(object)
    if rule.name == "max":  # NumPy's max compares; SymPy's Max keeps the choice symbolic
        axes, keepdims = params
        out = args[0]
        for axis in sorted(axes, reverse=True):
            out = np.frompyfunc(sp.Max, 2, 1).reduce(out, axis=axis, keepdims=keepdims)
    else:
        out = rule.value(params, shape, *args)
    if not shape:
        out = out.item() if isinstance(out, np.ndarray) else out
        return _sympy_number(float(out)) if isinstance(out, (float, np.floating)) else sp.sympify(out)
    return np.asarray(out, dtype=object)


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

    Examples:
        >>> import graphad as ga
        >>> import sympy
        >>> x = sympy.Symbol("x")
        >>> ga.from_sympy(sympy.exp(x**2) / (1 + x))
        1/(1 + x)*exp(x**2)
    """
    single = not isinstance(exprs, (list, tuple))
    items = [exprs] if single else list(exprs)
    for e in items:
        if isinstance(e, (str, bytes)):
            raise TypeError(
                f"from_sympy: {e!r} is a string; give SymPy expressions (SymPy's sympify would run a "
                "string as Python code). For text, use graphad's safe parser: graphad.parse.parse"
            )
    roots = [sp.sympify(e, strict=True) for e in items]
    _warn_twins(roots)
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


def _warn_twins(roots) -> None:
    """Two different SymPy symbols with one name (``Symbol("x")`` and the real
    ``x`` that :func:`to_sympy` makes) become one graphad symbol; SymPy told
    them apart, so its result may not be what was meant (``diff`` by the
    wrong twin is 0). Say so."""
    named: dict[str, set] = {}
    for root in roots:
        for s in getattr(root, "free_symbols", ()):
            named.setdefault(s.name, set()).add(s)
    twins = sorted(name for name, found in named.items() if len(found) > 1)
    if twins:
        warnings.warn(f"from_sympy: the SymPy expression holds different symbols named {', '.join(twins)} "
                      "(with different assumptions, such as real=True, which ga.to_sympy gives); they become "
                      "one graphad symbol, but SymPy treated them as unrelated: take SymPy's symbols from "
                      "ga.to_sympy(x)", UserWarning, stacklevel=3)


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
    unchecked: dict[str, str] = field(default_factory=dict)  # checks SymPy could not do, and why

    @property
    def passed(self) -> bool:
        """Every check was done, at one point or more, and none failed."""
        return not self.failures and not self.unchecked and self.points > 0

    def __str__(self) -> str:
        verdict = "FAIL" if self.failures else "INCOMPLETE" if self.unchecked else \
            "PASS" if self.passed else "FAIL"
        lines = [f"crosscheck of {self.expression} to order {self.order} at {self.points} points: {verdict}"]
        for check, err in self.max_error.items():
            sym = self.symbolic.get(check)
            sym_text = {True: "difference simplifies to 0", False: "not proved symbolically",
                        None: "symbolic check skipped"}[sym]
            lines.append(f"  {check:<30} max relative error {err:.2e}  ({sym_text})")
        lines += [f"  not checked: {c} ({why})" for c, why in self.unchecked.items()]
        lines += [f"  failure: {f}" for f in self.failures]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


_NUMERIC_MODULES = [{"DiracDelta": lambda x, *k: np.zeros_like(np.asarray(x, dtype=float)),
                     "Heaviside": lambda x, h=0.5: np.heaviside(x, h)}, "numpy"]


def crosscheck(f, wrt, order: int = 1, points=10, *, domain=(-2.0, 2.0), rtol: float = 1e-9,
               atol: float = 1e-12, symbolic_limit: int = 40, symbolic_timeout: float = 10.0,
               timeout: float | None = 120.0, seed: int = 0, verbose: bool = False) -> CrosscheckReport:
    """Compare graphad's derivatives of ``f`` against ``sympy.diff``.

    Checks the gradient from forward mode and from reverse mode, and at
    ``order=2`` the Hessian (forward over reverse), numerically at ``points``
    (a number of random points in ``domain`` where everything is finite, or a
    list of dicts {symbol: value}) with relative tolerance ``rtol``, and
    symbolically (the difference simplifies to zero) when ``f`` has at most
    ``symbolic_limit`` operations, giving SymPy's simplify ``symbolic_timeout``
    seconds per check. The whole check (SymPy's conversion and differentiation
    included) stops after ``timeout`` seconds (None: no limit; enforced in the
    main thread where the platform has SIGALRM), and the report then says
    it is incomplete. Returns a :class:`CrosscheckReport`.

    Array symbols of fixed (small) shapes are checked element by element: each
    is written as an array of SymPy symbols (``W[0,1]``...). ``stop_gradient``
    is invisible to SymPy, so a derivative that it changes does not match.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> report = ga.crosscheck(ga.exp(x**2) * ga.sin(y), [x, y], order=2)
        >>> report.passed
        True
    """
    if order not in (1, 2):
        raise ValueError(f"crosscheck: order must be 1 or 2, not {order!r}")
    f = as_one_expr(f, "crosscheck")
    syms, _ = as_symbol_list(wrt, "crosscheck", f.graph)
    try:
        options = (order, points, domain, rtol, atol, symbolic_limit, symbolic_timeout, seed, verbose)
        return _run_with_timeout(lambda: _crosscheck(f, syms, *options), timeout)
    except (_Timeout, RecursionError) as e:
        report = CrosscheckReport(str(f), order, 0, rtol=rtol)
        report.unchecked["everything"] = (
            f"SymPy did not finish within the timeout of {timeout:g} s" if isinstance(e, _Timeout)
            else "the expression is nested too deeply for SymPy, which recurses on it")
        if verbose:
            print(report)
        return report


def _crosscheck(f, syms, order, points, domain, rtol, atol, symbolic_limit, symbolic_timeout, seed,
                verbose) -> CrosscheckReport:
    from .derivatives import hessian, jacobian
    from .reverse import grad

    sf = to_sympy(f)
    if isinstance(sf, np.ndarray):
        raise ValueError(f"crosscheck: f has shape {S.fmt(f.shape)}; check a scalar (ga.sum of it, say)")
    graph = f.graph
    # array symbols are checked element by element, as arrays of SymPy symbols
    inputs = [Expr(graph, v) for v in graph.ancestors([f.id]) if graph.ops[v] == "symbol"]
    elements = {s: [str(e) for e in np.ravel(to_sympy(s))] for s in dict.fromkeys(inputs + syms)}
    ssyms = [sp.Symbol(n, real=True) for s in syms for n in elements[s]]
    # every symbol either side needs: SymPy may simplify one away (x0 > x0 is false)
    names = {n for ns in elements.values() for n in ns} | {s.name for s in sf.free_symbols}
    free = [sp.Symbol(n, real=True) for n in sorted(names)]
    sizes = [len(elements[s]) for s in syms]
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
    lambdas = {}
    for check, exprs in reference.items():
        if any(e.has(sp.Derivative) for e in exprs):
            report.unchecked[check] = "SymPy left a derivative unevaluated"
            continue
        try:
            lambdas[check] = sp.lambdify(free, exprs, modules=_NUMERIC_MODULES, dummify=True)
        except Exception as e:  # SymPy cannot write it as NumPy code
            report.unchecked[check] = f"SymPy could not evaluate it: {e}"
    ours = {k: v for k, v in ours.items() if k in lambdas}
    value_fn = sp.lambdify(free, sf, modules=_NUMERIC_MODULES, dummify=True)
    for env in _points(points, all_names, domain, seed, value_fn, lambdas):
        args = [env[n] for n in all_names]
        report.points += 1
        at = {s: np.reshape([env[n] for n in elements[s]], s.shape) for s in inputs}
        for check, exprs in ours.items():
            want = np.array(lambdas[check](*args), dtype=float).ravel()
            got = _flat(evaluate(exprs, at), sizes).astype(float)
            err = np.abs(got - want) / np.maximum(np.abs(want), atol / rtol)
            report.max_error[check] = max(report.max_error.get(check, 0.0), float(np.max(err, initial=0)))
            if not np.all(np.abs(got - want) <= atol + rtol * np.abs(want)):
                report.failures.append(f"{check} at {env}: graphad {got.tolist()}, SymPy {want.tolist()}")
    if report.points == 0:
        report.failures.append("no point in the domain where f and its derivatives are finite")
    small = sp.count_ops(sf) <= symbolic_limit
    for check, exprs in ours.items():
        report.symbolic[check] = None
        if small:
            pairs = list(zip(map(_in_domain, _flat(to_sympy(exprs), sizes)), reference[check]))
            try:
                report.symbolic[check] = _run_with_timeout(
                    lambda pairs=pairs: all(_negligible(sp.simplify(a - b)) == 0 for a, b in pairs),
                    symbolic_timeout)
            except _Timeout:
                pass  # SymPy's simplify ran out of time: skipped
    if verbose:
        print(report)
    return report


def _flat(values: list, sizes: list[int]) -> np.ndarray:
    """Gradient entries (one per symbol) or Hessian blocks (row by row), each a
    scalar or an array, as one flat array in the order of the flattened inputs."""
    if len(values) == len(sizes):  # a gradient
        return np.concatenate([np.ravel(np.asarray(v, dtype=object)) for v in values])
    blocks = iter(values)
    rows = [np.concatenate([np.reshape(np.asarray(next(blocks), dtype=object), (m, n)) for n in sizes],
                           axis=1) for m in sizes]
    return np.concatenate(rows).ravel()


def _in_domain(e):
    """``e`` with graphad's domain indicators (1 inside an op's domain, nan outside;
    docs/conventions.md) set to 1: SymPy's reference derivative holds inside the
    domain, and the numeric check runs there too."""
    if not isinstance(e, sp.Basic):
        return e
    return e.replace(lambda p: isinstance(p, sp.Piecewise) and len(p.args) == 2 and p.args[0].expr == 1
                     and p.args[1].expr is sp.nan and p.args[1].cond == sp.true, lambda p: sp.Integer(1))


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
            env = {}
            for k, v in p.items():  # an array symbol's value gives each of its elements' values
                name = k.name if isinstance(k, Expr) else k
                v = np.asarray(v, dtype=float)
                env.update({name: float(v)} if v.ndim == 0 else {
                    _element_name(name, i): float(v[i]) for i in np.ndindex(*v.shape)})
            yield env
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


# -- AD against symbolic differentiation ------------------------------------------------


@dataclass
class SymbolicComparison:
    """The same gradient obtained two ways; see :func:`compare_symbolic`."""

    expression: str
    n_inputs: int
    function_nodes: int
    sympy_ops: int | None = None  # count_ops of SymPy's gradient, written out as trees
    sympy_cse_ops: int | None = None  # ... after sympy.cse
    graphad_nodes: int = 0  # nodes of graphad's compiled gradient program, after its passes
    graphad_ops: int = 0  # ... of them operations (not inputs or constants): the unit of count_ops
    sympy_diff_s: float | None = None
    sympy_lambdify_s: float | None = None
    sympy_eval_us: float | None = None
    sympy_cse_lambdify_s: float | None = None  # lambdify(..., cse=True): SymPy at its best
    sympy_cse_eval_us: float | None = None
    graphad_grad_s: float = 0.0
    graphad_compile_s: float = 0.0
    graphad_eval_us: float = 0.0
    max_rel_diff: float | None = None  # between the two gradients at a point
    sympy_note: str = ""  # why SymPy's side is missing, if it is

    def __str__(self) -> str:
        def fmt(v, unit=""):
            return "-" if v is None else f"{v:.3g}{unit}"

        return "\n".join([
            f"{self.expression}: {self.n_inputs} inputs, {self.function_nodes} nodes",
            f"  size      SymPy {fmt(self.sympy_ops)} ops ({fmt(self.sympy_cse_ops)} after cse), "
            f"graphad {self.graphad_ops} ops",
            f"  obtain    SymPy diff {fmt(self.sympy_diff_s, ' s')} + "
            f"lambdify {fmt(self.sympy_lambdify_s, ' s')} (with cse {fmt(self.sympy_cse_lambdify_s, ' s')}), "
            f"graphad grad {self.graphad_grad_s:.3g} s + compile {self.graphad_compile_s:.3g} s",
            f"  evaluate  SymPy {fmt(self.sympy_eval_us, ' us')} "
            f"(with cse {fmt(self.sympy_cse_eval_us, ' us')}), graphad {self.graphad_eval_us:.3g} us",
            f"  agree     max relative difference {fmt(self.max_rel_diff)}" + (
                f"  [{self.sympy_note}]" if self.sympy_note else ""),
        ])

    def plot(self, ax=None):
        """Two bar charts, size (operations) and time per evaluation, for SymPy
        (lambdify as is, and with ``cse=True``) and graphad; returns the figure.
        Needs matplotlib (``pip install "graphad[examples]"``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError('SymbolicComparison.plot needs matplotlib: pip install "graphad[examples]"') \
                from None
        if ax is None:
            fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        else:
            fig = ax[0].figure
        labels = ["SymPy", "SymPy, cse", "graphad"]
        sizes = [self.sympy_ops, self.sympy_cse_ops, self.graphad_ops]
        times = [self.sympy_eval_us, self.sympy_cse_eval_us, self.graphad_eval_us]
        colours = ["#999999", "#666666", "#3465a4"]
        for axis, values, title in ((ax[0], sizes, "gradient size (operations)"),
                                    (ax[1], times, "time per gradient evaluation (µs)")):
            shown = [(k, v, c) for k, v, c in zip(labels, values, colours) if v is not None]
            axis.bar([k for k, _, _ in shown], [v for _, v, _ in shown], color=[c for *_, c in shown])
            axis.set_yscale("log")
            axis.set_title(title, fontsize=10)
        fig.suptitle(self.expression + (f"  [{self.sympy_note}]" if self.sympy_note else ""), fontsize=10)
        fig.tight_layout()
        return fig


class _Timeout(Exception):
    pass


def _run_with_timeout(fn, seconds):
    """fn(), or _Timeout after ``seconds`` (where SIGALRM exists, in the main thread).

    A timer the caller had set (``ITIMER_REAL``: yours, or an enclosing call's)
    is put back afterwards with the time it had left, so it still fires.

    An exception raised in a signal handler can be swallowed where Python
    cannot propagate it (a garbage-collector callback, a __del__), so cyclic
    collection pauses meanwhile, the alarm keeps firing every 50 ms until
    disarmed, and a fired alarm counts even if every raise was swallowed."""
    import gc
    import signal
    import threading
    import time

    if (seconds is None or not hasattr(signal, "SIGALRM")
            or threading.current_thread() is not threading.main_thread()):
        return fn()
    fired = False

    def alarm(signum, frame):
        nonlocal fired
        fired = True
        raise _Timeout

    start = time.monotonic()
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)  # a caller's own timer
    old = signal.signal(signal.SIGALRM, alarm)
    collecting = gc.isenabled()
    gc.disable()  # no garbage-collector callback runs (and swallows the alarm) meanwhile
    if outer_left > 0:  # an enclosing deadline comes first: it ends this call too
        seconds = min(seconds, outer_left)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        result = fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer_left > 0:  # the caller's timer goes on, less the time spent here (it fires now if due)
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - start), 1e-6),
                             outer_interval)
        if collecting:
            gc.enable()
    if fired:
        raise _Timeout
    return result


def compare_symbolic(f, wrt, *, at=None, timeout: float | None = 60.0, seed: int = 0) -> SymbolicComparison:
    """The gradient of ``f`` by SymPy (diff, then lambdify as is and with
    ``cse=True``, SymPy at its best) and by graphad (grad, passes, compile):
    the size of each in operations, the time to obtain it, the time per
    evaluation, and how far the values differ at the point ``at`` (a dict, or
    a random point in (0.5, 1.5)). SymPy's side stops after ``timeout``
    seconds, and then is reported missing, with the reason. ``.plot()`` on the
    result draws sizes and times.

    Examples:
        >>> import graphad as ga
        >>> xs = ga.symbols("x0:6")
        >>> c = ga.compare_symbolic(xs[0] * xs[1] * xs[2] * xs[3] * xs[4] * xs[5], list(xs))
        >>> c.sympy_ops, c.max_rel_diff < 1e-14
        (24, True)
    """
    import time
    import timeit

    from .compiler import compile as ga_compile
    from .reverse import grad

    f = as_one_expr(f, "compare_symbolic")
    syms, _ = as_symbol_list(wrt, "compare_symbolic", f.graph)
    n_nodes = len(f.graph.ancestors([f.id]))
    result = SymbolicComparison(str(f) if len(str(f)) < 60 else str(f)[:57] + "...", len(syms), n_nodes)
    rng = np.random.default_rng(seed)
    if at is None:
        point = {s: float(rng.uniform(0.5, 1.5)) for s in syms}
    else:
        point = {s: float(at[s] if s in at else at[s.name]) for s in syms}
    xs = np.array([point[s] for s in syms])

    t = time.perf_counter()
    g = grad(f, syms)
    result.graphad_grad_s = time.perf_counter() - t
    t = time.perf_counter()
    fn = ga_compile([g], [syms])
    result.graphad_compile_s = time.perf_counter() - t
    result.graphad_nodes = len(fn.program)
    result.graphad_ops = sum(1 for op, _, _ in fn.program.nodes if op not in ("const", "symbol"))
    ours = fn(xs)[0]
    number = 1000
    result.graphad_eval_us = min(timeit.repeat(lambda: fn(xs), number=number, repeat=3)) / number * 1e6

    sf = to_sympy(f)
    ssyms = [sp.Symbol(s.name, real=True) for s in syms]
    try:
        def sympy_side():
            t0 = time.perf_counter()
            sg = [sp.diff(sf, s) for s in ssyms]
            result.sympy_diff_s = time.perf_counter() - t0
            result.sympy_ops = int(sum(sp.count_ops(e) for e in sg))
            replacements, reduced = sp.cse(sg)
            result.sympy_cse_ops = int(sum(sp.count_ops(e) for _, e in replacements)
                                       + sum(sp.count_ops(e) for e in reduced))
            t0 = time.perf_counter()
            lam = sp.lambdify(ssyms, sg, modules="math", dummify=True)
            result.sympy_lambdify_s = time.perf_counter() - t0
            theirs = np.array(lam(*xs), dtype=float)
            best = min(timeit.repeat(lambda: lam(*xs), number=number, repeat=3))
            result.sympy_eval_us = best / number * 1e6
            t0 = time.perf_counter()
            lam_cse = sp.lambdify(ssyms, sg, modules="math", dummify=True, cse=True)
            result.sympy_cse_lambdify_s = time.perf_counter() - t0
            best = min(timeit.repeat(lambda: lam_cse(*xs), number=number, repeat=3))
            result.sympy_cse_eval_us = best / number * 1e6
            result.max_rel_diff = float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)))

        _run_with_timeout(sympy_side, timeout)
    except _Timeout:
        result.sympy_note = f"SymPy did not finish within {timeout:g} s"
    except RecursionError:
        result.sympy_note = "SymPy hit Python's recursion limit"
    return result
