"""Array primitives: a small closed set of structural ops, one block each.

Elementwise ops are the registry's own (:mod:`graphad.ops`), broadcast as in
NumPy. The primitives below carry the rest; each is one block (shape rule,
NumPy value, jvp, vjp) and each one's adjoint is another primitive of the set:

    broadcast_to  <->  sum over axes        slice    <->  pad with zeros
    reshape       <->  reshape              take     <->  scatter_add
    transpose     <->  transpose            matmul   <->  matmul (operands transposed)
    concatenate   <->  slices               max       ->  where(x == max) * g / ties
    size, stop_gradient: zero derivative

``mean``, ``dot``, ``stack``, ``logsumexp``, ``softmax`` and indexing are
compositions (:mod:`graphad.arrays`). A primitive's ``value(params, shape,
*args)`` gets its result's shape with the size names bound.
"""

from __future__ import annotations

import builtins
import math
from collections import Counter

import numpy as np

from . import shapes as S
from .expr import Expr, apply, constant
from .registry import Op, register


def _primitive(name, arity, shape, value, jvp, vjp, fmt, doc, curvature="linear"):
    """Register one array primitive and return a function building it."""
    register(Op(name, arity, value, (), None, "", fmt, 9, None, doc, jvp=jvp, vjp=vjp, shape=shape,
                curvature=curvature))
    return lambda *args, params=None: apply(name, *args, params=params)


def _axes_text(params) -> str:
    axes, keepdims = params
    return f"axis={axes[0] if len(axes) == 1 else axes}" + (", keepdims=True" if keepdims else "")


def broadcast(x: Expr, shape: tuple) -> Expr:
    """``x`` broadcast to ``shape`` (a shape it is known to broadcast to)."""
    return x if x.shape == shape else _broadcast_to(x, params=shape)


def zeros(shape: tuple, graph) -> Expr:
    """The zero of a shape: the constant 0, broadcast."""
    return broadcast(constant(0.0, graph), shape)


# -- broadcast_to <-> sum -------------------------------------------------------------------


def _broadcast_shape(target, shape):
    if len(shape) > len(target) or S.broadcast([shape, target], "broadcast_to") != target:
        raise ValueError(f"broadcast_to: the shape {S.fmt(shape)} does not broadcast to {S.fmt(target)}")
    return target


_broadcast_to = _primitive(
    "broadcast_to", 1, _broadcast_shape,
    lambda params, shape, x: np.broadcast_to(x, shape),
    lambda args, out, ts: _broadcast_to(ts[0], params=out.params),
    lambda args, out, g, needed: (sum_to(g, args[0].shape),),
    lambda params, x: f"broadcast_to({x}, {S.fmt(params)})",
    "x repeated along the axes where it has size 1 (or none) to the given shape.",
)


def _check_axes(name, axes, shape):
    if axes and builtins.max(axes) >= len(shape):
        raise ValueError(f"{name}: axis {axes} is out of range for the shape {S.fmt(shape)}")


def _keepdims(shape, axes) -> tuple:
    """``shape`` reduced over ``axes`` with the axes kept, of size 1."""
    return tuple(1 if k in axes else d for k, d in enumerate(shape))


def _reduce_shape(name):
    def rule(params, shape):
        axes, keepdims = params
        _check_axes(name, axes, shape)
        if keepdims:
            return _keepdims(shape, axes)
        return tuple(d for k, d in enumerate(shape) if k not in axes)

    return rule


def _kept(g, params, shape):
    """An adjoint ``g`` of a reduction, broadcast back to the reduced operand's shape."""
    axes, keepdims = params
    if not keepdims and g.shape:  # a scalar broadcasts as it is
        g = _reshape(g, params=_keepdims(shape, axes))
    return broadcast(g, shape)


_sum = _primitive(
    "sum", 1, _reduce_shape("sum"),
    lambda params, shape, x: np.sum(x, axis=params[0], keepdims=params[1]),
    lambda args, out, ts: _sum(ts[0], params=out.params),
    lambda args, out, g, needed: (_kept(g, out.params, args[0].shape),),
    lambda params, x: f"sum({x}, {_axes_text(params)})",
    "The sum over the given axes.",
)


def _maxima(x, out):
    """1 where ``x`` equals its max ``out`` over the reduced axes (x <= max everywhere), else 0."""
    axes, keepdims = out.params
    return x >= (out if keepdims else _reshape(out, params=_keepdims(x.shape, axes)))


def _max_vjp(args, out, g, needed):
    x, hit = args[0], _maxima(args[0], out)
    share = _kept(g, out.params, x.shape) / _sum(hit, params=(out.params[0], True))
    return (apply("where", hit, share, 0.0),)


def _max_jvp(args, out, ts):
    hit = _maxima(args[0], out)
    picked = _sum(apply("where", hit, ts[0], 0.0), params=out.params)
    return picked / _sum(hit, params=out.params)


_max = _primitive(
    "max", 1, _reduce_shape("max"),
    lambda params, shape, x: np.max(x, axis=params[0], keepdims=params[1]),
    _max_jvp, _max_vjp,
    lambda params, x: f"max({x}, {_axes_text(params)})",
    "The largest element over the given axes. At a tie the derivative is split "
    "equally among the tied elements (as in JAX); where the max is nan, so is its derivative.",
)


def sum_to(g: Expr, shape: tuple) -> Expr:
    """``g`` summed over the axes along which ``shape`` was broadcast to ``g.shape``
    (the adjoint of broadcasting)."""
    if g.shape == shape:
        return g
    lead, keep = S.reduced_axes(g.shape, shape)
    out = _sum(g, params=(lead + tuple(len(lead) + k for k in keep), False))
    return _reshape(out, params=shape) if keep else out


# -- reshape, transpose ---------------------------------------------------------------------


def _same_size(a: tuple, b: tuple) -> bool:
    def parts(shape):
        ints = math.prod(d for d in shape if isinstance(d, int))
        return ints, Counter(d for d in shape if isinstance(d, str) and ints != 0)

    return parts(a) == parts(b)


def _reshape_shape(target, shape):
    if not _same_size(shape, target):
        raise ValueError(f"reshape: cannot reshape {S.fmt(shape)} to {S.fmt(target)}: the sizes differ")
    return target


_reshape_node = _primitive(
    "reshape", 1, _reshape_shape,
    lambda params, shape, x: np.reshape(x, shape),
    lambda args, out, ts: _reshape(ts[0], params=out.params),
    lambda args, out, g, needed: (_reshape(g, params=args[0].shape),),
    lambda params, x: f"reshape({x}, {S.fmt(params)})",
    "The same elements (in C order) in a new shape.",
)


def _reshape(x: Expr, params: tuple) -> Expr:
    """``x`` in the shape ``params``: a reshape of a reshape is one reshape, and a
    reshape to the shape ``x`` has is ``x`` itself."""
    while x.op == "reshape":
        x = x.args[0]
    return x if x.shape == params else _reshape_node(x, params=params)


def _transpose_shape(perm, shape):
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"transpose: {perm} is not a permutation of the axes of {S.fmt(shape)}")
    return tuple(shape[k] for k in perm)


_transpose = _primitive(
    "transpose", 1, _transpose_shape,
    lambda params, shape, x: np.transpose(x, params),
    lambda args, out, ts: _transpose(ts[0], params=out.params),
    lambda args, out, g, needed: (_transpose(g, params=tuple(np.argsort(out.params).tolist())),),
    lambda params, x: f"transpose({x}, {params})",
    "The axes permuted.",
)


# -- matmul ---------------------------------------------------------------------------------


def _matmul_shape(params, a, b):
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise ValueError(f"matmul: the shapes {S.fmt(a)} and {S.fmt(b)} do not fit (inner sizes differ)")
    return S.broadcast([a[:-2], b[:-2]], "matmul (batch axes)") + (a[-2], b[-1])


def _swap(x):
    n = x.ndim
    return _transpose(x, params=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_jvp(args, out, ts):
    (a, b), (ta, tb) = args, ts
    parts = [_matmul(ta, b) if ta is not None else None, _matmul(a, tb) if tb is not None else None]
    parts = [p for p in parts if p is not None]
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


_matmul = _primitive(
    "matmul", 2, _matmul_shape,
    lambda params, shape, a, b: np.matmul(a, b),
    _matmul_jvp,
    lambda args, out, g, needed: (
        sum_to(_matmul(g, _swap(args[1])), args[0].shape) if needed[0] else None,
        sum_to(_matmul(_swap(args[0]), g), args[1].shape) if needed[1] else None,
    ),
    lambda params, a, b: f"{a} @ {b}",
    "The matrix product of operands with 2 or more axes (leading axes broadcast as batches).",
    curvature="bilinear",
)


# -- slice <-> pad ---------------------------------------------------------------------------


def _slice_dim(d, start, stop, step, what):
    """The size of ``range(n)[start:stop:step]`` for a dim ``d`` (a size or a name)."""
    if isinstance(d, int):
        return len(range(*slice(start, stop, step).indices(d)))
    if step != 1:
        raise ValueError(f"{what}: a step other than 1 along the named axis {d!r} is not supported")
    start = start or 0
    if start >= 0:
        if stop is None:
            return S.add(d, -start)
        if stop < 0:
            return S.add(d, stop - start)
        return builtins.max(stop - start, 0)
    if stop is None:
        return -start
    if stop < 0:
        return builtins.max(stop - start, 0)
    raise ValueError(f"{what}: the slice {start}:{stop} of the named axis {d!r} has no fixed size")


def _canonical(d, start, stop, step) -> tuple:
    """One slice in a canonical form, so that ``x[:3]`` and ``x[0:3]`` are one node."""
    if isinstance(d, int):
        start, stop, step = slice(start, stop, step).indices(d)
        return start, (None if stop < 0 else stop), step
    return start or 0, stop, step


def _slice_shape(spec, shape):
    if len(spec) != len(shape):
        raise ValueError(f"slice: {len(spec)} slices for the shape {S.fmt(shape)}")
    return tuple(_slice_dim(d, *s, "slice") for d, s in zip(shape, spec))


def _slices(spec):
    return tuple(slice(*s) for s in spec)


def _pad_value(params, shape, g):
    out = np.zeros(shape, dtype=np.asarray(g).dtype)  # object arrays too: the SymPy bridge
    out[_slices(params[0])] = g
    return out


def _spec_text(spec):
    def one(start, stop, step):
        text = f"{'' if start is None else start}:{'' if stop is None else stop}"
        return text + (f":{step}" if step != 1 else "")

    return ", ".join(one(*s) for s in spec)


_slice = _primitive(
    "slice", 1, _slice_shape,
    lambda params, shape, x: x[_slices(params)],
    lambda args, out, ts: _slice(ts[0], params=out.params),
    lambda args, out, g, needed: (_pad(g, params=(out.params, args[0].shape)),),
    lambda params, x: f"{x}[{_spec_text(params)}]",
    "A basic slice ``x[start:stop:step, ...]``, one (start, stop, step) per axis.",
)

_pad = _primitive(
    "pad", 1, lambda params, shape: params[1],
    _pad_value,
    lambda args, out, ts: _pad(ts[0], params=out.params),
    lambda args, out, g, needed: (_slice(g, params=out.params[0]),),
    lambda params, x: f"pad({x}, [{_spec_text(params[0])}], {S.fmt(params[1])})",
    "Zeros of the given shape with x written into a slice of it (the adjoint of slice).",
)


# -- take <-> scatter_add ---------------------------------------------------------------------


def _indices(idx):
    ints = np.asarray(idx).astype(np.intp)
    if not np.array_equal(ints, idx):
        raise ValueError("take: the indices are not all whole numbers")
    return ints


def _scatter_add_value(params, shape, g, idx):
    axis, _ = params
    out = np.zeros(shape, dtype=np.asarray(g).dtype)
    ints = _indices(idx)
    moved = np.moveaxis(g, list(range(axis, axis + ints.ndim)), list(range(ints.ndim)))
    np.add.at(np.moveaxis(out, axis, 0), ints, moved)
    return out


def _take_shape(axis, x, idx):
    if not 0 <= axis < len(x):
        raise ValueError(f"take: axis {axis} is out of range for the shape {S.fmt(x)}")
    return x[:axis] + idx + x[axis + 1:]


_take = _primitive(
    "take", 2, _take_shape,
    lambda params, shape, x, idx: np.take(x, _indices(idx), axis=params),
    lambda args, out, ts: _take(ts[0], args[1], params=out.params) if ts[0] is not None else None,
    lambda args, out, g, needed: (_scatter_add(g, args[1], params=(out.params, args[0].shape)), None),
    lambda params, x, idx: f"take({x}, {idx}, axis={params})",
    "Gather along an axis by integer indices (an array of whole numbers); the "
    "indices have zero derivative. Out-of-range indices are an error.",
)

_scatter_add = _primitive(
    "scatter_add", 2, lambda params, g, idx: params[1],
    _scatter_add_value,
    lambda args, out, ts: _scatter_add(ts[0], args[1], params=out.params) if ts[0] is not None else None,
    lambda args, out, g, needed: (_take(g, args[1], params=out.params[0]), None),
    lambda params, g, idx: f"scatter_add({g}, {idx}, axis={params[0]}, shape={S.fmt(params[1])})",
    "Zeros of the given shape, with g added at the indices along the axis (the adjoint of take).",
)


# -- concatenate <-> slices ---------------------------------------------------------------------


def _concatenate_shape(axis, *shapes):
    first = shapes[0]
    if not 0 <= axis < len(first):
        raise ValueError(f"concatenate: axis {axis} is out of range for the shape {S.fmt(first)}")
    for s in shapes:
        if len(s) != len(first) or any(a != b for k, (a, b) in enumerate(zip(s, first)) if k != axis):
            raise ValueError(
                f"concatenate: the shapes {', '.join(map(S.fmt, shapes))} differ off axis {axis}"
            )
        if not isinstance(s[axis], int):
            raise ValueError(f"concatenate: the size {s[axis]!r} along axis {axis} must be a number")
    return first[:axis] + (builtins.sum(s[axis] for s in shapes),) + first[axis + 1:]


def _concatenate_vjp(args, out, g, needed):
    axis, start, parts = out.params, 0, []
    for a, need in zip(args, needed):
        stop = start + a.shape[axis]
        spec = tuple((start, stop, 1) if k == axis else _canonical(d, None, None, 1)
                     for k, d in enumerate(g.shape))
        parts.append(_slice(g, params=spec) if need else None)
        start = stop
    return tuple(parts)


_concatenate = _primitive(
    "concatenate", None, _concatenate_shape,
    lambda params, shape, *xs: np.concatenate(xs, axis=params),
    lambda args, out, ts: _concatenate(*(t if t is not None else zeros(a.shape, a.graph)
                                         for a, t in zip(args, ts)), params=out.params),
    _concatenate_vjp,
    lambda params, *xs: f"concatenate([{', '.join(xs)}], axis={params})",
    "Arrays joined along an existing axis (whose sizes must be numbers).",
)

# -- zero-derivative helpers ------------------------------------------------------------------


def _size_shape(axes, shape):
    _check_axes("size", axes, shape)
    return ()


_size = _primitive(
    "size", 1, _size_shape,
    lambda params, shape, x: np.float64(math.prod(np.shape(x)[k] for k in params)),
    lambda args, out, ts: None,
    lambda args, out, g, needed: (None,),
    lambda params, x: f"size({x}, axis={params})",
    "The number of elements along the given axes, known once the size names are bound.",
)

_stop_gradient = _primitive(
    "stop_gradient", 1, lambda params, shape: shape,
    lambda params, shape, x: x,
    lambda args, out, ts: None,
    lambda args, out, g, needed: (None,),
    lambda params, x: f"stop_gradient({x})",
    "x itself, with zero derivative: its value is held fixed under differentiation.",
)


def stop_gradient(x) -> Expr:
    """``x`` itself, treated as a constant by differentiation (as in JAX).

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x")
        >>> ga.grad(x * ga.stop_gradient(x), x)
        stop_gradient(x)
    """
    return _stop_gradient(x)
