"""Shared by the tests, the doctests in graphad/ and the docs pages."""

import threading

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


@pytest.fixture
def run_threads():
    """``run_threads(target, args, timeout)``: one thread per tuple of ``args``, all
    started, then each joined within ``timeout`` seconds; whether all finished."""

    def run(target, args, timeout):
        threads = [threading.Thread(target=target, args=a) for a in args]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=timeout)
        return not any(t.is_alive() for t in threads)

    return run


@pytest.fixture
def memory_growth():
    """``memory_growth(load)``: MiB by which this process's resident memory grows over
    300 calls ``load(k % 10)``, after 40 calls that fill the cache and warm the
    allocator (Linux: read from /proc; the test is skipped elsewhere)."""
    import gc
    import os

    if not os.path.exists("/proc/self/statm"):
        pytest.skip("reads the resident memory from /proc")

    def rss():
        gc.collect()
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def growth(load):
        for k in range(40):
            load(k % 10)
        before = rss()
        for k in range(300):
            load(k % 10)
        return rss() - before

    return growth
