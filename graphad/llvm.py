"""Lowering a Program to LLVM IR text, one instruction (or a few) per node.

The kernel is ``void @name(double* %i0, ..., double* %o0, ...)``: one pointer
per input group (a scalar input or a vector of them) and one per output group;
``@name.batch`` runs it over a range of points of arrays of points.
Emitting IR text is a few microseconds per node; LLVM then compiles it in time
close to linear, as long as no single function grows too big (its passes turn
superlinear on huge basic blocks). So long programs are cut into *chunks* of
about ``chunk_size`` instructions (output stores included), each its own
``noinline`` function; values
that cross chunks travel through a scratch array on the stack (or the heap,
when large). Nothing is shared between calls, so kernels are thread-safe.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import vecmath
from .program import Program
from .registry import OPS

CHUNK_SIZE = 500  # instructions per function: code generation is superlinear in it
_STACK_SLOTS = 1 << 16  # scratch values kept on the stack; more go to the heap


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


def emit(program: Program, layout: Layout, name: str, chunk_size: int = CHUNK_SIZE,
         vector: bool = False) -> str:
    """The LLVM IR module text of the kernel ``@name`` for ``program``; with
    ``vector``, its math calls name their SIMD versions for the loop vectoriser
    (:mod:`graphad.vecmath`), so that a loop over points calls those."""
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
            for m in vecmath.CALL.finditer(text):
                declared[m.group(1)] = m.group(2).count("double")
            lines.extend("  " + line for line in text.split("\n"))
            if i in crossing:
                store(f"%v{i}", "%tmp", crossing[i], f"{i}.t")
        lines += ["  ret void", "}"]

    # the entry point: scratch space, then the chunks in order
    lines += _batch_loop(name, layout)
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
    text = "\n".join(lines) + "\n"
    return vecmath.annotate(text) if vector else text


def _batch_loop(name: str, layout: Layout) -> list[str]:
    """``@name.batch(lo, hi, ...)``: the kernel at points ``lo`` to ``hi - 1`` of
    arrays of points (a scalar group holds one double per point, a group of k
    values k). The outputs are fresh arrays, so every pointer is ``noalias``
    (inputs are only read): the loop vectoriser needs no run-time overlap checks,
    and finds each access's stride as a constant."""
    sizes = list(layout.in_sizes) + list(layout.out_sizes)
    ptrs = ([f"%i{g}" for g in range(len(layout.in_sizes))]
            + [f"%o{g}" for g in range(len(layout.out_sizes))])
    params = ", ".join(f"double* noalias {p}" for p in ptrs)
    lines = [f"define void @{name}.batch(i64 %lo, i64 %hi, {params}) nounwind {{",
             "entry:",
             "  %any = icmp slt i64 %lo, %hi",
             "  br i1 %any, label %loop, label %done",
             "loop:",
             "  %i = phi i64 [%lo, %entry], [%i.next, %loop]"]
    for p, size in zip(ptrs, sizes):
        lines.append(f"  {p}.k = mul nuw nsw i64 %i, {max(size, 1)}")
        lines.append(f"  {p}.at = getelementptr inbounds double, double* {p}, i64 {p}.k")
    lines += [f"  call void @{name}({', '.join(f'double* {p}.at' for p in ptrs)})",
              "  %i.next = add nuw nsw i64 %i, 1",
              "  %more = icmp slt i64 %i.next, %hi",
              "  br i1 %more, label %loop, label %done",
              "done:",
              "  ret void",
              "}"]
    return lines
