"""The pass pipeline: each pass is a pure function ``Program -> Program`` in its own module.

Examples:
    >>> import graphad as ga
    >>> from graphad.program import from_exprs
    >>> from graphad.passes import optimise
    >>> x, y = ga.symbols("x y")
    >>> program, report = optimise(from_exprs([x * y + y * x], [x, y]))
    >>> len(program)  # x*y and y*x became one node
    4
    >>> print(report)
    pass        nodes  change
    input           5
    cse             4      -1
    fold            4       0
    simplify        4       0
    dce             4       0
    schedule        4       0
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..program import Program
from . import cse, dce, fold, schedule, simplify

DEFAULT_PIPELINE = [cse, fold, simplify, dce, schedule]


@dataclass
class Report:
    """Node counts before and after each pass."""

    rows: list[tuple[str, int]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{'pass':<10}{'nodes':>7}  change"]
        previous = None
        for name, n in self.rows:
            change = "" if previous is None else f"{n - previous:+d}" if n != previous else "0"
            lines.append(f"{name:<10}{n:>7}  {change:>6}".rstrip())
            previous = n
        return "\n".join(lines)


def optimise(program: Program, pipeline=None, *, assume_finite: bool = False) -> tuple[Program, Report]:
    """Run the passes of ``pipeline`` (default :data:`DEFAULT_PIPELINE`) in order."""
    report = Report([("input", len(program))])
    for p in DEFAULT_PIPELINE if pipeline is None else pipeline:
        program = p.run(program, assume_finite=assume_finite)
        report.rows.append((p.__name__.rsplit(".", 1)[-1], len(program)))
    return program, report
