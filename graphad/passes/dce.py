"""Dead-code elimination: drop every node the outputs do not need."""

from ..program import Program, prune


def run(program: Program, **options) -> Program:
    return prune(program)
