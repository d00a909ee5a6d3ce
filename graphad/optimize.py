"""AD meets optimisation: gradient descent, Newton's method, and SciPy objectives.

Each method compiles what it needs once (value and gradient in one kernel;
the Hessian for Newton) and then calls it every iteration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import cluster
from .compiler import _has_arrays, compile_grad
from .compiler import compile as ga_compile
from .derivatives import hessian, hvp
from .expr import Expr, as_one_expr, as_symbol_list


@dataclass
class OptimizeResult:
    """Where a method stopped, and how it got there."""

    x: np.ndarray  # the parameters as one flat vector
    fun: float
    grad_norm: float
    iterations: int
    evaluations: int  # function (and gradient) evaluations
    converged: bool
    message: str
    seconds: float = 0.0
    history: list[float] = field(default_factory=list, repr=False)  # f after each iteration
    params: object = field(default=None, repr=False)  # x as the parameters: one value, or a list

    def __str__(self) -> str:
        return (f"{self.message}: f = {self.fun:.6g}, |grad| = {self.grad_norm:.2e} after "
                f"{self.iterations} iterations, {self.evaluations} evaluations, {self.seconds:.3f} s")


class _Problem:
    """``f`` over the parameters ``wrt`` as a function of one flat vector, with
    ``data`` (a dict symbol -> value) bound: what every method works with.

    A scalar symbol takes one entry of the vector, an array symbol as many as
    it has elements (C order). Size names in the parameters' shapes are bound
    from the data."""

    def __init__(self, f, wrt, data, what: str):
        from . import shapes as S
        from .evaluate import _input_value

        self.what = what
        self.f = f = as_one_expr(f, what)
        self.syms, self.single = as_symbol_list(wrt, what, f.graph)
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise TypeError(f"{what}: data must be a dict {{symbol: value}}, not {type(data).__name__}")
        keys = []
        for key in data:  # symbols, or their names
            if isinstance(key, str):
                nid = f.graph.symbol_id(key)
                if nid is None:
                    raise ValueError(f"{what}: data: f's graph has no symbol named {key!r}")
                key = Expr(f.graph, nid)
            elif not (isinstance(key, Expr) and key.is_symbol):
                raise TypeError(f"{what}: data: the key {key!r} is not a symbol (or a symbol's name)")
            elif key.graph is not f.graph:
                raise ValueError(f"{what}: data: the symbol {key} is not of f's graph")
            keys.append(key)
        self.data_syms = keys
        clash = sorted({s.name for s in self.data_syms} & {s.name for s in self.syms})
        if clash:
            raise ValueError(f"{what}: {', '.join(clash)} are both parameters and data")
        raw = list(data.values())
        # Dask data in rows are kept lazy: evaluated chunk by chunk, where they are
        dask_data = any(cluster.is_rows(s, v) for s, v in zip(keys, raw))
        self.data_values = raw if dask_data else [_input_value(s, v) for s, v in zip(keys, raw)]
        sizes: dict = {}
        for s, v in zip(self.data_syms, self.data_values):
            if dask_data and any(math.isnan(d) for d in np.shape(v)):
                raise ValueError(f"{what}: the Dask data {s.name} has axes of unknown length (shape "
                                 f"{np.shape(v)}): call .compute_chunk_sizes() on it first")
            try:
                S.bind(sizes, s.name, s.shape, np.shape(v))
            except ValueError as e:
                raise ValueError(f"{what}: data: {e}") from None
        for s in self.syms:
            for d in s.shape:
                if isinstance(d, str) and S.split(d)[0] not in sizes:
                    raise ValueError(f"{what}: the size {d!r} of the parameter {s.name} (shape "
                                     f"{S.fmt(s.shape)}) is not bound: give data whose shapes bind it")
        self.shapes = [S.resolve(s.shape, sizes) for s in self.syms]
        read = set(f.graph.ancestors([f.id]))  # data that f does not read are not arguments
        kept = [(s, v) for s, v in zip(self.data_syms, self.data_values) if s.id in read]
        self.data_syms, self.data_values = [s for s, _ in kept], [v for _, v in kept]
        self.arrays = _has_arrays([f, *self.syms, *self.data_syms])
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self._fg = None
        self.rows = cluster.RowData(f, self.syms, keys, raw, sizes, what) if dask_data else None

    def flat(self, x0) -> np.ndarray:
        """``x0`` (a flat vector, or one value per parameter) as one flat vector."""
        n = sum(self.sizes)
        if isinstance(x0, (list, tuple)) and len(x0) == len(self.syms) and any(self.shapes):
            try:
                parts = [np.asarray(v, dtype=np.float64) for v in x0]
            except (TypeError, ValueError):
                parts = []
            if [p.shape for p in parts] == self.shapes:  # one value per parameter
                return np.concatenate([p.ravel() for p in parts])
        try:
            x = np.array(x0, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            x = None
        if x is None or x.size != n:
            shapes = ", ".join(f"{s.name} {shape}" for s, shape in zip(self.syms, self.shapes))
            raise ValueError(f"{self.what}: x0 is neither one value per parameter ({shapes}) nor a flat "
                             f"vector of their {n} entries")
        return x

    def check(self, x) -> np.ndarray:
        """``x`` as a flat float vector of the parameters' length, or a ValueError."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (sum(self.sizes),):
            raise ValueError(f"{self.what}: got a vector of shape {x.shape}; the parameters have "
                             f"{sum(self.sizes)} entries")
        return x

    def split(self, x) -> list:
        """The flat vector as one value per parameter (floats and arrays)."""
        out, k = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            out.append(x[k:k + size].reshape(shape) if shape else float(x[k]))
            k += size
        return out

    def params(self, x):
        """The flat vector as the caller's structure: one value, or a list."""
        values = self.split(x)
        return values[0] if self.single else values

    def value_and_grad(self):
        """x -> (f, gradient as a flat vector), compiled once."""
        if self._fg is None and self.rows is not None:  # summed over chunks of Dask data

            def fg(x):
                value, grads = self.rows.value_and_grad(self.split(x))
                return value, _join(grads)

            self._fg = fg
        if self._fg is None:
            fn = compile_grad(self.f, self.syms, data=self.data_syms)
            if self.arrays:  # one argument per parameter, one gradient per parameter

                def fg(x):
                    value, grads = fn(*self.split(x), *self.data_values)
                    return value, _join(grads)

                self._fg = fg
            else:  # the parameters as one vector, the gradient as one vector
                self._fg = lambda x: fn(x, *self.data_values)
        return self._fg

    def hvp(self):
        """(x, v) -> the Hessian of f at x times v (flat vectors), compiled once."""
        from .expr import symbols

        graph = self.f.graph
        names = [_fresh_name(graph, f"_hvp_{s.name}") for s in self.syms]
        if not self.arrays:
            with graph:
                vs = [symbols(name) for name in names]
            inputs = [self.syms, vs, *self.data_syms]
            fn = ga_compile([hvp(self.f, self.syms, vs)], inputs)
            return lambda x, v: fn(np.asarray(x, dtype=np.float64), np.asarray(v, dtype=np.float64),
                                   *self.data_values)[0]
        with graph:
            vs = [symbols(name, shape=s.shape) for name, s in zip(names, self.syms)]
        if self.rows is not None:
            hv = self.rows.hvp(vs)
            return lambda x, v: _join(hv(self.split(x), self.split(np.asarray(v, dtype=np.float64))))
        fn = ga_compile(hvp(self.f, self.syms, vs), [*self.syms, *vs, *self.data_syms])
        return lambda x, v: _join(fn(*self.split(x), *self.split(np.asarray(v, dtype=np.float64)),
                                     *self.data_values))

    def hessian(self):
        """x -> the dense Hessian (for array parameters: one Hessian-vector product per column)."""
        n = sum(self.sizes)
        if not self.arrays:
            entries = ga_compile([sum(hessian(self.f, self.syms), [])], [self.syms, *self.data_syms])
            return lambda x: entries(np.asarray(x, dtype=np.float64), *self.data_values)[0].reshape(n, n)
        hv = self.hvp()
        return lambda x: np.column_stack([hv(x, e) for e in np.eye(n)])


def _fresh_name(graph, base: str) -> str:
    """A symbol name that ``graph`` does not have yet (for directions of its own)."""
    name, k = base, 0
    while graph.symbol_id(name) is not None:
        k += 1
        name = f"{base}_{k}"
    return name


def _join(parts) -> np.ndarray:
    """One array per parameter (a tuple, as compiled functions return a list of outputs) as one vector."""
    return np.concatenate([np.ravel(p) for p in parts])


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


def gradient_descent(f, wrt, x0, *, data=None, step: float = 1e-3, line_search: bool = False,
                     tol: float = 1e-8, max_iter: int = 10_000) -> OptimizeResult:
    """Minimise ``f`` over the symbols ``wrt`` from ``x0`` by gradient descent.

    ``wrt`` may hold array symbols: ``x0`` is then one start value per symbol
    (or all of them as one flat vector) and ``result.params`` gives the
    solution in that structure. ``data`` binds the other symbols of ``f`` (a
    data set: ``{X: Xv, y: yv}``); new data reuse the compiled code.

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
    problem = _Problem(f, wrt, data, "gradient_descent")
    x = problem.flat(x0)
    r = _minimise(problem.value_and_grad(), x, lambda x, g: -g, step=step, line_search=line_search, tol=tol,
                  max_iter=max_iter)
    r.params = problem.params(r.x)
    return r


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


def newton(f, wrt, x0, *, data=None, tol: float = 1e-10, max_iter: int = 500) -> OptimizeResult:
    """Minimise ``f`` by Newton's method with the compiled Hessian.

    Each iteration solves (H + tau I) p = -g, with tau = 0 where the Hessian
    is positive definite and the smallest multiple of the identity that makes
    it so elsewhere, then backtracks along p (Armijo). With array parameters
    (``wrt``, ``x0`` and ``data`` as for :func:`gradient_descent`) the Hessian
    is never formed: conjugate gradients solve H p = -g with compiled
    Hessian-vector products (Newton-CG), so a step costs a few gradients
    whatever the number of parameters.

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> r = ga.newton((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y], [-1.2, 1.0])
        >>> r.converged, r.x.round(8).tolist(), r.iterations < 30
        (True, [1.0, 1.0], True)
    """
    problem = _Problem(f, wrt, data, "newton")
    x = problem.flat(x0)
    if problem.arrays:
        hv = problem.hvp()
        direction = lambda x, g: _newton_cg_direction(lambda v: hv(x, v), g)  # noqa: E731
    else:
        hess = problem.hessian()
        direction = lambda x, g: _newton_direction(hess(x), g)  # noqa: E731
    r = _minimise(problem.value_and_grad(), x, direction, step=1.0, line_search=True, tol=tol,
                  max_iter=max_iter)
    r.params = problem.params(r.x)
    return r


def _newton_cg_direction(hv, g, max_iter: int = 250):
    """An approximate solution of H p = -g by conjugate gradients, stopped at a
    relative residual of min(0.5, sqrt|g|) |g| or at negative curvature
    (Nocedal and Wright, Algorithm 7.1): always a descent direction."""
    gnorm = float(np.linalg.norm(g))
    tol = min(0.5, np.sqrt(gnorm)) * gnorm
    p, r = np.zeros_like(g), g.copy()
    d = -r
    for _ in range(max_iter):
        Hd = hv(d)
        curvature = float(d @ Hd)
        if not np.isfinite(curvature) or curvature <= 0:
            return -g if not p.any() else p
        alpha = float(r @ r) / curvature
        p = p + alpha * d
        r_new = r + alpha * Hd
        if np.linalg.norm(r_new) < tol:
            return p
        d = -r_new + (float(r_new @ r_new) / float(r @ r)) * d
        r = r_new
    return p


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
    """``fun``, ``jac``, ``hess`` and ``hessp`` for ``scipy.optimize.minimize``,
    on the parameters as one flat vector.

    Each is compiled on first use; ``fun`` and ``jac`` share one kernel (the
    value and gradient of the last point are kept, since SciPy asks for both
    at the same point). ``params(x)`` gives a flat vector back as the
    parameters (one value, or a list of floats and arrays); ``flat(x0)`` does
    the reverse.
    """

    def __init__(self, problem: _Problem):
        self._problem = problem
        self._h = self._hv = None
        self._last: tuple[bytes, float, np.ndarray] | None = None

    def _value_and_grad(self, x):
        x = self._problem.check(x)
        key = x.tobytes()
        if self._last is None or self._last[0] != key:
            fx, g = self._problem.value_and_grad()(x)
            self._last = (key, fx, g)
        return self._last[1], self._last[2]

    def fun(self, x) -> float:
        return self._value_and_grad(x)[0]

    def jac(self, x) -> np.ndarray:
        return self._value_and_grad(x)[1].copy()

    def hess(self, x) -> np.ndarray:
        if self._h is None:
            self._h = self._problem.hessian()
        return self._h(self._problem.check(x))

    def hessp(self, x, p) -> np.ndarray:
        if self._hv is None:
            self._hv = self._problem.hvp()
        return self._hv(self._problem.check(x), self._problem.check(p))

    def flat(self, x0) -> np.ndarray:
        return self._problem.flat(x0)

    def params(self, x):
        return self._problem.params(self._problem.check(x))


def scipy_objective(f, wrt, *, data=None) -> Objective:
    """Compiled ``fun``, ``jac``, ``hess`` and ``hessp`` for ``scipy.optimize.minimize``.

    ``wrt`` may hold array symbols (SciPy sees them flattened into one
    vector: ``obj.flat(x0)`` and ``obj.params(result.x)`` convert), and
    ``data`` binds the other symbols of ``f`` (``{X: Xv, y: yv}``).

    Examples:
        >>> import graphad as ga
        >>> from scipy.optimize import minimize
        >>> x, y = ga.symbols("x y")
        >>> obj = ga.scipy_objective((1 - x) ** 2 + 100 * (y - x**2) ** 2, [x, y])
        >>> r = minimize(obj.fun, [-1.2, 1.0], jac=obj.jac, hessp=obj.hessp, method="trust-ncg")
        >>> r.success, r.x.round(4).tolist()
        (True, [1.0, 1.0])
    """
    return Objective(_Problem(f, wrt, data, "scipy_objective"))
