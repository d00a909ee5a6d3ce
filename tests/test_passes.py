import math

import numpy as np
import pytest

import graphad as ga
from graphad.evaluate import evaluate
from graphad.passes import DEFAULT_PIPELINE, cse, dce, fold, optimise, schedule, simplify
from graphad.program import Builder, Program, from_exprs


def values(program: Program, env: dict):
    with ga.Graph():
        outs = program.to_exprs()
        return evaluate(outs, env)


def raw(build) -> Program:
    """A program built node by node, with none of the construction-time folding."""
    b = Builder()
    x, y = b.add("symbol", (), "x"), b.add("symbol", (), "y")
    outs = build(b, x, y)
    return Program(tuple(b.nodes), tuple(outs), ("x", "y"))


def test_every_pass_keeps_values(rng):
    xs = ga.symbols("x0:4")
    f = ga.exp(xs[0] * xs[1]) * ga.sin(xs[2]) + xs[3] ** 2 / (1 + xs[0] ** 2) - xs[1] * xs[0]
    g = ga.grad(f, xs)
    h = ga.hessian(f, xs)
    outs = [f, *g, *sum(h, [])]
    program = from_exprs(outs, xs)
    for _ in range(5):
        env = {s.name: v for s, v in zip(xs, rng.uniform(-1.5, 1.5, 4))}
        want = values(program, env)
        for p in DEFAULT_PIPELINE:
            np.testing.assert_allclose(values(p.run(program), env), want, rtol=1e-14, err_msg=p.__name__)
        np.testing.assert_allclose(values(optimise(program)[0], env), want, rtol=1e-14)


def test_cse_merges_commuted_operands():
    x, y = ga.symbols("x y")
    program = from_exprs([ga.sin(x * y) + ga.sin(y * x)], [x, y])
    after = cse.run(program)
    assert len(after) == len(program) - 2  # one mul and one sin fewer
    assert after.op_counts()["mul"] == 1


def test_fold_uses_the_ops_own_values():
    p = raw(lambda b, x, y: [b.add("add", (x, b.add("exp", (b.const(0.0),))))])
    after = fold.run(p)
    assert after.op_counts() == {"symbol": 1, "const": 1, "add": 1}
    assert values(after, {"x": 2.0}) == [3.0]


@pytest.mark.parametrize("build, expected_ops", [
    (lambda b, x, y: b.add("mul", (x, b.const(1.0))), {"symbol": 1}),
    (lambda b, x, y: b.add("dmul", (b.const(0.0), x)), {"const": 1}),
    (lambda b, x, y: b.add("mul", (x, b.const(-1.0))), {"symbol": 1, "neg": 1}),
    (lambda b, x, y: b.add("add", (x, b.const(0.0))), {"symbol": 1}),
    (lambda b, x, y: b.add("sub", (b.const(0.0), x)), {"symbol": 1, "neg": 1}),
    (lambda b, x, y: b.add("div", (x, b.const(1.0))), {"symbol": 1}),
    (lambda b, x, y: b.add("neg", (b.add("neg", (x,)),)), {"symbol": 1}),
    (lambda b, x, y: b.add("pow", (x, b.const(1.0))), {"symbol": 1}),
    (lambda b, x, y: b.add("pow", (x, b.const(0.0))), {"const": 1}),
    (lambda b, x, y: b.add("pow", (x, b.const(2.0))), {"symbol": 1, "mul": 1}),
    (lambda b, x, y: b.add("add", (x, b.add("neg", (y,)))), {"symbol": 2, "sub": 1}),
    (lambda b, x, y: b.add("sub", (x, b.add("neg", (y,)))), {"symbol": 2, "add": 1}),
    (lambda b, x, y: b.add("where", (y, x, x)), {"symbol": 1}),
])
def test_simplify_identities(build, expected_ops):
    p = raw(lambda b, x, y: [build(b, x, y)])
    after = dce.run(simplify.run(p))
    assert after.op_counts() == expected_ops
    for x, y in [(0.7, -1.2), (0.0, 2.0), (-0.0, 0.0), (math.inf, 1.0), (math.nan, 1.0), (-3.0, math.inf)]:
        env = {"x": x, "y": y}
        np.testing.assert_array_equal(values(after, env), values(p, env))


def test_simplify_never_hides_a_nan_of_the_users_function():
    p = raw(lambda b, x, y: [b.add("mul", (x, b.const(0.0))), b.add("sub", (x, x)),
                             b.add("div", (b.const(0.0), x))])
    kept = simplify.run(p)
    assert all(np.isnan(values(kept, {"x": math.nan, "y": 0.0})))
    assert np.isnan(values(kept, {"x": math.inf, "y": 0.0})[:2]).all()
    assert np.isnan(values(kept, {"x": 0.0, "y": 0.0})[2])
    folded = dce.run(simplify.run(p, assume_finite=True))
    assert folded.op_counts() == {"const": 1}  # all three became 0
    chain = raw(lambda b, x, y: [b.add("dmul", (x, y))])
    assert simplify.run(chain, assume_finite=True).op_counts() == {"symbol": 2, "mul": 1}


def test_dce_drops_what_outputs_do_not_need():
    p = raw(lambda b, x, y: [b.add("sin", (x,)), b.add("cos", (y,))][:1])
    assert len(p) == 4 and len(dce.run(p)) == 2


def test_schedule_puts_values_next_to_their_uses():
    xs = ga.symbols("x0:50")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(49))
    program = from_exprs(ga.grad(f, xs), xs)
    scheduled = schedule.run(program)
    assert scheduled.op_counts() == program.op_counts() and len(scheduled) == len(program)
    assert all(a < i for i, (_, args, _) in enumerate(scheduled.nodes) for a in args)  # still in order

    def mean_distance(p):  # from a computed value to its first use
        first = {}
        for i, (_, args, _) in enumerate(p.nodes):
            for a in args:
                first.setdefault(a, i)
        return np.mean([first[a] - a for a in first if p.nodes[a][0] not in ("const", "symbol")])

    assert mean_distance(scheduled) < mean_distance(program) / 5
    env = {s.name: v for s, v in zip(xs, np.linspace(-1, 1, 50))}
    np.testing.assert_array_equal(values(scheduled, env), values(program, env))


def test_report_lists_counts_per_pass():
    xs = ga.symbols("x0:100")
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(99))
    program, report = optimise(from_exprs([f, *ga.grad(f, xs)], xs))
    text = str(report)
    assert text.splitlines()[0].split() == ["pass", "nodes", "change"]
    assert [row[0] for row in report.rows] == ["input", "cse", "fold", "simplify", "dce", "schedule"]
    assert report.rows[-1][1] == len(program) < report.rows[0][1]  # the passes shrink it
