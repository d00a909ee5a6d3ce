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
    with pytest.raises(ValueError, match="nor a flat vector of their 2 entries"):
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


def _logistic_problem(rng, n=200, d=3):
    X, y = ga.symbols("X", shape=("n", d)), ga.symbols("y", shape=("n",))
    w, b = ga.symbols("w", shape=(d,)), ga.symbols("b")
    z = X @ w + b
    loss = ga.mean(ga.log1p(ga.exp(-z)) + (1 - y) * z) + 0.01 * ga.sum(w ** 2)
    Xv = rng.standard_normal((n, d))
    yv = (Xv @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.standard_normal(n) > 0).astype(float)
    return loss, [w, b], {X: Xv, y: yv}


def test_every_method_fits_array_parameters_to_data(rng):
    loss, params, data = _logistic_problem(rng)
    start = [np.zeros(3), 0.0]
    newton = ga.newton(loss, params, start, data=data)
    assert newton.converged
    w, b = newton.params
    assert w.shape == (3,) and isinstance(b, float)
    descent = ga.gradient_descent(loss, params, start, data=data, step=1.0, line_search=True,
                                  tol=1e-7)
    assert descent.converged
    np.testing.assert_allclose(descent.x, newton.x, atol=1e-5)
    obj = ga.scipy_objective(loss, params, data=data)
    for method, extra in [("L-BFGS-B", {}), ("trust-ncg", {"hessp": obj.hessp}),
                          ("Newton-CG", {"hess": obj.hess})]:
        r = minimize(obj.fun, obj.flat(start), jac=obj.jac, method=method, **extra)
        np.testing.assert_allclose(r.x, newton.x, atol=1e-4, err_msg=method)
    w_fit, b_fit = obj.params(newton.x)
    np.testing.assert_array_equal(w_fit, w)
    # the flat gradient and Hessian agree with the evaluator's
    env = {**data, params[0]: w, params[1]: b}
    g = ga.evaluate(ga.grad(loss, params), env)
    np.testing.assert_allclose(obj.jac(newton.x), np.concatenate([g[0], [g[1]]]), atol=1e-12)
    H = obj.hess(newton.x)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(H) > 0)


def test_new_data_reuse_the_compiled_code(rng, monkeypatch):
    import graphad.compiled_arrays as ca

    loss, params, data = _logistic_problem(rng)
    first = ga.scipy_objective(loss, params, data=data)
    first.fun(np.zeros(4))
    built, native = [], ca._native
    monkeypatch.setattr(ca, "_native", lambda *args: built.append(args) or native(*args))
    other = {k: v[:50] for k, v in data.items()}  # another data set, another size n
    second = ga.scipy_objective(loss, params, data=other)
    assert second.fun(np.zeros(4)) == pytest.approx(np.log(2))
    assert first.fun(np.zeros(4)) == pytest.approx(np.log(2))
    assert not built


def test_array_optimizer_inputs_are_checked(rng):
    loss, params, data = _logistic_problem(rng)
    with pytest.raises(ValueError, match=r"one value per parameter \(w \(3,\), b \(\)\)"):
        ga.newton(loss, params, [np.zeros(4), 0.0], data=data)
    X = list(data)[0]
    with pytest.raises(ValueError, match="'X'"):
        ga.newton(loss, params, [np.zeros(3), 0.0], data={**data, X: np.zeros((5, 4))})
    with pytest.raises(TypeError, match="data must be a dict"):
        ga.gradient_descent(loss, params, np.zeros(4), data=[1, 2])
    with pytest.raises(ValueError, match="both parameters and data"):
        ga.scipy_objective(loss, params, data={params[1]: 1.0, **data})


def test_start_values_and_vectors_are_read_as_given():
    w = ga.symbols("w", shape=(1,))
    assert ga.newton(ga.sum((w - 3) ** 2), w, [0.5]).params.tolist() == [3.0]  # a flat list
    W = ga.symbols("W", shape=(1, 2))
    assert ga.newton(ga.sum((W - 3) ** 2), W, [[0.5, 1.0]]).params.tolist() == [[3.0, 3.0]]
    u, y = ga.symbols("u", shape=("n",)), ga.symbols("y", shape=("n",))
    f = ga.sum((u - y) ** 2)
    obj = ga.scipy_objective(f, u, data={"y": np.arange(5.0)})  # a symbol's name as a key
    assert obj.fun(np.zeros(5)) == 30.0
    for bad in (np.zeros(6), np.zeros(4)):
        with pytest.raises(ValueError, match="5 entries"):
            obj.fun(bad)
    with pytest.raises(ValueError, match="size 'n' of the parameter u"):
        ga.newton(f, u, np.zeros(5))
    with pytest.raises(ValueError, match="no symbol named 'zz'"):
        ga.newton(f, u, np.zeros(5), data={"zz": 1.0})
    clash = ga.symbols("_hvp_u", shape=("n",))  # the name newton would give its direction
    r = ga.newton(ga.sum((u - clash) ** 2), u, np.zeros(3), data={clash: np.ones(3)})
    assert r.params.tolist() == [1.0, 1.0, 1.0]
