"""Derivatives built from the two modes: n-th derivatives, Jacobians, Hessians."""

from __future__ import annotations

import numbers

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
    for _ in range(n):
        f = jvp(f, x, 1.0) if mode == "forward" else grad(f, x)
    return f


def jacobian(outputs, inputs, mode: str = "auto") -> list[list[Expr]]:
    """The Jacobian matrix as a list of rows (one per output).

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
    if mode == "auto":
        mode = "forward" if len(syms) < len(outs) else "reverse"
    if mode == "reverse":
        return [vjp(f, syms, 1.0) for f in outs]
    graph = outs[0].graph
    zero, one = constant(0.0, graph), constant(1.0, graph)
    columns = [jvp(outs, syms, [one if k == j else zero for k in range(len(syms))])
               for j in range(len(syms))]
    return [list(row) for row in zip(*columns)]


def hessian(f, wrt) -> list[list[Expr]]:
    """The Hessian matrix of the scalar ``f``: forward mode over reverse mode.

    The gradient comes from one reverse sweep; column j of the Hessian is one
    tangent sweep of the gradient along the j-th unit vector. By symmetry only
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
    gives H v (forward over reverse).

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.hvp(x**2 * y, [x, y], [1.0, 0.0])
        [y*2, 2*x]
    """
    f = as_one_expr(f, "hvp")
    syms, _ = as_symbol_list(wrt, "hvp", f.graph)
    return jvp(grad(f, syms), syms, v)
