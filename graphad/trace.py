"""Evaluation traces: the textbook tables of forward and reverse mode (Griewank).

``ga.trace(f, at={x: 2.0})`` numbers the inputs v1, v2, ... and every
intermediate after them in topological order; constants stay inline. Each row
of a forward trace gives the operation, its primal value, the local derivative
rule used and the tangent value. A reverse trace gives the primal sweep, then
the adjoint sweep from the output (adjoint 1) back to the inputs, one row per
contribution, so fan-out shows as accumulation (v̄1 = v̄1 + ...).

The local rules are the ops' own partial-derivative rules, applied to symbols
named after the variables, and the values come from graphad's own forward and
reverse rules: the table shows what the AD does, not a second copy of it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .array_ops import sum_to
from .evaluate import evaluate, node_values
from .expr import (
    Expr,
    apply,
    as_expr_list,
    as_seed_list,
    as_symbol_list,
    constant,
    format_number,
    format_value,
    is_const,
    to_str,
)
from .forward import tangents
from .graph import Graph
from .registry import OPS
from .reverse import active_nodes
from .shapes import fmt

DOT, BAR = "\u0307", "\u0304"  # combining dot and bar: v̇, v̄


def _dot(name: str) -> str:
    return "v" + DOT + name[1:]  # v2 -> v̇2


def _bar(name: str) -> str:
    return "v" + BAR + name[1:]  # v2 -> v̄2


def _width(text: str) -> int:
    """Display width: combining marks take no room."""
    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


@dataclass
class Trace:
    """A trace table; print it, or use ``markdown()``, ``latex()``, ``rows``,
    ``picture()``.

    ``inputs`` maps the input variables to their symbols' names (v1: "x");
    ``edges`` are the sweep's steps as (from, to, local factor, term): the
    primal arguments, then each tangent or adjoint contribution."""

    mode: str
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    inputs: dict = field(default_factory=dict, repr=False)
    edges: list = field(default_factory=list, repr=False)

    def picture(self):
        """The trace drawn node for node: the primal variables v1, v2, ... and
        the tangents v̇ᵢ (forward) or adjoints v̄ᵢ (reverse) with their values,
        each edge a contribution labelled with its local factor."""
        from .pictures import sweep_picture

        return sweep_picture([self])

    def _cells(self, row: dict) -> list[str]:
        return [_cell(row.get(c)) for c in self.columns]

    def __str__(self) -> str:
        table = [self.columns] + [self._cells(r) for r in self.rows]
        widths = [max(_width(line[i]) for line in table) for i in range(len(self.columns))]
        out = []
        for k, line in enumerate(table):
            out.append("  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(line, widths)).rstrip())
            if k == 0:
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(out)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in self._cells(r)) + " |" for r in self.rows]
        return "\n".join(lines)

    def latex(self) -> str:
        head = " & ".join(_latex_text(c) for c in self.columns)
        body = [" & ".join(_latex_cell(c, r.get(c)) for c in self.columns) + r" \\" for r in self.rows]
        return "\n".join([r"\begin{tabular}{" + "l" * len(self.columns) + "}", r"\hline",
                          head + r" \\", r"\hline", *body, r"\hline", r"\end{tabular}"])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in self._cells(r)) + "</tr>"
                       for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return str(self)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, np.ndarray):
        return format_value(value)
    return str(value)


def _latex_text(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def _latex_cell(column: str, value) -> str:
    if isinstance(value, float):
        return f"${value:.6g}$"
    if isinstance(value, np.ndarray):
        return _latex_text(format_value(value))
    if value is None:
        return ""
    text = str(value)
    if column not in ("operation", "local derivative", "variable"):
        return _latex_text(text)
    text = re.sub("v" + BAR + r"(\d+)", r"\\bar{v}_{\1}", text)
    text = re.sub("v" + DOT + r"(\d+)", r"\\dot{v}_{\1}", text)
    text = re.sub(r"\bv(\d+)", r"v_{\1}", text)
    text = text.replace("**", "^").replace("*", r" \cdot ")
    return f"${text}$"


class _Namer:
    """Variable names v1, v2, ... and the ops' rules written with them."""

    def __init__(self, graph: Graph, order: list[int], inputs: list[int]):
        self.graph = graph
        self.name: dict[int, str] = {}
        for v in inputs + [v for v in order if v not in inputs and graph.ops[v] != "const"]:
            self.name[v] = f"v{len(self.name) + 1}"
        self.inputs = {self.name[v]: graph.payload[v] for v in inputs}  # v1: "x"
        self.scratch = Graph()  # the rules are rebuilt here on symbols named v1, v2, ...

    def ref(self, v: int, mark=lambda name: name) -> Expr:
        """Node v as a symbol named after its variable (``mark`` makes v̇2 or v̄2)."""
        if self.graph.ops[v] == "const":
            return constant(self.graph.payload[v], self.scratch)
        name, shape = mark(self.name[v]), self.graph.shapes[v]
        return Expr(self.scratch, self.scratch.add("symbol", name=name, shape=shape))

    def text(self, v: int) -> str:
        """The operation of node v, written with variable names."""
        op = OPS[self.graph.ops[v]]
        with self.scratch:
            e = apply(op.name, *[self.ref(a) for a in self.graph.args[v]], params=self.graph.payload[v])
        return to_str(e)

    def _node(self, v: int) -> tuple[tuple, Expr]:
        """Node v rebuilt on its arguments' variables (an array op's rules read its params)."""
        args = tuple(self.ref(a) for a in self.graph.args[v])
        with self.scratch:
            return args, apply(self.graph.ops[v], *args, params=self.graph.payload[v])

    def tangent(self, v: int) -> str:
        """An array op's forward rule: v̇ of node v, written with variable names."""
        args, out = self._node(v)
        dots = tuple(None if self.graph.ops[a] == "const" else self.ref(a, _dot) for a in self.graph.args[v])
        with self.scratch:
            t = OPS[self.graph.ops[v]].tangent(args, out, dots)
        return "0" if t is None else to_str(t)

    def adjoint(self, v: int, i: int) -> str:
        """An array op's reverse rule: the contribution of v̄ to argument i's adjoint."""
        args, out = self._node(v)
        needed = tuple(k == i for k in range(len(args)))
        with self.scratch:
            part = OPS[self.graph.ops[v]].adjoint(args, out, self.ref(v, _bar), needed)[i]
        return to_str(part)

    def partial(self, v: int, i: int) -> str | None:
        """The local partial d v / d arg_i of an elementwise op, written with variable names."""
        op = OPS[self.graph.ops[v]]
        if op.shape is not None:
            return None
        rule = op.partials[i]
        if rule is None:
            return None
        with self.scratch:
            e = rule(*[self.ref(a) for a in self.graph.args[v]], self.ref(v))
        return to_str(e) if isinstance(e, Expr) else format_number(float(e))


def _times(partial: str, flow: str) -> str:
    """partial * flow, written as a textbook would: no 1 *, no -1 *."""
    if partial == "1":
        return flow
    if partial == "-1":
        return "-" + flow
    if any(op in partial for op in (" + ", " - ", "<", ">")):
        partial = f"({partial})"
    return f"{partial} * {flow}"


def _value(x):
    """A node's value: a float, or an array."""
    return float(x) if np.ndim(x) == 0 else np.asarray(x)


def trace(outputs, wrt=None, *, at: dict | None = None, mode: str = "forward",
          seed: dict | None = None) -> Trace:
    """The evaluation trace of ``outputs`` at the point ``at``, as a table.

    The arguments are those of :func:`graphad.picture`: ``wrt`` (optional) are
    the symbols to differentiate by. ``mode="forward"``: one row per variable
    with its primal value, the local derivative rule used and its tangent, for
    the input tangents ``seed`` ({symbol: value}; by default 1 for each symbol
    of ``wrt``, or for the only input). ``mode="reverse"``: the primal sweep,
    then one row per adjoint contribution from the outputs back to the inputs
    (to those of ``wrt`` only, where given), for the output weights ``seed``
    ({output: weight}; for one output the default is 1). In a graph with
    arrays, a ``shape`` column appears and values print as summaries
    (``rows`` holds the arrays).

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x")
        >>> print(ga.trace(ga.exp(x**2), at={x: 2.0}, mode="forward"))
        step  variable     operation  value    local derivative  tangent
        ----  -----------  ---------  -------  ----------------  -------
        1     v1           x          2                          1
        2     v2           v1**2      4        v̇2 = 2*v1 * v̇1    4
        3     v3 (output)  exp(v2)    54.5982  v̇3 = v3 * v̇2      218.393
    """
    if mode not in ("forward", "reverse"):
        raise ValueError(f"trace: mode must be 'forward' or 'reverse', not {mode!r}")
    if isinstance(wrt, dict) or at is None:
        raise TypeError("trace: give the point as at={symbol: value}; the argument after the outputs is wrt, "
                        "the symbols to differentiate by, as in ga.picture")
    outs, _ = as_expr_list(outputs, "trace")
    graph = outs[0].graph
    targets = None
    if wrt is not None:
        syms, _ = as_symbol_list(wrt, "trace", graph)
        targets = [s.id for s in syms]
        if mode == "forward" and seed is None:
            seed = {s: 1.0 for s in syms}
    order = graph.ancestors(e.id for e in outs)
    values = node_values(graph, [e.id for e in outs], at)
    if any(np.ndim(values[v]) != len(graph.shapes[v]) for v in order):
        raise ValueError("trace: give a single point (numbers, and arrays only for array symbols)")
    inputs = [v for v in order if graph.ops[v] == "symbol"]
    namer = _Namer(graph, order, inputs)
    if mode == "forward":
        return _forward(graph, order, inputs, outs, values, namer, seed)
    return _reverse(graph, order, inputs if targets is None else targets, outs, values, namer, seed, at)


def _ordered(graph: Graph, v: int) -> bool:
    """Whether node v's arguments need numbers: several, not constants, and their order matters."""
    op = OPS.get(graph.ops[v])
    return op is not None and not op.commutative and sum(graph.ops[a] != "const" for a in graph.args[v]) > 1


def _primal_rows(graph, order, values, namer, outs, edges):
    rows = []
    out_ids = {e.id for e in outs}
    for v in order:
        if graph.ops[v] == "const":
            continue
        name = namer.name[v]
        ordered = _ordered(graph, v)
        for i, a in enumerate(graph.args[v]):
            edge = (namer.name.get(a), name, str(i + 1) if ordered else "", "")  # the position, if it matters
            if edge[0] and edge not in edges:
                edges.append(edge)
        op = graph.payload[v] if graph.ops[v] == "symbol" else namer.text(v)
        row = {"step": len(rows) + 1, "variable": name + (" (output)" if v in out_ids else ""),
               "operation": op, "shape": fmt(graph.shapes[v]), "value": _value(values[v])}
        rows.append(row)
    return rows


def _forward(graph, order, inputs, outs, values, namer, seed):
    if seed is None:
        if len(inputs) != 1:
            raise ValueError("trace: several inputs: give the symbols to differentiate by (wrt) or the "
                             "tangents as seed={symbol: value}")
        seed = {Expr(graph, inputs[0]): 1.0}
    seeds = {}
    for k, t in seed.items():
        if not (isinstance(k, Expr) and k.is_symbol):
            raise TypeError(f"trace: seed key {k!r} is not a symbol")
        if k.graph is not graph:
            raise ValueError(f"trace: seed key {k} and the expression come from different graphad graphs")
        t = as_seed_list(t, [k], True, "trace seed", graph)[0]
        if not is_const(t, 0.0):  # no movement along k: a structural zero
            seeds[k.id] = t
    nodes = [Expr(graph, v) for v in order if graph.ops[v] != "const"]
    tangent_exprs = tangents(nodes, seeds)
    env = {Expr(graph, v): values[v] for v in inputs}
    tangent_values = evaluate(tangent_exprs, env)
    edges: list = []
    rows = _primal_rows(graph, order, values, namer, outs, edges)
    for row, e, t in zip(rows, nodes, tangent_values):
        v = e.id
        row["tangent"] = t
        if graph.ops[v] == "symbol":
            continue
        terms = []
        for i, a in enumerate(graph.args[v]):
            if graph.ops[a] == "const":
                continue
            p = namer.partial(v, i)
            if p is not None:
                terms.append(_times(p, _dot(namer.name[a])))
            if p is not None or OPS[graph.ops[v]].shape is not None:  # an array op: its rule is the node's
                edges.append((_dot(namer.name[a]), _dot(namer.name[v]), p or "", terms[-1] if p else ""))
        rule = " + ".join(terms).replace("+ -", "- ") if terms else "0"
        if OPS[graph.ops[v]].shape is not None:  # an array op: its own forward rule
            rule = namer.tangent(v)
        elif OPS[graph.ops[v]].jvp is not None:  # a selection: where, maximum, minimum
            rule = f"select({rule})"
        row["local derivative"] = f"{_dot(namer.name[v])} = {rule}"
    columns = _columns(graph, order, ["step", "variable", "operation", "value", "local derivative",
                                      "tangent"])
    return Trace("forward", columns, rows, namer.inputs, edges)


def _columns(graph, order, columns):
    """The table's columns, with the shapes for a graph with arrays."""
    if any(graph.shapes[v] for v in order):
        columns.insert(columns.index("value"), "shape")
    return columns


def _reverse(graph, order, inputs, outs, values, namer, seed, at):
    if seed is None:
        if len(outs) != 1:
            raise ValueError("trace: several outputs: give their weights as seed={output: weight}")
        seed = {outs[0]: 1.0}
    edges: list = []
    rows = _primal_rows(graph, order, values, namer, outs, edges)
    for r in rows:
        r["sweep"] = "primal"
    adjoint: dict = {}  # node -> adjoint value (a float, or an array)
    active = active_nodes(graph, order, inputs)
    for e, w in seed.items():
        e = e if isinstance(e, Expr) else None
        if e is None or e.graph is not graph or e.id not in namer.name:
            raise TypeError("trace: seed keys must be the outputs being traced")
        w = _value(np.broadcast_to(np.asarray(w, dtype=float), e.shape))
        adjoint[e.id] = adjoint.get(e.id, 0.0) + w
        name = _bar(namer.name[e.id])
        rows.append({"step": len(rows) + 1, "sweep": "adjoint", "variable": name,
                     "operation": f"{name} = {_cell(w)}", "adjoint": adjoint[e.id]})
    # The rules run on the variables' symbols (v1, v̄3, ...) with their values:
    # each contribution is computed by the very rule the table shows.
    env = {namer.name[u]: values[u] for u in order if u in namer.name}
    for v in reversed(order):
        if v not in adjoint or not graph.args[v] or v not in active:
            continue
        op = OPS[graph.ops[v]]
        args, out = namer._node(v)
        needed = tuple(a in active for a in graph.args[v])
        env[_bar(namer.name[v])] = adjoint[v]
        out = out if op.shape is not None else namer.ref(v)  # an elementwise rule reads out as v_k
        with namer.scratch:
            parts = op.adjoint(args, out, namer.ref(v, _bar), needed)
        for i, (a, part) in enumerate(zip(graph.args[v], parts)):
            if part is None:
                continue
            summed = part.shape != graph.shapes[a]
            if summed:  # a broadcast operand: summed back to its shape
                with namer.scratch:
                    part = sum_to(part, graph.shapes[a])
            contribution = _value(evaluate(part, env))
            p = namer.partial(v, i)
            flow = _bar(namer.name[v])
            if OPS[graph.ops[v]].shape is not None:  # an array op: its own reverse rule
                local = namer.adjoint(v, i)
            else:
                local = _times(p, flow) if p is not None else f"select({flow})"
            if summed:
                shape = graph.shapes[a]
                local = f"sum({local})" if not shape else f"sum_to({local}, {fmt(shape)})"
            first = a not in adjoint
            adjoint[a] = contribution if first else adjoint[a] + contribution
            target = _bar(namer.name[a])
            edges.append((flow, target, p if p is not None else "", local))
            rows.append({"step": len(rows) + 1, "sweep": "adjoint", "variable": target,
                         "operation": f"{target} = {'' if first else target + ' + '}{local}",
                         "local derivative": p, "adjoint": adjoint[a]})
    columns = _columns(graph, order, ["step", "sweep", "variable", "operation", "value", "local derivative",
                                      "adjoint"])
    return Trace("reverse", columns, rows, namer.inputs, edges)
