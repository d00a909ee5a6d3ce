import math
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphad as ga
from graphad.registry import OPS
from graphad.testing import check_grads

DEFINE = textwrap.dedent("""
    import math
    import numpy as np
    import graphad as ga

    softplus = ga.define_op(
        "softplus_t", lambda x: np.logaddexp(0.0, x),
        [lambda x, out: 1 / (1 + ga.exp(-x))],
        scalar=lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
        sympy=lambda sp, x: sp.log(1 + sp.exp(x)),
        doc="log(1 + exp(x)), without overflow.")

    def _lse(a, b):
        m = max(a, b)
        return m + math.log(math.exp(a - m) + math.exp(b - m))

    logsumexp = ga.define_op(
        "logsumexp_t", lambda a, b: np.logaddexp(a, b),
        [lambda a, b, out: ga.exp(a - out), lambda a, b, out: ga.exp(b - out)],
        scalar=_lse)
""")
namespace: dict = {}


@pytest.fixture(scope="module", autouse=True)
def ops(tmp_path_factory):
    os.environ["GRAPHAD_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    exec(DEFINE, namespace)
    yield
    del OPS["softplus_t"], OPS["logsumexp_t"]


def test_custom_ops_differentiate_to_any_order():
    softplus, lse = namespace["softplus"], namespace["logsumexp"]
    x, y = ga.symbols("x y")
    f = softplus(x * y) + lse(x, y**2)
    check_grads(f, [x, y], at=[0.3, -1.2], order=3)
    assert ga.evaluate(ga.derivative(softplus(x), x), {x: 0.0}) == 0.5


def test_custom_ops_compile_and_match_the_evaluator():
    softplus, lse = namespace["softplus"], namespace["logsumexp"]
    x, y = ga.symbols("x y")
    f = softplus(x * y) + lse(x, y**2)
    outs = [f, ga.grad(f, [x, y])]
    fn = ga.compile(outs, [x, y])
    for point in [(1.0, 2.0), (-3.0, 0.5), (40.0, 20.0)]:
        value, grad = fn(*point)
        want = ga.evaluate([f, *ga.grad(f, [x, y])], dict(zip([x, y], point)))
        np.testing.assert_allclose([value, *grad], want, rtol=1e-13)
    big = fn(np.array([800.0]), 1.0)[0]  # exp would overflow; the stable forms do not
    assert np.isfinite(big).all() and big[0] == pytest.approx(800 + 800, rel=1e-12)


def test_custom_ops_show_in_traces_pictures_and_sympy():
    softplus = namespace["softplus"]
    x = ga.symbols("x")
    t = ga.trace(softplus(x**2), at={x: 1.0}, mode="reverse")
    assert "softplus_t(v2)" in str(t)
    assert "softplus_t" in ga.picture(softplus(x), [x], parts=("primal", "adjoint")).dot
    assert ga.crosscheck(softplus(x) * x, [x], order=2).passed
    with pytest.raises(ValueError, match="no SymPy counterpart"):
        ga.to_sympy(namespace["logsumexp"](x, x * 2))
    assert softplus.__doc__ == "log(1 + exp(x)), without overflow."


def test_define_op_errors():
    with pytest.raises(ValueError, match="not a Python identifier"):
        ga.define_op("not valid", np.exp, [lambda x, out: out], scalar=math.exp)
    with pytest.raises(ValueError, match="already registered"):
        ga.define_op("exp", np.exp, [lambda x, out: out], scalar=math.exp)
    with pytest.raises(ValueError, match="one partial"):
        ga.define_op("noargs_t", np.exp, [], scalar=math.exp)
    with pytest.raises(TypeError, match="Numba cannot compile"):
        ga.define_op("badscalar_t", np.exp, [lambda x, out: out], scalar=lambda x: {"a": x}["b"] + "s")
    assert "badscalar_t" not in OPS


USE = textwrap.dedent("""
    import pickle, sys
    {define}
    fn = pickle.loads(sys.stdin.buffer.read())
    print(fn(1.0, 2.0)[0])
""")


def test_compiled_custom_ops_pickle_into_a_process_that_defines_them(tmp_path):
    softplus = namespace["softplus"]
    x, y = ga.symbols("x y")
    fn = ga.compile([softplus(x * y), ga.grad(softplus(x * y), [x, y])], [x, y])
    blob = pickle.dumps(fn)
    env = dict(os.environ, GRAPHAD_CACHE_DIR=str(tmp_path))
    ok = subprocess.run([sys.executable, "-c", USE.format(define=DEFINE)], input=blob, env=env,
                        capture_output=True)
    assert ok.returncode == 0, ok.stderr.decode()
    assert float(ok.stdout) == pytest.approx(math.log1p(math.exp(2.0)))
    missing = subprocess.run([sys.executable, "-c", USE.format(define="import graphad")], input=blob,
                             env=env, capture_output=True, text=False)
    assert missing.returncode != 0
    assert b"softplus_t are not registered in this process" in missing.stderr
