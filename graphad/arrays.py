"""Arrays: the public functions (``ga.sum``, ``ga.matmul``, indexing...) and NumPy interop.

They check their arguments and build the primitives of :mod:`graphad.array_ops`;
``mean``, ``dot``, ``stack``, ``logsumexp``, ``softmax`` and indexing are
compositions of those primitives. docs/arrays.md tells the whole story.
"""

from __future__ import annotations

import builtins
import math
from collections import Counter

import numpy as np

from . import shapes as S
from .array_ops import (
    _canonical,
    _concatenate,
    _matmul,
    _max,
    _reshape,
    _size,
    _slice,
    _slice_dim,
    _sum,
    _take,
    _transpose,
    broadcast,
    stop_gradient,
)
from .expr import Expr, apply, as_expr
from .ops import exp, log, where

# -- the public functions -------------------------------------------------------------------


def broadcast_to(x, shape) -> Expr:
    """``x`` broadcast to ``shape``, as ``np.broadcast_to``; its adjoint sums back.

    Examples:
        >>> import graphad as ga
        >>> b = ga.symbols("b", shape=(3,))
        >>> ga.broadcast_to(b, ("n", 3)).shape
        ('n', 3)
    """
    return broadcast(as_expr(x), S.as_shape(shape, "broadcast_to"))


def sum(x, axis=None, keepdims: bool = False) -> Expr:
    """The sum of the elements over ``axis`` (None: all), as ``np.sum``.

    Examples:
        >>> import graphad as ga
        >>> X = ga.symbols("X", shape=(2, 3))
        >>> ga.sum(X, axis=0).shape, ga.sum(X).shape
        ((3,), ())
    """
    x = as_expr(x)
    return _reduce(_sum, x, axis, keepdims, "sum")


def _reduce(prim, x, axis, keepdims, what):
    axes = S.normalize_axes(axis, x.ndim, what)
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"{what}: keepdims must be True or False, not {keepdims!r}")
    if not axes:
        return x
    return prim(x, params=(axes, bool(keepdims)))


def mean(x, axis=None, keepdims: bool = False) -> Expr:
    """The mean over ``axis`` (None: all): the sum divided by the number of
    elements, which may be a size name bound at evaluation.

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x", shape=("n",))
        >>> ga.evaluate(ga.mean(x), {x: [1.0, 2.0, 6.0]})
        3.0
    """
    x = as_expr(x)
    axes = S.normalize_axes(axis, x.ndim, "mean")
    count = S.size(tuple(x.shape[k] for k in axes))
    total = sum(x, axis, keepdims)
    return total / (float(count) if count is not None else _size(x, params=axes))


def max(x, axis=None, keepdims: bool = False) -> Expr:
    """The largest element over ``axis`` (None: all), as ``np.max``. At a tie,
    the derivative is split equally among the tied elements.

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x", shape=(3,))
        >>> ga.evaluate(ga.grad(ga.max(x), x), {x: [1.0, 5.0, 5.0]}).tolist()
        [0.0, 0.5, 0.5]
    """
    return _reduce(_max, as_expr(x), axis, keepdims, "max")


def reshape(x, shape) -> Expr:
    """The same elements (C order) in a new shape; one entry may be -1.

    Examples:
        >>> import graphad as ga
        >>> X = ga.symbols("X", shape=("n", 784))
        >>> ga.reshape(X, (-1, 28, 28)).shape
        ('n', 28, 28)
    """
    x = as_expr(x)
    if isinstance(shape, (int, np.integer, str)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"reshape: a shape is a tuple of sizes and names, not {shape!r}")
    holes = [k for k, d in enumerate(shape) if isinstance(d, (int, np.integer)) and d == -1]
    if len(holes) > 1:
        raise ValueError(f"reshape: {tuple(shape)} has more than one -1")
    if holes:
        k = holes[0]
        shape = (*shape[:k], _fill(x.shape, tuple(shape[:k]) + tuple(shape[k + 1:]), tuple(shape)),
                 *shape[k + 1:])
    shape = S.as_shape(shape, "reshape")
    return x if x.shape == shape else _reshape(x, params=shape)


def _fill(have: tuple, rest: tuple, want: tuple):
    """The size that the -1 of ``want`` stands for: what makes ``rest`` (``want``
    without it) hold as many elements as ``have``."""
    ints_have = math.prod(d for d in have if isinstance(d, int))
    ints_rest = math.prod(int(d) for d in rest if isinstance(d, (int, np.integer)))
    names = Counter(d for d in have if isinstance(d, str))
    names.subtract(Counter(d for d in rest if isinstance(d, str)))
    left = [n for n, c in names.items() for _ in range(c)] if all(c >= 0 for c in names.values()) else None
    if left is None or ints_rest == 0 or ints_have % ints_rest:
        raise ValueError(f"reshape: cannot reshape {S.fmt(have)} to {want}")
    fill = ints_have // ints_rest
    if left and (len(left) > 1 or fill != 1):
        raise ValueError(f"reshape: the -1 in {want} has no single size for {S.fmt(have)}")
    return left[0] if left else fill


def transpose(x, axes=None) -> Expr:
    """The axes permuted (reversed if ``axes`` is None), as ``np.transpose``; ``x.T`` too.

    Examples:
        >>> import graphad as ga
        >>> ga.symbols("W", shape=(784, 256)).T.shape
        (256, 784)
    """
    x = as_expr(x)
    perm = tuple(range(x.ndim))[::-1] if axes is None else tuple(
        a % x.ndim if isinstance(a, (int, np.integer)) and -x.ndim <= a < x.ndim else -1 for a in axes)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: {axes!r} is not a permutation of the axes of {S.fmt(x.shape)}")
    return x if perm == tuple(range(x.ndim)) else _transpose(x, params=perm)


def matmul(a, b) -> Expr:
    """The matrix product ``a @ b``, as ``np.matmul``: 1-D operands are vectors,
    leading axes of operands with more than 2 broadcast as batches.

    Examples:
        >>> import graphad as ga
        >>> X = ga.symbols("X", shape=("n", 784))
        >>> W = ga.symbols("W", shape=(784, 256))
        >>> (X @ W).shape
        ('n', 256)
    """
    a, b = as_expr(a), as_expr(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: the operands have shapes {S.fmt(a.shape)} and {S.fmt(b.shape)}; "
                         "use * for a scalar factor")
    inner = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != inner:
        raise ValueError(f"matmul: the shapes {S.fmt(a.shape)} and {S.fmt(b.shape)} do not fit "
                         f"(inner sizes {a.shape[-1]} and {inner} differ)")
    a2 = _reshape(a, params=(1,) + a.shape) if a.ndim == 1 else a
    b2 = _reshape(b, params=b.shape + (1,)) if b.ndim == 1 else b
    out = _matmul(a2, b2)
    if a.ndim == 1 or b.ndim == 1:
        rows, cols = out.shape[-2:-1] if a.ndim > 1 else (), out.shape[-1:] if b.ndim > 1 else ()
        shape = out.shape[:-2] + rows + cols
        out = _reshape(out, params=shape)
    return out


def dot(a, b) -> Expr:
    """The dot product: ``sum(a * b)`` for two vectors, else ``a @ b`` (1-D and 2-D operands).

    Examples:
        >>> import graphad as ga
        >>> w, x = ga.symbols("w x", shape=(3,))
        >>> ga.dot(w, x)
        sum(w*x, axis=0)
    """
    a, b = as_expr(a), as_expr(b)
    if a.ndim == 1 and b.ndim == 1:
        if a.shape != b.shape:
            raise ValueError(f"dot: the vectors have shapes {S.fmt(a.shape)} and {S.fmt(b.shape)}")
        return sum(a * b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError("dot: operands with more than 2 axes: use ga.matmul (batched) instead")
    return matmul(a, b)


def take(x, indices, axis: int = 0) -> Expr:
    """Elements of ``x`` picked by integer ``indices`` along ``axis``, as
    ``np.take``; its adjoint adds into the picked places (scatter-add), as an
    embedding's gradient needs. ``indices`` may be a NumPy integer array or a
    symbol holding whole numbers (labels given as data).

    Examples:
        >>> import numpy as np
        >>> import graphad as ga
        >>> E = ga.symbols("E", shape=(4, 2))
        >>> loss = ga.sum(ga.take(E, np.array([1, 1, 3])))
        >>> ga.evaluate(ga.grad(loss, E), {E: np.zeros((4, 2))}).tolist()
        [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]
    """
    x = as_expr(x)
    if isinstance(indices, np.ndarray) and indices.dtype.kind not in "iu":
        raise TypeError(f"take: the indices have dtype {indices.dtype}; give integers")
    idx = as_expr(indices, x.graph)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"take: axis {axis!r} is out of range for the shape {S.fmt(x.shape)}")
    return _take(x, idx, params=int(axis) % x.ndim)


def concatenate(xs, axis: int = 0) -> Expr:
    """Arrays joined along an existing axis, as ``np.concatenate``.

    Examples:
        >>> import graphad as ga
        >>> a, b = ga.symbols("a", shape=(2,)), ga.symbols("b", shape=(3,))
        >>> ga.concatenate([a, b]).shape
        (5,)
    """
    if not isinstance(xs, (list, tuple)) or not xs:
        raise TypeError("concatenate: give a non-empty list of arrays")
    xs = [as_expr(x) for x in xs]
    if any(x.ndim == 0 for x in xs):
        raise ValueError("concatenate: scalars cannot be joined; use ga.stack")
    axis = S.normalize_axes(axis, xs[0].ndim, "concatenate")[0]
    return xs[0] if len(xs) == 1 else _concatenate(*xs, params=axis)


def stack(xs, axis: int = 0) -> Expr:
    """Arrays of one shape joined along a new axis, as ``np.stack``.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> ga.stack([x, y, x * y]).shape
        (3,)
    """
    if not isinstance(xs, (list, tuple)) or not xs:
        raise TypeError("stack: give a non-empty list of arrays")
    xs = [as_expr(x) for x in xs]
    axis = S.normalize_axes(axis, xs[0].ndim + 1, "stack")[0]
    shape = xs[0].shape
    if any(x.shape != shape for x in xs):
        raise ValueError(f"stack: the shapes {', '.join(S.fmt(x.shape) for x in xs)} differ")
    return concatenate([reshape(x, shape[:axis] + (1,) + shape[axis:]) for x in xs], axis)


def logsumexp(x, axis=None, keepdims: bool = False) -> Expr:
    """``log(sum(exp(x)))`` over ``axis``, computed stably: the max is taken out
    first (held fixed under differentiation, which changes no derivative).

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x", shape=(2,))
        >>> round(ga.evaluate(ga.logsumexp(x), {x: [1000.0, 1000.0]}), 6)
        1000.693147
    """
    x = as_expr(x)
    m = stop_gradient(max(x, axis, keepdims=True))
    m = where(abs(m) < math.inf, m, 0.0)  # an all -inf row keeps -inf, not nan
    out = log(sum(exp(x - m), axis, keepdims=True)) + m
    return out if keepdims else _drop(out, x.ndim, axis)


def _drop(x, ndim, axis):
    axes = S.normalize_axes(axis, ndim, "reduce")
    return reshape(x, tuple(d for k, d in enumerate(x.shape) if k not in axes))


def softmax(x, axis=-1) -> Expr:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably.

    Examples:
        >>> import graphad as ga
        >>> z = ga.symbols("z", shape=(3,))
        >>> ga.evaluate(ga.softmax(z), {z: [0.0, 0.0, 0.0]}).round(4).tolist()
        [0.3333, 0.3333, 0.3333]
    """
    x = as_expr(x)
    e = exp(x - stop_gradient(max(x, axis, keepdims=True)))
    return e / sum(e, axis, keepdims=True)


# -- indexing -------------------------------------------------------------------------------


def index(x: Expr, key) -> Expr:
    """``x[key]`` with ints, slices, None and ``...`` (basic indexing), or one
    integer array (``take``)."""
    key = key if isinstance(key, tuple) else (key,)
    arrays = [k for k in key if isinstance(k, (list, np.ndarray, Expr))]
    if arrays:
        rest = [k for k in key if not isinstance(k, (list, np.ndarray, Expr))]
        if len(arrays) > 1 or any(not (isinstance(k, slice) and k == slice(None)) for k in rest):
            raise IndexError("graphad indexes with one integer array and full slices (x[idx], x[:, idx]); "
                             "use ga.take")
        pos = next(i for i, k in enumerate(key) if k is arrays[0])
        idx = np.asarray(arrays[0]) if isinstance(arrays[0], list) else arrays[0]
        return take(x, idx, pos)
    if builtins.sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > x.ndim:
        raise IndexError(f"too many indices for {x} of shape {S.fmt(x.shape)}")
    expanded = []
    for k in key:
        expanded.extend([slice(None)] * (x.ndim - used) if k is Ellipsis else [k])
    expanded += [slice(None)] * (x.ndim + builtins.sum(1 for k in expanded if k is None) - len(expanded))
    spec, shape, axis = [], [], 0
    for k in expanded:
        if k is None:
            shape.append(1)
            continue
        d = x.shape[axis]
        if isinstance(k, slice):
            step = 1 if k.step is None else k.step
            for v in (k.start, k.stop, step):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
                    raise IndexError(f"slice bounds must be whole numbers, not {v!r}")
            if step == 0:
                raise ValueError("slice step cannot be zero")
            spec.append(_canonical(d, k.start, k.stop, int(step)))
            shape.append(_slice_dim(d, *spec[-1], "indexing"))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            k = int(k)
            if isinstance(d, int):
                if not -d <= k < d:
                    raise IndexError(f"index {k} is out of range for axis {axis} of size {d}")
                k %= d
            spec.append((k, None if k == -1 else k + 1, 1))
        else:
            raise IndexError(f"graphad cannot index with {k!r}: use ints, slices, None, ... "
                             "or an integer array")
        axis += 1
    out = x
    if tuple(spec) != tuple(_canonical(d, None, None, 1) for d in x.shape):
        out = _slice(x, params=tuple(spec))
    return out if out.shape == tuple(shape) else _reshape(out, params=tuple(shape))


# -- NumPy interop ----------------------------------------------------------------------------

_UFUNCS = {
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div", np.negative: "neg",
    np.power: "pow", np.exp: "exp", np.log: "log", np.log1p: "log1p", np.expm1: "expm1", np.sqrt: "sqrt",
    np.sin: "sin", np.cos: "cos", np.tan: "tan", np.arcsin: "asin", np.arccos: "acos", np.arctan: "atan",
    np.arctan2: "atan2", np.sinh: "sinh", np.cosh: "cosh", np.tanh: "tanh", np.arcsinh: "asinh",
    np.arccosh: "acosh", np.arctanh: "atanh", np.absolute: "abs", np.sign: "sign", np.hypot: "hypot",
    np.maximum: "maximum", np.minimum: "minimum", np.less: "lt", np.less_equal: "le",
    np.greater: "gt", np.greater_equal: "ge",
}


def numpy_ufunc(ufunc, method, inputs, kwargs):
    """NumPy's ufuncs on graphad expressions build the graphad op (``np.exp(W)``)."""
    if ufunc is np.matmul and method == "__call__" and not kwargs:
        return matmul(*inputs)
    name = _UFUNCS.get(ufunc)
    if name is not None and method == "__call__" and not kwargs:
        return apply(name, *inputs)
    hint = f"ga.{name}" if name else "the graphad functions (ga.exp, ga.sum, ...)"
    raise TypeError(f"np.{ufunc.__name__}{'' if method == '__call__' else '.' + method}"
                    f"{' with ' + ', '.join(kwargs) if kwargs else ''} does not work on graphad expressions; "
                    f"use {hint}")


def numpy_function(func, args, kwargs):
    """NumPy's functions on graphad expressions build the graphad op (``np.sum(x)``)."""
    ours = _FUNCTIONS.get(func)
    if ours is None:
        raise TypeError(f"np.{func.__name__} does not work on graphad expressions; use the graphad "
                        "functions (ga.sum, ga.matmul, ga.where, ...): see docs/arrays.md")
    try:
        return ours(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"np.{func.__name__} on a graphad expression: {e} (see ga.{ours.__name__})") from None


_FUNCTIONS = {
    np.sum: sum, np.mean: mean, np.max: max, np.amax: max, np.dot: dot, np.matmul: matmul,
    np.transpose: transpose, np.reshape: reshape, np.broadcast_to: broadcast_to,
    np.concatenate: concatenate, np.stack: stack, np.take: take, np.where: where,
}
