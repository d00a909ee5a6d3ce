"""graphad on Dask: batch calls on Dask arrays, and losses summed over chunks of rows.

Dask is imported only when a Dask array is given: ``is_dask`` looks for the
module in ``sys.modules`` first, so a process that never imported Dask pays
nothing. Scheduling, retries after a lost worker and the transfer of data are
Dask's: graphad gives it one task per block (a batch call) or per chunk of
rows (a data-parallel loss), each calling a compiled function, which a worker
loads from its own cache or compiles (compiled functions pickle as their
source). docs/cluster.md tells the whole story.
"""

from __future__ import annotations

import math
import pickle
import sys
import uuid

import numpy as np


def is_dask(a) -> bool:
    """Whether ``a`` is a Dask array (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(a, module.Array)


def any_dask(args) -> bool:
    return "dask.array" in sys.modules and any(is_dask(a) for a in args)


def is_rows(sym, value) -> bool:
    """Whether ``value``, data for the symbol ``sym``, is Dask data in rows: a Dask
    array for a symbol whose first axis is a size name. Other Dask data (a
    number, a small table) are computed and sent to every chunk."""
    return is_dask(value) and bool(sym.shape) and isinstance(sym.shape[0], str)


class _Remote:
    """A compiled function on its way to the workers. It travels pickled and is
    unpickled (loaded from the worker's cache, or compiled) by the first task
    that calls it, so a failure there, such as an op the worker has not
    registered, is that task's error, which Dask reports to the caller; raised
    while Dask reads its messages, it would leave the computation waiting. A
    worker keeps the last functions it loaded, so an optimiser's later
    iterations do not load them again."""

    def __init__(self, fn):
        self.fn, self.data, self.token = fn, None, uuid.uuid4().hex

    def __getstate__(self):
        if self.data is None:
            self.data = pickle.dumps(self.fn)
        return self.token, self.data

    def __setstate__(self, state):
        self.fn, (self.token, self.data) = None, state

    def __call__(self, *args):
        if self.fn is None:
            self.fn = _loaded.get(self.token)
            if self.fn is None:
                self.fn = pickle.loads(self.data)
                while len(_loaded) >= 32:
                    _loaded.pop(next(iter(_loaded)), None)
                _loaded[self.token] = self.fn
        return self.fn(*args)


_loaded: dict = {}  # in a worker: token -> the function, the last 32 loaded


class _Blocks:
    """The function that runs on each block: the compiled function, its outputs
    as apply_gufunc wants them (one array, or a tuple of them)."""

    def __init__(self, fn, single: bool):
        self.fn, self.single = _Remote(fn), single

    def __call__(self, *blocks):
        out = self.fn(*blocks)
        return out if self.single or len(out) > 1 else out[0]


def batch_call(fn, args):
    """``fn`` (a compiled scalar function) on Dask arrays: Dask arrays, one task per block.

    Point axes broadcast and their chunks are aligned by Dask; a vector input
    or output keeps its trailing axis in one chunk."""
    import dask.array as da

    sizes, out_sizes = fn.layout.in_sizes, fn.layout.out_sizes
    if len(args) != len(sizes):
        raise TypeError(fn._arity_message(args))
    ins = []
    for g, (size, a) in enumerate(zip(sizes, args)):
        if not is_dask(a):
            from .compiler import _as_float_array

            a = _as_float_array(a, fn._in_labels[g])
        elif a.dtype.kind not in "iuf":
            raise TypeError(f"argument {fn._in_labels[g]!r} has dtype {a.dtype}; give real numbers")
        if size and (a.ndim == 0 or a.shape[-1] != size):
            raise ValueError(f"argument {g + 1} takes the {size} values of {fn._names(g)} in its last axis, "
                             f"got shape {a.shape}")
        if size and is_dask(a):
            a = a.rechunk({a.ndim - 1: -1})  # a vector in one chunk; the point axes keep theirs
        ins.append(a if a.dtype == np.float64 else a.astype(np.float64))
    points = [a.shape[:-1] if size else a.shape for a, size in zip(ins, sizes)]
    if not any(math.isnan(d) for p in points for d in p):
        try:
            np.broadcast_shapes(*points)
        except ValueError:
            raise ValueError(f"the arguments' point shapes {points} do not broadcast") from None
    signature = ",".join(f"(i{g})" if s else "()" for g, s in enumerate(sizes))
    signature += "->" + ",".join(f"(o{g})" if s else "()" for g, s in enumerate(out_sizes))
    out_dims = {f"o{g}": s for g, s in enumerate(out_sizes) if s}
    nout = len(out_sizes)
    dtypes = (float,) * nout if nout > 1 else float
    result = da.apply_gufunc(_Blocks(fn, fn._single), signature, *ins, output_dtypes=dtypes,
                             output_sizes=out_dims, allow_rechunk=True, vectorize=False)
    if nout == 1 and not fn._single:
        return (result,)
    return result


# --- losses summed over chunks of rows ---------------------------------------------------------

class NotRowSum(ValueError):
    """The loss is not a sum over the rows of the Dask data."""


class RowSplit:
    """``f`` written as ``free + rows``: ``free`` reads no row of the data, and
    ``rows`` is a sum over the rows, so that its value and derivatives over the
    whole data set are the sums of those over chunks of rows.

    A node is *row-wise* when its row i reads row i of the data alone
    (elementwise ops, broadcasts, embeddings, and reductions, reshapes, slices
    and ``X @ W`` that keep axis 0); a sum over axis 0 of a row-wise node (or
    ``X.T @ r``, ``r @ r``) is a *row sum*; ``f`` must be affine in its row
    sums: sums, differences, products and quotients with terms free of the
    data, and slices, stacks, sums and reshapes of them. The number
    of rows, which ``mean`` divides by, is that of the whole data set: each
    ``size`` node of row data becomes a symbol (``size_syms``, ``size_values``)."""

    def __init__(self, f, params, row_syms, n: str, sizes: dict, what: str):
        from . import shapes as S
        from .array_ops import broadcast
        from .expr import Expr, apply, symbols
        from .optimize import _fresh_name

        graph = f.graph
        rows = {s.id for s in row_syms}
        for s in params:
            if any(isinstance(d, str) and S.split(d)[0] == n for d in s.shape):
                raise ValueError(f"{what}: the parameter {s.name} has the rows' size {n!r} in its shape "
                                 f"{S.fmt(s.shape)}: with Dask data, parameters are shared by all rows")
        # free (of the rows), row (row-wise), col (the rows as columns), sum (affine in row sums)
        kind: dict[int, str] = {}
        part: dict[int, tuple] = {}  # a "sum" node's (part free of the data or None, part linear in row sums)
        new: dict[int, Expr] = {}  # nodes rebuilt with symbols for the size nodes
        self.size_syms: list = []
        self.size_values: list[float] = []

        def refuse(v, why):
            raise NotRowSum(f"{what}: with Dask data, f must be a sum (or mean) over the {n!r} rows plus "
                            f"terms free of the data; {why}, in {Expr(graph, v)}")

        def node(v) -> Expr:
            return new[v] if v in new else Expr(graph, v)

        def leading(shape) -> bool:
            return bool(shape) and shape[0] == n

        for v in graph.ancestors([f.id]):
            op, args, params, shape = graph.ops[v], graph.args[v], graph.payload[v], graph.shapes[v]
            ks = [kind[a] for a in args]
            if any(a in new for a in args):
                new[v] = apply(op, *[node(a) for a in args], params=params)
            if op == "size" and ks[0] != "free":  # a count of rows: that of the whole data set
                with graph:
                    new[v] = symbols(_fresh_name(graph, "_rows_size"))
                self.size_syms.append(new[v])
                counted = tuple(graph.shapes[args[0]][k] for k in params)
                self.size_values.append(float(math.prod(S.resolve(counted, sizes))))
                kind[v] = "free"
            elif op == "symbol":
                kind[v] = "row" if v in rows else "free"
            elif all(k == "free" for k in ks):
                if n not in shape:
                    kind[v] = "free"
                elif leading(shape) and (op == "broadcast_to" or _elementwise(op)):
                    kind[v] = "row"  # a value repeated on every row
                else:
                    refuse(v, f"{op} makes an axis of size {n!r} without the data")
            elif "sum" in ks:
                part[v] = self._affine(v, op, args, ks, params, shape, part, node, refuse, apply, broadcast)
                kind[v] = "sum"
                if n in shape:
                    refuse(v, f"{op} spreads a sum over rows back over the rows")
            elif ks == ["row"] and op == "sum" and 0 in params[0] or op == "matmul" and ks == ["col", "row"]:
                kind[v], part[v] = "sum", (None, node(v))  # a row sum: X.T @ r sums over rows too
            elif "col" in ks:
                refuse(v, f"{op} of the rows turned into columns")
            elif ks == ["row"] and (op == "reshape" and graph.shapes[args[0]] == (n,) and shape == (1, n)
                                    or op == "transpose" and len(shape) == 2 and params == (1, 0)):
                kind[v] = "col"  # the rows as columns: r as a (1, n) matrix, X.T
            elif _row_wise(graph, v, ks, leading):
                kind[v] = "row"
            else:
                refuse(v, f"{op} mixes rows or moves the rows' axis")
            if kind[v] == "row" and n in shape[1:]:
                refuse(v, f"{op} puts the rows' size {n!r} in an axis other than the first")
        if kind[f.id] == "row":
            refuse(f.id, "f is not summed over the rows")
        self.free, self.rows = (node(f.id), None) if kind[f.id] == "free" else part[f.id]

    @staticmethod
    def _affine(v, op, args, ks, params, shape, part, node, refuse, apply, broadcast):
        """(free part, linear part) of node v, which is affine in some row sums."""
        from .array_ops import zeros

        graph = node(v).graph
        if "row" in ks or "col" in ks:
            refuse(v, f"{op} meets a sum over rows with the rows themselves (as X - mean(X, axis=0) does)")
        if op not in _LINEAR:
            refuse(v, f"{op} of a sum over rows is not affine in it")
        if op in ("add", "sub"):
            sign = (1.0, -1.0 if op == "sub" else 1.0)
            free = [s * (part[a][0] if k == "sum" else node(a)) for a, k, s in zip(args, ks, sign)
                    if k != "sum" or part[a][0] is not None]
            lin = [s * part[a][1] for a, k, s in zip(args, ks, sign) if k == "sum"]
            free_sum = None if not free else free[0] if len(free) == 1 else free[0] + free[1]
            lin_sum = lin[0] if len(lin) == 1 else lin[0] + lin[1]
            return (None if free_sum is None else broadcast(free_sum, shape)), broadcast(lin_sum, shape)
        if op == "concatenate":  # each part's free and linear parts, zeros where it has none
            parts = [part[a] if k == "sum" else (node(a), None) for a, k in zip(args, ks)]
            free = [zeros(graph.shapes[a], graph) if p[0] is None else p[0] for a, p in zip(args, parts)]
            lin = [zeros(graph.shapes[a], graph) if p[1] is None else p[1] for a, p in zip(args, parts)]
            return apply(op, *free, params=params), apply(op, *lin, params=params)
        if op == "div" and ks[1] == "sum":
            refuse(v, "a division by a sum over rows is not affine in it")
        if op == "take" and ks[1] == "sum":
            refuse(v, "indices made of a sum over rows")
        if ks.count("sum") > 1:
            refuse(v, f"{op} of a sum over rows by a sum over rows is not affine in them")
        k = ks.index("sum")
        free, lin = part[args[k]]
        others = [node(a) for a in args]
        lin = apply(op, *others[:k], lin, *others[k + 1:], params=params)
        free = None if free is None else apply(op, *others[:k], free, *others[k + 1:], params=params)
        return free, lin


_LINEAR = {"add", "sub", "neg", "mul", "div", "dmul", "sum", "broadcast_to", "reshape", "transpose", "matmul",
           "stop_gradient", "slice", "pad", "take", "concatenate"}


def _elementwise(op: str) -> bool:
    from .registry import OPS

    return op in OPS and OPS[op].shape is None


def _row_wise(graph, v, ks, leading) -> bool:
    """Whether node v (some argument row-wise, none a row sum) is row-wise: its row i reads row i alone."""
    op, args, params, shape = graph.ops[v], graph.args[v], graph.payload[v], graph.shapes[v]
    if not leading(shape):
        return False
    if _elementwise(op) or op in ("broadcast_to", "stop_gradient", "concatenate"):
        return (all(len(graph.shapes[a]) == len(shape) for a, k in zip(args, ks) if k == "row")
                and (op != "concatenate" or params != 0))
    if op in ("sum", "max"):
        return 0 not in params[0]
    if op == "reshape":
        return True  # C order: a row stays a row when axis 0 stays
    if op == "transpose":
        return params[0] == 0
    if op in ("slice", "pad"):
        spec = params if op == "slice" else params[0]
        return tuple(spec[0]) == (0, None, 1)
    if op == "matmul":  # X @ W, and batches of rows
        return ks == ["row", "free"] and len(graph.shapes[args[0]]) >= 2
    if op == "take":  # along another axis, or an embedding: E[labels] with a label per row
        return ks == ["row", "free"] and params != 0 or ks == ["free", "row"] and params == 0
    return False


class RowData:
    """Dask data bound to a loss ``f``: its chunks of rows persisted (on the
    workers, with a distributed client), and ``f`` split by :class:`RowSplit`.
    Each evaluation sends the parameters, computes every chunk's part with a
    compiled function, tree-reduces the parts and adds the part free of the
    data, computed here."""

    def __init__(self, f, params, data_syms, data_values, sizes: dict, what: str):
        import dask
        import dask.array as da

        firsts = {s.shape[0] for s, v in zip(data_syms, data_values) if is_rows(s, v)}
        n = next(iter(firsts))
        if len(firsts) > 1:
            raise ValueError(f"{what}: the Dask data must share their first axis, the rows (as X of shape "
                             f"('n', 3) and y of shape ('n',)); their first axes are {sorted(firsts)}")
        row_syms, rows, self.other_syms, self.other_values = [], [], [], []
        for s, v in zip(data_syms, data_values):
            if s.shape and s.shape[0] == n:
                row_syms.append(s)
                rows.append(v)
            elif n in s.shape:
                raise ValueError(f"{what}: the data {s.name} has the rows' size {n!r} in an axis other than "
                                 "the first")
            else:
                from .evaluate import _input_value

                self.other_syms.append(s)
                self.other_values.append(_input_value(s, v))
        chunks = next(v for v in rows if is_dask(v)).chunks[0]
        arrays = []
        for s, v in zip(row_syms, rows):
            a = da.asarray(v)
            if a.dtype.kind not in "iuf":
                raise TypeError(f"{what}: data {s.name} has dtype {a.dtype}; give real numbers")
            arrays.append(a.astype(np.float64).rechunk({0: chunks, **{k: -1 for k in range(1, a.ndim)}}))
        self.arrays = dask.persist(*arrays)  # read once; later calls find the chunks where they are
        self.params, self.row_syms = list(params), row_syms
        self.split = RowSplit(f, params, row_syms, n, sizes, what)
        self.chunks = len(chunks)
        self._fns: dict = {}

    def _compiled(self, what: str, outputs, directions=()):
        """``outputs()`` compiled once (``what`` names them), taking the parameters,
        the ``directions`` of a Hessian-vector product, the row data, then the other data."""
        from .compiler import compile as ga_compile

        if what not in self._fns:
            rows = self.row_syms if what.startswith("rows") else []
            inputs = [*self.params, *directions, *rows, *self.other_syms, *self.split.size_syms]
            fn = ga_compile(outputs(), inputs)
            self._fns[what] = _Remote(fn) if rows else fn  # the rows' function runs on the workers
        return self._fns[what]

    def _total(self, rows_fn, free_fn, args) -> list:
        """Σ over chunks of ``rows_fn(*args, *chunk, *others)``, plus ``free_fn(*args, *others)`` here."""
        import dask

        others = [*self.other_values, *self.split.size_values]
        total = None
        if rows_fn is not None:
            token = uuid.uuid4().hex
            fn = dask.delayed(rows_fn, name="graphad-fn-" + token, traverse=False)
            front = dask.delayed(tuple(args), name="graphad-params-" + token, traverse=False)
            back = dask.delayed(tuple(others), name="graphad-data-" + token, traverse=False)
            blocks = [a.to_delayed().ravel() for a in self.arrays]
            parts = [dask.delayed(_chunk, pure=True)(fn, front, back, *bs) for bs in zip(*blocks)]
            while len(parts) > 1:  # a tree of sums: no task holds more than 8 parts
                parts = [dask.delayed(_add, pure=True)(*parts[i:i + 8]) for i in range(0, len(parts), 8)]
            (total,) = dask.compute(parts[0])
        if free_fn is not None:
            here = _outputs(free_fn(*args, *others))
            total = here if total is None else _add(total, here)
        return total

    def value_and_grad(self, params) -> tuple[float, list]:
        """The value of f and its gradient (one array per parameter) at ``params``."""
        from .reverse import grad

        fns = [None if e is None else self._compiled(what, lambda e=e: [e, *grad(e, self.params)])
               for what, e in (("rows", self.split.rows), ("free", self.split.free))]
        value, *grads = self._total(*fns, params)
        return float(value), grads

    def hvp(self, directions):
        """(params, v) -> the Hessian of f times v (one array per parameter); ``directions``
        are the symbols of v, one per parameter."""
        from .derivatives import hvp

        fns = [None if e is None  # one output per parameter (not one Vector, for scalar parameters)
               else self._compiled(what, lambda e=e: list(hvp(e, self.params, directions)), directions)
               for what, e in (("rows hvp", self.split.rows), ("free hvp", self.split.free))]
        return lambda params, v: self._total(*fns, [*params, *v])


def _outputs(out) -> list:
    return [np.asarray(o, dtype=np.float64) for o in (out if isinstance(out, tuple) else (out,))]


def _chunk(fn, front, back, *blocks) -> list:
    """One chunk's part: runs on a worker."""
    return _outputs(fn(*front, *blocks, *back))


def _add(*parts) -> list:
    return [sum(xs[1:], xs[0].copy()) if xs[0].ndim else sum(xs) for xs in zip(*parts)]
