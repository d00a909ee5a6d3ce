"""Programs: the self-contained graphs that the passes transform and the compiler lowers.

A :class:`Program` is a plain, immutable snapshot of the sub-DAG a set of
outputs needs: nodes ``(op, args, payload)`` in topological order (arguments
are indices of earlier nodes; the payload is a constant's value or a symbol's
name), the indices of the outputs, and the names of the inputs in the order
the compiled function takes them. Passes are functions ``Program -> Program``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .expr import Expr, require_scalars
from .graph import Graph, current_graph
from .registry import OPS

Node = tuple  # (op, args, payload)


@dataclass(frozen=True)
class Program:
    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    inputs: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.nodes)

    def key(self) -> str:
        """A structural hash: equal programs, and only they, share it."""
        text = ";".join([f"{op}{args}{float(p).hex() if op == 'const' else p}" for op, args, p in self.nodes])
        return hashlib.sha256(f"{text}|{self.outputs}|{self.inputs}".encode()).hexdigest()

    def to_exprs(self, graph: Graph | None = None) -> list[Expr]:
        """The outputs as expressions, rebuilt in ``graph`` (the current one by default)."""
        graph = current_graph() if graph is None else graph
        ids = graph.load(list(self.nodes))
        return [Expr(graph, ids[o]) for o in self.outputs]

    def program(self) -> Program:
        """The program itself (the compiler also accepts lazy sources)."""
        return self

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op, _, _ in self.nodes:
            counts[op] = counts.get(op, 0) + 1
        return counts


def from_exprs(outputs: Sequence[Expr], inputs: Sequence[Expr]) -> Program:
    """The program computing ``outputs`` from the symbols ``inputs`` (both flat).

    Raises ValueError naming any symbol the outputs need that is not an input.
    """
    require_scalars(list(outputs) + list(inputs), "compile")
    graph = outputs[0].graph
    records = graph.export(e.id for e in outputs)
    order = graph.ancestors(e.id for e in outputs)
    index = {v: i for i, v in enumerate(order)}
    names = tuple(s.name for s in inputs)
    missing = sorted({p for op, _, p in records if op == "symbol"} - set(names))
    if missing:
        raise ValueError(
            f"the outputs depend on symbol(s) {', '.join(missing)}, which are not among the inputs"
        )
    return Program(tuple(records), tuple(index[e.id] for e in outputs), names)


class Builder:
    """Builds a new node list with hash-consing (so rebuilding also merges duplicates)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._index: dict[tuple, int] = {}
        self._commutative = {name for name, op in OPS.items() if op.commutative}

    def add(self, op: str, args: tuple[int, ...] = (), payload=None) -> int:
        # called once per node by every pass: kept lean
        if op == "const":
            key = (op, args, float(payload).hex())  # hex keeps -0.0 and nan apart
        else:
            if op in self._commutative:  # canonical operand order
                if len(args) != 2:
                    args = tuple(sorted(args))
                elif args[0] > args[1]:
                    args = (args[1], args[0])
            key = (op, args, payload)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.nodes)
            self.nodes.append((op, args, payload))
        return i

    def const(self, value: float) -> int:
        return self.add("const", (), float(value))


Rewrite = Callable[[Builder, str, tuple[int, ...], object], int]


def rebuild(program: Program, rewrite: Rewrite | None = None) -> Program:
    """Walk ``program`` in order, letting ``rewrite(builder, op, new_args, payload)``
    emit each node (by default: unchanged), and keep only what the outputs need."""
    b = Builder()
    emit = rewrite or (lambda b, op, args, payload: b.add(op, args, payload))
    new: list[int] = []
    at = new.__getitem__
    for op, args, payload in program.nodes:
        new.append(emit(b, op, tuple(map(at, args)), payload))
    return prune(Program(tuple(b.nodes), tuple(new[o] for o in program.outputs), program.inputs))


def prune(program: Program) -> Program:
    """Drop nodes the outputs do not need, renumbering the rest in order."""
    nodes = program.nodes
    needed = [False] * len(nodes)
    for o in program.outputs:
        needed[o] = True
    for i in range(len(nodes) - 1, -1, -1):
        if needed[i]:
            for a in nodes[i][1]:
                needed[a] = True
    if all(needed):
        return program
    index: dict[int, int] = {}
    kept = []
    for i, keep in enumerate(needed):
        if keep:
            index[i] = len(kept)
            op, args, p = nodes[i]
            kept.append((op, tuple(map(index.__getitem__, args)), p))
    return Program(tuple(kept), tuple(index[o] for o in program.outputs), program.inputs)
