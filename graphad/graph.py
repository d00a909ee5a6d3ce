"""The node store: one explicit DAG held in a ``networkx.DiGraph``.

This is the only module that touches networkx. Every node has a small integer
id, given in creation order; a node's arguments always exist before it, so
*sorting ids is a topological order*. Every walk in graphad is a loop over such
a sorted list, never a recursion.

Node attributes (readable through :func:`graphad.to_networkx`):

- ``op``: the op name (``"add"``, ``"exp"``, ...), or ``"const"`` / ``"symbol"``
  for leaves;
- ``args``: the argument ids, in order;
- ``value``: the float value of a constant;
- ``name``: the name of a symbol.

Edges go from an argument to its user and carry ``pos``, the tuple of argument
positions (``x*x`` has one edge with ``pos == (0, 1)``), since networkx edges
are unordered.

Nodes are hash-consed: adding the same op on the same arguments twice returns
the same id, so sharing is exact from the start.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable

import networkx as nx


class Graph:
    """A store of hash-consed expression nodes.

    Expressions are built in the *current* graph. A program normally uses the
    default one; ``with Graph():`` scopes a fresh graph (its nodes are freed
    with it), which is useful for long sessions and for tests.

    >>> import graphad as ga
    >>> with ga.Graph() as g:
    ...     x = ga.symbols("x")
    ...     f = ga.sin(x) + ga.sin(x)
    >>> f.graph is g, len(g)
    (True, 3)
    """

    def __init__(self) -> None:
        self.nx = nx.DiGraph()  # the live DAG; treat as read-only
        self._nodes = self.nx.nodes
        self._cons: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self._tokens: list[contextvars.Token] = []

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __repr__(self) -> str:
        return f"<graphad.Graph with {len(self)} nodes>"

    def __enter__(self) -> Graph:
        self._tokens.append(_current.set(self))
        return self

    def __exit__(self, *exc) -> None:
        _current.reset(self._tokens.pop())

    # -- building -----------------------------------------------------------

    def add(self, op: str, args: tuple[int, ...] = (), *, value: float | None = None,
            name: str | None = None) -> int:
        """Return the id of the node ``op(args)``, adding it if it is new."""
        if op == "const":
            key = ("const", float(value).hex())  # hex keeps -0.0 and nan apart
        elif op == "symbol":
            key = ("symbol", name)
        else:
            key = (op, args)
        with self._lock:
            nid = self._cons.get(key)
            if nid is not None:
                return nid
            nid = len(self._cons)
            attrs = {"op": op, "args": args}
            if op == "const":
                attrs["value"] = float(value)
            elif op == "symbol":
                attrs["name"] = name
            self.nx.add_node(nid, **attrs)
            for pos, a in enumerate(args):
                if self.nx.has_edge(a, nid):
                    self.nx.edges[a, nid]["pos"] += (pos,)
                else:
                    self.nx.add_edge(a, nid, pos=(pos,))
            self._cons[key] = nid
            return nid

    # -- reading ------------------------------------------------------------

    def node(self, nid: int) -> dict:
        """The attribute dict of node ``nid`` (op, args, value or name)."""
        return self._nodes[nid]

    def symbol_id(self, name: str) -> int | None:
        """The id of the symbol called ``name``, or None if there is none."""
        return self._cons.get(("symbol", name))

    def ancestors(self, roots: Iterable[int]) -> list[int]:
        """All nodes that ``roots`` depend on, roots included, in topological order."""
        seen = set(roots)
        stack = list(seen)
        nodes = self._nodes
        while stack:
            for a in nodes[stack.pop()]["args"]:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return sorted(seen)

    def export(self, roots: Iterable[int]) -> list[tuple]:
        """The sub-DAG of ``roots`` as plain records ``(op, arg_indices, value_or_name)``,
        in topological order (so the last record is the newest root)."""
        order = self.ancestors(roots)
        index = {v: i for i, v in enumerate(order)}
        records = []
        for v in order:
            node = self._nodes[v]
            payload = node.get("value", node.get("name"))
            records.append((node["op"], tuple(index[a] for a in node["args"]), payload))
        return records

    def load(self, records: list[tuple]) -> list[int]:
        """Add exported records to this graph; returns the id of each record."""
        ids: list[int] = []
        for op, args, payload in records:
            args = tuple(ids[a] for a in args)
            if op == "const":
                ids.append(self.add(op, value=payload))
            elif op == "symbol":
                ids.append(self.add(op, name=payload))
            else:
                ids.append(self.add(op, args))
        return ids

    def to_networkx(self, roots: Iterable[int]) -> nx.DiGraph:
        """A copy of the sub-DAG that ``roots`` depend on."""
        roots = list(roots)
        sub = self.nx.subgraph(self.ancestors(roots)).copy()
        sub.graph["outputs"] = roots
        return sub


_default = Graph()
_current: contextvars.ContextVar[Graph] = contextvars.ContextVar("graphad_graph", default=_default)


def current_graph() -> Graph:
    """The graph new symbols and constants are built in."""
    return _current.get()
