import numpy as np
import pytest

import graphad as ga
from graphad.registry import OPS, register
from graphad.testing import check_grads


@pytest.fixture
def broken_ops():
    """Ops whose rules are wrong in a known way."""
    base = OPS["sin"]
    wrong_partial = register(base.__class__(**{**vars(base), "name": "sin_badpartial",
                                               "partials": (lambda x, out: 2 * ga.cos(x),)}))
    wrong_vjp = register(base.__class__(**{**vars(base), "name": "sin_badvjp",
                                           "vjp": lambda args, out, g, needed: (g * 3.0,)}))
    yield wrong_partial.name, wrong_vjp.name
    del OPS["sin_badpartial"], OPS["sin_badvjp"]


def test_check_grads_passes_on_correct_rules():
    x, y = ga.symbols("x y")
    check_grads(ga.sin(x) * ga.exp(y), [x, y], at=[0.1, 0.2])


def test_check_grads_catches_wrong_forward_rule(broken_ops):
    x = ga.symbols("x")
    with pytest.raises(AssertionError, match="forward mode of f against finite differences"):
        check_grads(ga.expr.apply(broken_ops[0], x), [x], at=[0.3], order=1)


def test_check_grads_catches_wrong_reverse_rule(broken_ops):
    x = ga.symbols("x")
    with pytest.raises(AssertionError, match="reverse mode of f against forward mode"):
        check_grads(ga.expr.apply(broken_ops[1], x), [x], at=[0.3], order=1)


def test_check_grads_catches_wrong_second_derivative(broken_ops):
    x = ga.symbols("x")
    # first derivative right, second wrong: cos(x) differentiates with the bad partial
    f = ga.expr.apply(broken_ops[0], x) - ga.expr.apply(broken_ops[0], x) + ga.sin(x)
    check_grads(f, [x], at=[0.3], order=2)  # cancels: still right
    g = ga.sin(x) ** 2
    check_grads(g, [x], at=np.array([0.3]), order=3)


def test_check_grads_argument_errors():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="no value in `at` for y"):
        check_grads(x * y, [x, y], at={x: 1.0})
    with pytest.raises(ValueError, match="1 values for 2 symbols"):
        check_grads(x * y, [x, y], at=[1.0])
