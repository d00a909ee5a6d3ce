"""Custom ops: your own elementary functions, working everywhere graphad's own do.

``ga.define_op`` registers an op in the same registry as ``exp`` and ``sin``,
so it takes part in both AD modes (to any order: its partials are written with
graphad ops), the passes, compiled code, traces, pictures and, given a SymPy
counterpart, the SymPy bridge.

For compiled code, the scalar implementation you give is compiled once with
``numba.cfunc`` and published to the LLVM linker under the symbol
``graphad.op.<name>``; graphad's kernels call it by that name. Register the op
(import the module that defines it) before loading a compiled function that
uses it, in every process.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence

import numpy as np

from .ops import _define, _uniform
from .registry import OPS


def define_op(name: str, value: Callable, partials: Sequence, *, scalar: Callable,
              sympy: Callable | None = None,
              sample: Callable | None = None, doc: str = "") -> Callable:
    """Register an elementary op and return the function that builds it.

    Args:
        name: a new name (a Python identifier).
        value: NumPy implementation, ``value(*args)`` on scalars or arrays.
        partials: one rule per argument, ``rule(*args, out) -> expression``
            built with graphad ops, giving d out / d arg (``None`` where the
            derivative is zero).
        scalar: a plain Python function on floats that Numba can compile;
            it is what compiled code calls.
        sympy: optional ``counterpart(sympy_module, *args)`` for the bridge.
        sample: optional ``sample(rng) -> tuple`` of points in the domain, for
            tests and checkers (default: uniform in (-2, 2)).
        doc: the docstring of the returned function.

    Examples:
        >>> import numpy as np
        >>> import graphad as ga
        >>> softplus = ga.define_op(
        ...     "softplus_doc", lambda x: np.logaddexp(0.0, x),
        ...     [lambda x, out: 1 / (1 + ga.exp(-x))],
        ...     scalar=lambda x: max(x, 0.0) + np.log1p(np.exp(-abs(x))))
        >>> x = ga.symbols("x")
        >>> ga.evaluate(ga.grad(softplus(x), x), {x: 0.0})
        0.5
    """
    import numba

    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"define_op: the name {name!r} is not a Python identifier")
    if name in OPS:
        raise ValueError(f"define_op: an op named {name!r} is already registered")
    if not callable(value) or not callable(scalar):
        raise TypeError("define_op: value and scalar must be functions")
    partials = tuple(partials)
    arity = len(partials)
    if arity == 0:
        raise ValueError("define_op: give one partial-derivative rule per argument")
    try:
        signature = numba.float64(*([numba.float64] * arity))
        cfunc = numba.cfunc(signature, cache=False)(scalar)
    except Exception as e:
        raise TypeError(f"define_op: Numba cannot compile the scalar implementation of {name}: "
                        f"{str(e).splitlines()[0]}") from None
    symbol = f"graphad.op.{name}"
    import llvmlite.binding as llvm

    llvm.add_symbol(symbol, cfunc.address)
    _cfuncs[name] = cfunc  # keep the machine code alive
    args = ", ".join(f"double {{{i}}}" for i in range(arity))
    names = ", ".join(f"{{{i}}}" for i in range(arity))

    def no_sympy(sp, *a):
        raise ValueError(f"the custom op {name} has no SymPy counterpart (give sympy= to define_op)")

    build = _define(
        name, arity, lambda *a: np.asarray(value(*a), dtype=np.float64), partials,
        sympy or no_sympy, f"{name}({names})",
        sample or _uniform(*([(-2.0, 2.0)] * arity)), doc or f"The custom op {name}.",
        ir=f"{{out}} = call double @{symbol}({args})",
    )
    build.scalar = scalar
    return build


_cfuncs: dict[str, object] = {}
