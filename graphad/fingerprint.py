"""Fingerprints of Python functions, for cache keys.

A cached gradient was built with the partial-derivative rules of its ops, and
a cached program was optimised by the passes it names. Their keys must change
when what those functions compute changes: not only their own bytecode, but a
helper they call or a value they close over. A fingerprint covers the
function's bytecode and constants (nested functions included), the values in
its closure and the globals it reads, following functions a few calls deep
(graphad's own functions are covered by the fingerprint of graphad's source).
It is a best effort: a function that reads mutable state through an object
it was handed cannot be seen through.
"""

from __future__ import annotations

import hashlib
import types

import numpy as np

_DEPTH = 4  # how many calls deep helpers are followed


def fingerprint(fn) -> str:
    """A hex digest of what ``fn`` computes, as far as it can be seen."""
    return hashlib.sha256(repr(_parts(fn, 0, set())).encode()).hexdigest()


def _parts(obj, depth: int, seen: set):
    if isinstance(obj, types.ModuleType):
        return ("module", obj.__name__)
    code = getattr(obj, "__code__", None)
    if not isinstance(code, types.CodeType):
        return _value(obj)
    module = getattr(obj, "__module__", None) or ""
    if module == "graphad" or module.startswith("graphad."):  # graphad's own: its source stamp covers it
        return ("graphad", module, getattr(obj, "__qualname__", "?"))
    if id(obj) in seen or depth > _DEPTH:
        return ("function", module, getattr(obj, "__qualname__", "?"))
    seen.add(id(obj))
    closure = [_parts(cell.cell_contents, depth + 1, seen) for cell in (obj.__closure__ or ())
               if _filled(cell)]
    namespace = getattr(obj, "__globals__", {})
    read = [(name, _parts(namespace[name], depth + 1, seen)) for name in _names(code) if name in namespace]
    return (_code(code), closure, read)


def _filled(cell) -> bool:
    try:
        return cell.cell_contents is not _filled  # any value: the cell is filled
    except ValueError:  # an empty cell: a name assigned later in the enclosing function
        return False


def _names(code: types.CodeType) -> list[str]:
    """The global names a code object (and the code nested in it) reads."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _names(const)
    return sorted(set(names))


def _code(code: types.CodeType):
    consts = tuple(_code(c) if isinstance(c, types.CodeType) else _value(c) for c in code.co_consts)
    return (code.co_code, consts)


def _value(v):
    """A deterministic key of a value (no memory addresses, no hash order)."""
    if v is None or isinstance(v, (bool, int, float, complex, str, bytes)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(_value(x) for x in v))
    if isinstance(v, (set, frozenset)):
        return (type(v).__name__, tuple(sorted(repr(_value(x)) for x in v)))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((repr(_value(k)), repr(_value(x))) for k, x in v.items())))
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
    if isinstance(v, np.generic):
        return repr(v.item())
    return ("object", type(v).__module__, type(v).__qualname__)
