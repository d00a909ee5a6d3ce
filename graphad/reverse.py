"""Reverse mode: the adjoint graph, built by one walk in reverse topological order."""

from __future__ import annotations

from .array_ops import sum_to, zeros
from .expr import Expr, Vector, as_expr_list, as_one_expr, as_seed_list, as_symbol_list, is_const
from .registry import OPS


def active_nodes(graph, order: list[int], inputs: list[int]) -> set[int]:
    """The nodes of ``order`` (a topological order) on a path from ``inputs``:
    the only ones whose adjoints can be nonzero."""
    active = set(inputs)
    for v in order:
        if any(a in active for a in graph.args[v]):
            active.add(v)
    return active


def adjoints(outputs: list[Expr], cotangents: list[Expr], wrt: list[Expr]) -> list[Expr]:
    """Adjoint expressions of ``wrt`` for the output weights ``cotangents``.

    One sweep gives the adjoints of all inputs: each node's adjoint is the sum
    of its users' contributions, so the adjoint graph has O(size of the
    function) nodes whatever the number of inputs. Only nodes on a path from
    ``wrt`` to the outputs (the *active* ones) get adjoints.
    """
    graph = outputs[0].graph
    order = graph.ancestors(e.id for e in outputs)
    active = active_nodes(graph, order, [s.id for s in wrt])
    adjoint: dict[int, Expr] = {}
    for e, c in zip(outputs, cotangents):
        if e.id in active and not is_const(c, 0.0):  # a zero weight adds nothing
            adjoint[e.id] = adjoint[e.id] + c if e.id in adjoint else c
    for v in reversed(order):
        arg_ids = graph.args[v]
        if v not in adjoint or not arg_ids:
            continue
        args = tuple(Expr(graph, a) for a in arg_ids)
        needed = tuple(a in active for a in arg_ids)
        parts = OPS[graph.ops[v]].adjoint(args, Expr(graph, v), adjoint[v], needed)
        for a, part in zip(arg_ids, parts):
            if part is not None:
                if part.shape != graph.shapes[a]:  # a broadcast operand: sum back to its shape
                    part = sum_to(part, graph.shapes[a])
                adjoint[a] = adjoint[a] + part if a in adjoint else part
    return [adjoint[s.id] if s.id in adjoint else zeros(s.shape, graph) for s in wrt]


def vjp(outputs, wrt, cotangents):
    """Reverse mode: the vector-Jacobian product u^T J for output weights u.

    ``cotangents`` gives one weight (number, array or expression) per output
    (one for a single output), broadcast to the output's shape.
    Returns one expression per symbol of ``wrt`` (a single one for a single
    symbol), all from one reverse sweep.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.vjp([x * y, x + y], [x, y], [1.0, 0.5])
        [0.5 + y, 0.5 + x]
    """
    exprs, one = as_expr_list(outputs, "vjp")
    syms, single = as_symbol_list(wrt, "vjp", exprs[0].graph)
    weights = as_seed_list(cotangents, exprs, one, "vjp cotangents", exprs[0].graph)
    result = adjoints(exprs, weights, syms)
    return result[0] if single else Vector(result)


def grad(f, wrt):
    """The gradient of the scalar expression ``f``, by one reverse sweep.

    A list (or tuple) of symbols gives a list of derivative expressions; one
    symbol gives one expression. The derivative by an array symbol has that
    symbol's shape.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.grad(x**2 * y, [x, y])
        [y*(2*x), x**2]
        >>> ga.evaluate(ga.grad(ga.exp(x**2), x), {x: 2.0})
        218.39260013257694
    """
    f = as_one_expr(f, "grad", "; use ga.jacobian or ga.vjp for several outputs")
    if f.shape:
        raise ValueError(f"grad: f has shape {f.shape}; the gradient is of a scalar (use ga.sum, "
                         "ga.vjp with an array cotangent, or ga.jacobian)")
    return vjp([f], wrt, [1.0])
