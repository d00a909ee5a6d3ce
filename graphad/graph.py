"""The node store: one explicit DAG, mirrored into a ``networkx.DiGraph``.

This is the only module that keeps graphs in networkx (the matplotlib
renderer of :mod:`graphad.pictures` borrows networkx's layouts, nothing
more). Every node has a small integer
id, given in creation order; a node's arguments always exist before it, so
*sorting ids is a topological order*. Every walk in graphad is a loop over such
a sorted list, never a recursion.

Nodes live in an append-only table (``ops``, ``args``, ``payload`` lists
indexed by id): building a node costs about a microsecond, where adding it to
networkx costs five. The networkx graph :attr:`Graph.nx` is brought up to date
whenever it is read, so it always holds the whole DAG, with these attributes:

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

    Examples:
        >>> import graphad as ga
        >>> with ga.Graph() as g:
        ...     x = ga.symbols("x")
        ...     f = ga.sin(x) + ga.sin(x)
        >>> f.graph is g, len(g)
        (True, 3)
    """

    def __init__(self) -> None:
        self.ops: list[str] = []  # id -> op name
        self.args: list[tuple[int, ...]] = []  # id -> argument ids
        self.payload: list = []  # id -> value (constants), name (symbols) or None
        self._cons: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self._tokens: list[contextvars.Token] = []
        self._nx = nx.DiGraph()
        self._mirrored = 0  # nodes already copied into self._nx

    def __len__(self) -> int:
        return len(self.ops)

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
            value = float(value)
            key = ("const", value.hex())  # hex keeps -0.0 and nan apart
        elif op == "symbol":
            key = ("symbol", name)
        else:
            key = (op, args)
        nid = self._cons.get(key)
        if nid is not None:
            return nid
        with self._lock:
            nid = self._cons.get(key)  # another thread may have added it meanwhile
            if nid is None:
                nid = len(self.ops)
                self.ops.append(op)
                self.args.append(args)
                self.payload.append(value if op == "const" else name)
                self._cons[key] = nid
            return nid

    # -- reading ------------------------------------------------------------

    def node(self, nid: int) -> dict:
        """The attributes of node ``nid``: op, args, and value or name."""
        attrs = {"op": self.ops[nid], "args": self.args[nid]}
        if self.ops[nid] == "const":
            attrs["value"] = self.payload[nid]
        elif self.ops[nid] == "symbol":
            attrs["name"] = self.payload[nid]
        return attrs

    def symbol_id(self, name: str) -> int | None:
        """The id of the symbol called ``name``, or None if there is none."""
        return self._cons.get(("symbol", name))

    def ancestors(self, roots: Iterable[int]) -> list[int]:
        """All nodes that ``roots`` depend on, roots included, in topological order."""
        seen = set(roots)
        stack = list(seen)
        args = self.args
        while stack:
            for a in args[stack.pop()]:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return sorted(seen)

    def symbol_names(self, roots: Iterable[int]) -> set[str]:
        """The names of the symbols that ``roots`` depend on."""
        return {self.payload[v] for v in self.ancestors(roots) if self.ops[v] == "symbol"}

    def export(self, roots: Iterable[int]) -> list[tuple]:
        """The sub-DAG of ``roots`` as plain records ``(op, arg_indices, value_or_name)``,
        in topological order (so the last record is the newest root)."""
        order = self.ancestors(roots)
        at = {v: i for i, v in enumerate(order)}.__getitem__
        ops, args, payload = self.ops, self.args, self.payload
        return [(ops[v], tuple(map(at, args[v])), payload[v]) for v in order]

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

    # -- the networkx view --------------------------------------------------------

    def _add_to(self, G: nx.DiGraph, ids: Iterable[int]) -> None:
        """Add the nodes ``ids`` and the edges into them to the networkx graph ``G``."""
        ids = list(ids)
        G.add_nodes_from((v, self.node(v)) for v in ids)
        edges: dict[tuple[int, int], tuple[int, ...]] = {}
        for v in ids:
            for pos, a in enumerate(self.args[v]):
                edges[a, v] = edges.get((a, v), ()) + (pos,)
        G.add_edges_from((a, v, {"pos": p}) for (a, v), p in edges.items())

    @property
    def nx(self) -> nx.DiGraph:
        """The whole DAG as a live ``networkx.DiGraph`` (read-only: do not modify)."""
        with self._lock:
            self._add_to(self._nx, range(self._mirrored, len(self.ops)))
            self._mirrored = self._nx.number_of_nodes()
        return self._nx

    def to_networkx(self, roots: Iterable[int]) -> nx.DiGraph:
        """A new ``networkx.DiGraph`` of the sub-DAG that ``roots`` depend on."""
        roots = list(roots)
        G = nx.DiGraph(outputs=roots)
        self._add_to(G, self.ancestors(roots))
        return G


def greedy_colouring(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Colours of the vertices ``0..n-1`` such that no edge joins two of one
    colour: networkx's greedy colouring, largest degree first."""
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(edges)
    colouring = nx.greedy_color(G, strategy="largest_first")
    return [colouring[v] for v in range(n)]


_default = Graph()
_current: contextvars.ContextVar[Graph] = contextvars.ContextVar("graphad_graph", default=_default)


def current_graph() -> Graph:
    """The graph new symbols and constants are built in."""
    return _current.get()
