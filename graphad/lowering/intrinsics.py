"""Elementwise ops that array kernels call as Numba intrinsics: LLVM instructions
inlined where they are used, as the scalar compiler's IR templates are.

Numba compiles a Python conditional expression to branches, which keep a loop
from being vectorised; ``dmul`` (the chain product, zero if either factor is
zero, even times inf or nan) is the product with a fix-up behind a branch
that a zero or nan product takes, which the vectoriser if-converts.
"""

import functools

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .. import vecmath
from ..registry import OPS


@intrinsic
def dmul(typingctx, a, b):
    """``0.0 if a == 0.0 or b == 0.0 else a * b``: the product, and a fix-up only
    where it is zero or nan."""
    if a != types.float64 or b != types.float64:
        return None

    def codegen(context, builder, signature, args):
        x, y = args
        zero = ir.Constant(ir.DoubleType(), 0.0)
        product = builder.fmul(x, y)
        # only a zero or nan product can differ (-0.0 * 5 is 0.0, 0 * inf is 0): a branch
        # that is seldom taken, which the loop vectoriser turns back into selects
        before = builder.block
        with builder.if_then(builder.fcmp_unordered("==", product, zero), likely=False):
            either = builder.or_(builder.fcmp_ordered("==", x, zero), builder.fcmp_ordered("==", y, zero))
            fixed = builder.select(either, zero, product)
            fixing = builder.block
        result = builder.phi(ir.DoubleType())
        result.add_incoming(product, before)
        result.add_incoming(fixed, fixing)
        return result

    return types.float64(types.float64, types.float64), codegen


def simd_ops() -> frozenset[str]:
    """The registry ops whose IR calls a function with SIMD versions on this machine."""
    found = vecmath.variants()
    return frozenset(op for op, spec in OPS.items() if spec.ir and any(
        m.group(1) in found for m in vecmath.CALL.finditer(spec.ir)))


@functools.cache
def simd(op: str):
    """The elementwise op ``op`` as an intrinsic: a call of a function made of the
    op's own IR template, its math calls marked with their SIMD versions
    (:func:`graphad.vecmath.annotate`). Inlined into a loop, it lets the loop
    vectoriser call libmvec, as in the scalar compiler's batch loops."""
    spec = OPS[op]
    name = f"graphad.simd.{op}"
    params = [f"%a{k}" for k in range(spec.arity)]
    body = spec.ir.format(*params, out="%r", t="%r.")
    callees = {m.group(1): m.group(2).count("double") for m in vecmath.CALL.finditer(body)}
    text = vecmath.annotate("\n".join([
        # weak_odr: every use links a copy, the linker keeps one, and none is dropped
        # before the linking (a linkonce one would be, unused in its own module)
        f"define weak_odr double @\"{name}\"({', '.join('double ' + p for p in params)}) "
        "alwaysinline nounwind {",
        "entry:", *("  " + line for line in body.split("\n")), "  ret double %r", "}",
        *(f"declare double @{fn}({', '.join(['double'] * n)})" for fn, n in callees.items()),
    ]) + "\n")
    fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType()] * spec.arity)

    def codegen(context, builder, signature, args):
        context.active_code_library.add_llvm_module(llvm.parse_assembly(text))
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)

    def typer(typingctx, *args):
        if len(args) != spec.arity or any(a != types.float64 for a in args):
            return None
        return types.float64(*args), codegen

    def unary(typingctx, a):
        return typer(typingctx, a)

    def binary(typingctx, a, b):
        return typer(typingctx, a, b)

    fn = unary if spec.arity == 1 else binary
    fn.__name__ = fn.__qualname__ = f"simd_{op}"
    return intrinsic(fn)
