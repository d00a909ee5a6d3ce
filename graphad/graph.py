"""The node store: one explicit DAG, mirrored into a ``networkx.DiGraph``.

This is the only module that keeps graphs in networkx. Every node has a small integer
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
- ``shape``: the node's shape, ``()`` for a scalar (see :mod:`graphad.shapes`);
- ``value``: the value of a constant (a float, or a read-only array);
- ``name``: the name of a symbol;
- ``params``: the parameters of an array op (its axes, its new shape...).

Edges go from an argument to its user and carry ``pos``, the tuple of argument
positions (``x*x`` has one edge with ``pos == (0, 1)``), since networkx edges
are unordered.

Nodes are hash-consed: adding the same op on the same arguments twice returns
the same id, so sharing is exact from the start.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Iterable

import networkx as nx
import numpy as np


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
        self.payload: list = []  # id -> value (constants), name (symbols), params (array ops) or None
        self.shapes: list[tuple] = []  # id -> shape, () for a scalar
        self.has_arrays = False  # whether any node has a shape other than (): scalar-only code skips checks
        self._cons: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self._nx = nx.DiGraph()
        self._mirrored = 0  # nodes already copied into self._nx

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"<graphad.Graph with {len(self)} nodes>"

    def __enter__(self) -> Graph:
        _entered.set(_entered.get() + (self,))
        return self

    def __exit__(self, *exc) -> None:
        # Remove this graph's latest entry, wherever it is in the stack: contexts
        # exited out of order still leave the graphs that are open current.
        stack = _entered.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is self:
                _entered.set(stack[:i] + stack[i + 1:])
                return
        raise RuntimeError("graphad: exiting a Graph context that this thread did not enter")

    # -- building -----------------------------------------------------------

    def add(self, op: str, args: tuple[int, ...] = (), *, value=None, name: str | None = None,
            params=None, shape: tuple = ()) -> int:
        """Return the id of the node ``op(args)`` (with ``params``, for array ops),
        adding it if it is new. ``shape`` is the node's shape, worked out by the
        caller; a constant's comes from its value."""
        if op == "const":
            if type(value) is np.ndarray:  # a read-only float64 array, keyed by its bytes
                shape = value.shape
                key = ("const", shape, hashlib.blake2b(value.tobytes(), digest_size=20).digest())
            else:
                value = float(value)
                key = ("const", value.hex())  # hex keeps -0.0 and nan apart
            payload = value
        elif op == "symbol":
            key, payload = ("symbol", name), name
        else:
            key, payload = ((op, args) if params is None else (op, args, params)), params
        nid = self._cons.get(key)
        if nid is None:
            with self._lock:
                nid = self._cons.get(key)  # another thread may have added it meanwhile
                if nid is None:
                    nid = len(self.ops)
                    self.ops.append(op)
                    self.args.append(args)
                    self.payload.append(payload)
                    self.shapes.append(shape)
                    self.has_arrays = self.has_arrays or bool(shape)
                    self._cons[key] = nid
                    return nid
        if op == "symbol" and self.shapes[nid] != shape:
            raise ValueError(f"the symbol {name!r} already exists with shape {self.shapes[nid]}, not {shape}")
        return nid

    # -- reading ------------------------------------------------------------

    def node(self, nid: int) -> dict:
        """The attributes of node ``nid``: op, args, shape, and value, name or params."""
        attrs = {"op": self.ops[nid], "args": self.args[nid], "shape": self.shapes[nid]}
        if self.ops[nid] == "const":
            attrs["value"] = self.payload[nid]
        elif self.ops[nid] == "symbol":
            attrs["name"] = self.payload[nid]
        elif self.payload[nid] is not None:
            attrs["params"] = self.payload[nid]
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
        """The sub-DAG of ``roots`` as plain records ``(op, arg_indices, payload)``,
        in topological order (so the last record is the newest root). The payload
        is a constant's value, a symbol's name (``(name, shape)`` for an array
        symbol) or an array op's params."""
        order = self.ancestors(roots)
        at = {v: i for i, v in enumerate(order)}.__getitem__
        ops, args, payload, shapes = self.ops, self.args, self.payload, self.shapes
        return [(ops[v], tuple(map(at, args[v])),
                 (payload[v], shapes[v]) if ops[v] == "symbol" and shapes[v] else payload[v])
                for v in order]

    def load(self, records: list[tuple]) -> list[int]:
        """Add exported records to this graph; returns the id of each record.

        Records are checked: an unknown op, a wrong number of arguments, an
        argument that is not an earlier record or a malformed payload is a
        ValueError naming the record, never a malformed graph."""
        from .registry import OPS

        ids: list[int] = []
        for i, record in enumerate(records):
            try:
                op, args, payload = record
                if not (isinstance(args, tuple) and all(type(a) is int and 0 <= a < i for a in args)):
                    raise ValueError(f"its arguments {args!r} are not earlier records")
                args = tuple(ids[a] for a in args)
                if op == "const":
                    if type(payload) is np.ndarray:
                        payload = _frozen(payload)
                    elif not isinstance(payload, float):
                        raise ValueError(f"a constant's value is {payload!r}, not a float or an array")
                    ids.append(self.add(op, value=payload))
                elif op == "symbol":
                    name, shape = payload if isinstance(payload, tuple) else (payload, ())
                    if not isinstance(name, str) or not isinstance(shape, tuple):
                        raise ValueError(f"a symbol's payload is {payload!r}, not a name")
                    ids.append(self.add(op, name=name, shape=shape))
                elif isinstance(op, str) and op in OPS:
                    rule = OPS[op]
                    if rule.arity is not None and len(args) != rule.arity:
                        raise ValueError(f"{op} takes {rule.arity} argument(s), not {len(args)}")
                    shape = rule.out_shape(payload, [self.shapes[a] for a in args])
                    ids.append(self.add(op, args, params=payload, shape=shape))
                else:
                    raise ValueError(f"the op {op!r} is not registered in this process (import the module "
                                     "that defines it with ga.define_op first)")
            except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:
                raise ValueError(f"Graph.load: record {i} is malformed: {e}") from None
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


def _frozen(value) -> np.ndarray:
    """A read-only float64 copy of an array: constants never change under the graph."""
    value = np.array(value, dtype=np.float64)
    value.flags.writeable = False
    return value


def greedy_colouring(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Colours of the vertices ``0..n-1`` such that no edge joins two of one
    colour: networkx's greedy colouring, largest degree first."""
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(edges)
    colouring = nx.greedy_color(G, strategy="largest_first")
    return [colouring[v] for v in range(n)]


_default = Graph()
# The graphs entered with ``with``, innermost last. A context variable, so each
# thread (and each asyncio task) has its own stack: a new thread starts in the
# default graph and does not see the graphs another thread entered.
_entered: contextvars.ContextVar[tuple[Graph, ...]] = contextvars.ContextVar("graphad_graphs", default=())


def reset_default_graph() -> Graph:
    """Replace the default graph by a new, empty one, and return it.

    The default graph keeps every node ever built in it (nodes are shared, so
    none can be dropped while the graph lives). A long-running program that
    builds in the default graph calls this between independent tasks (or
    builds each task in ``with ga.Graph():``): the old graph and its nodes are
    freed once no expression refers to them. Expressions of the old graph do
    not mix with new ones (a clear error says so).

    Examples:
        >>> import graphad as ga
        >>> g = ga.reset_default_graph()
        >>> len(g)
        0
    """
    global _default
    _default = Graph()
    return _default


def current_graph() -> Graph:
    """The graph new symbols and constants are built in: the innermost graph this
    thread entered with ``with``, else the default graph.

    A new thread starts in the default graph, whatever graph the thread that
    started it is in (``threading`` does not copy context variables); enter the
    graph in the worker (``with g:``) to build there. Several threads may enter
    the same graph at once.
    """
    stack = _entered.get()
    return stack[-1] if stack else _default
