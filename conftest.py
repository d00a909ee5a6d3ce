"""Shared by the tests, the doctests in graphad/ and the docs pages."""

import numpy as np
import pytest

import graphad as ga


@pytest.fixture(autouse=True)
def fresh_graph():
    """Each test builds in its own graph, freed afterwards."""
    with ga.Graph() as g:
        yield g


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
