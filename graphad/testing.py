"""Checkers for derivatives, for graphad's own tests and for users' functions."""

from __future__ import annotations

import itertools

import numpy as np

from .evaluate import evaluate
from .expr import Expr, as_expr_list, as_symbol_list
from .forward import jvp
from .graph import Graph
from .reverse import vjp


def _point(wrt: list[Expr], at) -> list[np.ndarray]:
    """The value of each symbol of ``wrt``, as float arrays (0-d for scalars)."""
    if isinstance(at, dict):
        missing = [s.name for s in wrt if s not in at and s.name not in at]
        if missing:
            raise ValueError(f"check_grads: no value in `at` for {', '.join(missing)}")
        return [np.array(at[s] if s in at else at[s.name], dtype=np.float64) for s in wrt]
    values = np.asarray(at, dtype=np.float64).ravel()
    if values.size != len(wrt) or any(s.shape for s in wrt):
        raise ValueError(f"check_grads: `at` has {values.size} values for {len(wrt)} symbols; "
                         "give array symbols' values as a dict")
    return list(values)


_checks = itertools.count()


def _directions(graph: Graph, stem: str, like: list[Expr]) -> list[Expr]:
    """Fresh symbols shaped like ``like``: the directions and weights of a check."""
    return [Expr(graph, graph.add("symbol", name=f"_{stem}{k}", shape=e.shape)) for k, e in enumerate(like)]


def _close(what: str, ad, ref, rtol: float, atol: float) -> None:
    if isinstance(ad, list):
        ad, ref = np.concatenate([np.ravel(a) for a in ad]), np.concatenate([np.ravel(r) for r in ref])
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

    ``f`` is an expression or a list of them (scalars or arrays), ``wrt`` a
    list of symbols and ``at`` a dict {symbol: value} (arrays for array
    symbols, which bind their size names; symbols not in ``wrt``, such as
    data, keep their values) or a sequence of values in ``wrt``'s order.
    Choose a point inside the domain and away from kinks (``abs`` at 0).

    Examples:
        >>> import graphad as ga
        >>> from graphad.testing import check_grads
        >>> x, y = ga.symbols("x y")
        >>> check_grads(ga.exp(x**2) * ga.sin(y), [x, y], at={x: 0.5, y: 1.0})
    """
    outs, _ = as_expr_list(f, "check_grads")
    graph = outs[0].graph
    syms, _ = as_symbol_list(wrt, "check_grads", graph)
    x0 = _point(syms, at)
    rng = np.random.default_rng(seed)
    h = eps * max(1.0, max(float(np.max(np.abs(x), initial=0.0)) for x in x0))
    pending = [(outs, order, "f")]
    env = dict(at) if isinstance(at, dict) else {}  # data: symbols not in wrt keep their values
    env.update(zip(syms, x0))  # the point, and the directions and weights of every level
    while pending:
        fs, k, label = pending.pop()
        # The directions v and weights u are symbols, so one graph serves every size; each
        # level's are named apart from any other's
        level = next(_checks)
        vs, us = (_directions(graph, f"check{level}{c}", like) for c, like in (("v", syms), ("u", fs)))
        jv = jvp(fs, syms, vs)
        jtu = vjp(fs, syms, us)
        env.update((s, rng.standard_normal(np.shape(x))) for s, x in zip(vs, x0))
        at_x = evaluate(fs, env)
        env.update((s, rng.standard_normal(np.shape(y))) for s, y in zip(us, at_x))

        def values(exprs, shift=0.0, env=env, vs=vs):
            moved = dict(env)
            moved.update((s, x + shift * env[v]) for s, x, v in zip(syms, x0, vs))
            return evaluate(exprs, moved)

        def dot(a, b):
            return sum(float(np.sum(np.multiply(x, y))) for x, y in zip(a, b))

        fd = [(p - m) / (2 * h) for p, m in zip(values(fs, h), values(fs, -h))]
        _close(f"forward mode of {label} against finite differences", values(jv), fd, rtol, atol)
        _close(f"reverse mode of {label} against forward mode (<u, Jv> = <J^T u, v>)",
               dot([env[u] for u in us], values(jv)), dot(values(jtu), [env[v] for v in vs]), rtol, atol)
        if k > 1:
            pending.append((jv, k - 1, f"forward-mode derivative of {label}"))
            pending.append((jtu, k - 1, f"reverse-mode derivative of {label}"))
