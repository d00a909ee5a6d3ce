import numpy as np
import pytest

import graphad as ga
from graphad.sparsity import column_colouring


def bratu(n):
    u = ga.symbols(f"u0:{n}")
    h = 1.0 / (n + 1)

    def at(i):
        return u[i] if 0 <= i < n else 0.0

    residual = [(at(i - 1) - 2 * u[i] + at(i + 1)) / h**2 + ga.exp(u[i]) for i in range(n)]
    energy = sum(((at(i + 1) - at(i)) / h) ** 2 / 2 for i in range(-1, n)) - sum(ga.exp(x) for x in u)
    return u, residual, energy


def test_sparse_jacobian_of_a_banded_problem_takes_three_sweeps(rng):
    u, residual, _ = bratu(40)
    J = ga.sparse_jacobian(residual, u)
    assert J.sweeps == 3 and J.pattern.nnz == 3 * 40 - 2
    x = rng.uniform(-0.5, 0.5, 40)
    dense = np.array([ga.evaluate(row, dict(zip(u, x))) for row in ga.jacobian(residual, u)])
    np.testing.assert_allclose(J(x).toarray(), dense, rtol=1e-13)
    assert "3 sweeps instead of 40" in repr(J)


def test_sparse_hessian_of_a_banded_problem_takes_three_sweeps(rng):
    u, residual, energy = bratu(40)
    H = ga.sparse_hessian(energy, u)
    assert H.sweeps == 3
    x = rng.uniform(-0.5, 0.5, 40)
    dense = np.array([ga.evaluate(row, dict(zip(u, x))) for row in ga.hessian(energy, u)])
    np.testing.assert_allclose(H(x).toarray(), dense, rtol=1e-13)
    np.testing.assert_allclose(H(x).toarray(), -ga.sparse_jacobian(residual, u)(x).toarray(), rtol=1e-13)


def test_jacobian_pattern_ignores_conditions_and_comparisons():
    x, y, z = ga.symbols("x y z")
    pattern = ga.jacobian_sparsity([ga.where(x > y, z, 0.0), x < y, ga.sign(z) * y], [x, y, z])
    assert pattern.toarray().tolist() == [[False, False, True], [False, False, False], [False, True, False]]


def test_hessian_pattern_covers_the_true_hessian(rng):
    xs = ga.symbols("x0:6")
    f = xs[0] * xs[1] + ga.exp(xs[2] + xs[3]) + ga.maximum(xs[4], 0.0) + xs[5] + ga.sin(xs[0]) * xs[5]
    pattern = ga.hessian_sparsity(f, xs).toarray()
    for _ in range(3):
        env = dict(zip(xs, rng.uniform(-1, 1, 6)))
        h = np.array([ga.evaluate(row, env) for row in ga.hessian(f, xs)])
        assert not np.any((h != 0) & ~pattern)  # every nonzero is in the pattern
    assert not pattern[4].any()  # maximum is piecewise linear
    assert pattern[0, 1] and pattern[2, 3] and not pattern[1, 2]


def test_colouring_never_shares_a_row_within_a_colour(rng):
    import scipy.sparse as sparse

    pattern = sparse.random(30, 25, density=0.1, random_state=1, format="csr").astype(bool)
    colours = column_colouring(pattern)
    dense = pattern.toarray()
    for c in set(colours):
        assert dense[:, colours == c].sum(axis=1).max() <= 1


def test_sparsity_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(TypeError, match="one expression"):
        ga.sparse_hessian([x, y], [x, y])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.jacobian_sparsity([x], [x * y])


def test_a_single_symbol_may_stand_for_a_list_everywhere():
    x = ga.symbols("x")
    assert ga.sparse_jacobian([x**2], x)(np.array([3.0])).toarray().tolist() == [[6.0]]
    assert ga.sparse_hessian(x**3, x)(np.array([2.0])).toarray().tolist() == [[12.0]]
    assert ga.jacobian_sparsity(x**2, x).toarray().tolist() == [[True]]
    assert "#f4cccc" in ga.picture(x**2, x, parts=("adjoint",)).dot
    assert "cluster_1" in ga.picture_passes(x**2, x).dot
