import math

import pytest

import graphad as ga


def test_seed_example_forward():
    x = ga.symbols("x")
    df = ga.derivative(ga.exp(x**2), x, mode="forward")
    assert ga.evaluate(df, {x: 2.0}) == pytest.approx(4 * math.exp(4), rel=1e-15)


def test_jvp_is_the_directional_derivative():
    x, y = ga.symbols("x y")
    f, g = x * y, ga.sin(x) + y**2
    fx, gx = ga.jvp([f, g], [x, y], [1.0, 0.0])
    fv, gv = ga.jvp([f, g], [x, y], [0.5, -2.0])
    env = {x: 0.3, y: 0.7}
    assert ga.evaluate([fx, gx], env) == pytest.approx([0.7, math.cos(0.3)])
    assert ga.evaluate([fv, gv], env) == pytest.approx([0.5 * 0.7 - 2 * 0.3, 0.5 * math.cos(0.3) - 4 * 0.7])
    assert ga.jvp(f, x, 1.0) == y  # single in, single out


def test_tangents_may_be_expressions_and_seeds_of_zero_build_nothing(fresh_graph):
    x, y, t = ga.symbols("x y t")
    f = ga.exp(x) * ga.sin(y)
    n = len(fresh_graph)
    dfx = ga.jvp(f, [x, y], [1.0, 0.0])
    assert "cos" not in str(dfx)  # no tangent flows through y
    assert len(fresh_graph) - n == 3  # the seeds 1 and 0, and one chain product
    assert ga.evaluate(ga.jvp(f, [x, y], [t, 0.0]), {x: 0.0, y: 1.0, t: 3.0}) == pytest.approx(
        3 * math.sin(1.0))


def test_only_nodes_that_depend_on_the_seed_get_tangents(fresh_graph):
    x, y = ga.symbols("x y")
    heavy = ga.exp(ga.sin(ga.cos(y)))  # does not depend on x
    f = x * heavy
    assert ga.jvp(f, x, 1.0) == heavy


def test_repeated_symbol_tangents_add_up():
    x = ga.symbols("x")
    assert ga.evaluate(ga.jvp(x**2, [x, x], [1.0, 1.0]), {x: 3.0}) == 12.0


def test_output_that_does_not_depend_on_the_input_has_zero_tangent():
    x, y = ga.symbols("x y")
    assert ga.jvp(ga.sin(y), x, 1.0).value == 0.0


def test_jvp_errors_are_clear():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="jvp tangents: got 1 value"):
        ga.jvp(x * y, [x, y], [1.0])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.jvp(x * y, [x * y], [1.0])
    with pytest.raises(TypeError, match="only real numbers"):
        ga.jvp(x * y, [x], ["a"])
