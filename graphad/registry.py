"""The op registry: every elementary operation is one :class:`Op`, defined once.

An op bundles everything graphad knows about it: its numeric value, its local
partial derivatives (written with graphad ops, so that derivatives can be
differentiated again), its SymPy counterpart, its code template for lowering,
how it prints, and where its domain lies. The forward rule (tangent) and the
reverse rule (adjoint) are both derived from the partials, which keeps the two
modes consistent by construction; an op whose chain rule must not multiply
(a selection such as ``where``) overrides them with ``jvp`` and ``vjp``.

The chain rule multiplies with ``dmul``, the *chain product*, for which zero
times anything (inf and nan included) is zero: a tangent or adjoint that is
exactly zero, such as the one routed into the branch ``where`` did not take,
stays zero even where a local partial is infinite. Both modes use it, so they
agree at such points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .shapes import broadcast

OPS: dict[str, Op] = {}


@dataclass(frozen=True, eq=False)
class Op:
    """One elementary operation.

    Attributes:
        name: registry key, also the node's ``op`` attribute.
        arity: number of arguments.
        value: NumPy function of the argument values (scalars or arrays).
        partials: one entry per argument: ``rule(*args, out) -> Expr`` giving
            the local partial derivative d out / d arg, or ``None`` where the
            derivative is zero everywhere it exists (``sign``, comparisons).
        sympy: ``counterpart(sympy_module, *args)`` building the SymPy expression.
        code: Python expression template for the readable listing of compiled
            code, ``{0}`` is argument 0; the names ``math`` and ``np`` are in scope.
        ir: LLVM IR template for the compiler: lines of instructions on doubles,
            ``{0}`` is argument 0, ``{out}`` the result and ``{t}`` a prefix for
            temporaries; calls to ``@name`` are declared automatically.
        fmt: display template in Python syntax, ``{0}`` is argument 0.
        prec: display precedence: 0 comparison, 1 ``+ -``, 2 ``* /``,
            3 unary minus, 4 ``**``, 9 function call.
        sample: ``sample(rng) -> tuple`` of argument values inside the domain
            and away from non-differentiable points (used by the tests and the
            checkers).
        doc: the op's docstring, including its convention at non-differentiable
            points.
        jvp: optional ``jvp(args, out, tangents) -> Expr``; tangents hold
            ``None`` for zero. Defaults to the sum of partial * tangent.
        vjp: optional ``vjp(args, out, g, needed) -> tuple``; gives ``None``
            where no contribution is needed. Defaults to g * partial.
        simplify: optional ``simplify(*args) -> Expr | None``: an identity that
            is exact for every input, applied when a node is built (``x*1``).
        commutative: whether the arguments may be swapped.
        curvature: ``"linear"`` (add, sub, neg; also the piecewise-linear
            selections, whose second derivative is zero almost everywhere),
            ``"bilinear"`` (mul) or ``"nonlinear"``: what Hessian sparsity
            detection needs to know.
        shape: None for an *elementwise* op, which broadcasts its arguments as
            NumPy does. An *array op* (:mod:`graphad.array_ops`) gives its shape
            rule ``shape(params, *arg_shapes) -> shape``; its node carries
            ``params`` (axes, a new shape...), its ``value`` is
            ``value(params, out_shape, *args)``, its ``jvp`` and ``vjp`` read
            ``out.params``, ``fmt`` is ``fmt(params, *texts)``, and ``arity``
            None means any number of arguments.
    """

    name: str
    arity: int
    value: Callable
    partials: tuple
    sympy: Callable
    code: str
    fmt: str
    prec: int
    sample: Callable
    doc: str
    ir: str = ""
    jvp: Callable | None = None
    vjp: Callable | None = None
    simplify: Callable | None = None
    commutative: bool = False
    curvature: str = "nonlinear"
    shape: Callable | None = None

    def out_shape(self, params, arg_shapes) -> tuple:
        """The shape of this op's result: NumPy broadcasting for an elementwise op,
        else the op's own shape rule (a ValueError naming the op if it does not apply)."""
        if self.shape is None:
            for s in arg_shapes:
                if s:
                    return broadcast(arg_shapes, self.name)
            return ()
        return self.shape(params, *arg_shapes)

    def tangent(self, args: tuple, out, tangents: tuple):
        """The forward rule: d out = sum_i partial_i * d arg_i (chain products)."""
        if self.jvp is not None:
            return self.jvp(args, out, tangents)
        total = None
        for rule, t in zip(self.partials, tangents):
            if t is None or rule is None:
                continue
            term = _chain(rule(*args, out), t)
            if term is not None:
                total = term if total is None else total + term
        return total

    def adjoint(self, args: tuple, out, g, needed: tuple) -> tuple:
        """The reverse rule: each argument's contribution g * partial_i (chain products)."""
        if self.vjp is not None:
            return self.vjp(args, out, g, needed)
        return tuple(
            _chain(rule(*args, out), g, reverse=True) if need and rule is not None else None
            for rule, need in zip(self.partials, needed)
        )


def _chain(partial, d, reverse: bool = False):
    """The chain product ``dmul(partial, d)`` (``dmul(d, partial)`` in reverse mode);
    None for a zero term. Partials that are plain numbers (those of add, sub,
    neg...) skip building a constant node, with dmul's own simplifications."""
    if type(partial) is float:
        if partial == 1.0:
            return d
        if partial == -1.0:
            return -d
        if partial == 0.0:
            return None
    from .expr import apply

    return apply("dmul", d, partial) if reverse else apply("dmul", partial, d)


def elementwise_ops() -> list[str]:
    """The names of the elementwise ops, sorted (the array ops are left out)."""
    return sorted(name for name, op in OPS.items() if op.shape is None)


def register(op: Op) -> Op:
    """Add ``op`` to the registry; its name must be new."""
    if op.name in OPS or op.name in ("const", "symbol"):
        raise ValueError(f"an op named {op.name!r} is already registered")
    if op.shape is None and len(op.partials) != op.arity:
        raise ValueError(f"op {op.name!r}: {len(op.partials)} partials for arity {op.arity}")
    OPS[op.name] = op
    return op
