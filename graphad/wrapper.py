"""The Numba function through which ``@njit`` code calls a compiled function.

A compiled function is called from Python through its own door
(:mod:`graphad.fastcall`) and batch loop. Numba's code cannot call those, so
the first ``@njit`` function that calls it imports a small generated module
(written to the cache folder, so that Numba caches it), ``graphad_<key>``,
holding one Numba function, ``point``, which calls the kernel through the
``@intrinsic`` ``_kernel``: its codegen links the kernel's IR in (or, for a
big kernel, calls graphad's compiled code by symbol), so Numba types a
handful of statements whatever the size of the program.

Arrays returned by ``point`` are typed :class:`ResultArray`, whose boxing skips
a step that Numba's own array boxing takes on every return (it unpickles the
array's Python type through a Python-level call).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import llvmlite.ir as lir
import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.boxing import box_array
from numba.core.datamodel.models import ArrayModel
from numba.extending import box, intrinsic, register_model

from ._version import __version__
from .llvm import Layout


class ResultArray(types.Array):
    """A fresh 1-D float64 array that a compiled function returns (see :func:`_box_result`)."""

    def __init__(self):
        super().__init__(types.float64, 1, "C", name="graphad.ResultArray")


register_model(ResultArray)(ArrayModel)


@box(ResultArray)
def _box_result(typ, val, c):
    """Numba's own array boxing, except that the array's Python type comes from
    the environment (as Numba already reads the dtype) instead of being
    unpickled at every call. Only that lookup is replaced; whatever else
    Numba's boxing serialises goes its usual way."""
    pyapi = c.pyapi
    ndarray = c.env_manager.read_const(c.env_manager.add_const(np.ndarray))
    marker = object()
    serialize, unserialize = pyapi.serialize_object, pyapi.unserialize
    pyapi.serialize_object = lambda obj: marker if obj is np.ndarray else serialize(obj)
    pyapi.unserialize = lambda ref: ndarray if ref is marker else unserialize(ref)
    try:
        return box_array(types.Array(types.float64, 1, "C"), val, c)
    finally:
        del pyapi.serialize_object, pyapi.unserialize


@intrinsic
def as_result(typingctx, array):
    """``array``, typed :class:`ResultArray` for returning."""

    def codegen(context, builder, sig, args):
        context.nrt.incref(builder, sig.args[0], args[0])
        return args[0]

    return ResultArray()(array), codegen


def kernel_signature(in_sizes, out_sizes, argtys):
    """The Numba signature of a kernel call, or None if the argument types are wrong."""
    expected = [types.float64 if s == 0 else "vector" for s in in_sizes]
    expected += ["vector" for s in out_sizes if s]
    if len(argtys) != len(expected):
        return None
    for want, got in zip(expected, argtys):
        if want == "vector":
            if not (isinstance(got, types.Array) and got.ndim == 1 and got.dtype == types.float64
                    and got.layout == "C"):  # the kernel reads a vector's values one after another
                return None
        elif got != want:
            return None
    n_scalar = sum(1 for s in out_sizes if s == 0)
    if n_scalar == 0:
        return types.none(*argtys)
    if n_scalar == 1:
        return types.float64(*argtys)
    return types.UniTuple(types.float64, n_scalar)(*argtys)


IR: dict[str, str] = {}  # kernel name -> its IR, handed over for the import of its module


def ir_for(name: str) -> str:
    """The IR of the kernel ``name``, for its module as it is imported (graphad checked
    it, or wrote it anew from the program, just before: no cache file is read here)."""
    return IR.pop(name)


def kernel_codegen(ir, name, in_sizes, out_sizes):
    """Codegen of a kernel call: link the IR text in (small kernels; for big ones
    ``ir`` is None: they are compiled separately and found by symbol) and call it
    with pointers."""

    def codegen(context, builder, sig, args):
        if ir is not None:
            context.active_code_library.add_llvm_module(llvm.parse_assembly(ir))
        ptr = lir.DoubleType().as_pointer()
        fnty = lir.FunctionType(lir.VoidType(), [ptr] * (len(in_sizes) + len(out_sizes)))
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        pointers = []
        for g, size in enumerate(in_sizes):
            if size == 0:
                pointers.append(cgutils.alloca_once_value(builder, args[g]))
            else:
                pointers.append(context.make_array(sig.args[g])(context, builder, args[g]).data)
        vector_outs = iter(range(len(in_sizes), len(args)))
        slots = []
        for size in out_sizes:
            if size == 0:
                slots.append(cgutils.alloca_once(builder, lir.DoubleType()))
                pointers.append(slots[-1])
            else:
                k = next(vector_outs)
                pointers.append(context.make_array(sig.args[k])(context, builder, args[k]).data)
        builder.call(fn, pointers)
        values = [builder.load(s) for s in slots]
        if not values:
            return context.get_dummy_value()
        if len(values) == 1:
            return values[0]
        return context.make_tuple(builder, sig.return_type, values)

    return codegen


def source(key: str, name: str, layout: Layout, in_names, single: bool, nogil: bool, linked: bool) -> str:
    """Python source of the module holding the function ``point``."""
    ins = [f"a{g}" for g in range(len(layout.in_sizes))]
    vec_out = [h for h, s in enumerate(layout.out_sizes) if s]
    scalar_out = [h for h, s in enumerate(layout.out_sizes) if not s]
    # the kernel call returns the scalar outputs: one float, or a tuple of them
    scalar = {h: "r" if len(scalar_out) == 1 else f"r[{k}]" for k, h in enumerate(scalar_out)}
    kargs = ins + [f"o{h}" for h in vec_out]
    lines = [
        f"# Generated by graphad {__version__} for the program {key}: do not edit.",
        "import numba",
        "import numpy as np",
        "from numba.extending import intrinsic",
        "from graphad.numba_cache import seal",
        "from graphad.wrapper import as_result, ir_for, kernel_codegen, kernel_signature",
        "",
        f"_IN, _OUT = {layout.in_sizes!r}, {layout.out_sizes!r}",
        f"_IR = ir_for({name!r}) if {linked} else None",
        "",
        "",
        "@intrinsic",
        f"def _kernel(typingctx, {', '.join(kargs)}):",
        f"    sig = kernel_signature(_IN, _OUT, ({''.join(a + ', ' for a in kargs)}))",
        f"    return sig, kernel_codegen(_IR, {name!r}, _IN, _OUT)",
        "",
        "",
        f"@numba.njit(cache=True, nogil={nogil})",
        f"def point({', '.join(ins)}):",
    ]
    for g, size in enumerate(layout.in_sizes):
        if size:
            lines.append(f"    a{g} = np.ascontiguousarray(a{g})  # a strided view: its values, in order")
            lines.append(f"    if a{g}.shape[0] != {size}:")
            # user text (a symbol's name) enters generated source only as a string literal
            message = f"input {g} ({in_names[g]}) must have length {size}"
            lines.append(f"        raise ValueError({message!r})")
    lines += [f"    o{h} = np.empty({layout.out_sizes[h]})" for h in vec_out]
    result = "r = " if scalar_out else ""
    lines.append(f"    {result}_kernel({', '.join(kargs)})")
    parts = [scalar[h] if h in scalar else f"as_result(o{h})" for h in range(len(layout.out_sizes))]
    lines.append(f"    return {parts[0] if single else '(' + ', '.join(parts) + ',)'}")
    lines += ["", "", "seal(point)  # Numba's cache files of it, checked before they are read"]
    return "\n".join(lines) + "\n"
