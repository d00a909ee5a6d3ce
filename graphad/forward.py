"""Forward mode: the tangent graph, built by one walk in topological order."""

from __future__ import annotations

from .array_ops import broadcast, zeros
from .expr import Expr, Vector, as_expr_list, as_seed_list, as_symbol_list, is_const
from .registry import OPS


def tangents(outputs: list[Expr], seeds: dict[int, Expr]) -> list[Expr]:
    """Tangent expressions d output = J . seed, for a seed on some symbols.

    ``seeds`` maps symbol ids to their tangent expressions. Nodes that do not
    depend on a seeded symbol get no tangent node at all (a structural zero).
    """
    graph = outputs[0].graph
    tangent: dict[int, Expr] = dict(seeds)
    for v in graph.ancestors(e.id for e in outputs):
        arg_ids = graph.args[v]
        if v in tangent or not arg_ids:
            continue
        ts = tuple(tangent.get(a) for a in arg_ids)
        if all(t is None for t in ts):
            continue
        args = tuple(Expr(graph, a) for a in arg_ids)
        t = OPS[graph.ops[v]].tangent(args, Expr(graph, v), ts)
        if t is not None:
            if t.shape != graph.shapes[v]:  # only a broadcast operand moved
                t = broadcast(t, graph.shapes[v])
            tangent[v] = t
    return [tangent[e.id] if e.id in tangent else zeros(e.shape, graph) for e in outputs]


def jvp(outputs, wrt, tangents_in):
    """Forward mode: the directional derivative of ``outputs`` along ``tangents_in``.

    ``tangents_in`` gives one value (number, array or expression) per symbol
    of ``wrt`` (one value for a single symbol), broadcast to the symbol's
    shape. Returns one expression per output (a single one for a single
    output): the Jacobian-vector product J v, built in one forward sweep.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.jvp([x * y, x + y], [x, y], [1.0, 0.0])
        [y, 1]
    """
    exprs, single = as_expr_list(outputs, "jvp")
    syms, one = as_symbol_list(wrt, "jvp", exprs[0].graph)
    seeds_in = as_seed_list(tangents_in, syms, one, "jvp tangents", exprs[0].graph)
    seeds: dict[int, Expr] = {}
    for s, t in zip(syms, seeds_in):
        if is_const(t, 0.0):
            continue  # no movement along s: a structural zero, not 0 * partial
        seeds[s.id] = seeds[s.id] + t if s.id in seeds else t  # a repeated symbol adds up
    result = tangents(exprs, seeds)
    return result[0] if single else Vector(result)
