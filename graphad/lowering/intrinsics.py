"""Elementwise ops that array kernels call as Numba intrinsics: LLVM instructions
inlined where they are used, as the scalar compiler's IR templates are.

Numba compiles a Python conditional expression to branches, which keep a loop
from being vectorised; ``dmul`` (the chain product, zero if either factor is
zero, even times inf or nan) is a ``select`` here, as in the scalar compiler.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def dmul(typingctx, a, b):
    """``0.0 if a == 0.0 or b == 0.0 else a * b``, without branches."""
    if a != types.float64 or b != types.float64:
        return None

    def codegen(context, builder, signature, args):
        x, y = args
        zero = ir.Constant(ir.DoubleType(), 0.0)
        either = builder.or_(builder.fcmp_ordered("==", x, zero), builder.fcmp_ordered("==", y, zero))
        return builder.select(either, zero, builder.fmul(x, y))

    return types.float64(types.float64, types.float64), codegen
