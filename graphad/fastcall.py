"""A call that costs about what calling ``math.exp`` costs.

A call through a Python-level ``__call__`` costs far more than the arithmetic
of a small kernel (the argument tuple, the method call, the checks). So
compiled functions are instances of a subclass of
:class:`graphad.compiler.Compiled` (:func:`door_type`, made with CPython's
own ``PyType_FromSpecWithBases``) that adds one field to each instance: a
*vectorcall* function, which Python calls for ``fn(...)`` with the arguments
as they lie on its stack, no tuple built. :func:`install` fills it with a
function written here in LLVM IR (:func:`entry_ir`) and compiled in one
module with the kernel (the *door*). When the call has exactly the right
number of positional arguments, each an exact ``float`` or ``np.float64``
or, for a vector input, an exact 1-D float64 ``ndarray`` of the right
length, C-contiguous and aligned, the door reads them in place, runs the
kernel (with the GIL released for long kernels) and returns a float, a fresh
array or a tuple of them. Any other call goes on to
``Compiled._door_fallback(fn, *args, **kwargs)``: ints, lists, other dtypes
or layouts, batches of points, keywords and wrong counts get their
conversions and errors there.

The door reads CPython's and NumPy's object layouts (a float's value, a
tuple's items, an array's data, shape, dtype and flags), so they are checked
on the running interpreter first; where one differs (PyPy, a free-threaded
build, a layout it does not know), or where ``GRAPHAD_FAST_CALL=0``, there is
no door and every call takes the Python path.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
import sysconfig

import llvmlite.binding as llvm
import numpy as np

from .llvm import Layout

_OB_TYPE, _FLOAT_VALUE, _TUPLE_SIZE, _TUPLE_ITEMS = 8, 16, 16, 24
# NumPy's PyArrayObject: data, nd, dimensions, ..., descr, flags; NPY_DOUBLE; C-contiguous | aligned
_ARRAY_DATA, _ARRAY_ND, _ARRAY_SHAPE, _ARRAY_DESCR, _ARRAY_FLAGS = 16, 24, 32, 56, 64
_NPY_DOUBLE, _C_ALIGNED, _PyArray_New = 12, 0x1 | 0x100, 93  # the last: its index in NumPy's C API table
_Py_tp_call, _Py_tp_members = 50, 72  # slot numbers (typeslots.h)
_HAVE_VECTORCALL, _DEFAULT, _BASETYPE = 1 << 11, 1 << 18, 1 << 10
_T_PYSSIZET, _READONLY = 19, 1
_API = ("PyFloat_FromDouble", "PyTuple_New", "PyDict_New", "PyDict_SetItem", "Py_IncRef", "Py_DecRef",
        "PyEval_SaveThread", "PyEval_RestoreThread", "PyObject_Call")
DOOR_SYMBOLS = ("call", "next", "float", "float64", "ndarray", "f64")  # @name.<these>
_fallbacks: dict[int, object] = {}  # what the doors call for every other call
_keep: list = []  # the type spec's C structures, alive as long as the type


def _api(name: str, restype, *argtypes):
    """A C API function with a prototype of our own (``ctypes.pythonapi``'s are shared)."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


class _Member(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int), ("offset", ctypes.c_ssize_t),
                ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]


class _Slot(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_int), ("pfunc", ctypes.c_void_p)]


class _Spec(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("basicsize", ctypes.c_int), ("itemsize", ctypes.c_int),
                ("flags", ctypes.c_uint), ("slots", ctypes.POINTER(_Slot))]


def _layout_is_known() -> bool:
    if os.environ.get("GRAPHAD_FAST_CALL", "1").strip() == "0":
        return False
    if (sys.implementation.name != "cpython" or struct.calcsize("P") != 8
            or sysconfig.get_config_var("Py_GIL_DISABLED")):
        return False
    x, y, items = 1.25, np.float64(1.25), (0.5, 2.5)
    return (ctypes.c_void_p.from_address(id(x) + _OB_TYPE).value == id(float)
            and ctypes.c_double.from_address(id(x) + _FLOAT_VALUE).value == 1.25
            and ctypes.c_void_p.from_address(id(y) + _OB_TYPE).value == id(np.float64)
            and ctypes.c_double.from_address(id(y) + _FLOAT_VALUE).value == 1.25
            and ctypes.c_ssize_t.from_address(id(items) + _TUPLE_SIZE).value == 2
            and ctypes.c_void_p.from_address(id(items) + _TUPLE_ITEMS + 8).value == id(items[1]))


@functools.cache
def objects_layout_is_known() -> bool:
    """Whether compiled code may read floats' values and arrays' data pointers in place
    (:mod:`graphad.lowering.native`'s ``.objects`` entry): the layouts the door reads."""
    return _layout_is_known() and _array_new() is not None


@functools.cache
def _array_new() -> int | None:
    """The address of NumPy's ``PyArray_New``, once the array layout that the door
    reads is checked on this NumPy; None if it differs."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1
        from numpy.core import _multiarray_umath as umath
    try:
        get = _api("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)
        api = (ctypes.c_void_p * 100).from_address(get(umath._ARRAY_API, None))
        a = np.arange(3.0)
        at = lambda offset, ty: ty.from_address(id(a) + offset).value  # noqa: E731
        if not (api[2] == id(np.ndarray) and at(_ARRAY_DATA, ctypes.c_void_p) == a.ctypes.data
                and at(_ARRAY_ND, ctypes.c_int) == 1
                and ctypes.c_int64.from_address(at(_ARRAY_SHAPE, ctypes.c_void_p)).value == 3
                and at(_ARRAY_DESCR, ctypes.c_void_p) == id(np.dtype(np.float64))
                and at(_ARRAY_FLAGS, ctypes.c_int) & _C_ALIGNED == _C_ALIGNED):
            return None
        c = ctypes
        new = c.PYFUNCTYPE(c.py_object, c.c_void_p, c.c_int, c.POINTER(c.c_int64), c.c_int, c.c_void_p,
                           c.c_void_p, c.c_int, c.c_int, c.c_void_p)(api[_PyArray_New])
        made = new(id(np.ndarray), 1, ctypes.byref(ctypes.c_int64(4)), _NPY_DOUBLE, None, None, 0, 0, None)
        if not (type(made) is np.ndarray and made.shape == (4,) and made.dtype == np.float64
                and made.flags.c_contiguous and made.flags.writeable and made.flags.owndata):
            return None
    except (AttributeError, OSError, ValueError, TypeError):
        return None
    llvm.add_symbol("graphad.PyArray_New", api[_PyArray_New])
    return api[_PyArray_New]


def data_pointers(arrays) -> list[int]:
    """The data pointers of NumPy arrays: read in place where NumPy's layout is the
    one the door reads (about 0.15 µs an array, against 1.1 µs for ``a.ctypes.data``)."""
    if objects_layout_is_known():
        at = ctypes.c_void_p.from_address
        return [at(id(a) + _ARRAY_DATA).value for a in arrays]
    return [a.ctypes.data for a in arrays]


def fits(layout: Layout) -> bool:
    """Whether a kernel of this layout can have the door: floats, and 1-D arrays
    where NumPy's layout is the one the door reads."""
    return not (any(layout.in_sizes) or any(layout.out_sizes)) or _array_new() is not None


@functools.cache
def door_type(base: type) -> type | None:
    """``base`` with one more field per instance, its vectorcall function (empty
    until :func:`install` fills it); None where the door is off."""
    try:
        if not _layout_is_known():
            return None
        members = (_Member * 2)(_Member(b"__vectorcalloffset__", _T_PYSSIZET, base.__basicsize__, _READONLY))
        slots = (_Slot * 2)(_Slot(_Py_tp_members, ctypes.cast(members, ctypes.c_void_p)))
        name = f"{__name__}.{base.__qualname__}Door".encode()  # found here by pickle
        spec = _Spec(name, base.__basicsize__ + 8, 0, _DEFAULT | _BASETYPE | _HAVE_VECTORCALL, slots)
        make = _api("PyType_FromSpecWithBases", ctypes.py_object, ctypes.POINTER(_Spec), ctypes.py_object)
        door = make(ctypes.byref(spec), (base,))
        get_slot = _api("PyType_GetSlot", ctypes.c_void_p, ctypes.py_object, ctypes.c_int)
        if (door.__basicsize__ != base.__basicsize__ + 8
                or get_slot(door, _Py_tp_call) != get_slot(base, _Py_tp_call)):
            return None
    except (AttributeError, OSError, ValueError, TypeError, SystemError):
        return None
    _keep.append((members, slots, spec, name))
    door.__doc__ = base.__doc__
    globals()[door.__name__] = door
    for api in _API:
        llvm.add_symbol(f"graphad.{api}", ctypes.cast(getattr(ctypes.pythonapi, api), ctypes.c_void_p).value)
    return door


def entry_ir(name: str, layout: Layout, single: bool, nogil: bool) -> str:
    """``PyObject* @name.call(callable, args, nargsf, kwnames)``: the vectorcall
    function of the kernel ``@name`` (see the module docstring). ``@name.next``
    holds the function that takes every other call, and ``@name.float``,
    ``@name.float64``, ``@name.ndarray`` and ``@name.f64`` the addresses of
    ``float``, ``np.float64``, ``np.ndarray`` and the float64 dtype, all set when
    the code is loaded. With ``nogil`` the kernel runs with the GIL released."""
    ins, outs = layout.in_sizes, layout.out_sizes
    lines = [
        *(f'@"{name}.{g}" = global i8* null' for g in DOOR_SYMBOLS[1:]),
        "declare i8* @graphad.PyFloat_FromDouble(double)",
        "declare i8* @graphad.PyTuple_New(i64)",
        "declare i8* @graphad.PyDict_New()",
        "declare i32 @graphad.PyDict_SetItem(i8*, i8*, i8*)",
        "declare void @graphad.Py_IncRef(i8*)",
        "declare void @graphad.Py_DecRef(i8*)",
        "declare i8* @graphad.PyArray_New(i8*, i32, i64*, i32, i64*, i8*, i32, i32, i8*)",
        "declare i8* @graphad.PyEval_SaveThread()",
        "declare i8* @graphad.PyObject_Call(i8*, i8*, i8*)",
        "declare void @graphad.PyEval_RestoreThread(i8*)",
        f'define i8* @"{name}.call"(i8* %self, i8** %args, i64 %nargsf, i8* %kwnames) {{',
        "entry:",
        *(f"  %out{h} = alloca double" for h, k in enumerate(outs) if not k),
        *(f"  %dims{h} = alloca i64" for h, k in enumerate(outs) if k),
        *(f'  %G.{g} = load i8*, i8** @"{name}.{g}"' for g in ("float", "float64", "ndarray", "f64")),
        "  %nargs = and i64 %nargsf, 9223372036854775807",  # less PY_VECTORCALL_ARGUMENTS_OFFSET
        "  %haskw = icmp ne i8* %kwnames, null",
        f"  %right = icmp eq i64 %nargs, {len(ins)}",
        "  %plain = xor i1 %haskw, true",
        "  %go = and i1 %plain, %right",
        f"  br i1 %go, label %{'arg0' if ins else 'run'}, label %slow",
    ]

    def field(dst, obj, offset, ty):
        return [f"  {dst}.p = getelementptr i8, i8* {obj}, i64 {offset}",
                f"  {dst}.q = bitcast i8* {dst}.p to {ty}*",
                f"  {dst} = load {ty}, {ty}* {dst}.q"]

    pointers = []
    for g, k in enumerate(ins):
        after = f"arg{g + 1}" if g + 1 < len(ins) else "run"
        lines += [f"arg{g}:",
                  f"  %a{g}.p = getelementptr i8*, i8** %args, i64 {g}",
                  f"  %a{g} = load i8*, i8** %a{g}.p",
                  *field(f"%t{g}", f"%a{g}", _OB_TYPE, "i8*")]
        if not k:  # a float or np.float64: the kernel reads its value where it lies
            lines += [f"  %is{g}.a = icmp eq i8* %t{g}, %G.float",
                      f"  %is{g}.b = icmp eq i8* %t{g}, %G.float64",
                      f"  %is{g} = or i1 %is{g}.a, %is{g}.b",
                      f"  br i1 %is{g}, label %{after}, label %slow"]
            pointers.append((f"%a{g}", _FLOAT_VALUE))
            continue
        # an exact ndarray, 1-D of length k, float64 (native), C-contiguous and aligned
        lines += [f"  %is{g} = icmp eq i8* %t{g}, %G.ndarray",
                  f"  br i1 %is{g}, label %array{g}, label %slow",
                  f"array{g}:",
                  *field(f"%nd{g}", f"%a{g}", _ARRAY_ND, "i32"),
                  *field(f"%shape{g}", f"%a{g}", _ARRAY_SHAPE, "i64*"),
                  *field(f"%descr{g}", f"%a{g}", _ARRAY_DESCR, "i8*"),
                  *field(f"%flags{g}", f"%a{g}", _ARRAY_FLAGS, "i32"),
                  f"  %one{g} = icmp eq i32 %nd{g}, 1",
                  f"  %dtype{g} = icmp eq i8* %descr{g}, %G.f64",
                  f"  %kept{g} = and i32 %flags{g}, {_C_ALIGNED}",
                  f"  %packed{g} = icmp eq i32 %kept{g}, {_C_ALIGNED}",
                  f"  %c1{g} = and i1 %one{g}, %dtype{g}",
                  f"  %c2{g} = and i1 %c1{g}, %packed{g}",
                  f"  br i1 %c2{g}, label %length{g}, label %slow",
                  f"length{g}:",
                  f"  %n{g} = load i64, i64* %shape{g}",
                  f"  %long{g} = icmp eq i64 %n{g}, {k}",
                  f"  br i1 %long{g}, label %{after}, label %slow"]
        pointers.append((f"%a{g}", None))
    lines.append("run:")
    args = []
    for g, (obj, offset) in enumerate(pointers):
        if offset is None:
            lines += field(f"%v{g}.data", obj, _ARRAY_DATA, "i8*")
            lines.append(f"  %v{g} = bitcast i8* %v{g}.data to double*")
        else:
            lines += [f"  %v{g}.p = getelementptr i8, i8* {obj}, i64 {offset}",
                      f"  %v{g} = bitcast i8* %v{g}.p to double*"]
        args.append(f"double* %v{g}")
    made = []  # the output arrays made so far, to drop if a later one fails
    for h, k in enumerate(outs):
        if not k:
            args.append(f"double* %out{h}")
            continue
        lines += [f"  store i64 {k}, i64* %dims{h}",
                  f"  %arr{h} = call i8* @graphad.PyArray_New(i8* %G.ndarray, i32 1, i64* %dims{h}, "
                  f"i32 {_NPY_DOUBLE}, i64* null, i8* null, i32 0, i32 0, i8* null)",
                  f"  %arr{h}.ok = icmp ne i8* %arr{h}, null",
                  f"  br i1 %arr{h}.ok, label %made{h}, label %undo{h}",
                  f"undo{h}:",
                  *(f"  call void @graphad.Py_DecRef(i8* %arr{j})" for j in made),
                  "  ret i8* null",
                  f"made{h}:",
                  *field(f"%o{h}.data", f"%arr{h}", _ARRAY_DATA, "i8*"),
                  f"  %o{h} = bitcast i8* %o{h}.data to double*"]
        made.append(h)
        args.append(f"double* %o{h}")
    if nogil:
        lines.append("  %thread = call i8* @graphad.PyEval_SaveThread()")
    lines.append(f"  call void @{name}({', '.join(args)})")
    if nogil:
        lines.append("  call void @graphad.PyEval_RestoreThread(i8* %thread)")
    for h, k in enumerate(outs):
        if not k:
            lines.append(f"  %r{h} = load double, double* %out{h}")
    if single:
        if outs[0]:
            lines.append("  ret i8* %arr0")
        else:
            lines += ["  %box = call i8* @graphad.PyFloat_FromDouble(double %r0)", "  ret i8* %box"]
    else:
        lines += [f"  %tuple = call i8* @graphad.PyTuple_New(i64 {len(outs)})",
                  "  %made = icmp ne i8* %tuple, null",
                  "  br i1 %made, label %fill.arrays, label %drop.arrays",
                  "drop.arrays:",
                  *(f"  call void @graphad.Py_DecRef(i8* %arr{j})" for j in made),
                  "  ret i8* null",
                  "fill.arrays:"]

        def put(h, value):
            return [f"  %s{h}.p = getelementptr i8, i8* %tuple, i64 {_TUPLE_ITEMS + 8 * h}",
                    f"  %s{h}.q = bitcast i8* %s{h}.p to i8**",
                    f"  store i8* {value}, i8** %s{h}.q"]

        for h in made:  # the tuple takes the arrays' references; a failure below drops it all
            lines += put(h, f"%arr{h}")
        floats = [h for h, k in enumerate(outs) if not k]
        lines.append(f"  br label %{f'box{floats[0]}' if floats else 'done'}")
        for i, h in enumerate(floats):
            after = f"box{floats[i + 1]}" if i + 1 < len(floats) else "done"
            lines += [f"box{h}:",
                      f"  %f{h} = call i8* @graphad.PyFloat_FromDouble(double %r{h})",
                      f"  %made{h}.f = icmp ne i8* %f{h}, null",
                      f"  br i1 %made{h}.f, label %set{h}, label %drop",
                      f"set{h}:",
                      *put(h, f"%f{h}"),
                      f"  br label %{after}"]
        lines += ["done:", "  ret i8* %tuple",
                  "drop:", "  call void @graphad.Py_DecRef(i8* %tuple)", "  ret i8* null"]
    lines += _slow_path(name)
    return "\n".join(lines) + "\n"


def _slow_path(name: str) -> list[str]:
    """Any other call: the function and the positional arguments as a tuple and the
    keywords as a dict, passed to ``@name.next``."""
    return [
        "slow:",
        "  %nargs.s = add i64 %nargs, 1",
        "  %tuple.s = call i8* @graphad.PyTuple_New(i64 %nargs.s)",
        "  %made.s = icmp ne i8* %tuple.s, null",
        "  br i1 %made.s, label %first, label %fail",
        "first:",  # the function itself, then the arguments
        "  call void @graphad.Py_IncRef(i8* %self)",  # PyTuple_SET_ITEM steals a reference
        f"  %first.p = getelementptr i8, i8* %tuple.s, i64 {_TUPLE_ITEMS}",
        "  %first.q = bitcast i8* %first.p to i8**",
        "  store i8* %self, i8** %first.q",
        "  br label %fill",
        "fill:",
        "  %j = phi i64 [0, %first], [%j.next, %fill.one]",
        "  %more = icmp slt i64 %j, %nargs",
        "  br i1 %more, label %fill.one, label %keywords",
        "fill.one:",
        "  %arg.p = getelementptr i8*, i8** %args, i64 %j",
        "  %arg = load i8*, i8** %arg.p",
        "  call void @graphad.Py_IncRef(i8* %arg)",
        f"  %slot.k = add i64 %j, {_TUPLE_ITEMS // 8 + 1}",
        "  %items = bitcast i8* %tuple.s to i8**",
        "  %slot.p = getelementptr i8*, i8** %items, i64 %slot.k",
        "  store i8* %arg, i8** %slot.p",
        "  %j.next = add i64 %j, 1",
        "  br label %fill",
        "keywords:",
        "  br i1 %haskw, label %dict, label %call",
        "dict:",
        "  %kw = call i8* @graphad.PyDict_New()",
        "  %made.d = icmp ne i8* %kw, null",
        "  br i1 %made.d, label %names, label %drop.s",
        "names:",
        f"  %nk.p = getelementptr i8, i8* %kwnames, i64 {_TUPLE_SIZE}",
        "  %nk.q = bitcast i8* %nk.p to i64*",
        "  %nk = load i64, i64* %nk.q",
        "  br label %name",
        "name:",
        "  %m = phi i64 [0, %names], [%m.next, %name.one]",
        "  %more.k = icmp slt i64 %m, %nk",
        "  br i1 %more.k, label %name.one, label %call",
        "name.one:",
        f"  %key.k = add i64 %m, {_TUPLE_ITEMS // 8}",
        "  %names.items = bitcast i8* %kwnames to i8**",
        "  %key.p = getelementptr i8*, i8** %names.items, i64 %key.k",
        "  %key = load i8*, i8** %key.p",
        "  %value.k = add i64 %m, %nargs",
        "  %value.p = getelementptr i8*, i8** %args, i64 %value.k",
        "  %value = load i8*, i8** %value.p",
        "  %set = call i32 @graphad.PyDict_SetItem(i8* %kw, i8* %key, i8* %value)",
        "  %m.next = add i64 %m, 1",
        "  %bad = icmp ne i32 %set, 0",
        "  br i1 %bad, label %drop.sd, label %name",
        "call:",
        "  %kwargs = phi i8* [null, %keywords], [%kw, %name]",
        f'  %next = load i8*, i8** @"{name}.next"',
        "  %r = call i8* @graphad.PyObject_Call(i8* %next, i8* %tuple.s, i8* %kwargs)",
        "  call void @graphad.Py_DecRef(i8* %tuple.s)",
        "  %nokw = icmp eq i8* %kwargs, null",
        "  br i1 %nokw, label %return, label %drop.kw",
        "drop.kw:",
        "  call void @graphad.Py_DecRef(i8* %kwargs)",
        "  br label %return",
        "return:",
        "  ret i8* %r",
        "drop.sd:",
        "  call void @graphad.Py_DecRef(i8* %kw)",
        "  br label %drop.s",
        "drop.s:",
        "  call void @graphad.Py_DecRef(i8* %tuple.s)",
        "  br label %fail",
        "fail:",
        "  ret i8* null",
        "}",
    ]


def install(fn, addresses: dict[str, int], name: str, fallback) -> None:
    """Open the door of the compiled function ``fn`` (an instance of :func:`door_type`),
    whose machine code holds ``@name.call`` and its globals at ``addresses``. A call
    the door does not take goes to ``fallback(fn, *args, **kwargs)``, which is kept
    alive here (the door holds its address)."""
    _fallbacks[id(fallback)] = fallback  # even if the class attribute is replaced later
    values = {"next": id(fallback), "float": id(float), "float64": id(np.float64),
              "ndarray": id(np.ndarray), "f64": id(np.dtype(np.float64))}
    for g, value in values.items():
        ctypes.c_void_p.from_address(addresses[f"{name}.{g}"]).value = value
    ctypes.c_void_p.from_address(id(fn) + type(fn).__basicsize__ - 8).value = addresses[f"{name}.call"]


def has_door(fn) -> bool:
    """Whether calls of ``fn`` with floats take the fast door."""
    door = door_type(type(fn).__base__)
    return door is not None and type(fn) is door and bool(
        ctypes.c_void_p.from_address(id(fn) + door.__basicsize__ - 8).value)
