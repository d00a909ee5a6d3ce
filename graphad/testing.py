"""Checkers for derivatives, for graphad's own tests and for users' functions."""

from __future__ import annotations

import numpy as np

from .evaluate import evaluate
from .expr import Expr, as_expr_list, as_symbol_list
from .forward import jvp
from .reverse import vjp


def _point(wrt: list[Expr], at) -> np.ndarray:
    if isinstance(at, dict):
        missing = [s.name for s in wrt if s not in at and s.name not in at]
        if missing:
            raise ValueError(f"check_grads: no value in `at` for {', '.join(missing)}")
        return np.array([float(at[s] if s in at else at[s.name]) for s in wrt])
    values = np.asarray(at, dtype=np.float64).ravel()
    if values.size != len(wrt):
        raise ValueError(f"check_grads: `at` has {values.size} values for {len(wrt)} symbols")
    return values


def _close(what: str, ad, ref, rtol: float, atol: float) -> None:
    ad, ref = np.asarray(ad, dtype=float), np.asarray(ref, dtype=float)
    bad = ~(np.abs(ad - ref) <= atol + rtol * np.maximum(np.abs(ad), np.abs(ref)))
    if np.any(bad):
        raise AssertionError(f"{what}: got {ad.tolist()}, expected {ref.tolist()}")


def check_grads(f, wrt, at, *, order: int = 2, eps: float = 1e-5, rtol: float = 1e-5,
                atol: float = 1e-6, seed: int = 0) -> None:
    """Check the derivatives of ``f`` at the point ``at``; raise AssertionError if wrong.

    For random directions v and output weights u it checks, to ``order``:

    - forward mode J v against central finite differences of ``f``;
    - reverse mode against forward mode, by the identity <u, J v> = <J^T u, v>;
    - for order k > 1, the same checks on the order k-1 derivatives built in
      both modes (forward over forward, reverse over forward, forward over
      reverse and reverse over reverse).

    ``f`` is an expression or a list of them, ``wrt`` a list of symbols and
    ``at`` a dict {symbol: value} or a sequence of values in ``wrt``'s order.
    Choose a point inside the domain and away from kinks (``abs`` at 0).

    Examples:
        >>> import graphad as ga
        >>> from graphad.testing import check_grads
        >>> x, y = ga.symbols("x y")
        >>> check_grads(ga.exp(x**2) * ga.sin(y), [x, y], at={x: 0.5, y: 1.0})
    """
    outs, _ = as_expr_list(f, "check_grads")
    syms, _ = as_symbol_list(wrt, "check_grads", outs[0].graph)
    x0 = _point(syms, at)
    rng = np.random.default_rng(seed)
    pending = [(outs, order, "f")]
    while pending:
        fs, k, label = pending.pop()
        v = rng.standard_normal(len(syms))
        u = rng.standard_normal(len(fs))
        jv = jvp(fs, syms, list(v))
        jtu = vjp(fs, syms, list(u))

        def values(exprs, x):
            return np.array(evaluate(exprs, dict(zip(syms, x))))

        h = eps * max(1.0, float(np.max(np.abs(x0))))
        fd = (values(fs, x0 + h * v) - values(fs, x0 - h * v)) / (2 * h)
        _close(f"forward mode of {label} against finite differences", values(jv, x0), fd, rtol, atol)
        _close(f"reverse mode of {label} against forward mode (<u, Jv> = <J^T u, v>)",
               u @ values(jv, x0), values(jtu, x0) @ v, rtol, atol)
        if k > 1:
            pending.append((jv, k - 1, f"forward-mode derivative of {label}"))
            pending.append((jtu, k - 1, f"reverse-mode derivative of {label}"))
