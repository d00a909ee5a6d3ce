"""The reference evaluator: plain NumPy, one op at a time.

It is the oracle every backend is tested against, so it favours plainness
over speed. Domain errors follow IEEE-754 (``log(-1)`` is nan, ``1/0`` is inf)
and raise no warning.
"""

from __future__ import annotations

import numpy as np

from . import shapes as S
from .expr import Expr, as_expr_list
from .graph import Graph
from .registry import OPS


def _input_value(key, value):
    name = key.name if isinstance(key, Expr) else key
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"evaluate: the value for {name!r} is {value!r}, not a number or array of numbers")
    if isinstance(value, np.ma.MaskedArray):  # its mask would be dropped silently
        raise TypeError(f"evaluate: the value for {name!r} is a masked array; fill it first "
                        "(value.filled(np.nan)) so that masked entries are explicit")
    try:
        arr = np.asarray(value)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"evaluate: the value for {name!r} is not a number or array: {e}") from None
    if arr.dtype.kind == "b":  # as compiled functions do: a bool is no number here
        raise TypeError(f"evaluate: the value for {name!r} is boolean; give numbers (1.0 and 0.0)")
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"evaluate: the value for {name!r} has dtype {arr.dtype}; give real numbers"
        )
    return np.float64(arr) if arr.ndim == 0 else arr.astype(np.float64)


def input_values(graph: Graph, env: dict, needed: list[int]) -> dict[int, np.ndarray]:
    """Map the symbols of ``graph`` in ``env`` to their values; each symbol among
    ``needed`` must have one.

    Keys of ``env`` may be symbols or symbol names; keys of other graphs, and
    names no symbol has, are ignored.
    """
    if not isinstance(env, dict):
        raise TypeError(f"evaluate: give the values as a dict {{symbol: value}}, not {type(env).__name__}")
    values = {}
    for key, value in env.items():
        if isinstance(key, Expr):
            if not key.is_symbol:
                raise TypeError(f"evaluate: the key {key} is not a symbol")
            if key.graph is not graph:
                continue
            nid = key.id
        elif isinstance(key, str):
            nid = graph.symbol_id(key)
            if nid is None:
                continue
        else:
            raise TypeError(f"evaluate: the key {key!r} is neither a symbol nor a symbol name")
        values[nid] = _input_value(key, value)
    missing = [graph.payload[v] for v in needed if graph.ops[v] == "symbol" and v not in values]
    if missing:
        raise ValueError(f"evaluate: no value given for symbol(s) {', '.join(missing)}")
    return values


def batch_shape(values: dict[int, np.ndarray]) -> tuple[int, ...]:
    """The broadcast shape of the input values, () for a single point."""
    shapes = [np.shape(v) for v in values.values()]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"evaluate: the input arrays have shapes {shapes}, which do not broadcast") from None


def node_values(graph: Graph, roots: list[int], env: dict) -> dict[int, np.ndarray]:
    """The value of every node that ``roots`` depend on (used by traces too).

    In a graph of scalars, inputs may be arrays of points (broadcast against
    each other). In a graph with array nodes, each input must have its
    symbol's shape: its size names are bound from it, and every array op's
    result is checked against its shape at those sizes."""
    order = graph.ancestors(roots)
    given = input_values(graph, env, order)
    values = {v: given[v] for v in order if v in given}  # inputs the outputs do not need are left out
    shapes = graph.shapes
    arrays = graph.has_arrays and any(shapes[v] for v in order)
    sizes = _bind_sizes(graph, given) if arrays else None  # every input given binds the size names
    if sizes is None:
        batch_shape(values)
    with np.errstate(all="ignore"):
        for v in order:
            if v in values:
                continue
            op = graph.ops[v]
            if op == "const":
                payload = graph.payload[v]
                values[v] = payload if type(payload) is np.ndarray else np.float64(payload)
                continue
            rule = OPS[op]
            args = [values[a] for a in graph.args[v]]
            if rule.shape is None:
                values[v] = rule.value(*args)
                continue
            shape = S.resolve(shapes[v], sizes)
            value = rule.value(graph.payload[v], shape, *args)
            if np.shape(value) != shape:
                raise ValueError(
                    f"evaluate: {Expr(graph, v)} has shape {S.fmt(np.shape(value))} at the sizes {sizes}, "
                    f"not {S.fmt(shape)}: a slice reaches past the end of a named axis"
                )
            values[v] = value
    return values


def _bind_sizes(graph: Graph, values: dict) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for v, value in values.items():
        try:
            S.bind(sizes, graph.payload[v], graph.shapes[v], np.shape(value))
        except ValueError as e:
            raise ValueError(f"evaluate: {e}") from None
    return sizes


def evaluate(outputs, env: dict):
    """Evaluate expressions at a point (floats) or at many points (arrays).

    In a graph with array symbols, each value has its symbol's shape (the
    size names are bound from them) and array outputs come back as arrays.

    ``env`` maps each symbol (or its name) to a number or an array; arrays
    broadcast against each other, as in NumPy. One expression gives one
    result, a list gives a list. A scalar point gives Python floats; arrays
    give arrays of the broadcast shape (constant outputs included).

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> f = ga.exp(x**2) * ga.sin(y) + 3
        >>> round(ga.evaluate(f, {x: 2.0, y: 1.0}), 6)
        48.942759
        >>> ga.evaluate([x + y, x * y], {x: [1.0, 2.0], y: 3.0})
        [array([4., 5.]), array([3., 6.])]
        >>> ga.evaluate(ga.log(x), {"x": -1.0})
        nan
    """
    exprs, single = as_expr_list(outputs, "evaluate")
    graph = exprs[0].graph
    values = node_values(graph, [e.id for e in exprs], env)
    if graph.has_arrays and any(graph.shapes[v] for v in values):  # values: every node the outputs need
        results = [np.array(values[e.id], dtype=np.float64) if e.shape else float(values[e.id])
                   for e in exprs]
        return results[0] if single else results
    shape = batch_shape({k: v for k, v in values.items() if graph.ops[k] == "symbol"})
    if shape == ():
        results = [float(values[e.id]) for e in exprs]
    else:
        results = [np.array(np.broadcast_to(values[e.id], shape)) for e in exprs]
    return results[0] if single else results

