import os
import pickle
import subprocess
import sys
import threading

import networkx as nx
import numpy as np
import pytest

import graphad as ga


def test_hash_consing_gives_one_node_per_distinct_operation(fresh_graph):
    x, y = ga.symbols("x y")
    a = ga.exp(x * y) + 1
    b = ga.exp(x * y) + 1
    assert a == b and a.id == b.id
    assert ga.symbols("x") == x
    assert len(fresh_graph) == 6  # x, y, x*y, exp, 1, add
    assert x * y != y * x  # commuted operands are the CSE pass's job, not construction's


def test_the_graph_is_held_in_networkx(fresh_graph):
    x, y = ga.symbols("x y")
    f = ga.sin(x * y)
    G = fresh_graph.nx
    assert isinstance(G, nx.DiGraph) and G.number_of_nodes() == len(fresh_graph) == 4
    assert G.nodes[f.id] == {"op": "sin", "args": (f.args[0].id,), "shape": ()}
    g = f + x
    assert fresh_graph.nx.has_edge(x.id, g.id)  # kept up to date as the DAG grows


def test_constants_keep_signed_zero_and_nan_apart():
    z, nz, n1, n2 = (ga.expr.constant(v) for v in (0.0, -0.0, float("nan"), float("nan")))
    assert z != nz
    assert n1 == n2


def test_to_networkx_records_op_args_value_and_name():
    x, y = ga.symbols("x y")
    f = ga.exp(x**2) * ga.sin(y) + 3
    G = ga.to_networkx([f])
    assert isinstance(G, nx.DiGraph)
    assert nx.is_directed_acyclic_graph(G)
    assert G.graph["outputs"] == [f.id]
    assert G.nodes[x.id] == {"op": "symbol", "args": (), "name": "x", "shape": ()}
    const3 = f.args[1]
    assert G.nodes[const3.id]["value"] == 3.0
    assert G.nodes[f.id]["op"] == "add"
    assert G.nodes[f.id]["args"] == (f.args[0].id, const3.id)
    # node ids are creation order, hence a topological order
    assert list(nx.topological_sort(G)) == sorted(G) or all(a < v for a, v in G.edges)


def test_edges_carry_argument_positions():
    x, y = ga.symbols("x y")
    sq = x * x
    G = ga.to_networkx([sq, x - y])
    assert G.edges[x.id, sq.id]["pos"] == (0, 1)
    d = x - y
    assert G.edges[x.id, d.id]["pos"] == (0,)
    assert G.edges[y.id, d.id]["pos"] == (1,)


def test_to_networkx_holds_only_what_the_outputs_need():
    x, y = ga.symbols("x y")
    ga.cos(y)  # unrelated node in the same graph
    G = ga.to_networkx([ga.sin(x)])
    assert sorted(G.nodes[v]["op"] for v in G) == ["sin", "symbol"]


def test_graphs_are_scoped_and_do_not_mix():
    x = ga.symbols("x")
    with ga.Graph() as other:
        x2 = ga.symbols("x")
        assert x2.graph is other
    assert x2 != x
    with pytest.raises(ValueError, match="different graphad graphs"):
        x + x2


CHAIN = 100_000


@pytest.mark.slow
def test_chain_of_100000_nodes_builds_differentiates_and_evaluates():
    x = ga.symbols("x")
    v = x
    for _ in range(CHAIN):
        v = ga.sin(v)
    fwd = ga.derivative(v, x, mode="forward")
    rev = ga.derivative(v, x, mode="reverse")
    at = 0.5
    values, slope = [at], 1.0
    for _ in range(CHAIN):
        slope *= np.cos(values[-1])
        values.append(np.sin(values[-1]))
    assert ga.evaluate(v, {x: at}) == pytest.approx(values[-1], rel=1e-12)
    assert ga.evaluate(fwd, {x: at}) == pytest.approx(slope, rel=1e-9)
    assert ga.evaluate(rev, {x: at}) == pytest.approx(slope, rel=1e-9)
    assert "nodes>" in repr(fwd)  # too big to print in full: a summary, not a hang
    assert ga.to_networkx([rev]).number_of_nodes() > CHAIN


def test_expressions_pickle_into_the_current_graph():
    x, y = ga.symbols("x y")
    f = ga.exp(x**2) * ga.sin(y) + x * y
    with ga.Graph():
        g = pickle.loads(pickle.dumps(f))
        x2, y2 = ga.symbols("x y")
        assert ga.evaluate(g, {x2: 0.3, y2: 0.7}) == ga.evaluate(f, {x: 0.3, y: 0.7})
    assert pickle.loads(pickle.dumps(f)) == f  # same graph: the very same node


def test_building_from_many_threads_keeps_nodes_unique(fresh_graph, run_threads):
    x = ga.symbols("x")
    results = []

    def work():
        results.append([ga.sin(x + k) for k in range(1, 201)])

    assert run_threads(work, [()] * 8, timeout=120)
    assert all(r == results[0] for r in results)
    assert len(fresh_graph) == 1 + 3 * 200  # x, then a constant, an add and a sin per k


def test_an_empty_graph_is_still_the_graph_asked_for():
    with ga.Graph():
        x = ga.symbols("x")
        program_exprs = None
        from graphad.program import from_exprs

        program = from_exprs([ga.sin(x)], [x])
    empty = ga.Graph()  # len(empty) == 0: it must not be taken for "no graph"
    program_exprs = program.to_exprs(empty)
    assert program_exprs[0].graph is empty
    assert ga.expr.constant(2.0, empty).graph is empty


# -- one graph per transform: never matched across graphs by node id ---------------------

TRANSFORMS = {
    "grad": lambda f, w: ga.grad(f, w),
    "vjp": lambda f, w: ga.vjp([f], w, [1.0]),
    "jvp": lambda f, w: ga.jvp([f], w, [1.0, 0.0]),
    "derivative": lambda f, w: ga.derivative(f, w[0]),
    "derivative_forward": lambda f, w: ga.derivative(f, w[0], mode="forward"),
    "jacobian": lambda f, w: ga.jacobian([f], w),
    "jacobian_forward": lambda f, w: ga.jacobian([f], w, mode="forward"),
    "hessian": lambda f, w: ga.hessian(f, w),
    "hvp": lambda f, w: ga.hvp(f, w, [1.0, 0.0]),
    "jacobian_sparsity": lambda f, w: ga.jacobian_sparsity([f], w),
    "hessian_sparsity": lambda f, w: ga.hessian_sparsity(f, w),
    "sparse_jacobian": lambda f, w: ga.sparse_jacobian([f], w),
    "sparse_hessian": lambda f, w: ga.sparse_hessian(f, w),
    "compile_grad": lambda f, w: ga.compile_grad(f, w),
    "check_grads": lambda f, w: __import__("graphad.testing").testing.check_grads(f, w, at=[1.0, 2.0]),
    "crosscheck": lambda f, w: ga.crosscheck(f, w, points=1),
    "picture": lambda f, w: ga.picture(f, w, parts=("adjoint",)),
    "scipy_objective": lambda f, w: ga.scipy_objective(f, w),
    "gradient_descent": lambda f, w: ga.gradient_descent(f, w, [1.0, 2.0], max_iter=1),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_refuses_symbols_of_another_graph(name):
    x, y = ga.symbols("x y")
    with ga.Graph():
        a, b = ga.symbols("a b")  # ids that exist in the default graph too
        f = a * ga.exp(b)
    with pytest.raises(ValueError, match="different graphad graphs"):
        TRANSFORMS[name](f, [x, y])


def test_seeds_of_another_graph_are_refused():
    x = ga.symbols("x")
    with ga.Graph():
        a = ga.symbols("a")
        with pytest.raises(ValueError, match="different graphad graphs"):
            ga.jvp(ga.sin(a), a, x)
        with pytest.raises(ValueError, match="different graphad graphs"):
            ga.trace(ga.sin(a), at={a: 1.0}, mode="forward", seed={x: 1.0})


def test_a_new_thread_builds_in_the_default_graph_and_cannot_mix_silently():
    with ga.Graph() as g:
        x = ga.symbols("x")
        f = x**2
        made = []
        t = threading.Thread(target=lambda: made.append(ga.symbols("x")))
        t.start()
        t.join()
    assert made[0].graph is ga.graph._default and made[0].graph is not g
    with pytest.raises(ValueError, match="different graphad graphs"):
        ga.grad(f, made[0])  # was silently 0


def test_one_graph_entered_from_many_threads_at_once(run_threads):
    g = ga.Graph()
    errors, barrier = [], threading.Barrier(8)

    def work(k):
        try:
            for _ in range(50):
                with g:
                    barrier.wait(timeout=10) if _ == 0 else None
                    assert ga.current_graph() is g
                    ga.symbols(f"t{k}")
                assert ga.current_graph() is not g
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    assert run_threads(work, [(k,) for k in range(8)], timeout=30) and not errors
    assert g.symbol_id("t7") is not None


def test_contexts_exited_out_of_order_leave_the_open_graph_current():
    outer, g1, g2 = ga.current_graph(), ga.Graph(), ga.Graph()
    g1.__enter__()
    g2.__enter__()
    g1.__exit__(None, None, None)
    assert ga.current_graph() is g2
    g2.__exit__(None, None, None)
    assert ga.current_graph() is outer
    with pytest.raises(RuntimeError, match="did not enter"):
        g1.__exit__(None, None, None)


# -- records read by Graph.load (pickled expressions) are checked ------------------------


@pytest.mark.parametrize("records, message", [
    ([("symbol", (), "x"), ("no_such_op", (0,), None)], "not registered"),
    ([("symbol", (), "x"), ("sin", (0, 0), None)], "takes 1 argument"),
    ([("symbol", (), "x"), ("sin", (1,), None)], "not earlier records"),
    ([("const", (), "import os")], "not a float"),
    ([("symbol", (), 42)], "not a name"),
    ([("sin",)], "malformed"),
])
def test_graph_load_refuses_malformed_records(records, message):
    with pytest.raises(ValueError, match=message):
        ga.Graph().load(records)


RSS_SCRIPT = """
import gc, graphad as ga

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

sizes = []
for k in range(6):
    x = ga.symbols("x")
    v = x
    for i in range(50_000):  # new nodes each round: new constants
        v = ga.sin(v) + (k * 1e6 + i)
    del v, x
    ga.reset_default_graph()
    gc.collect()
    sizes.append(rss_mb())
print(sizes[1], sizes[-1])
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc")
def test_reset_default_graph_frees_the_nodes_of_a_long_loop():
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    second, last = map(float, out.stdout.split())
    assert last - second < 15  # MB; without the reset each round keeps about 19 MB more


def test_old_default_graph_expressions_do_not_mix_with_new_ones():
    errors = []

    def work():  # a new thread builds in the default graph
        x = ga.symbols("x")
        ga.reset_default_graph()
        y = ga.symbols("y")
        try:
            x + y
        except ValueError as e:
            errors.append(str(e))

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=30)
    assert errors and "different graphad graphs" in errors[0]
