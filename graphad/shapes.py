"""Shapes: every node has one, checked when the node is built.

A shape is a tuple of dims. A dim is a whole number or a *size name* such as
``"n"``, bound when the graph is evaluated (or, later, called), so one graph
serves every batch size. Slicing a named axis with fixed offsets gives a
*derived* size such as ``"n-1"`` (``x[1:]`` of an ``x`` of shape ``("n",)``):
two derived sizes are the same when they read the same, so ``x[1:] - x[:-1]``
is checked when built. A scalar has shape ``()``.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable

import numpy as np

Dim = int | str
_DIM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)([+-][0-9]+)?$")


def as_shape(shape, what: str, derived: bool = True) -> tuple:
    """A user-given shape (a tuple of whole numbers and size names) as a tuple;
    ``derived=False`` refuses derived sizes such as ``"n-1"`` (a symbol's own
    shape names plain sizes)."""
    if isinstance(shape, (int, np.integer, str)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{what}: a shape is a tuple of whole numbers and size names, not {shape!r}")
    out = []
    for d in shape:
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            if d < 0:
                raise ValueError(f"{what}: the shape {tuple(shape)} has a negative size")
            out.append(int(d))
        elif isinstance(d, str):
            m = _DIM.match(d)
            if m is None or keyword.iskeyword(m.group(1)) or (m.group(2) and not derived):
                raise ValueError(f"{what}: the size name {d!r} is not a valid name (use an ASCII identifier)")
            out.append(d)
        else:
            raise TypeError(f"{what}: the shape {tuple(shape)!r} holds {d!r}; sizes are numbers or names")
    return tuple(out)


def fmt(shape: tuple) -> str:
    """A shape as it is written in messages: ``(n, 784)``."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def split(d: str) -> tuple[str, int]:
    """A named dim as (name, offset): ``"n-1"`` -> ``("n", -1)``."""
    m = _DIM.match(d)
    return m.group(1), int(m.group(2) or 0)


def add(d: Dim, k: int) -> Dim:
    """The dim ``d + k``."""
    if isinstance(d, int):
        return d + k
    name, off = split(d)
    off += k
    return name if off == 0 else f"{name}{off:+d}"


def size(shape: tuple) -> int | None:
    """The number of elements, or None if a size is named."""
    return math.prod(shape) if all(isinstance(d, int) for d in shape) else None


def broadcast(shapes: Iterable[tuple], what: str) -> tuple:
    """NumPy's broadcasting on shapes with names: a size 1 stretches to any size,
    other sizes must be equal (a name equals only itself)."""
    shapes = list(shapes)
    ndim = max(len(s) for s in shapes)
    out = []
    for k in range(ndim):
        dim = 1
        for s in shapes:
            d = s[k - ndim + len(s)] if k >= ndim - len(s) else 1
            if d == 1 or d == dim:
                continue
            if dim != 1:
                raise ValueError(
                    f"{what}: the shapes {' and '.join(fmt(s) for s in shapes)} do not broadcast "
                    f"(size {dim} against {d})"
                )
            dim = d
        out.append(dim)
    return tuple(out)


def reduced_axes(shape: tuple, target: tuple) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How ``shape`` (a broadcast of ``target``) sums back to ``target``: the
    leading axes to drop, and the axes (after those) of size 1 in ``target``."""
    lead = len(shape) - len(target)
    keep = tuple(k for k, d in enumerate(target) if d == 1 and shape[lead + k] != 1)
    return tuple(range(lead)), keep


def normalize_axes(axis, ndim: int, what: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    if not isinstance(axes, (tuple, list)) or any(
            isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes):
        raise TypeError(f"{what}: axis must be None, an int or a tuple of ints, not {axis!r}")
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{what}: axis {a} is out of range for {ndim} dimension(s)")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


# -- binding sizes at evaluation -----------------------------------------------------------


def bind(sizes: dict[str, int], symbol: str, shape: tuple, actual: tuple) -> None:
    """Check an input's actual shape against its symbol's shape, binding size names."""
    if len(actual) != len(shape) or any(isinstance(d, int) and d != n for d, n in zip(shape, actual)):
        raise ValueError(f"the value for {symbol!r} has shape {fmt(actual)}; {symbol} has shape {fmt(shape)}")
    for d, n in zip(shape, actual):
        if isinstance(d, str) and sizes.setdefault(d, n) != n:
            raise ValueError(
                f"the size {d!r} is bound to two sizes: {sizes[d]} and {n} (from the value of {symbol!r}, "
                f"shape {fmt(actual)})"
            )


def resolve(shape: tuple, sizes: dict[str, int]) -> tuple[int, ...]:
    """``shape`` with its size names replaced by their bound sizes."""
    out = []
    for d in shape:
        if isinstance(d, str):
            name, off = split(d)
            if name not in sizes:
                raise ValueError(f"the size {name!r} is not bound: no input of the graph has it in its shape")
            d = max(0, sizes[name] + off)
        out.append(d)
    return tuple(out)
