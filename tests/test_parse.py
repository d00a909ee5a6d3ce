import math

import pytest

import graphad as ga
from graphad.parse import MAX_DEPTH, MAX_LENGTH, ParseError, parse


def test_parses_ordinary_expressions():
    x, y = ga.symbols("x y")
    assert parse("exp(x**2)*sin(y) + 3") == ga.exp(x**2) * ga.sin(y) + 3
    assert parse("where(x > 0, sqrt(x), -x)") == ga.where(x > 0, ga.sqrt(x), -x)
    assert parse("atan2(y, x) / hypot(x, y)") == ga.atan2(y, x) / ga.hypot(x, y)
    assert parse(" 2 * pi * x ") == 2 * math.pi * x
    assert parse("-x ** 2") == -(x**2)
    assert math.isnan(parse("nan").value) and parse("inf").value == math.inf
    assert parse("x", {"x": x}) is not None


@pytest.mark.parametrize("text, reason", [
    ("__import__('os')", "underscore"),
    ("__import__('os').system('ls')", "only graphad's functions may be called"),
    ("x.real", "attribute access"),
    ("(lambda: 1)()", "only graphad's functions"),
    ("lambda x: x", "lambdas"),
    ("[x for x in y]", "comprehensions"),
    ("{x: 1}", "dicts"),
    ("x[0]", "subscripts"),
    ("open('f')", "unknown function open"),
    ("eval('1')", "unknown function eval"),
    ("exp(x, base=2)", "keyword arguments"),
    ("'abc'", "only real numbers"),
    ("True", "only real numbers"),
    ("2j", "only real numbers"),
    ("x if y else z", "conditional expressions"),
    ("x and y", "and/or"),
    ("1 < x < 2", "one comparison"),
    ("x ^ 2", "use \\*\\* for powers"),
    ("x == y", "one comparison"),
    ("exp", "is a function"),
    ("exp(x, y)", "takes 1 argument"),
    ("x +", "not a valid expression"),
    ("f'{x}'", "f-strings"),
    ("(x := 2)", "assignment"),
    ("_secret", "underscore"),
])
def test_rejects_hostile_and_invalid_input(text, reason):
    with pytest.raises(ParseError, match=reason):
        parse(text)


def test_refuses_overlong_and_deeply_nested_input():
    with pytest.raises(ParseError, match="characters long"):
        parse("x + " * MAX_LENGTH + "x")
    with pytest.raises(ParseError, match="nested"):
        parse("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ParseError, match="nested"):
        parse("-" * (MAX_DEPTH + 5) + "x")
    with pytest.raises(ParseError, match="string"):
        parse(42)


def test_long_flat_input_within_limits_parses():
    text = " + ".join(f"x{i}" for i in range(1000))
    assert len(text) < MAX_LENGTH
    assert parse(text).op == "add"


@pytest.mark.parametrize("text, value", [
    ("x*10**400", math.inf), ("9**9**9**9*x", math.inf), ("x + 1/0", math.inf),
    ("(-8)**(1/3) + x", math.nan), ("x*1" + "0" * 400, math.inf), ("x - 1e308*10", -math.inf),
])
def test_constants_fold_as_the_library_computes_them(text, value):
    f = parse(text)  # never OverflowError, ZeroDivisionError, a complex number or a hang
    result = ga.evaluate(f, {"x": 1.0})
    assert (math.isnan(result) and math.isnan(value)) or result == value


def test_a_flat_sum_of_thousands_of_terms_parses():
    text = "+".join(f"x{i % 9}" for i in range(3300))
    assert len(text) < 10_000
    f = parse(text)
    assert ga.evaluate(f, {f"x{k}": 1.0 for k in range(9)}) == 3300
