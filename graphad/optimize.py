"""AD meets optimisation: gradient descent, Newton's method, and SciPy objectives.

Each method compiles what it needs once (value and gradient in one kernel;
the Hessian for Newton) and then calls it every iteration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .compiler import compile as ga_compile
from .compiler import compile_grad
from .derivatives import hessian, hvp
from .expr import as_one_expr, as_symbol_list, require_scalars


@dataclass
class OptimizeResult:
    """Where a method stopped, and how it got there."""

    x: np.ndarray
    fun: float
    grad_norm: float
    iterations: int
    evaluations: int  # function (and gradient) evaluations
    converged: bool
    message: str
    seconds: float = 0.0
    history: list[float] = field(default_factory=list, repr=False)  # f after each iteration

    def __str__(self) -> str:
        return (f"{self.message}: f = {self.fun:.6g}, |grad| = {self.grad_norm:.2e} after "
                f"{self.iterations} iterations, {self.evaluations} evaluations, {self.seconds:.3f} s")


def _setup(f, wrt, x0, what):
    f = as_one_expr(f, what)
    syms, _ = as_symbol_list(wrt, what, f.graph)
    require_scalars([f, *syms], what)
    x = np.array(x0, dtype=np.float64).ravel()
    if x.size != len(syms):
        raise ValueError(f"{what}: x0 has {x.size} values for {len(syms)} symbols")
    return f, syms, x


def _compiled_hessian(f, syms):
    """x -> the Hessian of f at x, an n x n array."""
    entries = ga_compile([sum(hessian(f, syms), [])], [syms])
    n = len(syms)
    return lambda x: entries(np.asarray(x, dtype=np.float64))[0].reshape(n, n)


_EPS = np.finfo(np.float64).eps


def _at_precision_floor(fx, f_new, g) -> bool:
    """f no longer decreases beyond rounding and the gradient is tiny relative to f:
    as converged as float64 allows (sums of many terms keep |grad| above 1e-10)."""
    scale = max(1.0, abs(fx))
    return abs(fx - f_new) <= 16 * _EPS * scale and np.linalg.norm(g) <= np.sqrt(_EPS) * scale


def _backtrack(fg, x, fx, g, direction, step, shrink=0.5, c=1e-4, max_halvings=60):
    """Armijo backtracking: the first step along ``direction`` that decreases f enough."""
    slope = float(g @ direction)
    evaluations = 0
    for _ in range(max_halvings):
        candidate = x + step * direction
        f_new, g_new = fg(candidate)
        evaluations += 1
        if np.isfinite(f_new) and f_new <= fx + c * step * slope:
            return candidate, f_new, g_new, evaluations
        step *= shrink
    return None, fx, g, evaluations


def gradient_descent(f, wrt, x0, *, step: float = 1e-3, line_search: bool = False, tol: float = 1e-8,
                     max_iter: int = 10_000) -> OptimizeResult:
    """Minimise ``f`` over the symbols ``wrt`` from ``x0`` by gradient descent.

    With ``line_search=False`` every step is ``step`` times the negative
    gradient; with ``line_search=True`` each iteration backtracks from
    ``step`` (Armijo) until f decreases enough. Stops when the gradient's norm
    falls below ``tol``.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> r = ga.gradient_descent((x - 1) ** 2 + 10 * (y + 2) ** 2, [x, y], [0.0, 0.0],
        ...                         step=1.0, line_search=True)
        >>> r.converged, r.x.round(6).tolist()
        (True, [1.0, -2.0])
    """
    f, syms, x = _setup(f, wrt, x0, "gradient_descent")
    fg = compile_grad(f, syms)
    return _minimise(fg, x, lambda x, g: -g, step=step, line_search=line_search, tol=tol,
                     max_iter=max_iter)


def _minimise(fg, x, direction, *, step, line_search, tol, max_iter) -> OptimizeResult:
    """The loop both methods share: step along ``direction(x, g)``, with or
    without backtracking, until converged, stuck, diverged or out of iterations."""
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported, not warned
        fx, g = fg(x)
        evaluations, history = 1, []

        def result(iterations, converged, message):
            return OptimizeResult(x, fx, float(np.linalg.norm(g)), iterations, evaluations, converged,
                                  message, time.perf_counter() - start, history)

        for it in range(1, max_iter + 1):
            if np.linalg.norm(g) < tol:
                return result(it - 1, True, "converged")
            p = direction(x, g)
            if line_search:
                new, fx_new, g_new, k = _backtrack(fg, x, fx, g, p, step)
                evaluations += k
                if new is None or _at_precision_floor(fx, fx_new, g_new):
                    failed = new is None and not _at_precision_floor(fx, fx, g)
                    if new is not None:
                        x, fx, g = new, fx_new, g_new
                    return result(it, not failed, "line search failed" if failed
                                  else "converged (to machine precision)")
                x, fx, g = new, fx_new, g_new
            else:
                x = x + step * p
                fx, g = fg(x)
                evaluations += 1
            history.append(float(fx))
            if not np.isfinite(fx):
                return result(it, False, "diverged (f is not finite): try a smaller step")
        return result(max_iter, False, "stopped at max_iter")


def newton(f, wrt, x0, *, tol: float = 1e-10, max_iter: int = 500) -> OptimizeResult:
    """Minimise ``f`` by Newton's method with the compiled Hessian.

    Each iteration solves (H + tau I) p = -g, with tau = 0 where the Hessian
    is positive definite and the smallest multiple of the identity that makes
    it so elsewhere, then backtracks along p (Armijo).

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> r = ga.newton((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y], [-1.2, 1.0])
        >>> r.converged, r.x.round(8).tolist(), r.iterations < 30
        (True, [1.0, 1.0], True)
    """
    f, syms, x = _setup(f, wrt, x0, "newton")
    fg = compile_grad(f, syms)
    hess = _compiled_hessian(f, syms)
    return _minimise(fg, x, lambda x, g: _newton_direction(hess(x), g),
                     step=1.0, line_search=True, tol=tol, max_iter=max_iter)


def _newton_direction(H, g):
    """Solve (H + tau I) p = -g with the smallest tau (0 first) that makes the
    matrix positive definite (Nocedal and Wright, Algorithm 3.3)."""
    identity = np.eye(len(g))
    tau = 0.0
    scale = max(float(np.max(np.abs(np.diag(H)))), 1.0) if np.all(np.isfinite(H)) else None
    if scale is None:
        return -g
    for _ in range(60):
        try:
            L = np.linalg.cholesky(H + tau * identity)
        except np.linalg.LinAlgError:
            tau = max(2 * tau, 1e-3 * scale)
            continue
        return -np.linalg.solve(L.T, np.linalg.solve(L, g))
    return -g


class Objective:
    """``fun``, ``jac``, ``hess`` and ``hessp`` for ``scipy.optimize.minimize``.

    Each is compiled on first use; ``fun`` and ``jac`` share one kernel (the
    value and gradient of the last point are kept, since SciPy asks for both
    at the same point).
    """

    def __init__(self, f, syms):
        self._f, self._syms = f, syms
        self._fg = self._h = self._hv = None
        self._last: tuple[bytes, float, np.ndarray] | None = None

    def _value_and_grad(self, x):
        x = np.asarray(x, dtype=np.float64)
        key = x.tobytes()
        if self._last is None or self._last[0] != key:
            if self._fg is None:
                self._fg = compile_grad(self._f, self._syms)
            fx, g = self._fg(x)
            self._last = (key, fx, g)
        return self._last[1], self._last[2]

    def fun(self, x) -> float:
        return self._value_and_grad(x)[0]

    def jac(self, x) -> np.ndarray:
        return self._value_and_grad(x)[1].copy()

    def hess(self, x) -> np.ndarray:
        if self._h is None:
            self._h = _compiled_hessian(self._f, self._syms)
        return self._h(x)

    def hessp(self, x, p) -> np.ndarray:
        if self._hv is None:
            from .expr import symbols

            vs = list(symbols(f"_hessp_v0:{len(self._syms)}"))
            self._hv = ga_compile([hvp(self._f, self._syms, vs)], [self._syms, vs])
        return self._hv(np.asarray(x, dtype=np.float64), np.asarray(p, dtype=np.float64))[0]


def scipy_objective(f, wrt) -> Objective:
    """Compiled ``fun``, ``jac``, ``hess`` and ``hessp`` for ``scipy.optimize.minimize``.

    Examples:
        >>> import graphad as ga
        >>> from scipy.optimize import minimize
        >>> x, y = ga.symbols("x y")
        >>> obj = ga.scipy_objective((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y])
        >>> r = minimize(obj.fun, [-1.2, 1.0], jac=obj.jac, hessp=obj.hessp, method="trust-ncg")
        >>> r.success, r.x.round(4).tolist()
        (True, [1.0, 1.0])
    """
    f = as_one_expr(f, "scipy_objective")
    syms, _ = as_symbol_list(wrt, "scipy_objective", f.graph)
    require_scalars([f, *syms], "scipy_objective")
    return Objective(f, syms)
