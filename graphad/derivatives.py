"""Derivatives built from the two modes: n-th derivatives, Jacobians, Hessians."""

from __future__ import annotations

import numbers

import numpy as np

from . import shapes as S
from .arrays import reshape, stack
from .expr import Expr, as_expr_list, as_one_expr, as_symbol_list, constant
from .forward import jvp
from .reverse import grad, vjp

MODES = ("forward", "reverse")


def _check_mode(mode: str, allowed: tuple[str, ...], what: str) -> None:
    if mode not in allowed:
        raise ValueError(f"{what}: mode must be one of {', '.join(map(repr, allowed))}, not {mode!r}")


def derivative(f, x, mode: str = "reverse", n: int = 1) -> Expr:
    """The ``n``-th derivative of the scalar expression ``f`` in the symbol ``x``.

    Each order is one sweep of the chosen mode (``"forward"`` or
    ``"reverse"``) over the graph of the previous one.

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x")
        >>> f = ga.exp(x**2)
        >>> ga.evaluate(ga.derivative(f, x, mode="forward"), {x: 2.0})
        218.39260013257694
        >>> ga.derivative(x**3, x, n=2)
        3*(2*x)
    """
    _check_mode(mode, MODES, "derivative")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"derivative: n must be a whole number >= 0, not {n!r}")
    (f,), single = as_expr_list(f, "derivative")
    (x,), _ = as_symbol_list(x, "derivative", f.graph)
    if f.shape or x.shape:
        raise ValueError("derivative: f and x must be scalars; for arrays use ga.grad, ga.jvp or ga.jacobian")
    for _ in range(n):
        f = jvp(f, x, 1.0) if mode == "forward" else grad(f, x)
    return f


def jacobian(outputs, inputs, mode: str = "auto") -> list[list[Expr]]:
    """The Jacobian matrix as a list of rows (one per output).

    With arrays, the entry for an output of shape A and an input of shape B
    has shape A + B (as ``jax.jacobian``); it takes one sweep per element of
    the inputs (forward) or of the outputs (reverse), whose sizes must then be
    numbers, not names.

    ``mode="forward"`` takes one tangent sweep per input, ``"reverse"`` one
    adjoint sweep per output; ``"auto"`` picks forward when there are fewer
    inputs than outputs, else reverse, which is the cheaper of the two.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.jacobian([x * y, x + y, ga.sin(x)], [x, y])
        [[y, x], [1, 1], [cos(x), 0]]
    """
    _check_mode(mode, ("auto",) + MODES, "jacobian")
    outs, _ = as_expr_list(outputs, "jacobian")
    syms, _ = as_symbol_list(inputs, "jacobian", outs[0].graph)
    if any(e.shape for e in outs + syms):
        return _array_jacobian(outs, syms, mode)
    if mode == "auto":
        mode = "forward" if len(syms) < len(outs) else "reverse"
    if mode == "reverse":
        return [vjp(f, syms, 1.0) for f in outs]
    graph = outs[0].graph
    zero, one = constant(0.0, graph), constant(1.0, graph)
    columns = [jvp(outs, syms, [one if k == j else zero for k in range(len(syms))])
               for j in range(len(syms))]
    return [list(row) for row in zip(*columns)]


def _basis(shape: tuple, what: str) -> list:
    """The unit arrays of ``shape``, in C order (one 1.0 for a scalar)."""
    n = S.size(shape)
    if n is None:
        raise ValueError(f"{what}: the shape {S.fmt(shape)} has a named size; a Jacobian needs fixed sizes "
                         "(use ga.jvp, ga.vjp or ga.hvp)")
    if not shape:
        return [1.0]
    return [np.eye(1, n, k).reshape(shape) for k in range(n)]


def _array_jacobian(outs: list[Expr], syms: list[Expr], mode: str) -> list[list[Expr]]:
    if mode == "auto":
        sizes_in = [S.size(s.shape) for s in syms]
        sizes_out = [S.size(e.shape) for e in outs]
        known_in, known_out = None not in sizes_in, None not in sizes_out
        mode = "forward" if known_in and (not known_out or sum(sizes_in) < sum(sizes_out)) else "reverse"
    if mode == "reverse":
        rows = []
        for f in outs:
            sweeps = [vjp([f], syms, [e]) for e in _basis(f.shape, "jacobian")]
            rows.append([reshape(stack([sw[j] for sw in sweeps]), f.shape + s.shape)
                         for j, s in enumerate(syms)])
        return rows
    columns = []
    for j, s in enumerate(syms):
        sweeps = [jvp(outs, syms, [e if k == j else 0.0 for k in range(len(syms))])
                  for e in _basis(s.shape, "jacobian")]
        columns.append([reshape(stack([sw[i] for sw in sweeps], axis=f.ndim), f.shape + s.shape)
                        for i, f in enumerate(outs)])
    return [list(row) for row in zip(*columns)]


def hessian(f, wrt) -> list[list[Expr]]:
    """The Hessian matrix of the scalar ``f``: forward mode over reverse mode.

    The gradient comes from one reverse sweep; column j of the Hessian is one
    tangent sweep of the gradient along the j-th unit vector (with array
    symbols, entry (i, j) has shape ``wrt[i].shape + wrt[j].shape``). By symmetry only
    the entries on and below the diagonal are built; the rest are the same
    expressions.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.hessian(x**2 * y, [x, y])
        [[y*2, 2*x], [2*x, 0]]
    """
    f = as_one_expr(f, "hessian")
    syms, _ = as_symbol_list(wrt, "hessian", f.graph)
    g = grad(f, syms)
    if any(s.shape for s in syms):  # entry (i, j) has shape wrt[i].shape + wrt[j].shape
        return _array_jacobian(g, syms, "forward")
    graph = f.graph
    zero, one = constant(0.0, graph), constant(1.0, graph)
    n = len(syms)
    h = [[zero] * n for _ in range(n)]
    for j in range(n):
        column = jvp(g[j:], syms, [one if k == j else zero for k in range(n)])
        for i, entry in enumerate(column, start=j):
            h[i][j] = h[j][i] = entry
    return h


def hvp(f, wrt, v) -> list[Expr]:
    """The Hessian-vector product H v, without building the Hessian.

    One reverse sweep gives the gradient, one tangent sweep of it along ``v``
    gives H v (forward over reverse). A list of symbols takes a list of
    directions and gives a list; one symbol (an array, say) takes one
    direction of its shape and gives one expression.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.hvp(x**2 * y, [x, y], [1.0, 0.0])
        [y*2, 2*x]
    """
    f = as_one_expr(f, "hvp")
    syms, single = as_symbol_list(wrt, "hvp", f.graph)
    if single:  # one symbol (an array, say): one direction, one result
        return jvp(grad(f, syms[0]), syms[0], v)
    return jvp(grad(f, syms), syms, v)
