"""Common-subexpression elimination: identical nodes become one.

Operands of commutative ops are put in a canonical order first, so ``x*y`` and
``y*x`` merge too.
"""

from ..program import Program, rebuild


def run(program: Program, **options) -> Program:
    return rebuild(program)  # the Builder hash-conses, commutative operands sorted
