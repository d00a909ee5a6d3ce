import math

import numpy as np
import pytest

import graphad as ga


def test_scalar_point_gives_python_floats():
    x, y = ga.symbols("x y")
    f = ga.exp(x**2) * ga.sin(y) + 3
    got = ga.evaluate(f, {x: 2.0, y: 1.0})
    assert type(got) is float
    assert got == pytest.approx(math.exp(4) * math.sin(1) + 3, rel=1e-15)
    assert ga.evaluate([f, x], {x: 2, y: 1}) == [got, 2.0]


def test_arrays_broadcast_and_constant_outputs_take_the_batch_shape():
    x, y = ga.symbols("x y")
    xs = np.linspace(0, 1, 5)
    ys = np.array([[1.0], [2.0]])
    f, g = ga.evaluate([x * y, ga.grad(x * y + y, y)], {x: xs, y: ys})
    assert f.shape == (2, 5)
    np.testing.assert_allclose(f, xs * ys)
    g2 = ga.evaluate(ga.grad(x**2 + y, y), {x: xs, y: 1.0})
    np.testing.assert_array_equal(g2, np.ones(5))
    assert isinstance(g, np.ndarray)


def test_symbol_names_work_as_keys_and_extra_keys_are_ignored():
    x = ga.symbols("x")
    assert ga.evaluate(x + 1, {"x": 1.0, "unused": 5.0}) == 2.0


def test_missing_symbol_is_named():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="no value given for symbol.*y"):
        ga.evaluate(x * y, {x: 1.0})


@pytest.mark.parametrize("bad", ["1.0", None, [1.0, "a"], {"a": 1}, 1j, True, np.array([True, False]),
                                 np.ma.masked_array([1.0, 2.0], mask=[False, True])])
def test_bad_values_are_named(bad):
    x = ga.symbols("x")
    with pytest.raises(TypeError, match="'x'"):
        ga.evaluate(x + 1, {x: bad})


def test_incompatible_shapes_are_reported():
    x, y = ga.symbols("x y")
    with pytest.raises(ValueError, match="do not broadcast"):
        ga.evaluate(x + y, {x: np.zeros(3), y: np.zeros(4)})


def test_env_must_be_a_dict_of_symbols():
    x = ga.symbols("x")
    with pytest.raises(TypeError, match="dict"):
        ga.evaluate(x, [1.0])
    with pytest.raises(TypeError, match="not a symbol"):
        ga.evaluate(x, {x + 1: 1.0})


def test_ints_are_converted_and_no_warnings_on_domain_errors():
    x = ga.symbols("x")
    with np.errstate(all="raise"):
        assert ga.evaluate(x / 2, {x: 1}) == 0.5
        np.testing.assert_array_equal(ga.evaluate(ga.log(x), {x: [-1, 0]}), [np.nan, -np.inf])
