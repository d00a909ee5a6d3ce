"""Sparsity: Jacobian and Hessian patterns read from the DAG, and compressed derivatives.

The Jacobian pattern is which inputs reach which outputs through
differentiable arguments (a comparison or ``where``'s condition carries no
derivative). The Hessian pattern is which input pairs interact nonlinearly:
every nonlinear node couples all the inputs it depends on, every product
couples its factors' inputs, and linear and piecewise-linear ops couple none.
Both are propagated in one pass over the DAG, with Python integers as bit sets.

A sparse Jacobian needs one tangent sweep per *colour* of its column
intersection graph (columns that share no row can share a sweep), and a sparse
Hessian one Hessian-vector product per colour of the same graph for its
pattern, rather than one per input. Colouring is networkx's greedy colouring.
Both come back compiled, returning ``scipy.sparse`` matrices.
"""

from __future__ import annotations

import numpy as np

from .compiler import compile as ga_compile
from .expr import as_expr_list, as_one_expr, as_symbol_list, constant, require_scalars
from .forward import jvp
from .graph import greedy_colouring
from .registry import OPS
from .reverse import grad


def _bits(graph, outputs, syms):
    """The nodes ``outputs`` need, in order, and for each the bit set of the
    inputs it depends on through differentiable arguments."""
    require_scalars(list(outputs) + list(syms), "sparsity detection")
    index = {s.id: k for k, s in enumerate(syms)}
    order = graph.ancestors(e.id for e in outputs)
    deps: dict[int, int] = {}
    for v in order:
        op = graph.ops[v]
        if op == "symbol":
            deps[v] = 1 << index[v] if v in index else 0
        elif op == "const":
            deps[v] = 0
        else:
            partials = OPS[op].partials
            bits = 0
            for a, rule in zip(graph.args[v], partials):
                if rule is not None:
                    bits |= deps[a]
            deps[v] = bits
    return order, deps


def _members(bits: int) -> list[int]:
    """The set bits' positions, in O(number of set bits)."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def jacobian_sparsity(outputs, inputs):
    """The Jacobian's pattern: a ``scipy.sparse`` boolean matrix, rows = outputs.

    Examples:
        >>> import graphad as ga
        >>> x, y, z = ga.symbols("x y z")
        >>> ga.jacobian_sparsity([x * y, ga.sin(z), ga.where(x > 0, y, 0)], [x, y, z]).toarray()
        array([[ True,  True, False],
               [False, False,  True],
               [False,  True, False]])
    """
    import scipy.sparse as sparse

    outs, _ = as_expr_list(outputs, "jacobian_sparsity")
    syms, _ = as_symbol_list(inputs, "jacobian_sparsity", outs[0].graph)
    _, deps = _bits(outs[0].graph, outs, syms)
    rows, cols = [], []
    for i, e in enumerate(outs):
        for j in _members(deps[e.id]):
            rows.append(i)
            cols.append(j)
    return sparse.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(outs), len(syms)))


def hessian_sparsity(f, wrt):
    """The Hessian's pattern of the scalar ``f``: which input pairs interact nonlinearly.

    A conservative superset: every nonlinear node ``f`` depends on couples
    all the inputs below it, and every product couples its factors' inputs.

    Examples:
        >>> import graphad as ga
        >>> x, y, z = ga.symbols("x y z")
        >>> ga.hessian_sparsity(x * y + ga.exp(z) + x, [x, y, z]).toarray().astype(int)
        array([[0, 1, 0],
               [1, 0, 0],
               [0, 0, 1]])
    """
    import scipy.sparse as sparse

    f = as_one_expr(f, "hessian_sparsity")
    syms, _ = as_symbol_list(wrt, "hessian_sparsity", f.graph)
    graph = f.graph
    order, deps = _bits(graph, [f], syms)
    pairs: set[tuple[int, int]] = set()
    for v in order:
        op = graph.ops[v]
        if op in ("symbol", "const"):
            continue
        kind = OPS[op].curvature
        args = [a for a, rule in zip(graph.args[v], OPS[op].partials) if rule is not None]
        if kind == "nonlinear":
            members = _members(deps[v])
            pairs.update((i, j) for i in members for j in members)
        elif kind == "bilinear" and len(args) == 2:
            left, right = _members(deps[args[0]]), _members(deps[args[1]])
            pairs.update((i, j) for i in left for j in right)
            pairs.update((j, i) for i in left for j in right)
    rows = [i for i, _ in pairs]
    cols = [j for _, j in pairs]
    n = len(syms)
    return sparse.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, n))


def column_colouring(pattern) -> np.ndarray:
    """Colours of the columns such that columns of one colour share no row."""
    pattern = pattern.tocsc().astype(bool)
    n = pattern.shape[1]
    rows = pattern.T.tocsr()  # rows of this: for each column, its rows
    by_row = pattern.tocsr()
    edges = [(j, k) for j in range(n) for i in rows.indices[rows.indptr[j]:rows.indptr[j + 1]]
             for k in by_row.indices[by_row.indptr[i]:by_row.indptr[i + 1]] if k > j]
    return np.array(greedy_colouring(n, edges), dtype=np.int64)


class SparseDerivative:
    """A compiled sparse Jacobian or Hessian: call it with the inputs' values
    (one 1-D array) to get a ``scipy.sparse.csr_matrix``."""

    def __init__(self, kind, pattern, colours, fn):
        self.kind = kind
        self.pattern = pattern.tocoo()
        self.colours = colours
        self.sweeps = int(colours.max()) + 1 if colours.size else 0
        self._fn = fn
        self._rows, self._cols = self.pattern.row, self.pattern.col

    def __call__(self, x):
        import scipy.sparse as sparse

        compressed = self._fn(np.asarray(x, dtype=np.float64))  # one array per colour
        compressed = np.stack(compressed) if isinstance(compressed, tuple) else compressed[None]
        data = compressed[self.colours[self._cols], self._rows]
        return sparse.csr_matrix((data, (self._rows, self._cols)), shape=self.pattern.shape)

    def __repr__(self) -> str:
        m, n = self.pattern.shape
        return (f"<sparse {self.kind} {m}x{n}, {self.pattern.nnz} nonzeros, "
                f"{self.sweeps} sweeps instead of {n}>")


def _seed(colours, c, graph):
    one, zero = constant(1.0, graph), constant(0.0, graph)
    return [one if k == c else zero for k in colours]


def sparse_jacobian(outputs, inputs, **compile_options) -> SparseDerivative:
    """The Jacobian, compiled, computed in one tangent sweep per colour.

    Examples:
        >>> import numpy as np
        >>> import graphad as ga
        >>> us = ga.symbols("u0:6")
        >>> residual = [us[i - 1] - 2 * us[i] + us[i + 1] for i in range(1, 5)]  # tridiagonal
        >>> J = ga.sparse_jacobian(residual, us)
        >>> J.sweeps, J(np.zeros(6)).toarray()[1].tolist()
        (3, [0.0, 1.0, -2.0, 1.0, 0.0, 0.0])
    """
    outs, _ = as_expr_list(outputs, "sparse_jacobian")
    syms, _ = as_symbol_list(inputs, "sparse_jacobian", outs[0].graph)
    pattern = jacobian_sparsity(outs, syms)
    colours = column_colouring(pattern)
    graph = outs[0].graph
    sweeps = [jvp(outs, syms, _seed(colours, c, graph)) for c in range(int(colours.max()) + 1)]
    fn = ga_compile(sweeps, [syms], **compile_options)
    return SparseDerivative("Jacobian", pattern, colours, fn)


def sparse_hessian(f, wrt, **compile_options) -> SparseDerivative:
    """The Hessian of the scalar ``f``, compiled, in one Hessian-vector product per colour.

    Examples:
        >>> import numpy as np
        >>> import graphad as ga
        >>> us = ga.symbols("u0:5")
        >>> energy = sum((us[i + 1] - us[i]) ** 2 for i in range(4)) + sum(ga.exp(u) for u in us)
        >>> H = ga.sparse_hessian(energy, us)
        >>> H.sweeps, H(np.zeros(5)).toarray()[2].tolist()
        (3, [0.0, -2.0, 5.0, -2.0, 0.0])
    """
    f = as_one_expr(f, "sparse_hessian")
    syms, _ = as_symbol_list(wrt, "sparse_hessian", f.graph)
    pattern = hessian_sparsity(f, syms)
    colours = column_colouring(pattern)
    graph = f.graph
    g = grad(f, syms)  # one reverse sweep; then one tangent sweep of it per colour
    sweeps = [jvp(g, syms, _seed(colours, c, graph)) for c in range(int(colours.max()) + 1)]
    fn = ga_compile(sweeps, [syms], **compile_options)
    return SparseDerivative("Hessian", pattern, colours, fn)

