"""A safe parser for expressions typed on the command line.

The text is parsed by Python's ``ast`` module and walked with a whitelist; it
is never evaluated. Allowed: numbers, names (symbols), ``+ - * / **``, unary
``-`` and ``+``, one comparison ``< <= > >=``, and calls of graphad's
elementary functions (``exp(x)``, ``atan2(y, x)``, ``where(x > 0, x, 0)``),
plus the constants ``pi``, ``e``, ``inf`` and ``nan``. Everything else
(attribute access, subscripts, lambdas, comprehensions, keyword arguments,
strings, names beginning with an underscore, unknown functions) is refused
with a :class:`ParseError` naming it. Over-long or deeply nested input is
refused before it reaches Python's parser.
"""

from __future__ import annotations

import ast
import math
import sys

from . import ops
from .expr import Expr, apply, as_expr, symbols

MAX_LENGTH = 10_000  # characters
MAX_DEPTH = 100  # nesting of parentheses and unary operators

FUNCTIONS = {
    name: getattr(ops, name)
    for name in ("exp log log1p expm1 sqrt sin cos tan asin acos atan atan2 sinh cosh tanh asinh "
                 "acosh atanh erf abs sign hypot maximum minimum where").split()
}
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}
# Built with graphad's ops, which fold constants as the library computes them
# (IEEE-754: 1/0 is inf, 10.0**400 is inf, (-8)**(1/3) is nan), never with
# Python's arithmetic, which raises or hangs (9**9**9**9) on them.
_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_COMPARE = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
_NAMES = {ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambdas",
          ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
          ast.GeneratorExp: "comprehensions", ast.IfExp: "conditional expressions (use where)",
          ast.BoolOp: "and/or (use where with comparisons)", ast.Starred: "starred arguments",
          ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts", ast.Set: "sets",
          ast.JoinedStr: "f-strings", ast.NamedExpr: "assignment expressions", ast.Await: "await",
          ast.Yield: "yield", ast.YieldFrom: "yield"}


class ParseError(ValueError):
    """The text is not an expression graphad accepts; the message says why."""


def _check_size(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the expression is {len(text):,} characters long; the limit is {MAX_LENGTH:,}")
    depth = run = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        run = run + 1 if ch in "+-" else (run if ch.isspace() else 0)
        if depth > MAX_DEPTH or run > MAX_DEPTH:
            raise ParseError(f"the expression is nested more than {MAX_DEPTH} levels deep")


def parse(text: str, names: dict[str, Expr] | None = None) -> Expr:
    """The graphad expression written in ``text``.

    Bare names become symbols (taken from ``names`` when given there).

    Examples:
        >>> from graphad.parse import parse
        >>> parse("exp(x**2) * sin(y) + 3")
        exp(x**2)*sin(y) + 3
        >>> parse("__import__('os')")
        Traceback (most recent call last):
        ...
        graphad.parse.ParseError: names beginning with an underscore are not allowed: __import__
    """
    if not isinstance(text, str):
        raise ParseError(f"expected a string, got {type(text).__name__}")
    _check_size(text)
    limit = sys.getrecursionlimit()
    try:
        # a flat sum of a few thousand terms is a deep tree to Python's parser: the
        # length limit bounds that depth, so the recursion limit may rise to meet it
        sys.setrecursionlimit(max(limit, 3 * MAX_LENGTH))
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ParseError(f"not a valid expression: {e.msg} (column {e.offset})") from None
    except (RecursionError, MemoryError):
        raise ParseError("the expression is too deeply nested") from None
    finally:
        sys.setrecursionlimit(limit)
    names = dict(names or {})
    done: dict[int, Expr] = {}
    stack = [(tree.body, False)]
    while stack:  # iterative post-order: children first
        node, ready = stack.pop()
        children = _children(node)
        if not ready:
            _check(node)  # refuse a construct before looking inside it
            stack.append((node, True))
            stack.extend((c, False) for c in children)
            continue
        done[id(node)] = _build(node, [done[id(c)] for c in children], names)
    return as_expr(done[id(tree.body)])


def _children(node) -> list:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Compare):
        return [node.left, *node.comparators]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


_ALLOWED = (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call)


def _check(node) -> None:
    if not isinstance(node, _ALLOWED):
        raise ParseError(f"not allowed: {_NAMES.get(type(node), type(node).__name__)}")
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise ParseError(f"names beginning with an underscore are not allowed: {node.id}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ParseError(f"only graphad's functions may be called, not {ast.unparse(node.func)}")
        if node.func.id.startswith("_"):
            raise ParseError(f"names beginning with an underscore are not allowed: {node.func.id}")
        if node.func.id not in FUNCTIONS:
            raise ParseError(f"unknown function {node.func.id}; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise ParseError(f"keyword arguments are not allowed (in a call of {node.func.id})")


def _build(node, args, names):
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ParseError(f"only real numbers are allowed as constants, not {node.value!r}")
        try:
            return float(node.value)
        except OverflowError:  # an integer literal beyond the floats
            return math.inf
    if isinstance(node, ast.Name):
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in FUNCTIONS:
            raise ParseError(f"{name} is a function: call it, as in {name}(x)")
        if name not in names:
            names[name] = symbols(name)
        return names[name]
    if isinstance(node, ast.BinOp):
        op = _BINARY.get(type(node.op))
        if op is None:
            hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
            raise ParseError(f"not allowed: the operator {type(node.op).__name__}{hint}")
        return apply(op, *args)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return apply("neg", args[0])
        if isinstance(node.op, ast.UAdd):
            return args[0]
        raise ParseError(f"not allowed: the operator {type(node.op).__name__}")
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            raise ParseError("only one comparison < <= > >= at a time is allowed")
        return apply(_COMPARE[type(node.ops[0])], *args)
    if isinstance(node, ast.Call):
        fn = FUNCTIONS[node.func.id]
        if len(args) != fn.op.arity:
            raise ParseError(f"{node.func.id} takes {fn.op.arity} argument(s), got {len(args)}")
        return fn(*args)
    raise AssertionError(f"unchecked node {node!r}")  # _check admits only the kinds above
