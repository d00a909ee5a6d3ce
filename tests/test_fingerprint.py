"""Cache keys see what a custom rule or pass computes, helpers and closures included."""

import numpy as np

from graphad.fingerprint import fingerprint

SCALE = 3.0


def helper(x):
    return x * SCALE


def test_a_helper_and_the_globals_it_reads_count():
    global SCALE

    def rule(x, out):
        return helper(x)

    before = fingerprint(rule)
    SCALE = 4.0
    try:
        assert fingerprint(rule) != before
    finally:
        SCALE = 3.0
    assert fingerprint(rule) == before


def test_closed_over_values_count_and_equal_functions_agree():
    def make(c):
        return lambda x, out: x * c

    assert fingerprint(make(1.0)) != fingerprint(make(2.0))
    assert fingerprint(make(1.0)) == fingerprint(make(1.0))
    assert fingerprint(make(np.arange(3.0))) != fingerprint(make(np.arange(4.0)))


def test_nested_code_and_sets_are_deterministic():
    def rule(x, out):
        inner = lambda y: y in {"a", "b", "c"}  # noqa: E731
        return inner(x)

    assert fingerprint(rule) == fingerprint(rule)


def test_recursion_ends():
    def f(x):
        return f(x - 1) if x else 0

    assert isinstance(fingerprint(f), str)
