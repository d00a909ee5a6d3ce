"""Array programs lowered to loop nests, written as Numba source.

The plan (XLA and PyTensor call it fusion):

- elementwise nodes that share an iteration space join one *group*: one loop
  nest computes them all, each as a local float; a member is stored to an
  array only if something outside its group reads it (or it is an output);
- a sum or max over a group's iteration space accumulates inside that loop;
- ``broadcast_to``, ``slice``, ``pad``, ``transpose``, ``stop_gradient`` and
  reshapes that only add or drop axes of size 1 are read through by index
  arithmetic (no copy), so ``x[1:] - x[:-1]**2`` reads ``x`` itself at
  ``i + 1`` and ``i``;
- a sum of pads (the adjoints of slices) and a concatenation are written from
  inside the loop that computes their operands: ``g[i + 1] += ...``, as a
  hand-written gradient does;
- matrix products call BLAS through ``np.dot``; the other structural ops are
  short statements or loops of their own;
- the kernel allocates nothing: every array it writes is an argument, and
  arrays whose lifetimes do not overlap share one;
- loop bounds are variables ``d0, d1, ...`` that the caller reads off the
  argument arrays, so one compiled function serves every binding of the size
  names.

Nodes are scheduled greedily in topological order: a ready node that can join
the open group does; a ready node that does not depend on the group is
written before the group's loop; only when neither exists is the group
closed. Generated text holds no user text: symbols, sizes and constants are
``a0``, ``d0`` and ``c0``, never their names.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

from ..custom import _cfuncs
from ..expr import Expr
from ..registry import OPS

ALIASES = ("broadcast_to", "slice", "pad", "transpose", "stop_gradient")  # read through by index arithmetic
REDUCTIONS = ("sum", "max")
# the names of arrays and values in generated lines (an array's flat view adds an f)
_NAME = re.compile(r"\b([vxr][0-9]+)(f?)\b")
_FLAT = re.compile(r"\b([vxrac][0-9]+)f\[")
# ops called through their IR template (intrinsics.simd) even without SIMD math: Python's
# max and min do not order -0.0 below 0.0, as llvm.maximum, the evaluator and scalar code do
_BY_TEMPLATE = ("maximum", "minimum")
_FRESH = ("member", "reduce", "matmul", "take", "scatter_add", "concatenate", "copy")


@dataclass(frozen=True)
class ArrayProgram:
    """The sub-DAG a set of outputs needs, with shapes: nodes ``(op, args,
    payload, shape)`` in topological order, the output nodes, and the node of
    each input symbol in the order the compiled function takes them."""

    nodes: tuple
    outputs: tuple[int, ...]
    inputs: tuple[int, ...]

    def key(self) -> str:
        """A structural hash (array constants by their bytes)."""
        h = hashlib.sha256()
        for op, args, payload, shape in self.nodes:
            if op == "const":
                payload = (("array", payload.shape, hashlib.blake2b(payload.tobytes()).hexdigest())
                           if type(payload) is np.ndarray else float(payload).hex())
            h.update(repr((op, args, payload, shape)).encode())
        h.update(repr((self.outputs, self.inputs)).encode())
        return h.hexdigest()


def from_exprs(outputs: list[Expr], inputs: list[Expr]) -> ArrayProgram:
    """The array program computing ``outputs`` from the symbols ``inputs``."""
    graph = outputs[0].graph
    order = graph.ancestors([e.id for e in outputs] + [s.id for s in inputs])
    index = {v: i for i, v in enumerate(order)}
    nodes = tuple((graph.ops[v], tuple(index[a] for a in graph.args[v]), graph.payload[v],
                   graph.shapes[v]) for v in order)
    given = {s.id for s in inputs}
    missing = sorted(graph.payload[v] for v in order if graph.ops[v] == "symbol" and v not in given)
    if missing:
        raise ValueError(f"the outputs depend on symbol(s) {', '.join(missing)}, "
                         "which are not among the inputs")
    custom = sorted({op for op, *_ in nodes if op in _cfuncs})
    if custom:
        raise NotImplementedError(f"compiling custom ops ({', '.join(custom)}) in graphs with arrays is not "
                                  "supported yet; evaluate such graphs with ga.evaluate")
    return ArrayProgram(nodes, tuple(index[e.id] for e in outputs), tuple(index[s.id] for s in inputs))


@dataclass(frozen=True)
class Lowered:
    """What the caller needs besides the source: the named dims ``d0, d1, ...``
    (bound from the arguments), the constant arrays (node indices), the arrays
    to allocate for each call (shape and fill value, None for none), where
    each output is (an index into the returned scalars, then into the
    arrays), the slices of named axes to check against the actual sizes, and
    the sizes a max reduces over."""

    source: str
    dims: tuple[str, ...]
    consts: tuple[int, ...]
    buffers: tuple  # (shape, fill)
    outputs: tuple[int, ...]
    slice_checks: tuple  # (input dim, start, stop, step, output dim)
    nonempty: tuple  # the sizes a max reduces over: none may be 0
    simd: tuple[str, ...] = ()  # the ops called as simd_<op>, through their IR templates (intrinsics.simd)


def _unit_reshape(before: tuple, after: tuple) -> bool:
    """Whether a reshape only adds or drops axes of size 1 (read through by index)."""
    return bool(before) and bool(after) and [d for d in before if d != 1] == [d for d in after if d != 1]


def _literal(x: float) -> str:
    if math.isnan(x):
        return "math.nan"
    if math.isinf(x):
        return "math.inf" if x > 0 else "(-math.inf)"
    return repr(x) if x >= 0 and not (x == 0 and math.copysign(1, x) < 0) else f"({x!r})"


class _Group:
    """Nodes computed by one loop nest over ``shape``."""

    def __init__(self, shape):
        self.shape = shape
        self.pre: list[str] = []  # statements written before the loop
        self.members: list[int] = []
        self.reductions: list[int] = []
        self.placements: list[tuple] = []  # (node, parts, accumulate): see _Writer.placement
        self.absorbed: set[int] = set()  # views that placements write through (never stored)
        self.inside: set[int] = set()  # nodes whose values exist only in or after the loop


class _Writer:
    def __init__(self, program: ArrayProgram, parallel: bool, assume_finite: bool, simd: frozenset):
        self.nodes = program.nodes
        self.simd = simd
        self.simd_used: set[str] = set()
        self.outputs = program.outputs
        self.parallel = parallel
        self.assume_finite = assume_finite
        n = len(self.nodes)
        self.users: list[list[int]] = [[] for _ in range(n)]
        for i, (_, args, _, _) in enumerate(self.nodes):
            for a in set(args):
                self.users[a].append(i)
        self.dims: dict[str, int] = {}
        for *_, shape in self.nodes:
            for d in shape:
                if isinstance(d, str):
                    self.dims.setdefault(d, len(self.dims))
        self.kind: list[str | None] = [None] * n
        self.var: dict[int, str] = {}  # node -> the name of its array (or float)
        self.layout: dict[str, str] = {}  # array name -> "C", "F" or "A"
        self.consts: list[int] = []
        self.slice_checks: list[tuple] = []
        self.buffers: list[tuple] = []  # (name, shape, fill)
        self.buffer_names: set[str] = set()
        self.view_of: dict[str, str] = {}  # a view's name -> the name of the array it views
        self.lines: list[str] = []
        self.group: _Group | None = None
        self.n_inputs = len(program.inputs)
        for k, i in enumerate(program.inputs):
            self.var[i] = f"a{k}"
            self.layout[f"a{k}"] = "C"

    # -- small helpers --------------------------------------------------------------

    def shape(self, i):
        return self.nodes[i][3]

    def dim(self, d) -> str:
        return str(d) if isinstance(d, int) else f"d{self.dims[d]}"

    def shape_text(self, shape) -> str:
        return "(" + "".join(self.dim(d) + ", " for d in shape).rstrip(" ") + ")"

    def role(self, i) -> str:
        op, args, _, shape = self.nodes[i]
        if op in ("const", "symbol"):
            return "leaf"
        if op in ALIASES or (op == "reshape" and _unit_reshape(self.shape(args[0]), shape)):
            return "alias"
        if OPS[op].shape is None:
            return "member" if shape else "scalar"
        if op in REDUCTIONS:
            return "reduce" if self.shape(args[0]) else "scalar"
        return "stmt"

    @property
    def out(self) -> list[str]:
        return self.group.pre if self.group is not None else self.lines

    # -- reading values ---------------------------------------------------------------

    def scalar(self, i) -> str:
        op, _, payload, _ = self.nodes[i]
        if op == "const":
            return _literal(float(payload))
        if op == "stop_gradient":
            return self.scalar(self.nodes[i][1][0])
        return self.var[i]

    def read(self, i, idx: list[str]) -> str:
        """The element of node ``i`` at the index expressions ``idx`` (one per axis)."""
        op, args, params, shape = self.nodes[i]
        if not shape:
            return self.scalar(i)
        if self.group is not None and i in self.group.inside and self.kind[i] == "member":
            return f"t{i}"
        if op == "broadcast_to":
            inner = self.shape(args[0])
            off = len(shape) - len(inner)
            return self.read(args[0], ["0" if d == 1 and shape[off + k] != 1 else idx[off + k]
                                       for k, d in enumerate(inner)])
        if op == "stop_gradient":
            return self.read(args[0], idx)
        if op == "reshape" and self.role(i) == "alias":  # only axes of size 1 come or go
            kept = iter(j for j, d in zip(idx, shape) if d != 1)
            return self.read(args[0], ["0" if d == 1 else next(kept) for d in self.shape(args[0])])
        if op == "transpose":
            inner = [""] * len(idx)
            for k, p in enumerate(params):
                inner[p] = idx[k]
            return self.read(args[0], inner)
        if op == "slice":
            return self.read(args[0], [self.position(j, start, step, d) for j, (start, _, step), d
                                       in zip(idx, params, self.shape(args[0]))])
        if op == "pad":  # zero outside the slice that holds the operand
            inner, conds = [], []
            for k, ((start, _, step), d, n) in enumerate(zip(params[0], shape, self.shape(args[0]))):
                if start < 0:
                    start = f"({self.dim(d)} - {-start})"
                if start == 0 and step == 1 and n == d:
                    inner.append(idx[k])
                    continue
                q = f"({idx[k]} - {start})" if start != 0 else idx[k]
                if step != 1:
                    conds.append(f"{q} % {step} == 0")
                    q = f"({q} // {step})"
                conds.append(f"0 <= {q} < {self.dim(n)}")
                inner.append(q)
            value = self.read(args[0], inner)
            return f"({value} if {' and '.join(conds)} else 0.0)" if conds else value
        return self.at(self.array(i), shape, idx)

    def at(self, name: str, shape, idx: list[str]) -> str:
        """The element of array ``name`` (of ``shape``) at ``idx``. A kernel argument whose
        axes after the first have fixed sizes is read through a flat view, ``name``
        with ``f`` appended: the constant stride lets the loop vectoriser treat
        ``J[i, 0], J[i, 1], J[i, 2]`` as one interleaved access."""
        if len(shape) < 2 or not all(isinstance(d, int) for d in shape[1:]) or not (
                name in self.buffer_names or name[0] in "ac"):
            return f"{name}[{', '.join(idx)}]"
        flat = idx[0]
        for j, d in zip(idx[1:], shape[1:]):
            flat = f"{flat if flat.isidentifier() else f'({flat})'} * {d} + {j}"
        return f"{name}f[{flat}]"

    def position(self, j: str, start: int, step: int, whole) -> str:
        """Where element ``j`` of the slice ``start::step`` of an axis of size ``whole``
        lies in that axis (a negative start counts from the end of a named axis)."""
        j = j if step == 1 else f"{j} * {step}"
        if start < 0:
            start = f"{self.dim(whole)} - {-start}"
        return f"{start} + {j}" if start != 0 else j

    def constant(self, a) -> float | None:
        """The value of node ``a`` where it is a number (broadcast or not), else None."""
        while self.nodes[a][0] == "broadcast_to":
            a = self.nodes[a][1][0]
        return float(self.nodes[a][2]) if self.nodes[a][0] == "const" and not self.shape(a) else None

    def code(self, op, args, texts) -> str:
        """An elementwise op on its arguments' texts."""
        if op == "dmul":  # the chain product by a finite nonzero constant is a plain product
            if self.assume_finite:  # so is every chain product, where no value is inf or nan
                return f"({texts[0]} * {texts[1]})"
            for a in args:
                c = self.constant(a)
                if c is not None and c != 0.0 and math.isfinite(c):
                    return f"({texts[0]} * {texts[1]})"
            return f"dmul({texts[0]}, {texts[1]})"
        if op == "pow" and self.constant(args[1]) in (2.0, -1.0):  # as the scalar passes do: both
            x = texts[0]  # are correctly rounded, so x*x and 1/x equal pow bit for bit
            return f"({x} * {x})" if self.constant(args[1]) == 2.0 else f"(1.0 / {x})"
        if op in self.simd or op in _BY_TEMPLATE:
            self.simd_used.add(op)
            return f"simd_{op}({', '.join(texts)})"
        return OPS[op].code.format(*texts)

    def loop_index(self, arg_shape, loop_shape) -> list[str]:
        """The index of an argument broadcast into a loop over ``loop_shape``."""
        off = len(loop_shape) - len(arg_shape)
        return ["0" if d == 1 and loop_shape[off + k] != 1 else f"i{off + k}"
                for k, d in enumerate(arg_shape)]

    def array(self, i) -> str:
        """The name of an array holding node ``i`` (views for aliases, a copy for a broadcast)."""
        if i in self.var:
            return self.var[i]
        op, args, params, shape = self.nodes[i]
        if op == "const":
            name = f"c{len(self.consts)}"
            self.consts.append(i)
            self.layout[name] = "C"
        elif op == "stop_gradient":
            return self.array(args[0])
        elif op == "slice":
            x = self.array(args[0])
            name = f"v{i}"
            text = ", ".join(f"{'' if a is None else a}:{'' if b is None else b}:{c}" for a, b, c in params)
            self.out.append(f"{name} = {x}[{text}]")
            self.view_of[name] = x
            self.layout[name] = "A"
        elif op == "transpose" and params == (1, 0):
            x = self.array(args[0])
            name = f"v{i}"
            self.out.append(f"{name} = {x}.T")
            self.view_of[name] = x
            self.layout[name] = {"C": "F", "F": "C"}.get(self.layout[x], "A")
        elif op == "transpose":
            x = self.array(args[0])
            name = f"v{i}"
            self.out.append(f"{name} = np.transpose({x}, {params!r})")
            self.view_of[name] = x
            self.layout[name] = "A"
        elif op == "reshape":
            x = self.dense(args[0], fortran_ok=False)
            name = f"v{i}"
            self.out.append(f"{name} = {x}.reshape({self.shape_text(shape)})")
            self.view_of[name] = x
            self.layout[name] = "C"
        elif op in ("broadcast_to", "pad"):  # written out
            name = self.copy_of(i, f"v{i}")
            self.kind[i] = "copy"
        else:
            raise AssertionError(f"node {i} ({op}) has no array yet")
        self.var[i] = name
        return name

    def dense(self, i, fortran_ok: bool) -> str:
        """An array of node ``i`` that BLAS takes (C order, or F order where allowed)."""
        x = self.array(i)
        if self.layout[x] == "C" or (fortran_ok and self.layout[x] == "F"):
            return x
        name = f"x{i}"
        if name not in self.layout:
            self.copy_of(i, name)
        return name

    def alloc(self, name: str, shape, fill: float | None = None) -> str:
        """An array argument that the caller allocates for each call, filled with ``fill``
        (None: left uninitialised): kernels allocate nothing themselves."""
        self.buffers.append((name, shape, fill))
        self.buffer_names.add(name)
        self.layout[name] = "C"
        return name

    def copy_of(self, i, name: str) -> str:
        """A new array ``name`` holding node ``i``, written by a loop."""
        shape = self.shape(i)
        idx = [f"i{k}" for k in range(len(shape))]
        self.alloc(name, shape)
        self.out.extend(self.loops(shape, [f"{self.at(name, shape, idx)} = {self.read(i, idx)}"]))
        return name

    def loops(self, shape, body: list[str], parallel: bool = True) -> list[str]:
        lines = []
        for k, d in enumerate(shape):
            r = "prange" if k == 0 and parallel and self.parallel else "range"
            lines.append("    " * k + f"for i{k} in {r}({self.dim(d)}):")
        return lines + ["    " * len(shape) + b for b in body]

    # -- scheduling --------------------------------------------------------------------

    def inside(self, a, g: _Group) -> bool:
        """Whether node ``a`` (or what it views) is computed by the open group's loop."""
        while a not in g.inside and self.role(a) == "alias":
            a = self.nodes[a][1][0]
        return a in g.inside

    def readable(self, a, g: _Group) -> bool:
        """Whether the open group's loop can read node ``a`` at the loop's own index."""
        return a in g.members or not self.inside(a, g)

    def can_join(self, i, g: _Group) -> bool:
        role, args, shape = self.role(i), self.nodes[i][1], self.shape(i)
        if role == "member" and shape == g.shape:
            return all(self.readable(a, g) for a in args)
        if role == "reduce":
            return self.shape(args[0]) == g.shape and self.readable(args[0], g)
        return self.placement(i, g) is not None

    def placement(self, i, g: _Group):
        """How node ``i`` can be written from inside the open group's loop, if it can:
        a sum of pads (the adjoint of slices: each operand is added into its slice of
        a zeroed array, as a hand-written gradient does) or a concatenation (each
        part written into its place), of values the loop reads at its own index.
        Returns (parts, accumulate), parts being (view absorbed or None, value, target index)."""
        op, args, params, shape = self.nodes[i]
        idx = [f"i{k}" for k in range(len(g.shape))]
        parts = []
        if op == "add" and shape and all(self.nodes[p][0] == "pad" for p in args):
            for p in args:
                (m,) = self.nodes[p][1]
                if self.users[p] != [i] or self.shape(m) != g.shape or not self.readable(m, g):
                    return None
                target = [self.position(j, start, step, d) for j, (start, _, step), d
                          in zip(idx, self.nodes[p][2][0], shape)]
                parts.append((p, m, target))
            return parts, True
        if op == "concatenate":
            offset = 0
            for x in args:
                m, view = x, None
                if self.nodes[x][0] == "reshape" and self.role(x) == "alias":
                    m, view = self.nodes[x][1][0], x
                    if self.users[x] != [i]:
                        return None
                if self.shape(m) != g.shape or not self.readable(m, g):
                    return None
                kept = iter(j for j, d in zip(idx, g.shape) if d != 1)  # m's index, as x's
                target = ["0" if d == 1 else next(kept) for d in self.shape(x)]
                if offset:
                    target[params] = f"{offset} + {target[params]}"
                parts.append((view, m, target))
                offset += self.shape(x)[params]
            return parts, False
        return None

    def write(self) -> Lowered:
        n = len(self.nodes)
        waiting = [len(set(args)) for _, args, _, _ in self.nodes]
        ready = [i for i in range(n) if waiting[i] == 0]
        done = 0

        def finish(i):
            nonlocal done
            done += 1
            for u in self.users[i]:
                waiting[u] -= 1
                if waiting[u] == 0:
                    bisect.insort(ready, u)

        while ready:
            g = self.group
            pick = next((i for i in ready if self.role(i) in ("leaf", "alias")), None)
            if pick is not None:
                ready.remove(pick)
                if g is not None and self.role(pick) == "alias" and self.inside(pick, g):
                    g.inside.add(pick)  # a view of a value the loop is still computing
                finish(pick)
                continue
            if g is None:
                i = ready.pop(0)
                role = self.role(i)
                if role in ("member", "reduce"):
                    self.group = _Group(self.shape(i if role == "member" else self.nodes[i][1][0]))
                    self.join(i)
                else:
                    self.statement(i)
                finish(i)
                continue
            i = next((i for i in ready if self.can_join(i, g)), None)
            if i is not None:
                ready.remove(i)
                self.join(i)
                finish(i)
                continue
            i = next((i for i in ready if self.role(i) in ("scalar", "stmt")
                      and not any(self.inside(a, g) for a in self.nodes[i][1])), None)
            if i is not None:  # independent of the loop: written before it
                ready.remove(i)
                self.statement(i)
                finish(i)
                continue
            self.close()
        if self.group is not None:
            self.close()
        assert done == n, "the schedule left nodes out"
        return self.finish()

    def join(self, i):
        g = self.group
        role = self.role(i)
        g.inside.add(i)
        if role == "reduce" or (role == "member" and self.shape(i) == g.shape):
            (g.members if role == "member" else g.reductions).append(i)
            self.kind[i] = role
            return
        parts, accumulate = self.placement(i, g)
        g.placements.append((i, parts, accumulate))
        g.absorbed.update(view for view, _, _ in parts if view is not None)
        self.kind[i] = "reduce"  # a fresh array, written by the loop

    # -- writing -----------------------------------------------------------------------

    def close(self):
        g, self.group = self.group, None
        members = set(g.members) | set(g.reductions) | {u for u, _, _ in g.placements} | g.absorbed
        outputs = set(self.outputs)
        idx = [f"i{k}" for k in range(len(g.shape))]
        lines = list(g.pre)
        body = []
        prange_ok = True
        self.group = g  # reads inside the loop see the group's locals
        for m in g.members:
            op, args, _, shape = self.nodes[m]
            text = self.code(op, args, [self.read(a, self.loop_index(self.shape(a), shape)) for a in args])
            body.append(f"t{m} = {text}")
            if m in outputs or any(u not in members for u in self.users[m]):
                self.var[m] = self.alloc(f"v{m}", shape)
                body.append(f"{self.at(f'v{m}', shape, idx)} = t{m}")
        for r in g.reductions:
            op, (a,), (axes, keepdims), shape = self.nodes[r]
            value = self.read(a, idx)
            name = self.var[r] = f"v{r}"
            if shape:
                at = ["0" if k in axes else idx[k] for k in range(len(g.shape)) if keepdims or k not in axes]
                self.alloc(name, shape, 0.0 if op == "sum" else -math.inf)
                target = self.at(name, shape, at)
                prange_ok = prange_ok and 0 not in axes
            else:
                target = name
                lines.append(f"{name} = {'0.0' if op == 'sum' else '-math.inf'}")
                prange_ok = prange_ok and op == "sum"
            if op == "sum":
                body.append(f"{target} += {value}")
            else:
                body.append(f"t = {value}")
                body.append(f"if t > {target} or t != t:")
                body.append(f"    {target} = t")
        for u, parts, accumulate in g.placements:
            name = self.var[u] = self.alloc(f"v{u}", self.shape(u), 0.0 if accumulate else None)
            for _, m, target in parts:
                body.append(f"{self.at(name, self.shape(u), target)} {'+=' if accumulate else '='} "
                            f"{self.read(m, idx)}")
            prange_ok = prange_ok and not accumulate  # two iterations may add into one place
        self.group = None
        self.lines.extend(lines + self.loops(g.shape, body, prange_ok))

    def statement(self, i):
        op, args, params, shape = self.nodes[i]
        role = self.role(i)
        name = f"v{i}"
        out = self.out
        if role == "scalar":
            if op in REDUCTIONS:
                text = self.scalar(args[0])
            else:
                text = self.code(op, args, [self.scalar(a) for a in args])
            out.append(f"{name} = {text}")
            self.var[i] = name
            return
        self.kind[i] = op
        if op == "matmul":
            self.matmul(i)
        elif op == "reshape" and not self.shape(args[0]):  # a number as an array
            idx = ", ".join(f"i{k}" for k in range(len(shape)))
            out.extend(self.loops(shape, [f"{name}[{idx}] = {self.scalar(args[0])}"]))
            self.alloc(name, shape)
            self.kind[i] = "copy"
        elif op == "reshape" and not shape:  # an array of one element as a number
            out.append(f"{name} = {self.dense(args[0], fortran_ok=False)}.ravel()[0]")
        elif op == "reshape":
            self.array(i)  # a view, as for the reshapes read in place
        elif op == "size":
            dims = [self.dim(self.shape(args[0])[k]) for k in params]
            out.append(f"{name} = float({' * '.join(dims) or '1'})")
        elif op in ("take", "scatter_add"):
            self.gather(i)
        elif op == "concatenate":
            self.alloc(name, shape)
            offset = 0
            for a in args:
                inner = self.shape(a)
                idx = [f"i{k}" for k in range(len(inner))]
                at = [f"{offset} + i{k}" if k == params and offset else f"i{k}" for k in range(len(inner))]
                out.extend(self.loops(inner, [f"{self.at(name, shape, at)} = {self.read(a, idx)}"]))
                offset += inner[params]
        else:
            raise NotImplementedError(f"the array op {op} cannot be compiled yet")
        self.var[i] = name

    def matmul(self, i):
        _, (a, b), _, shape = self.nodes[i]
        A, B = self.dense(a, True), self.dense(b, True)
        name = self.alloc(f"v{i}", shape)
        if len(self.shape(a)) == 2 and len(self.shape(b)) == 2:
            self.out.append(f"np.dot({A}, {B}, {name})")
            return
        batch = shape[:-2]

        def part(x, X):
            lead = self.loop_index(self.shape(x)[:-2], batch)
            return f"{X}[{', '.join(lead)}]" if lead else X

        at = ", ".join(f"i{k}" for k in range(len(batch)))
        self.out.extend(self.loops(batch, [f"np.dot({part(a, A)}, {part(b, B)}, {name}[{at}])"]))

    def gather(self, i):
        """take (``out[..., j, ...] = x[..., idx[j], ...]``) and its adjoint scatter_add."""
        op, (x, idx), params, shape = self.nodes[i]
        name = f"v{i}"
        axis = params if op == "take" else params[0]
        k_shape = self.shape(idx)
        # the loop runs over take's result (for scatter_add, over its operand of that shape)
        loop_shape, big = (shape, self.shape(x)) if op == "take" else (self.shape(x), shape)
        length = self.dim(big[axis])
        lead = [f"i{k}" for k in range(axis)]
        mid = [f"i{axis + k}" for k in range(len(k_shape))]
        tail = [f"i{axis + len(k_shape) + k}" for k in range(len(big) - axis - 1)]
        # the indices are checked first, in loops of their own (as the evaluator does: all
        # whole, then all in range), so that a gather with no elements checks them too
        own = [f"i{k}" for k in range(len(k_shape))]
        whole = [f"j = {self.read(idx, own)}", "if int(j) != j:",
                 "    raise ValueError('take: the indices are not all whole numbers')"]
        in_range = [f"k = int({self.read(idx, own)})", f"if k < -{length} or k >= {length}:",
                    "    raise IndexError('take: an index is out of range')"]
        for check in (whole, in_range):  # loops that raise run serially
            self.out.extend(self.loops(k_shape, check, parallel=False))
        body = [f"k = int({self.read(idx, mid)})",
                "if k < 0:",
                f"    k += {length}"]
        if op == "take":
            if shape:
                self.alloc(name, shape)
            target = self.at(name, shape, lead + mid + tail) if shape else name
            body.append(f"{target} = {self.read(x, lead + ['k'] + tail)}")
            self.out.extend(self.loops(loop_shape, body))
        else:
            self.alloc(name, shape, 0.0)
            body.append(f"{self.at(name, shape, lead + ['k'] + tail)} += {self.read(x, lead + mid + tail)}")
            self.out.extend(self.loops(loop_shape, body, parallel=False))  # two points may add to one place

    def finish(self) -> Lowered:
        scalars, results = [], []
        for k, o in enumerate(self.outputs):
            if not self.shape(o):
                results.append(len(scalars))
                scalars.append(self.scalar(o))
                continue
            x = self.array(o)
            if self.kind[o] not in _FRESH or o in self.outputs[:k]:  # an input, a constant, a view, a repeat
                x = self.copy_of(o, f"r{k}")
            results.append(x)
        slot = self.share({r for r in results if isinstance(r, str)})
        names = list(dict.fromkeys(slot.values()))
        results = [r if isinstance(r, int) else names.index(slot[r]) + len(scalars) for r in results]
        args = ["sz", *(f"a{k}" for k in range(self.n_inputs)), *(f"c{k}" for k in range(len(self.consts))),
                *names]
        head = [f"def kernel({', '.join(args)}):"]
        head += [f"    d{k} = sz[{k}]" for k in range(len(self.dims))]
        flat = dict.fromkeys(n for line in self.lines for n in _FLAT.findall(line))
        head += [f"    {n}f = {n}.reshape({n}.size)" for n in flat]  # kernel arguments: C order
        body = self.lines + [f"return ({''.join(r + ', ' for r in scalars or ['0.0']).rstrip(' ')})"]
        source = "\n".join(head + ["    " + line for line in body]) + "\n"
        nonempty = set()
        for op, args, params, shape in self.nodes:
            # a slice of a named axis (or the pad that is its adjoint) must fit the bound size
            if op == "slice":
                spec, whole, part = params, self.shape(args[0]), shape
            elif op == "pad":
                spec, whole, part = params[0], shape, self.shape(args[0])
            else:
                spec = whole = part = ()
            for (start, stop, step), d, e in zip(spec, whole, part):
                if isinstance(d, str):
                    self.slice_checks.append((d, start, stop, step, e))
            if op == "max":  # a max over no elements has no value
                nonempty.update(d for k, d in enumerate(self.shape(args[0])) if k in params[0])
        buffers = {name: (shape, fill) for name, shape, fill in self.buffers}
        return Lowered(source, tuple(self.dims), tuple(self.consts), tuple(buffers[n] for n in names),
                       tuple(results), tuple(self.slice_checks), tuple(sorted(nonempty, key=str)),
                       tuple(sorted(self.simd_used)))

    def share(self, outputs: set[str]) -> dict[str, str]:
        """Let arrays whose lifetimes do not overlap share one buffer (same shape, no
        fill, not an output), renaming them in the lines; returns each array's buffer.
        A lifetime runs from the first top-level statement that names the array (or
        a view of it) to the last."""
        first, last, step = {}, {}, -1
        for line in self.lines:
            step += not line.startswith(" ")
            for name, _ in _NAME.findall(line):
                while name in self.view_of:
                    name = self.view_of[name]
                first.setdefault(name, step)
                last[name] = step
        slot, free = {}, {}  # free: shape -> [[buffer, last step it is used], ...]
        for name, shape, fill in sorted(self.buffers, key=lambda b: first.get(b[0], -1)):
            slot[name] = name
            if fill is not None or name in outputs or name not in first:
                continue
            pool = free.setdefault(shape, [])
            reuse = next((entry for entry in pool if entry[1] < first[name]), None)
            if reuse is None:
                pool.append([name, last[name]])
            else:
                slot[name] = reuse[0]
                reuse[1] = last[name]
        renamed = {n: b for n, b in slot.items() if n != b}
        if renamed:
            rename = lambda m: renamed.get(m.group(1), m.group(1)) + m.group(2)  # noqa: E731
            self.lines = [_NAME.sub(rename, line) for line in self.lines]
        return slot


def lower(program: ArrayProgram, parallel: bool = False, assume_finite: bool = False,
          simd: frozenset = frozenset()) -> Lowered:
    """The Numba source of ``kernel(sz, a0, ..., c0, ..., v0, ...)`` computing the outputs.
    ``assume_finite`` writes chain products as plain products (exact where no value
    is inf or nan); the ops in ``simd`` are called as ``simd_<op>``, whose calls the
    loop vectoriser may turn into SIMD math (:func:`graphad.lowering.intrinsics.simd`)."""
    return _Writer(program, parallel, assume_finite, simd).write()
