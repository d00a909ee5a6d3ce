"""graphad: a symbolic-graph compiler for automatic differentiation.

Expressions build one explicit DAG (held in networkx); forward mode builds
tangent graphs and reverse mode adjoint graphs in the same DAG, so derivatives
are ordinary expressions that can be evaluated and differentiated again.

Examples:
    >>> import graphad as ga
    >>> x = ga.symbols("x")
    >>> f = ga.exp(x**2)
    >>> ga.evaluate(ga.grad(f, x), {x: 2.0})  # 4*exp(4)
    218.39260013257694
"""

from ._version import __version__
from .arrays import (
    broadcast_to,
    concatenate,
    dot,
    logsumexp,
    matmul,
    max,
    mean,
    reshape,
    softmax,
    stack,
    stop_gradient,
    sum,
    take,
    transpose,
)
from .compiler import compile, compile_grad
from .custom import define_op
from .derivatives import derivative, hessian, hvp, jacobian
from .evaluate import evaluate
from .expr import Expr, Vector, symbols
from .forward import jvp
from .graph import Graph, current_graph, reset_default_graph
from .ops import (
    abs,
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    cos,
    cosh,
    erf,
    exp,
    expm1,
    hypot,
    log,
    log1p,
    maximum,
    minimum,
    sign,
    sin,
    sinh,
    sqrt,
    tan,
    tanh,
    where,
)
from .optimize import gradient_descent, newton, scipy_objective
from .pictures import picture, picture_passes
from .registry import OPS, Op
from .reverse import grad, vjp
from .sparsity import hessian_sparsity, jacobian_sparsity, sparse_hessian, sparse_jacobian
from .trace import trace


def __getattr__(name):
    # The SymPy bridge loads SymPy (a second or so) only when first asked for.
    if name in ("to_sympy", "from_sympy", "crosscheck", "compare_symbolic"):
        from . import sympy_bridge

        return getattr(sympy_bridge, name)
    raise AttributeError(f"module 'graphad' has no attribute {name!r}")


def to_networkx(outputs):
    """The DAG that ``outputs`` depend on, as a ``networkx.DiGraph``.

    Nodes are integer ids (creation order, hence topological) with attributes
    ``op``, ``args`` (argument ids in order) and ``value`` (constants) or
    ``name`` (symbols); edges run from argument to user with ``pos``, the
    argument positions. ``G.graph["outputs"]`` lists the output ids.

    Examples:
        >>> import graphad as ga
        >>> x = ga.symbols("x")
        >>> G = ga.to_networkx([ga.exp(x**2)])
        >>> [G.nodes[v]["op"] for v in G]
        ['symbol', 'const', 'pow', 'exp']
    """
    from .expr import as_expr_list

    exprs, _ = as_expr_list(outputs, "to_networkx")
    return exprs[0].graph.to_networkx(e.id for e in exprs)


__all__ = [
    "Expr", "Graph", "OPS", "Op", "Vector", "__version__", "abs", "acos", "acosh", "asin", "asinh", "atan",
    "atan2", "atanh", "broadcast_to", "compare_symbolic", "compile", "compile_grad", "concatenate",
    "cos", "cosh", "crosscheck", "current_graph", "define_op", "derivative", "dot", "erf", "evaluate",
    "exp", "expm1", "from_sympy", "grad", "gradient_descent", "hessian", "hessian_sparsity", "hvp",
    "hypot", "jacobian", "jacobian_sparsity", "jvp", "log", "log1p", "logsumexp", "matmul", "max",
    "maximum", "mean", "minimum", "newton", "picture", "picture_passes", "reset_default_graph",
    "reshape", "scipy_objective", "sign", "sin", "sinh", "softmax", "sparse_hessian", "sparse_jacobian",
    "sqrt", "stack", "stop_gradient", "sum", "symbols", "take", "tan", "tanh", "to_networkx", "to_sympy",
    "trace", "transpose", "vjp", "where",
]
