"""Array kernels as LLVM IR, without Numba: the loop nests of :mod:`.loops`, translated.

:mod:`.loops` writes a kernel as a small Python function. Numba compiles it
faithfully, but slowly: it types every line and links its runtime, which costs
about two seconds for an MLP's gradient, and loading it from Numba's cache
starts Numba's whole CPU target (a quarter of a second more, importing
``scipy.linalg``). This module reads the same source (with :mod:`ast`) and
writes LLVM IR for it directly, which graphad compiles and caches as an object
file (:func:`graphad.kernels.load_engine`).

It takes only what :mod:`.loops` writes: float and index arithmetic, ``for``
over ``range``, ``if``, ``raise``, element reads and writes, views (slices,
``.T``, ``np.transpose``, ``reshape``), ``np.dot`` of matrices (BLAS ``dgemm``)
and the registry's elementwise ops, emitted from their own IR templates as the
scalar compiler does. Anything else raises :class:`Unsupported`, and the kernel
goes to Numba as before (so does every ``parallel=True`` kernel).

The entry point is ``i32 @name(i64* sz, i8** arrays, double* scalars, double*
results)``: the bound sizes, a pointer to each array argument's data (in C
order), the scalar arguments, and room for the scalar results. It returns 0, or
``k + 1`` where it stopped at the ``k``-th ``raise`` of the source
(:attr:`Native.raises` says which exception).
"""

from __future__ import annotations

import ast
import ctypes
import functools
import importlib.util
import math
import os
import re
import sys
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES

from .. import vecmath
from ..fastcall import _ARRAY_DATA, _FLOAT_VALUE, _TUPLE_ITEMS, _api
from ..llvm import _literal as _double
from ..registry import OPS

DGEMM = "graphad.dgemm"  # the symbol the kernels call BLAS's dgemm by (see blas_dgemm)
_I32_MAX = 2**31 - 1
_INT = re.compile(r"-?\d+")


class Unsupported(Exception):
    """A construct this translator does not take."""


@functools.cache
def _calls() -> dict[str, str]:
    """The registry ops that the source calls as functions: ``math.exp`` -> exp, ``abs`` -> abs..."""
    table = {}
    for op, spec in OPS.items():
        m = re.fullmatch(r"([\w.]+)\(\{0\}(?:, \{1\})?\)", spec.code or "")
        if m and spec.ir:
            table[m.group(1)] = op
    return table


def _parts(node: ast.Subscript) -> list:
    """The indices of ``x[i, j]`` (or ``[i]`` of ``x[i]``)."""
    return node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise Unsupported("a value that is not a literal") from None


def _number(v: str):
    """An i64 operand as a Python int where it is a literal (so that it folds), else as is."""
    return int(v) if _INT.fullmatch(v) else v


@dataclass
class _Array:
    ptr: str  # double*
    ext: list  # extents: ints or i64 values
    strides: list  # in elements: ints or i64 values


@dataclass(frozen=True)
class Native:
    """A translated kernel: its IR, and per ``raise`` (in source order) the exception's
    type name and message."""

    ir: str
    raises: tuple[tuple[str, str], ...]
    n_results: int  # the scalars it returns
    blas: bool  # whether it calls dgemm


class _Emitter:
    def __init__(self, dims):
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self.n = 0
        self.vars: dict[str, tuple] = {}  # name -> ("array", _Array) | (type, alloca)
        self.raises: list[tuple[str, str]] = []
        self.declared: set[str] = set()
        self.blas = False
        self.dims = dims
        self.depth = 0  # loops and branches around the statement being translated

    # -- plumbing ---------------------------------------------------------------------

    def tmp(self) -> str:
        self.n += 1
        return f"%r{self.n}"

    def label(self, what: str) -> str:
        self.n += 1
        return f"{what}{self.n}"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def block(self, label: str) -> None:
        self.lines.append(f"{label}:")

    def op(self, text: str) -> str:
        r = self.tmp()
        self.emit(f"{r} = {text}")
        return r

    def imul(self, a, b):
        if isinstance(a, int) and isinstance(b, int):
            return a * b
        if a == 1 or b == 0:
            return b
        if b == 1 or a == 0:
            return a
        return self.op(f"mul i64 {a}, {b}")

    def iadd(self, a, b):
        if isinstance(a, int) and isinstance(b, int):
            return a + b
        if a == 0:
            return b
        if b == 0:
            return a
        return self.op(f"add i64 {a}, {b}")

    def gep(self, ptr: str, offset) -> str:
        return ptr if offset == 0 else self.op(f"getelementptr inbounds double, double* {ptr}, i64 {offset}")

    # -- variables ------------------------------------------------------------------------

    def store_var(self, name: str, ty: str, value: str) -> None:
        known = self.vars.get(name)
        if known is None:
            slot = f"%{name}.addr"
            self.allocas.append(f"  {slot} = alloca {ty}")
            self.vars[name] = known = (ty, slot)
        if known[0] != ty:
            raise Unsupported(f"{name} changes type")
        self.emit(f"store {ty} {value}, {ty}* {known[1]}")

    def load_var(self, name: str):
        known = self.vars.get(name)
        if known is None or known[0] == "array":
            raise Unsupported(f"the value {name}")
        ty, slot = known
        return ty, self.op(f"load {ty}, {ty}* {slot}")

    def array(self, node) -> _Array:
        if isinstance(node, ast.Name) and self.vars.get(node.id, ("",))[0] == "array":
            return self.vars[node.id][1]
        if isinstance(node, ast.Subscript):  # a part of an array, indexed by its leading axes
            a = self.array(node.value)
            idx = _parts(node)
            if len(idx) >= len(a.ext) or any(isinstance(i, ast.Slice) for i in idx):
                raise Unsupported("an array index")
            return _Array(self.at(a, idx), a.ext[len(idx):], a.strides[len(idx):])
        raise Unsupported(ast.dump(node))

    def at(self, a: _Array, idx) -> str:
        """The address of ``a`` at the leading indices ``idx``."""
        offset = 0
        for i, s in zip(idx, a.strides):
            offset = self.iadd(offset, self.imul(self.index(i), s))
        return self.gep(a.ptr, offset)

    def view(self, node) -> _Array | None:
        """The array that the expression ``node`` makes (a view), or None if it is not one."""
        if isinstance(node, ast.Attribute) and node.attr == "T":
            a = self.array(node.value)
            return _Array(a.ptr, a.ext[::-1], a.strides[::-1])
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id != "sz":
            idx = _parts(node)
            if not any(isinstance(i, ast.Slice) for i in idx):
                return None
            a = self.array(node.value)
            if len(idx) != len(a.ext):
                raise Unsupported("a slice")
            offset, ext, strides = 0, [], []
            for s, n, st in zip(idx, a.ext, a.strides):
                start, count, step = self.slice(s, n)
                offset = self.iadd(offset, self.imul(start, st))
                ext.append(count)
                strides.append(self.imul(step, st))
            return _Array(self.gep(a.ptr, offset), ext, strides)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr == "reshape" and isinstance(f.value, ast.Name):
                a = self.array(f.value)
                (arg,) = node.args
                if isinstance(arg, ast.Attribute) and arg.attr == "size":  # the flat view
                    size = 1
                    for e in a.ext:
                        size = self.imul(size, e)
                    return _Array(a.ptr, [size], [1])
                dims = arg.elts if isinstance(arg, ast.Tuple) else [arg]
                ext = [self.int(d) for d in dims]
                return _Array(a.ptr, ext, self.c_strides(ext))  # of a C-order array (loops.dense)
            if f.attr == "transpose" and isinstance(f.value, ast.Name) and f.value.id == "np":
                a = self.array(node.args[0])
                perm = _literal(node.args[1])
                return _Array(a.ptr, [a.ext[p] for p in perm], [a.strides[p] for p in perm])
        return None

    def c_strides(self, ext):
        strides, s = [], 1
        for e in reversed(ext):
            strides.append(s)
            s = self.imul(s, e)
        return strides[::-1]

    def slice(self, s: ast.Slice, n):
        """start, count and step of the slice ``s`` of an axis of ``n`` elements (Python's rules)."""
        if not isinstance(s, ast.Slice):
            raise Unsupported("an index among slices")
        step = 1 if s.step is None else _literal(s.step)
        if not isinstance(step, int) or step == 0:
            raise Unsupported("a slice step")
        lo, hi = (0, n) if step > 0 else (-1, self.iadd(n, -1))

        def bound(x, default):
            if x is None:
                return default
            v = _literal(x)
            if not isinstance(v, int):
                raise Unsupported("a slice bound")
            if v < 0:
                v = self.iadd(n, v)
                if isinstance(v, int):
                    return max(v, lo)
                return self.op(f"select i1 {self.op(f'icmp slt i64 {v}, {lo}')}, i64 {lo}, i64 {v}")
            if isinstance(n, int):
                return min(v, hi)
            return self.op(f"select i1 {self.op(f'icmp sgt i64 {v}, {hi}')}, i64 {hi}, i64 {v}")

        start = bound(s.lower, 0 if step > 0 else hi)
        stop = bound(s.upper, n if step > 0 else -1)
        if isinstance(start, int) and isinstance(stop, int):
            span = stop - start if step > 0 else start - stop
            return start, max(0, -(-span // abs(step))), step
        span = self.op(f"sub i64 {stop}, {start}" if step > 0 else f"sub i64 {start}, {stop}")
        span = self.op(f"add i64 {span}, {abs(step) - 1}")
        count = self.op(f"sdiv i64 {span}, {abs(step)}")
        count = self.op(f"select i1 {self.op(f'icmp slt i64 {count}, 0')}, i64 0, i64 {count}")
        return start, count, step

    # -- expressions ------------------------------------------------------------------------

    def int(self, node):
        ty, v = self.expr(node)
        if ty != "i64":
            raise Unsupported("an index that is not an integer")
        return _number(v)

    def index(self, node):
        """An index into an axis: loops.py writes none that counts from the end."""
        i = self.int(node)
        if isinstance(i, int) and i < 0:
            raise Unsupported("a negative index")
        return i

    def double(self, node) -> str:
        return self.to_double(*self.expr(node))

    def to_double(self, ty: str, v: str) -> str:
        if ty == "double":
            return v
        if ty == "i64":
            return _double(float(v)) if _INT.fullmatch(v) else self.op(f"sitofp i64 {v} to double")
        return self.op(f"uitofp i1 {v} to double")

    def expr(self, node) -> tuple[str, str]:
        method = getattr(self, "e_" + type(node).__name__, None)
        if method is None:
            raise Unsupported(type(node).__name__)
        return method(node)

    def e_Constant(self, node):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Unsupported(repr(v))
        return ("i64", str(v)) if isinstance(v, int) else ("double", _double(v))

    def e_Name(self, node):
        return self.load_var(node.id)

    def e_Attribute(self, node):
        if ast.unparse(node) in ("math.inf", "math.nan", "math.pi", "math.e"):
            return "double", _double(getattr(math, node.attr))
        raise Unsupported(node.attr)

    def e_UnaryOp(self, node):
        ty, v = self.expr(node.operand)
        if isinstance(node.op, ast.USub):
            if ty == "i64":
                return ty, str(-int(v)) if _INT.fullmatch(v) else self.op(f"sub i64 0, {v}")
            return "double", self.op(f"fneg double {self.to_double(ty, v)}")
        if isinstance(node.op, ast.UAdd):
            return ty, v
        raise Unsupported("a unary operator")

    def e_BinOp(self, node):
        (lt, lv), (rt, rv) = self.expr(node.left), self.expr(node.right)
        o = type(node.op).__name__
        if lt == rt == "i64" and o in ("Add", "Sub", "Mult", "FloorDiv", "Mod"):
            if o in ("Add", "Mult"):
                return "i64", str((self.iadd if o == "Add" else self.imul)(_number(lv), _number(rv)))
            if o == "Sub":
                return "i64", self.op(f"sub i64 {lv}, {rv}")
            # Python's floor division and modulo (the sign of the divisor)
            q, r = self.op(f"sdiv i64 {lv}, {rv}"), self.op(f"srem i64 {lv}, {rv}")
            r_neg, d_neg = self.op(f"icmp slt i64 {r}, 0"), self.op(f"icmp slt i64 {rv}, 0")
            signs = self.op(f"icmp ne i1 {r_neg}, {d_neg}")
            fix = self.op(f"and i1 {self.op(f'icmp ne i64 {r}, 0')}, {signs}")
            if o == "FloorDiv":
                return "i64", self.op(f"sub i64 {q}, {self.op(f'zext i1 {fix} to i64')}")
            return "i64", self.op(f"add i64 {r}, {self.op(f'select i1 {fix}, i64 {rv}, i64 0')}")
        a, b = self.to_double(lt, lv), self.to_double(rt, rv)
        ir = {"Add": "fadd", "Sub": "fsub", "Mult": "fmul", "Div": "fdiv"}.get(o)
        if ir:
            return "double", self.op(f"{ir} double {a}, {b}")
        if o == "Pow":
            return "double", self.template("pow", [a, b])
        raise Unsupported(f"the operator {o}")

    def e_Compare(self, node):
        parts, left = [], self.expr(node.left)
        for cmp, right in zip(node.ops, node.comparators):
            right = self.expr(right)
            o = type(cmp).__name__
            if left[0] == right[0] == "i64":
                c = {"Lt": "slt", "LtE": "sle", "Gt": "sgt", "GtE": "sge", "Eq": "eq", "NotEq": "ne"}[o]
                parts.append(self.op(f"icmp {c} i64 {left[1]}, {right[1]}"))
            else:
                c = {"Lt": "olt", "LtE": "ole", "Gt": "ogt", "GtE": "oge", "Eq": "oeq", "NotEq": "une"}[o]
                parts.append(self.op(f"fcmp {c} double {self.to_double(*left)}, {self.to_double(*right)}"))
            left = right
        out = parts[0]
        for p in parts[1:]:
            out = self.op(f"and i1 {out}, {p}")
        return "i1", out

    def e_BoolOp(self, node):  # operands are comparisons: no side effects to short-circuit
        values = [self.expr(v) for v in node.values]
        if any(t != "i1" for t, _ in values):
            raise Unsupported("and/or of values that are not comparisons")
        out = values[0][1]
        for _, v in values[1:]:
            out = self.op(f"{'and' if isinstance(node.op, ast.And) else 'or'} i1 {out}, {v}")
        return "i1", out

    def cond(self, node) -> str:
        ty, v = self.expr(node)
        if ty == "i1":
            return v
        if ty == "i64":
            return self.op(f"icmp ne i64 {v}, 0")
        return self.op(f"fcmp une double {v}, 0.0")

    def e_IfExp(self, node):
        c = self.cond(node.test)
        if not any(isinstance(n, ast.Subscript) for arm in (node.body, node.orelse) for n in ast.walk(arm)):
            a, b = self.expr(node.body), self.expr(node.orelse)
            ty = a[0] if a[0] == b[0] else "double"
            a, b = (a[1], b[1]) if a[0] == b[0] else (self.to_double(*a), self.to_double(*b))
            return ty, self.op(f"select i1 {c}, {ty} {a}, {ty} {b}")
        # an arm reads an array where the condition says it may: branches, not a select
        yes, no, join = self.label("then"), self.label("else"), self.label("join")
        self.emit(f"br i1 {c}, label %{yes}, label %{no}")
        self.block(yes)
        a = self.double(node.body)
        a_end = self.current()
        self.emit(f"br label %{join}")
        self.block(no)
        b = self.double(node.orelse)
        b_end = self.current()
        self.emit(f"br label %{join}")
        self.block(join)
        return "double", self.op(f"phi double [{a}, %{a_end}], [{b}, %{b_end}]")

    def current(self) -> str:
        for line in reversed(self.lines):
            if not line.startswith(" "):
                return line[:-1]
        raise AssertionError("no block")

    def e_Call(self, node):
        f = node.func
        name = ast.unparse(f)
        if node.keywords:
            raise Unsupported("keyword arguments")
        if name == "float":
            return "double", self.double(node.args[0])
        if name == "int":  # saturating: nan gives 0, which the caller's k != j catches
            self.declared.add("declare i64 @llvm.fptosi.sat.i64.f64(double)")
            return "i64", self.op(f"call i64 @llvm.fptosi.sat.i64.f64(double {self.double(node.args[0])})")
        if name in ("max", "min") and len(node.args) == 2:  # Python's: the first unless the second is
            a, b = (self.double(x) for x in node.args)
            c = self.op(f"fcmp {'ogt' if name == 'max' else 'olt'} double {b}, {a}")
            return "double", self.op(f"select i1 {c}, double {b}, double {a}")
        if name == "dmul":
            return "double", self.dmul(*(self.double(x) for x in node.args))
        op = name[5:] if name.startswith("simd_") else _calls().get(name)
        if op not in OPS or not OPS[op].ir or OPS[op].arity != len(node.args):
            raise Unsupported(f"the function {name}")
        return "double", self.template(op, [self.double(x) for x in node.args])

    def template(self, op: str, args: list[str]) -> str:
        out = self.tmp()
        text = OPS[op].ir.format(*args, out=out, t=out + ".")
        for m in vecmath.CALL.finditer(text):
            arity = m.group(2).count("double")
            self.declared.add(f"declare double @{m.group(1)}({', '.join(['double'] * arity)})")
        for line in text.split("\n"):
            self.emit(line)
        return out

    def dmul(self, x: str, y: str) -> str:
        """As graphad.lowering.intrinsics.dmul: the product, fixed up behind a branch that
        only a zero or nan product takes (the vectoriser turns it back into selects)."""
        p = self.op(f"fmul double {x}, {y}")
        before, fix, join = self.current(), self.label("fix"), self.label("product")
        self.emit(f"br i1 {self.op(f'fcmp ueq double {p}, 0.0')}, label %{fix}, label %{join}, !prof !0")
        self.block(fix)
        x0, y0 = self.op(f"fcmp oeq double {x}, 0.0"), self.op(f"fcmp oeq double {y}, 0.0")
        either = self.op(f"or i1 {x0}, {y0}")
        fixed = self.op(f"select i1 {either}, double 0.0, double {p}")
        self.emit(f"br label %{join}")
        self.block(join)
        return self.op(f"phi double [{p}, %{before}], [{fixed}, %{fix}]")

    def address(self, node: ast.Subscript) -> str:
        if isinstance(node.value, ast.Call):  # x.ravel()[0]
            f = node.value.func
            if not (isinstance(f, ast.Attribute) and f.attr == "ravel") or _literal(node.slice) != 0:
                raise Unsupported("an index of a call")
            return self.array(f.value).ptr
        a = self.array(node.value)
        idx = _parts(node)
        if len(idx) != len(a.ext):
            raise Unsupported("an element index")
        return self.at(a, idx)

    def e_Subscript(self, node):
        if isinstance(node.value, ast.Name) and node.value.id == "sz":
            k = _literal(node.slice)
            if not (isinstance(k, int) and 0 <= k < len(self.dims)):
                raise Unsupported("a size that is not bound")
            return "i64", self.op(f"load i64, i64* {self.gep_i64('%sz', k)}")
        return "double", self.op(f"load double, double* {self.address(node)}")

    def gep_i64(self, ptr: str, k: int) -> str:
        return self.op(f"getelementptr inbounds i64, i64* {ptr}, i64 {k}")

    # -- statements ---------------------------------------------------------------------------

    def body(self, statements) -> None:
        for s in statements:
            method = getattr(self, "s_" + type(s).__name__, None)
            if method is None:
                raise Unsupported(type(s).__name__)
            method(s)

    def s_Assign(self, node):
        (target,) = node.targets
        if isinstance(target, ast.Name):
            view = self.view(node.value)
            if view is not None:
                if self.depth:
                    raise Unsupported("a view made inside a loop or a branch")
                self.vars[target.id] = ("array", view)
                return
            ty, v = self.expr(node.value)
            if ty == "i1":
                raise Unsupported("a boolean variable")
            self.store_var(target.id, ty, v)
            return
        if isinstance(target, ast.Subscript):
            value = self.double(node.value)
            self.emit(f"store double {value}, double* {self.address(target)}")
            return
        raise Unsupported("an assignment")

    def s_AugAssign(self, node):
        if not isinstance(node.op, ast.Add):
            raise Unsupported("an augmented assignment")
        target = node.target
        if isinstance(target, ast.Name):
            ty, old = self.load_var(target.id)
            if ty == "i64":
                self.store_var(target.id, ty, self.op(f"add i64 {old}, {self.int(node.value)}"))
                return
            # the accumulations: reassociated, as Numba's fastmath='reassoc' lets them be
            value = self.double(node.value)
            self.store_var(target.id, "double", self.op(f"fadd reassoc double {old}, {value}"))
            return
        value = self.double(node.value)
        ptr = self.address(target)
        old = self.op(f"load double, double* {ptr}")
        self.emit(f"store double {self.op(f'fadd reassoc double {old}, {value}')}, double* {ptr}")

    def s_For(self, node):
        it = node.iter
        if (node.orelse or not isinstance(node.target, ast.Name) or not isinstance(it, ast.Call)
                or ast.unparse(it.func) != "range" or len(it.args) != 1):
            raise Unsupported("a loop that is not over range(n)")
        n = self.int(it.args[0])
        var = node.target.id
        self.store_var(var, "i64", "0")
        head, body, end = self.label("loop"), self.label("body"), self.label("done")
        self.emit(f"br label %{head}")
        self.block(head)
        _, i = self.load_var(var)
        self.emit(f"br i1 {self.op(f'icmp slt i64 {i}, {n}')}, label %{body}, label %{end}")
        self.block(body)
        self.depth += 1
        self.body(node.body)
        self.depth -= 1
        _, i = self.load_var(var)
        self.store_var(var, "i64", self.op(f"add nuw nsw i64 {i}, 1"))
        self.emit(f"br label %{head}")
        self.block(end)

    def s_If(self, node):
        c = self.cond(node.test)
        yes, no, join = self.label("then"), self.label("else"), self.label("endif")
        self.emit(f"br i1 {c}, label %{yes}, label %{no}")
        self.depth += 1
        self.block(yes)
        self.body(node.body)
        self.emit(f"br label %{join}")
        self.block(no)
        self.body(node.orelse)
        self.depth -= 1
        self.emit(f"br label %{join}")
        self.block(join)

    def s_Raise(self, node):
        exc = node.exc
        if not (isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name)
                and exc.func.id in ("ValueError", "IndexError") and len(exc.args) == 1
                and isinstance(exc.args[0], ast.Constant) and isinstance(exc.args[0].value, str)):
            raise Unsupported("a raise")
        self.raises.append((exc.func.id, exc.args[0].value))
        self.emit(f"ret i32 {len(self.raises)}")
        self.block(self.label("after"))

    def s_Expr(self, node):
        call = node.value
        if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "np.dot" and len(call.args) == 3):
            raise Unsupported("an expression statement")
        self.gemm(*(self.array(a) for a in call.args))

    def s_Return(self, node):
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        for k, v in enumerate(values):
            self.emit(f"store double {self.double(v)}, double* {self.gep('%ret', k)}")
        self.emit("ret i32 0")
        self.block(self.label("after"))

    def gemm(self, A: _Array, B: _Array, C: _Array) -> None:
        """``C = A @ B`` by dgemm: row-major C is column-major C^T = B^T A^T, so the
        operands go in swapped, each transposed or not by its layout."""
        if not (len(A.ext) == len(B.ext) == len(C.ext) == 2) or C.strides[1] != 1:
            raise Unsupported("np.dot of arrays that are not matrices")

        def operand(X: _Array):  # (transpose flag, leading dimension)
            if X.strides[1] == 1:
                return ord("N"), X.strides[0], X.ext[1]
            if X.strides[0] == 1:
                return ord("T"), X.strides[1], X.ext[0]
            raise Unsupported("np.dot of an array that is not dense")

        self.blas = True
        (m, k), n = A.ext, B.ext[1]
        ta, lda, rows_a = operand(A)
        tb, ldb, rows_b = operand(B)
        ldc = C.strides[0]
        big = None
        for x in (m, n, k):  # dgemm takes 32-bit sizes (leading dimensions are some of these)
            if isinstance(x, int) and x > _I32_MAX:
                big = "true"
            elif not isinstance(x, int):
                c = self.op(f"icmp sgt i64 {x}, {_I32_MAX}")
                big = c if big is None else self.op(f"or i1 {big}, {c}")
            if big == "true":
                break
        if big is not None:
            self.raises.append(("ValueError", "a matrix product with a side longer than 2**31 - 1, "
                                              "which BLAS does not take"))
            ok = self.label("gemm")
            self.emit(f"br i1 {big}, label %{ok}.big, label %{ok}")
            self.block(f"{ok}.big")
            self.emit(f"ret i32 {len(self.raises)}")
            self.block(ok)

        def slot(ty, value, name):
            self.emit(f"store {ty} {value}, {ty}* %gemm.{name}")

        def i32(x, at_least_rows):
            x = x if isinstance(x, int) else self.op(f"trunc i64 {x} to i32")
            if at_least_rows is None:
                return x
            # a leading dimension: at least the rows it spans, and at least 1
            r = at_least_rows
            if not isinstance(r, int):
                r = self.op(f"trunc i64 {r} to i32")
            if isinstance(x, int) and isinstance(r, int):
                return max(x, r, 1)
            c = self.op(f"icmp sgt i32 {x}, {r}")
            x = self.op(f"select i1 {c}, i32 {x}, i32 {r}")
            return self.op(f"select i1 {self.op(f'icmp sgt i32 {x}, 1')}, i32 {x}, i32 1")

        slot("i8", tb, "ta")
        slot("i8", ta, "tb")
        slot("i32", i32(n, None), "m")
        slot("i32", i32(m, None), "n")
        slot("i32", i32(k, None), "k")
        slot("i32", i32(ldb, rows_b), "lda")
        slot("i32", i32(lda, rows_a), "ldb")
        slot("i32", i32(ldc, n), "ldc")
        self.emit(f"call void @\"{DGEMM}\"(i8* %gemm.ta, i8* %gemm.tb, i32* %gemm.m, i32* %gemm.n, "
                  f"i32* %gemm.k, double* %gemm.one, double* {B.ptr}, i32* %gemm.lda, double* {A.ptr}, "
                  f"i32* %gemm.ldb, double* %gemm.zero, double* {C.ptr}, i32* %gemm.ldc)")


def translate(source: str, params: list, dims: list[str], name: str, vector: bool) -> Native:
    """The IR module of the kernel ``source`` (written by :mod:`.loops`), entry ``@name``.
    ``params`` gives each parameter after ``sz``: None for a number, else the shape
    (ints, and size names, which are ``sz[dims.index(name)]``). With ``vector``,
    math calls name their SIMD versions (:func:`graphad.vecmath.annotate`)."""
    (fn,) = ast.parse(source).body
    names = [a.arg for a in fn.args.args]
    if names[0] != "sz" or len(names) != len(params) + 1:
        raise Unsupported("the kernel's parameters")
    e = _Emitter(dims)
    e.block("entry")
    arrays, scalars = [], []
    for pname, shape in zip(names[1:], params):
        if shape is None:
            e.store_var(pname, "double", f"%s{len(scalars)}")
            scalars.append(pname)
            continue
        ext = [d if isinstance(d, int) else e.op(f"load i64, i64* {e.gep_i64('%sz', dims.index(d))}")
               for d in shape]
        e.vars[pname] = ("array", _Array(f"%p{len(arrays)}", ext, e.c_strides(ext)))
        arrays.append(pname)
    e.body(fn.body)
    e.emit("unreachable")
    gemm = []
    if e.blas:
        gemm = ["  %gemm.ta = alloca i8", "  %gemm.tb = alloca i8",
                *(f"  %gemm.{x} = alloca i32" for x in ("m", "n", "k", "lda", "ldb", "ldc")),
                "  %gemm.one = alloca double", "  %gemm.zero = alloca double",
                "  store double 1.0, double* %gemm.one", "  store double 0.0, double* %gemm.zero"]
    body_params = ", ".join(["i64* noalias %sz", *(f"double* noalias %p{k}" for k in range(len(arrays))),
                             *(f"double %s{k}" for k in range(len(scalars))), "double* noalias %ret"])
    lines = [f"define internal i32 @\"{name}.body\"({body_params}) noinline nounwind {{",
             e.lines[0], *e.allocas, *gemm, *e.lines[1:], "}", ""]
    # the entry: unpack the arrays' data pointers and the scalars
    lines += [f"define i32 @\"{name}\"(i64* %sz, i8** %arrays, double* %scalars, double* %ret) nounwind {{",
              "entry:"]
    call = ["i64* %sz"]
    for k in range(len(arrays)):
        lines += [f"  %q{k}.p = getelementptr inbounds i8*, i8** %arrays, i64 {k}",
                  f"  %q{k}.i = load i8*, i8** %q{k}.p", f"  %q{k} = bitcast i8* %q{k}.i to double*"]
        call.append(f"double* %q{k}")
    for k in range(len(scalars)):
        lines += [f"  %t{k}.p = getelementptr inbounds double, double* %scalars, i64 {k}",
                  f"  %t{k} = load double, double* %t{k}.p"]
        call.append(f"double %t{k}")
    call.append("double* %ret")
    lines += [f"  %status = call i32 @\"{name}.body\"({', '.join(call)})", "  ret i32 %status", "}", ""]
    lines += _objects_entry(name, params)
    if e.blas:
        lines.append(f"declare void @\"{DGEMM}\"(i8*, i8*, i32*, i32*, i32*, double*, double*, i32*, "
                     "double*, i32*, double*, double*, i32*)")
    lines += sorted(e.declared)
    lines.append('!0 = !{!"branch_weights", i32 1, i32 1000}')
    text = "\n".join(lines) + "\n"
    returns = [s for s in ast.walk(fn) if isinstance(s, ast.Return)]
    n_results = max((len(r.value.elts) if isinstance(r.value, ast.Tuple) else 1 for r in returns), default=1)
    return Native(vecmath.annotate(text) if vector else text, tuple(e.raises), n_results, e.blas)


def _objects_entry(name: str, params: list) -> list[str]:
    """``i32 @name.objects(PyObject* args)``: the kernel called with the tuple ``(sz, *arguments,
    results)`` of exact floats and C-contiguous float64 arrays (int64 for ``sz``), whose values
    and data it reads in place (CPython's and NumPy's layouts, checked by
    :mod:`graphad.fastcall` before this entry is used): no array of pointers to build."""
    lines = [f"define i32 @\"{name}.objects\"(i8* %args) nounwind {{", "entry:"]

    def field(k: int, ty: str) -> str:  # the value at offset 16 of tuple item k
        lines.extend([f"  %o{k}.a = getelementptr inbounds i8, i8* %args, i64 {_TUPLE_ITEMS + 8 * k}",
                      f"  %o{k}.b = bitcast i8* %o{k}.a to i8**", f"  %o{k} = load i8*, i8** %o{k}.b",
                      f"  %o{k}.c = getelementptr inbounds i8, i8* %o{k}, i64 {_ARRAY_DATA}",
                      f"  %o{k}.d = bitcast i8* %o{k}.c to {ty}*", f"  %o{k}.v = load {ty}, {ty}* %o{k}.d"])
        return f"%o{k}.v"

    assert _ARRAY_DATA == _FLOAT_VALUE  # an array's data pointer and a float's value lie alike
    sz = field(0, "i8*")
    lines.append(f"  %sz = bitcast i8* {sz} to i64*")
    arrays, scalars = [], []
    for k, shape in enumerate(params, 1):
        if shape is None:
            scalars.append(f"double {field(k, 'double')}")
        else:
            lines.append(f"  %x{k} = bitcast i8* {field(k, 'i8*')} to double*")
            arrays.append(f"double* %x{k}")
    ret = field(len(params) + 1, "i8*")
    call = ", ".join(["i64* %sz", *arrays, *scalars, "double* %ret"])
    lines += [f"  %ret = bitcast i8* {ret} to double*", f"  %status = call i32 @\"{name}.body\"({call})",
              "  ret i32 %status", "}", ""]
    return lines


@functools.cache
def blas_dgemm() -> int:
    """The address of BLAS's ``dgemm`` (Fortran arguments, 32-bit integers), as SciPy
    exports it to Cython; the one that Numba's ``np.dot`` calls. SciPy's
    ``cython_blas`` module is loaded by itself where ``scipy.linalg`` is not yet
    imported: the whole package takes a fifth of a second to import."""
    module = sys.modules.get("scipy.linalg.cython_blas")
    if module is None and "scipy.linalg" not in sys.modules:
        try:
            import scipy

            folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
            (path,) = [p for p in (os.path.join(folder, "cython_blas" + s) for s in EXTENSION_SUFFIXES)
                       if os.path.exists(p)][:1]
            spec = importlib.util.spec_from_file_location("scipy.linalg.cython_blas", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception:
            module = None
    if module is None:
        import scipy.linalg.cython_blas as module
    capsule = module.__pyx_capi__["dgemm"]
    name = _api("PyCapsule_GetName", ctypes.c_char_p, ctypes.py_object)(capsule)
    return _api("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(capsule, name)
