"""Algebraic simplification of the identities that differentiation produces.

Always applied, because they are exact for every input, nan and inf included:
``x*1``, ``x/1``, ``x+0``, ``x-0``, ``0-x``, ``--x``, ``x**1``, ``x**0``,
multiplication or division by -1 (a negation), ``x**2 -> x*x``,
``x**-1 -> 1/x``, ``x + -y -> x - y``, ``x - -y -> x + y``,
``where(c, a, a) -> a``, and, for the chain products (``dmul``) that
differentiation builds, where 0 times anything is 0 by definition, ``x*0 -> 0``
and ``x*c -> `` a plain multiplication when c is a finite nonzero constant.

Applied only with ``assume_finite=True``, because they are wrong for inf and
nan: ``x*0 -> 0``, ``0/x -> 0`` and ``x - x -> 0`` in your own arithmetic, and
chain products become plain products (no zero test).
CasADi and PyTensor apply these always; graphad does not by default, so it
never hides a nan that your function produces.
"""

import math

from ..program import Builder, Program, rebuild


def _is(b: Builder, i: int, value: float) -> bool:
    op, _, payload = b.nodes[i]
    return op == "const" and payload == value


def _simplify(b: Builder, op, args, payload, assume_finite: bool) -> int:
    nodes = b.nodes
    if op == "dmul" and assume_finite:
        op = "mul"  # with no inf or nan about, 0 * y is 0 anyway
    if op in ("mul", "dmul"):
        for x, c in (args, args[::-1]):
            if _is(b, c, 1.0):
                return x
            if _is(b, c, -1.0):
                return b.add("neg", (x,))
            if _is(b, c, 0.0) and (op == "dmul" or assume_finite):
                return b.const(0.0)
            if op == "dmul" and nodes[c][0] == "const" and math.isfinite(nodes[c][2]):
                return b.add("mul", (x, c))  # a finite nonzero factor: 0 * c is 0 anyway
    elif op == "add":
        x, y = args
        if _is(b, y, 0.0):
            return x
        if _is(b, x, 0.0):
            return y
        if nodes[y][0] == "neg":
            return _simplify(b, "sub", (x, nodes[y][1][0]), None, assume_finite)
        if nodes[x][0] == "neg":
            return _simplify(b, "sub", (y, nodes[x][1][0]), None, assume_finite)
    elif op == "sub":
        x, y = args
        if _is(b, y, 0.0):
            return x
        if _is(b, x, 0.0):
            return b.add("neg", (y,))
        if nodes[y][0] == "neg":
            return b.add("add", (x, nodes[y][1][0]))
        if x == y and assume_finite:
            return b.const(0.0)
    elif op == "div":
        x, y = args
        if _is(b, y, 1.0):
            return x
        if _is(b, y, -1.0):
            return b.add("neg", (x,))
        if _is(b, x, 0.0) and assume_finite:
            return b.const(0.0)
    elif op == "neg":
        (x,) = args
        if nodes[x][0] == "neg":
            return nodes[x][1][0]
    elif op == "pow":
        x, y = args
        if _is(b, y, 1.0):
            return x
        if _is(b, y, 0.0):
            return b.const(1.0)
        if _is(b, y, 2.0):
            return b.add("mul", (x, x))
        if _is(b, y, -1.0):
            return b.add("div", (b.const(1.0), x))
    elif op == "where":
        c, x, y = args
        if x == y:
            return x
        if nodes[c][0] == "const":
            return x if nodes[c][2] != 0 else y
    return b.add(op, args, payload)


def run(program: Program, *, assume_finite: bool = False, **options) -> Program:
    return rebuild(program, lambda b, op, args, p: _simplify(b, op, args, p, assume_finite))
