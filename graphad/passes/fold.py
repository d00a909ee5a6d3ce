"""Constant folding: an op whose arguments are all constants becomes a constant.

The value comes from the op's own evaluator, so folding can never disagree
with evaluation.
"""

from ..expr import fold
from ..program import Builder, Program, rebuild
from ..registry import OPS


def _fold(b: Builder, op, args, payload) -> int:
    nodes = b.nodes
    if not args:  # a constant or a symbol
        return b.add(op, args, payload)
    for a in args:
        if nodes[a][0] != "const":
            return b.add(op, args, payload)
    return b.const(fold(OPS[op], tuple(nodes[a][2] for a in args)))


def run(program: Program, **options) -> Program:
    return rebuild(program, _fold)
