import numpy as np
import pytest
from scipy.optimize import minimize

import graphad as ga


def rosenbrock(xs):
    return sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))


def test_gradient_descent_fixed_step_and_divergence():
    x, y = ga.symbols("x y")
    f = (x - 1) ** 2 + 4 * (y + 2) ** 2
    r = ga.gradient_descent(f, [x, y], [0.0, 0.0], step=0.1, tol=1e-10)
    assert r.converged and np.allclose(r.x, [1, -2]) and r.iterations > 10
    assert r.history == sorted(r.history, reverse=True)  # f decreases
    bad = ga.gradient_descent(f, [x, y], [0.0, 0.0], step=1.0, max_iter=2000)
    assert not bad.converged and "diverged" in bad.message


def test_gradient_descent_with_backtracking_on_rosenbrock():
    x, y = ga.symbols("x y")
    r = ga.gradient_descent(rosenbrock([x, y]), [x, y], [-1.2, 1.0], step=1.0, line_search=True,
                            tol=1e-6, max_iter=100_000)
    assert r.converged and np.allclose(r.x, [1, 1], atol=1e-5)
    assert "converged" in str(r)


def test_newton_with_the_compiled_hessian():
    x, y = ga.symbols("x y")
    r = ga.newton(rosenbrock([x, y]), [x, y], [-1.2, 1.0])
    assert r.converged and np.allclose(r.x, [1, 1]) and r.iterations < 40
    xs = ga.symbols("x0:100")
    r = ga.newton(rosenbrock(xs), xs, np.zeros(100))  # chained: about n iterations
    assert r.converged and np.allclose(r.x, 1.0) and r.iterations < 200
    local = ga.newton(rosenbrock(xs), xs, np.tile([-1.2, 1.0], 50))
    assert local.converged and local.fun == pytest.approx(3.9866, abs=1e-3)  # the known local minimum


@pytest.mark.parametrize("method, extra", [("BFGS", ["jac"]), ("Newton-CG", ["jac", "hess"]),
                                           ("trust-ncg", ["jac", "hessp"])])
def test_scipy_objective(method, extra):
    xs = ga.symbols("x0:10")
    obj = ga.scipy_objective(rosenbrock(xs), xs)
    r = minimize(obj.fun, np.zeros(10), method=method, **{k: getattr(obj, k) for k in extra},
                 options={"maxiter": 10_000})
    assert r.success and np.allclose(r.x, 1.0, atol=1e-4)


def test_scipy_objective_pieces_agree_with_the_evaluator(rng):
    xs = ga.symbols("x0:4")
    f = rosenbrock(xs) + ga.sin(xs[0] * xs[3])
    obj = ga.scipy_objective(f, xs)
    p, v = rng.uniform(-1, 1, 4), rng.standard_normal(4)
    env = dict(zip(xs, p))
    assert obj.fun(p) == pytest.approx(ga.evaluate(f, env))
    np.testing.assert_allclose(obj.jac(p), ga.evaluate(ga.grad(f, xs), env))
    h = np.array([ga.evaluate(row, env) for row in ga.hessian(f, xs)])
    np.testing.assert_allclose(obj.hess(p), h, rtol=1e-12)
    np.testing.assert_allclose(obj.hessp(p, v), h @ v, rtol=1e-12)


def test_optimizer_argument_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="x0 has 1 values for 2 symbols"):
        ga.gradient_descent(x * y, [x, y], [1.0])
    with pytest.raises(TypeError, match="one expression"):
        ga.newton([x, y], [x, y], [1.0, 2.0])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.scipy_objective(x * y, [x * y])


def test_newton_stops_at_machine_precision_on_a_sum_of_many_terms():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 3)), rng.choice([-1.0, 1.0], 300)
    ws = list(ga.symbols("w0:3"))
    loss = sum(ga.log1p(ga.exp(-yi * sum(float(c) * w for c, w in zip(xi, ws)))) for xi, yi in zip(X, y))
    r = ga.newton(loss / 300, ws, np.zeros(3))
    assert r.converged and r.iterations < 20 and r.evaluations < 40
    ref = minimize(ga.scipy_objective(loss / 300, ws).fun, np.zeros(3), method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20_000})
    assert r.fun <= ref.fun + 1e-12
