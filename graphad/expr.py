"""Expression handles: operator overloading that adds nodes to the graph."""

from __future__ import annotations

import keyword
import numbers
import re

import numpy as np

from . import shapes
from .graph import Graph, _frozen, current_graph
from .registry import OPS


class Vector(list):
    """A list of expressions that is one vector: what ``ga.grad``, ``ga.vjp``,
    ``ga.jvp`` and ``ga.hvp`` return for a list of symbols or outputs.
    ``ga.compile`` returns it as one array, where a plain list of expressions
    gives a tuple of values (``list(v)`` or ``[*v]`` for that)."""

    __slots__ = ()


class Expr:
    """A handle on one node of a graphad DAG.

    Arithmetic on handles (and Python numbers) builds new nodes; equal
    operations on equal inputs give the same node, so ``==`` is structural
    identity and handles can be dictionary keys. Comparisons ``< <= > >=``
    build 0/1-valued nodes for :func:`graphad.where`.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> f = ga.exp(x**2) * ga.sin(y) + 3
        >>> f
        exp(x**2)*sin(y) + 3
        >>> f.op, f.args[1]
        ('add', 3)
        >>> x * y == x * y
        True
    """

    __slots__ = ("graph", "id")

    def __init__(self, graph: Graph, nid: int) -> None:
        self.graph = graph
        self.id = nid

    # -- the node's attributes ----------------------------------------------

    @property
    def op(self) -> str:
        """The op name: a registry key, ``"const"`` or ``"symbol"``."""
        return self.graph.ops[self.id]

    @property
    def args(self) -> tuple[Expr, ...]:
        """The argument expressions, in order."""
        return tuple(Expr(self.graph, a) for a in self.graph.args[self.id])

    @property
    def value(self) -> float | np.ndarray | None:
        """The value of a constant (a float, or a read-only array), else None."""
        return self.graph.payload[self.id] if self.is_constant else None

    @property
    def params(self):
        """The parameters of an array op's node (its axes, its new shape...), else None."""
        op = self.op
        return None if op in ("const", "symbol") else self.graph.payload[self.id]

    @property
    def shape(self) -> tuple:
        """The shape: ``()`` for a scalar; entries are sizes or size names."""
        return self.graph.shapes[self.id]

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self.graph.shapes[self.id])

    @property
    def size(self) -> int | None:
        """The number of elements, or None while a size name is unbound."""
        return shapes.size(self.graph.shapes[self.id])

    @property
    def name(self) -> str | None:
        """The name of a symbol, else None."""
        return self.graph.payload[self.id] if self.is_symbol else None

    @property
    def is_symbol(self) -> bool:
        return self.op == "symbol"

    @property
    def is_constant(self) -> bool:
        return self.op == "const"

    # -- identity -------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.id == self.id and other.graph is self.graph

    def __hash__(self) -> int:
        return hash(self.id)

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of the graphad expression {self} is not known until it is "
            "evaluated; use ga.where(cond, a, b) for a choice inside a graph"
        )

    def __float__(self) -> float:
        if self.is_constant:
            return self.value
        raise TypeError(f"cannot convert {self} to float: it is not a constant; use ga.evaluate")

    def __repr__(self) -> str:
        return to_str(self)

    def __reduce__(self):
        # The sub-DAG travels and is rebuilt (hash-consed) in the current graph.
        return _unpickle, (self.graph.export([self.id]),)

    # -- operators ----------------------------------------------------------

    def __add__(self, o):
        return apply("add", self, o)

    def __radd__(self, o):
        return apply("add", o, self)

    def __sub__(self, o):
        return apply("sub", self, o)

    def __rsub__(self, o):
        return apply("sub", o, self)

    def __mul__(self, o):
        return apply("mul", self, o)

    def __rmul__(self, o):
        return apply("mul", o, self)

    def __truediv__(self, o):
        return apply("div", self, o)

    def __rtruediv__(self, o):
        return apply("div", o, self)

    def __pow__(self, o):
        return apply("pow", self, o)

    def __rpow__(self, o):
        return apply("pow", o, self)

    def __neg__(self):
        return apply("neg", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return apply("abs", self)

    def __lt__(self, o):
        return apply("lt", self, o)

    def __le__(self, o):
        return apply("le", self, o)

    def __gt__(self, o):
        return apply("gt", self, o)

    def __ge__(self, o):
        return apply("ge", self, o)

    # -- arrays (graphad.arrays) --------------------------------------------------

    def __matmul__(self, o):
        from .arrays import matmul

        return matmul(self, o)

    def __rmatmul__(self, o):
        from .arrays import matmul

        return matmul(o, self)

    def __getitem__(self, key):
        from .arrays import index

        return index(self, key)

    def __iter__(self):
        n = self.shape[0] if self.shape else None
        if not isinstance(n, int):
            raise TypeError(f"cannot iterate over {self}: its shape is {self.shape}")
        return (self[i] for i in range(n))

    @property
    def T(self) -> Expr:
        """The transpose (axes reversed), as ``x.T`` in NumPy."""
        from .arrays import transpose

        return transpose(self)

    def reshape(self, *shape) -> Expr:
        """The same elements in a new shape (``x.reshape(3, -1)`` or ``x.reshape((3, -1))``)."""
        from .arrays import reshape

        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def sum(self, axis=None, keepdims: bool = False) -> Expr:
        """``ga.sum(self, axis, keepdims)``."""
        from .arrays import sum

        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Expr:
        """``ga.mean(self, axis, keepdims)``."""
        from .arrays import mean

        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Expr:
        """``ga.max(self, axis, keepdims)``."""
        from .arrays import max

        return max(self, axis, keepdims)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .arrays import numpy_ufunc

        return numpy_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .arrays import numpy_function

        return numpy_function(func, args, kwargs)


def _unpickle(records: list) -> Expr:
    graph = current_graph()
    return Expr(graph, graph.load(records)[-1])


# -- building nodes -----------------------------------------------------------


def constant(value, graph: Graph | None = None) -> Expr:
    """The constant node for a real number or a NumPy array of them."""
    if type(value) is not float:  # plain floats, by far the most common, skip the checks
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            if value.ndim:
                g = current_graph() if graph is None else graph
                return Expr(g, g.add("const", value=_frozen(value)))
            value = value.item()
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            hint = "; use np.array(...) for an array" if isinstance(value, (list, tuple)) else ""
            raise TypeError(
                f"cannot use {value!r} ({type(value).__name__}) in a graphad expression: "
                f"only real numbers, NumPy arrays of them and graphad expressions{hint}"
            )
        value = float(value)
    g = current_graph() if graph is None else graph
    return Expr(g, g.add("const", value=value))


def as_expr(value, graph: Graph | None = None) -> Expr:
    """``value`` itself if it is an Expr, else a constant node for it."""
    return value if isinstance(value, Expr) else constant(value, graph)


def apply(name: str, *args, params=None) -> Expr:
    """Build the node ``name(*args)``, folding constants and exact identities.

    Its shape is worked out and checked here (``params`` are an array op's
    parameters): shapes that do not fit are a ValueError naming the op."""
    # Every node of every derivative is built here: plain loops, no generators.
    op = OPS[name]
    if op.arity is not None and len(args) != op.arity:
        raise TypeError(f"{name} takes {op.arity} argument(s), got {len(args)}")
    graph = None
    for a in args:
        if isinstance(a, Expr):
            if graph is None:
                graph = a.graph
            elif a.graph is not graph:
                raise ValueError(f"{name}: the arguments come from different graphad graphs")
    if graph is None:
        graph = current_graph()
    exprs, ids, all_const = [], [], True
    for a in args:
        e = a if isinstance(a, Expr) else constant(a, graph)
        exprs.append(e)
        ids.append(e.id)
        all_const = all_const and graph.ops[e.id] == "const"
    shape = op.out_shape(params, [graph.shapes[i] for i in ids])
    if op.shape is None:  # elementwise
        if all_const and not shape:
            return constant(fold(op, tuple(graph.payload[i] for i in ids)), graph)
        if op.simplify is not None:
            simpler = op.simplify(*exprs)
            if simpler is not None:
                simpler = as_expr(simpler, graph)
                if simpler.shape != shape:  # x + 0 with a broadcast 0 keeps the broadcast shape
                    simpler = apply("broadcast_to", simpler, params=shape)
                return simpler
    return Expr(graph, graph.add(name, tuple(ids), params=params, shape=shape))


_folded: dict[tuple, float] = {}  # differentiation folds the same few constants again and again


def fold(op, values: tuple) -> float:
    """``op`` applied to constant values, by the op's own evaluator (memoised);
    the constant-folding pass uses it too."""
    key = (op.value, *(float(v).hex() for v in values))  # hex keeps -0.0 and 0.0 apart
    result = _folded.get(key)
    if result is None:
        with np.errstate(all="ignore"):
            result = float(op.value(*(np.float64(v) for v in values)))
        if len(_folded) < 10_000:  # bounded: most folds repeat a few constants
            _folded[key] = result
    return result


def is_const(e: Expr, value: float) -> bool:
    """Whether ``e`` is the scalar constant ``value``, or that constant broadcast
    (an identity such as x * 1 may drop it: apply broadcasts back to the shape)."""
    ops, v = e.graph.ops, e.id
    if ops[v] == "broadcast_to":
        v = e.graph.args[v][0]
    payload = e.graph.payload[v]
    return ops[v] == "const" and type(payload) is float and payload == value


# -- symbols ------------------------------------------------------------------

_RANGE = re.compile(r"^([^:]*?)(\d*):(\d+)$|^([A-Za-z]):([A-Za-z])$")


def _expand(token: str) -> tuple[list[str], bool]:
    m = _RANGE.match(token)
    if m is None:
        if ":" in token:
            raise ValueError(f"symbols: cannot read the range {token!r}; write e.g. 'x0:10' or 'a:d'")
        return [token], False
    if m.group(4):
        lo, hi = ord(m.group(4)), ord(m.group(5))
        return [chr(c) for c in range(lo, hi + 1)], True
    prefix, start, stop = m.group(1), int(m.group(2) or 0), int(m.group(3))
    return [f"{prefix}{i}" for i in range(start, stop)], True


def symbols(names: str, *, seq: bool = False, shape=()):
    """Make symbols from a string of names, like ``sympy.symbols``.

    Names are separated by spaces or commas; ``x0:3`` is the range
    ``x0, x1, x2`` and ``a:c`` is ``a, b, c``. One plain name gives one
    symbol; several names, or a range, give a tuple (``seq=True`` always gives
    a tuple). The same name always gives the same symbol.

    ``shape`` makes array symbols: a tuple of sizes, where a size may be a
    name (``shape=("n", 784)``) bound when the graph is evaluated.

    Examples:
        >>> import graphad as ga
        >>> ga.symbols("x")
        x
        >>> ga.symbols("x, y")
        (x, y)
        >>> len(ga.symbols("x0:100")), ga.symbols("x0:100")[-1]
        (100, x99)
        >>> ga.symbols("X", shape=("n", 3)).shape
        ('n', 3)
    """
    if not isinstance(names, str):
        raise TypeError(f"symbols: names must be a string, got {type(names).__name__}")
    tokens = [t for t in re.split(r"[\s,]+", names) if t]
    if not tokens:
        raise ValueError("symbols: no names given")
    out, ranged = [], False
    for token in tokens:
        expanded, is_range = _expand(token)
        ranged |= is_range
        out.extend(expanded)
    graph = current_graph()
    for n in out:
        if not n.isidentifier() or keyword.iskeyword(n):
            raise ValueError(f"symbols: {n!r} is not a valid name (use a Python identifier)")
    shape = shapes.as_shape(shape, "symbols", derived=False)
    handles = tuple(Expr(graph, graph.add("symbol", name=n, shape=shape)) for n in out)
    return handles if (seq or ranged or len(handles) > 1) else handles[0]


# -- argument checking shared by the public functions --------------------------


def as_expr_list(values, what: str) -> tuple[list[Expr], bool]:
    """A list of expressions, and whether a single one was given."""
    single = not isinstance(values, (list, tuple))
    items = [values] if single else list(values)
    if not items:
        raise ValueError(f"{what}: no expressions given")
    exprs = []
    for i, v in enumerate(items):
        if isinstance(v, (list, tuple)):
            raise TypeError(f"{what}: entry {i} is a nested sequence; give a flat list of expressions")
        exprs.append(as_expr(v))
    if len({e.graph for e in exprs}) > 1:
        raise ValueError(f"{what}: the expressions come from different graphad graphs")
    return exprs, single


def as_one_expr(f, what: str, hint: str = "") -> Expr:
    """``f`` as one expression; a list of them is an error naming ``what``."""
    exprs, single = as_expr_list(f, what)
    if not single:
        raise TypeError(f"{what}: f must be one expression{hint}")
    return exprs[0]


def as_symbol_list(wrt, what: str, graph: Graph) -> tuple[list[Expr], bool]:
    """A list of symbols of ``graph`` to differentiate with respect to, and whether
    one was given. Symbols are nodes of one graph: a symbol of another graph
    (even one with the same name) is an error, never silently a different node."""
    single = not isinstance(wrt, (list, tuple))
    items = [wrt] if single else list(wrt)
    for i, s in enumerate(items):
        where = "wrt" if single else f"wrt[{i}]"
        if not (isinstance(s, Expr) and s.is_symbol):
            raise TypeError(
                f"{what}: {where} is {s!r}, not a symbol; derivatives are taken with "
                "respect to symbols made by ga.symbols"
            )
        if s.graph is not graph:
            raise ValueError(f"{what}: {where} ({s}) and the expression come from different graphad graphs")
    return items, single


def as_seed_list(values, targets: list[Expr], single: bool, what: str, graph: Graph) -> list[Expr]:
    """Tangent or cotangent values (numbers, arrays or expressions of ``graph``),
    one per target (a single one if ``single``), each broadcast to its target's shape."""
    if single:
        items = [values]
    else:
        items = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
    n = len(targets)
    if len(items) != n:
        raise ValueError(f"{what}: got {len(items)} value(s) for {n} entr{'y' if n == 1 else 'ies'}")
    try:
        seeds = [as_expr(v, graph) for v in items]
    except TypeError as e:
        raise TypeError(f"{what}: {e}") from None
    if any(e.graph is not graph for e in seeds):
        raise ValueError(f"{what}: the values and the expression come from different graphad graphs")
    for i, (seed, target) in enumerate(zip(seeds, targets)):
        if seed.shape != target.shape and not is_const(seed, 0.0):  # a zero seed stays a structural zero
            try:  # broadcast_to's own shape rule decides
                seeds[i] = apply("broadcast_to", seed, params=target.shape)
            except ValueError:
                raise ValueError(f"{what}: value {i} has shape {shapes.fmt(seed.shape)}, which does not "
                                 f"broadcast to the shape {shapes.fmt(target.shape)} of {target}") from None
    return seeds


def require_scalars(exprs: list[Expr], what: str) -> None:
    """Refuse a graph with array nodes, in the parts of graphad that take scalars only."""
    graph = exprs[0].graph
    if not graph.has_arrays:  # a graph of scalars only: nothing to walk
        return
    shapes_ = graph.shapes
    for v in graph.ancestors(e.id for e in exprs):
        if shapes_[v]:
            raise NotImplementedError(
                f"{what} takes graphs of scalars for now, and {to_str(Expr(graph, v))} has shape "
                f"{shapes.fmt(shapes_[v])}; evaluate array graphs with ga.evaluate (see docs/arrays.md)"
            )


# -- printing -----------------------------------------------------------------

_REPR_LIMIT = 300  # nodes of the expanded expression tree


def format_number(v: float) -> str:
    """A float as it reads best: ``3`` for 3.0, else its repr."""
    if np.isfinite(v) and v == int(v) and abs(v) < 1e16 and not (v == 0 and np.signbit(v)):
        return str(int(v))
    return repr(float(v))


def format_constant(v) -> str:
    """A constant as it reads best: a number, a small array in full, else its shape."""
    if type(v) is not np.ndarray:
        return format_number(v)
    if v.size <= 6:
        return f"array({v.tolist()})"
    return f"array<{'x'.join(map(str, v.shape))}>"


def format_value(value) -> str:
    """A short summary of a value: a number, or an array's shape and range."""
    if np.ndim(value) == 0:
        return f"{float(value):.4g}"
    value = np.asarray(value)
    if value.size <= 3:
        return "[" + ", ".join(f"{v:.4g}" for v in value.ravel()) + "]"
    return f"{'x'.join(map(str, value.shape))}: {np.min(value):.3g} .. {np.max(value):.3g}"


def _wrap(op, i: int, arg_prec: int) -> bool:
    """Whether argument ``i`` of ``op`` needs parentheses."""
    if op.prec == 9:
        return False
    if arg_prec != op.prec:
        return arg_prec < op.prec
    if op.prec == 0:  # comparisons do not chain as intended: always wrap
        return True
    return i == (0 if op.name == "pow" else 1)  # ** is right-associative


def to_str(expr: Expr, names: dict[int, str] | None = None) -> str:
    """Python-syntax text of ``expr``; ``names`` replaces nodes by names.

    Expressions whose written-out tree would be huge (shared subexpressions
    multiply when written out) print as a summary instead.
    """
    graph = expr.graph
    names = names or {}
    order = graph.ancestors([expr.id])
    size: dict[int, int] = {}
    for v in order:
        n = 1 if v in names else 1 + sum(size[a] for a in graph.args[v])
        size[v] = min(n, _REPR_LIMIT + 1)
    if size[expr.id] > _REPR_LIMIT:
        return f"<graphad expression #{expr.id}: {expr.op}(...), {len(order)} nodes>"
    text: dict[int, tuple[str, int]] = {}
    for v in order:
        kind = graph.ops[v]
        if v in names:
            text[v] = (names[v], 9)
        elif kind == "symbol":
            text[v] = (graph.payload[v], 9)
        elif kind == "const":
            s = format_constant(graph.payload[v])
            text[v] = (s, 3 if s.startswith("-") else 9)
        else:
            op = OPS[kind]
            parts = []
            for i, a in enumerate(graph.args[v]):
                s, p = text[a]
                parts.append(f"({s})" if _wrap(op, i, p) else s)
            if op.shape is None:
                text[v] = (op.fmt.format(*parts), op.prec)
            else:
                text[v] = (op.fmt(graph.payload[v], *parts), op.prec)
    return text[expr.id][0]
