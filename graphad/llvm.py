"""Lowering a Program to LLVM IR text, one instruction (or a few) per node.

The kernel is ``void @name(double* %i0, ..., double* %o0, ...)``: one pointer
per input group (a scalar input or a vector of them) and one per output group.
Emitting IR text is a few microseconds per node; LLVM then compiles it in time
close to linear, as long as no single function grows too big (its passes turn
superlinear on huge basic blocks). So long programs are cut into *chunks* of
about ``chunk_size`` instructions (output stores included), each its own
``noinline`` function; values
that cross chunks travel through a scratch array on the stack (or the heap,
when large). Nothing is shared between calls, so kernels are thread-safe.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .program import Program
from .registry import OPS

CHUNK_SIZE = 500  # instructions per function: code generation is superlinear in it
_STACK_SLOTS = 1 << 16  # scratch values kept on the stack; more go to the heap
_CALL = re.compile(r"call double @([\w.]+)\(([^)]*)\)")


@dataclass(frozen=True)
class Layout:
    """Where each flat input and output lives: (group, offset) pairs."""

    in_sizes: tuple[int, ...]  # per input group: 0 for a scalar, k for a vector of k
    out_sizes: tuple[int, ...]

    @staticmethod
    def _slots(sizes):
        return [(g, k) for g, n in enumerate(sizes) for k in range(max(n, 1))]

    def in_slots(self):
        return self._slots(self.in_sizes)

    def out_slots(self):
        return self._slots(self.out_sizes)


def _literal(value: float) -> str:
    """An exact LLVM double literal."""
    return f"0x{struct.unpack('<Q', struct.pack('<d', value))[0]:016X}"


def emit(program: Program, layout: Layout, name: str, chunk_size: int = CHUNK_SIZE) -> str:
    """The LLVM IR module text of the kernel ``@name`` for ``program``."""
    nodes = program.nodes
    in_slot = dict(zip(program.inputs, layout.in_slots()))
    ref: dict[int, str] = {}  # how a node is referred to: a literal or %vN
    for i, (op, _, payload) in enumerate(nodes):
        ref[i] = _literal(payload) if op == "const" else f"%v{i}"

    outputs_of: dict[int, list[tuple[int, int]]] = {}
    for o, slot in zip(program.outputs, layout.out_slots()):
        outputs_of.setdefault(o, []).append(slot)

    # Cut the work into chunks of about chunk_size instructions. The work is the
    # computing nodes and the output stores (one item each: a constant output to
    # thousands of slots must not make one huge block either, since LLVM's code
    # generation turns superlinear on any huge block).
    leaf = ("const", "symbol")
    chunks: list[list[tuple[int, tuple | None]]] = [[]]  # items: (node, None) or (node, out slot)
    size = 0
    for i, (op, _, _) in enumerate(nodes):
        items = [] if op in leaf else [(i, None)]
        items += [(i, slot) for slot in outputs_of.get(i, ())]
        for item in items:
            n = 2 if item[1] is not None else OPS[op].ir.count("\n") + 1
            if size + n > chunk_size and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += n
    chunk_of = {i: c for c, items in enumerate(chunks) for i, slot in items if slot is None}
    crossing: dict[int, int] = {}  # node -> scratch slot, for values used in a later chunk
    for c, items in enumerate(chunks):
        for i, slot in items:
            for a in (nodes[i][1] if slot is None else (i,)):
                if a in chunk_of and chunk_of[a] != c and a not in crossing:
                    crossing[a] = len(crossing)

    params = ", ".join([f"double* noalias %i{g}" for g in range(len(layout.in_sizes))]
                       + [f"double* noalias %o{g}" for g in range(len(layout.out_sizes))])
    args = ", ".join([f"double* %i{g}" for g in range(len(layout.in_sizes))]
                     + [f"double* %o{g}" for g in range(len(layout.out_sizes))])
    declared: dict[str, int] = {}
    lines: list[str] = []

    def load(dst: str, ptr: str, offset: int) -> None:
        lines.append(f"  {dst}.p = getelementptr inbounds double, double* {ptr}, i64 {offset}")
        lines.append(f"  {dst} = load double, double* {dst}.p")

    def store(value: str, ptr: str, offset: int, tag: str) -> None:
        lines.append(f"  %s{tag} = getelementptr inbounds double, double* {ptr}, i64 {offset}")
        lines.append(f"  store double {value}, double* %s{tag}")

    multi = len(chunks) > 1
    for c, items in enumerate(chunks):
        attrs = "noinline nounwind" if multi else "alwaysinline nounwind"
        lines.append(f"define internal void @{name}.{c}({params}, double* noalias %tmp) {attrs} {{")
        lines.append("entry:")
        computed = {i for i, slot in items if slot is None}
        used = {a for i, slot in items for a in (nodes[i][1] if slot is None else (i,))} - computed
        for a in sorted(used):
            if nodes[a][0] == "symbol":
                g, k = in_slot[nodes[a][2]]
                load(f"%v{a}", f"%i{g}", k)
            elif nodes[a][0] != "const":
                load(f"%v{a}", "%tmp", crossing[a])
        for i, slot in items:
            if slot is not None:
                store(ref[i], f"%o{slot[0]}", slot[1], f"{i}.o{slot[0]}.{slot[1]}")
                continue
            op, arg_ids, _ = nodes[i]
            text = OPS[op].ir.format(*(ref[a] for a in arg_ids), out=f"%v{i}", t=f"%v{i}.")
            for m in _CALL.finditer(text):
                declared[m.group(1)] = m.group(2).count("double")
            lines.extend("  " + line for line in text.split("\n"))
            if i in crossing:
                store(f"%v{i}", "%tmp", crossing[i], f"{i}.t")
        lines += ["  ret void", "}"]

    # the entry point: scratch space, then the chunks in order
    lines += [f"define void @{name}({params}) nounwind {{", "entry:"]
    heap = len(crossing) > _STACK_SLOTS
    if heap:
        lines.append(f"  %tmp.raw = call i8* @malloc(i64 {8 * len(crossing)})")
        lines.append("  %tmp = bitcast i8* %tmp.raw to double*")
    else:
        lines.append(f"  %tmp = alloca double, i64 {max(len(crossing), 1)}")
    lines += [f"  call void @{name}.{c}({args}, double* %tmp)" for c in range(len(chunks)) if chunks[c]]
    if heap:
        lines.append("  call void @free(i8* %tmp.raw)")
    lines += ["  ret void", "}"]
    if heap:
        lines += ["declare i8* @malloc(i64)", "declare void @free(i8*)"]
    lines += [f"declare double @{fn}({', '.join(['double'] * n)})" for fn, n in sorted(declared.items())]
    return "\n".join(lines) + "\n"
