"""A call with floats that costs about what calling ``math.exp`` costs.

Numba's dispatcher spends most of a small call (120-150 ns) on finding the
overload for the argument types and on argument tuples. A compiled function
whose inputs and outputs are all floats gets a faster door: its own subclass
of :class:`graphad.compiler.Compiled` whose ``tp_call`` slot (what Python runs
for ``fn(...)``) is a function written here in LLVM IR. When the call has
exactly the right number of positional arguments, all exact ``float``
objects, it reads their values, runs the kernel and returns a float (or a
tuple of them). Any other call goes on, unchanged, to the dispatcher's own
``tp_call``: ints, NumPy scalars, arrays, keywords and wrong counts get
exactly the conversions and errors they always got, and the function stays a
Numba dispatcher (callable from ``@njit`` code, picklable).

It reads CPython's object layout (a float's value, a tuple's items, a type's
``tp_call`` slot), so :func:`available` checks that layout on the running
interpreter first and turns the fast door off where it differs (PyPy, a
free-threaded build, a layout it does not know) or where
``GRAPHAD_FAST_CALL=0``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
import sysconfig

import llvmlite.binding as llvm

from . import kernels
from .llvm import Layout

_TP_CALL = 16 * 8  # offset of tp_call in a type object (CPython 3.8 to 3.14, 64-bit)
_OB_TYPE, _FLOAT_VALUE, _TUPLE_SIZE, _TUPLE_ITEMS = 8, 16, 16, 24
_Py_tp_call = 50  # the slot number PyType_GetSlot takes
_API = ("PyFloat_FromDouble", "PyTuple_New", "Py_DecRef")  # what the entry calls


@functools.cache
def available() -> bool:
    """Whether this interpreter's objects are laid out as the entry expects."""
    if os.environ.get("GRAPHAD_FAST_CALL", "1").strip() == "0":
        return False
    if (sys.implementation.name != "cpython" or struct.calcsize("P") != 8
            or sysconfig.get_config_var("Py_GIL_DISABLED")):
        return False
    try:
        x, items = 1.25, (0.5, 2.5)
        get_slot = ctypes.pythonapi.PyType_GetSlot
        get_slot.restype, get_slot.argtypes = ctypes.c_void_p, (ctypes.py_object, ctypes.c_int)

        class Probe:
            def __call__(self):
                return None

        ok = (ctypes.c_void_p.from_address(id(x) + _OB_TYPE).value == id(float)
              and ctypes.c_double.from_address(id(x) + _FLOAT_VALUE).value == 1.25
              and ctypes.c_ssize_t.from_address(id(items) + _TUPLE_SIZE).value == 2
              and ctypes.c_void_p.from_address(id(items) + _TUPLE_ITEMS + 8).value == id(items[1])
              and ctypes.c_void_p.from_address(id(Probe) + _TP_CALL).value == get_slot(Probe, _Py_tp_call))
    except (AttributeError, OSError, ValueError):
        return False
    if ok:
        for name in _API:
            address = ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value
            llvm.add_symbol(f"graphad.{name}", address)
    return ok


def fits(layout: Layout) -> bool:
    """Whether a kernel of this layout takes and gives floats only."""
    return not any(layout.in_sizes) and not any(layout.out_sizes)


def entry_ir(name: str, layout: Layout, single: bool) -> str:
    """``PyObject* @name.call(self, args, kwargs)``: the fast door for the kernel
    ``@name`` (see the module docstring); ``@name.next`` holds the dispatcher's
    own ``tp_call`` and ``@name.float`` the address of ``float``, both set when
    the code is loaded."""
    n_in, n_out = len(layout.in_sizes), len(layout.out_sizes)
    call = f"{name}.call"
    lines = [
        f'@"{name}.next" = global i8* null',
        f'@"{name}.float" = global i8* null',
        "declare i8* @graphad.PyFloat_FromDouble(double)",
        "declare i8* @graphad.PyTuple_New(i64)",
        "declare void @graphad.Py_DecRef(i8*)",
        f'define i8* @"{call}"(i8* %self, i8* %args, i8* %kwargs) {{',
        "entry:",
        *(f"  %out{h} = alloca double" for h in range(n_out)),
        f'  %float = load i8*, i8** @"{name}.float"',
        "  %haskw = icmp ne i8* %kwargs, null",
        "  br i1 %haskw, label %slow, label %count",
        "count:",
        f"  %size.p = getelementptr i8, i8* %args, i64 {_TUPLE_SIZE}",
        "  %size.q = bitcast i8* %size.p to i64*",
        "  %size = load i64, i64* %size.q",
        f"  %right = icmp eq i64 %size, {n_in}",
        "  br i1 %right, label %arg0, label %slow",
    ]
    for g in range(n_in):
        lines += [
            f"arg{g}:",
            f"  %a{g}.p = getelementptr i8, i8* %args, i64 {_TUPLE_ITEMS + 8 * g}",
            f"  %a{g}.q = bitcast i8* %a{g}.p to i8**",
            f"  %a{g} = load i8*, i8** %a{g}.q",
            f"  %t{g}.p = getelementptr i8, i8* %a{g}, i64 {_OB_TYPE}",
            f"  %t{g}.q = bitcast i8* %t{g}.p to i8**",
            f"  %t{g} = load i8*, i8** %t{g}.q",
            f"  %is{g} = icmp eq i8* %t{g}, %float",
            f"  br i1 %is{g}, label %{f'arg{g + 1}' if g + 1 < n_in else 'run'}, label %slow",
        ]
    lines.append("run:")
    pointers = []
    for g in range(n_in):  # the kernel reads each input through a pointer: the float's own value
        lines += [f"  %v{g}.p = getelementptr i8, i8* %a{g}, i64 {_FLOAT_VALUE}",
                  f"  %v{g} = bitcast i8* %v{g}.p to double*"]
        pointers.append(f"double* %v{g}")
    pointers += [f"double* %out{h}" for h in range(n_out)]
    lines.append(f"  call void @{name}({', '.join(pointers)})")
    for h in range(n_out):
        lines.append(f"  %r{h} = load double, double* %out{h}")
    if single:
        lines += ["  %box = call i8* @graphad.PyFloat_FromDouble(double %r0)", "  ret i8* %box"]
    else:
        lines += [f"  %tuple = call i8* @graphad.PyTuple_New(i64 {n_out})",
                  "  %made = icmp ne i8* %tuple, null",
                  "  br i1 %made, label %box0, label %fail"]
        for h in range(n_out):
            after = f"box{h + 1}" if h + 1 < n_out else "done"
            lines += [f"box{h}:",
                      f"  %f{h} = call i8* @graphad.PyFloat_FromDouble(double %r{h})",
                      f"  %made{h} = icmp ne i8* %f{h}, null",
                      f"  br i1 %made{h}, label %set{h}, label %drop",
                      f"set{h}:",
                      f"  %s{h}.p = getelementptr i8, i8* %tuple, i64 {_TUPLE_ITEMS + 8 * h}",
                      f"  %s{h}.q = bitcast i8* %s{h}.p to i8**",
                      f"  store i8* %f{h}, i8** %s{h}.q",
                      f"  br label %{after}"]
        lines += ["done:", "  ret i8* %tuple",
                  "drop:", "  call void @graphad.Py_DecRef(i8* %tuple)", "  br label %fail",
                  "fail:", "  ret i8* null"]
    lines += [
        "slow:",
        f'  %next = load i8*, i8** @"{name}.next"',
        "  %next.f = bitcast i8* %next to i8* (i8*, i8*, i8*)*",
        "  %r = tail call i8* %next.f(i8* %self, i8* %args, i8* %kwargs)",
        "  ret i8* %r",
        "}",
    ]
    return "\n".join(lines) + "\n"


def install(fn, name: str, base: str, kernel_ir: str, layout: Layout, single: bool,
            fresh: bool = False) -> None:
    """Give the compiled function ``fn`` (its kernel ``@name``, IR ``kernel_ir``)
    the fast door, compiled with the kernel into ``base.call.o`` (cached)."""
    text = entry_ir(name, layout, single)
    symbols = (f"{name}.call", f"{name}.next", f"{name}.float")
    addresses = kernels.load_object(base + ".call.o", lambda: kernel_ir + text, symbols, fresh, passes=2)
    cls = type(fn)
    ctypes.c_void_p.from_address(addresses[symbols[1]]).value = ctypes.c_void_p.from_address(
        id(cls) + _TP_CALL).value  # the dispatcher's own tp_call
    ctypes.c_void_p.from_address(addresses[symbols[2]]).value = id(float)
    door = type(cls.__name__, (cls,), {"__slots__": (), "__module__": cls.__module__, "__doc__": cls.__doc__})
    ctypes.c_void_p.from_address(id(door) + _TP_CALL).value = addresses[symbols[0]]
    fn.__class__ = door
