"""The elementary ops, one block each, and the functions that build them.

Each block registers an :class:`~graphad.registry.Op` and returns the public
function (``ga.exp`` and friends). Partial derivatives are written with graphad
ops, so derivatives can be differentiated again to any order.

Conventions at non-differentiable points (forward and reverse mode agree,
because both are derived from the same rules):

- ``abs'(0) = 0`` and ``sign'(x) = 0`` everywhere (including 0);
- ``maximum(a, b)`` at a tie ``a == b`` takes the derivative of ``a``, the first
  argument; ``minimum`` likewise;
- ``sqrt'(0) = inf`` (the one-sided limit);
- ``hypot`` at ``(0, 0)`` has partials ``(0, 0)``;
- comparisons and the condition of ``where`` have zero derivative;
- the chain rule multiplies with ``dmul``, for which 0 * inf = 0: a derivative
  that is exactly zero on one side of a product stays zero. So the branch that
  ``where`` (or ``maximum``) did not take never leaks an inf or nan partial, and
  ``sqrt(x**2)`` has derivative 0 at 0 in both modes.

Domain errors follow IEEE-754: ``log(-1)`` and ``sqrt(-1)`` are nan, ``1/0`` is
inf, ``log(0)`` is -inf; no exception is raised.
"""

from __future__ import annotations

import math

import numpy as np

from .expr import apply, is_const
from .registry import Op, register

# -- domain samplers for tests and checkers ------------------------------------


def _uniform(*intervals):
    """Each argument uniform in its interval."""
    return lambda rng: tuple(rng.uniform(lo, hi) for lo, hi in intervals)


def _signed(lo, hi):
    """One argument with |x| in [lo, hi] and a random sign: away from 0."""
    return lambda rng: (rng.choice([-1.0, 1.0]) * rng.uniform(lo, hi),)


def _apart(lo=-2.0, hi=2.0, gap=0.1):
    """Two arguments at least ``gap`` apart: away from ties."""

    def sample(rng):
        a = rng.uniform(lo, hi)
        return a, a + rng.choice([-1.0, 1.0]) * rng.uniform(gap, 1.0)

    return sample


def _define(name, arity, value, partials, sympy, code, sample, doc, fmt=None, prec=9, **extra):
    """Register one op and return its public graph-building function."""
    if fmt is None:
        fmt = f"{name}(" + ", ".join(f"{{{i}}}" for i in range(arity)) + ")"
    op = register(Op(name, arity, value, tuple(partials), sympy, code, fmt, prec, sample, doc, **extra))

    def build(*args):
        return apply(name, *args)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    build.op = op
    return build


def _inside(cond):
    """1 inside an op's real domain, nan outside: a partial times it is nan wherever
    the op's value is (log(-1) has derivative nan, not -1), to every order."""
    return where(cond, 1.0, math.nan)


# -- arithmetic -----------------------------------------------------------------

add = _define(
    "add", 2, np.add,
    (lambda x, y, out: 1.0, lambda x, y, out: 1.0),
    lambda sp, x, y: x + y,
    "({0} + {1})", _uniform((-2, 2), (-2, 2)),
    "x + y.", fmt="{0} + {1}", prec=1, commutative=True,
    simplify=lambda x, y: x if is_const(y, 0) else y if is_const(x, 0) else None,
    ir="{out} = fadd double {0}, {1}",
    curvature="linear",
)

sub = _define(
    "sub", 2, np.subtract,
    (lambda x, y, out: 1.0, lambda x, y, out: -1.0),
    lambda sp, x, y: x - y,
    "({0} - {1})", _uniform((-2, 2), (-2, 2)),
    "x - y.", fmt="{0} - {1}", prec=1,
    simplify=lambda x, y: x if is_const(y, 0) else -y if is_const(x, 0) else None,
    ir="{out} = fsub double {0}, {1}",
    curvature="linear",
)

mul = _define(
    "mul", 2, np.multiply,
    (lambda x, y, out: y, lambda x, y, out: x),
    lambda sp, x, y: x * y,
    "({0} * {1})", _uniform((-2, 2), (-2, 2)),
    "x * y.", fmt="{0}*{1}", prec=2, commutative=True,
    simplify=lambda x, y: (
        x if is_const(y, 1) else y if is_const(x, 1)
        else -x if is_const(y, -1) else -y if is_const(x, -1) else None
    ),
    ir="{out} = fmul double {0}, {1}",
    curvature="bilinear",
)

def _dmul_value(x, y):
    r = np.multiply(x, y)
    settled = np.abs(r) > 0  # False only at zeros and nan, where dmul may differ from *
    if settled.all():
        return r
    return np.where(~settled & ((x == 0) | (y == 0)), 0.0, r)


def _dmul_simplify(x, y):
    for a, b in ((x, y), (y, x)):
        if is_const(b, 0):
            return 0.0  # exact for dmul, whatever a is
        if is_const(b, 1):
            return a
        if is_const(b, -1):
            return -a
    return None


dmul = _define(
    "dmul", 2, _dmul_value,
    (lambda x, y, out: y, lambda x, y, out: x),
    lambda sp, x, y: x * y,
    "(0.0 if {0} == 0.0 or {1} == 0.0 else {0} * {1})", _uniform((-2, 2), (-2, 2)),
    "The chain product x * y of derivative terms, with 0 * y = 0 for every y "
    "(inf and nan included). The chain rule uses it in both modes.",
    fmt="{0}*{1}", prec=2, commutative=True, simplify=_dmul_simplify,
    ir=(
        "{t}p = fmul double {0}, {1}\n"
        "{t}a = fcmp oeq double {0}, 0.0\n"
        "{t}b = fcmp oeq double {1}, 0.0\n"
        "{t}z = or i1 {t}a, {t}b\n"
        "{out} = select i1 {t}z, double 0.0, double {t}p"
    ),
    curvature="bilinear",
)

div = _define(
    "div", 2, np.divide,
    (lambda x, y, out: 1.0 / y, lambda x, y, out: -out / y),
    lambda sp, x, y: x / y,
    "({0} / {1})", _uniform((-2, 2), (0.5, 2)),
    "x / y; 1/0 is inf and 0/0 is nan (IEEE-754).", fmt="{0}/{1}", prec=2,
    simplify=lambda x, y: x if is_const(y, 1) else None,
    ir="{out} = fdiv double {0}, {1}",
)

neg = _define(
    "neg", 1, np.negative,
    (lambda x, out: -1.0,),
    lambda sp, x: -x,
    "(-{0})", _uniform((-2, 2)),
    "-x.", fmt="-{0}", prec=3,
    simplify=lambda x: x.args[0] if x.op == "neg" else None,
    ir="{out} = fneg double {0}",
    curvature="linear",
)


def _pow_value(x, y):
    # C99's pow, as compiled code computes it: for x = -0 or -inf and y not an odd
    # integer the result is that of +0 or +inf (NumPy's power gives -0 and nan there)
    r = np.power(x, y)
    if np.ndim(y) == 0 and float(y).is_integer():  # x**2 and the like: NumPy's power is C99's there
        return r
    fix = ((x == 0) | (x == -np.inf)) & np.signbit(x) & (np.mod(y, 2) != 1)
    return np.where(fix, np.power(-x, y), r) if np.any(fix) else r


def _pow_simplify(x, y):
    if is_const(y, 1):
        return x
    if is_const(y, 0):
        return 1.0  # x**0 == 1 for every x, nan and inf included (IEEE-754)
    return None


pow = _define(
    "pow", 2, _pow_value,
    (
        lambda x, y, out: y * x ** (y - 1),
        lambda x, y, out: apply("dmul", out, log(x)),  # 0 at x = 0 (0 * -inf), where out is 0
    ),
    lambda sp, x, y: x**y,
    "({0} ** {1})", _uniform((0.5, 2), (-2, 2)),
    "x ** y. For x < 0 only integer y give real values (else nan); "
    "the partial in y is out*log(x), nan for x < 0.",
    fmt="{0}**{1}", prec=4, simplify=_pow_simplify,
    ir="{out} = call double @llvm.pow.f64(double {0}, double {1})",
)

# -- exponentials and logarithms --------------------------------------------------

exp = _define(
    "exp", 1, np.exp,
    (lambda x, out: out,),
    lambda sp, x: sp.exp(x),
    "math.exp({0})", _uniform((-2, 2)),
    "Exponential e**x; overflows to inf above x = 709.78.",
    ir="{out} = call double @llvm.exp.f64(double {0})",
)

log = _define(
    "log", 1, np.log,
    (lambda x, out: (1.0 / x) * _inside(x >= 0.0),),
    lambda sp, x: sp.log(x),
    "math.log({0})", _uniform((0.1, 3)),
    "Natural logarithm; log(0) is -inf, log(x < 0) is nan.",
    ir="{out} = call double @llvm.log.f64(double {0})",
)

log1p = _define(
    "log1p", 1, np.log1p,
    (lambda x, out: (1.0 / (1.0 + x)) * _inside(x >= -1.0),),
    lambda sp, x: sp.log(1 + x),
    "math.log1p({0})", _uniform((-0.9, 3)),
    "log(1 + x), accurate for small x; nan for x < -1.",
    ir="{out} = call double @log1p(double {0})",
)

expm1 = _define(
    "expm1", 1, np.expm1,
    (lambda x, out: out + 1.0,),
    lambda sp, x: sp.exp(x) - 1,
    "math.expm1({0})", _uniform((-2, 2)),
    "exp(x) - 1, accurate for small x.",
    ir="{out} = call double @expm1(double {0})",
)

sqrt = _define(
    "sqrt", 1, np.sqrt,
    (lambda x, out: 0.5 / out,),
    lambda sp, x: sp.sqrt(x),
    "math.sqrt({0})", _uniform((0.1, 3)),
    "Square root; nan for x < 0. Its derivative at 0 is inf (the one-sided limit).",
    ir="{out} = call double @llvm.sqrt.f64(double {0})",
)

# -- trigonometric ---------------------------------------------------------------

sin = _define(
    "sin", 1, np.sin,
    (lambda x, out: cos(x),),
    lambda sp, x: sp.sin(x),
    "math.sin({0})", _uniform((-3, 3)),
    "Sine.",
    ir="{out} = call double @llvm.sin.f64(double {0})",
)

cos = _define(
    "cos", 1, np.cos,
    (lambda x, out: -sin(x),),
    lambda sp, x: sp.cos(x),
    "math.cos({0})", _uniform((-3, 3)),
    "Cosine.",
    ir="{out} = call double @llvm.cos.f64(double {0})",
)

tan = _define(
    "tan", 1, np.tan,
    (lambda x, out: 1.0 + out**2,),
    lambda sp, x: sp.tan(x),
    "math.tan({0})", _uniform((-1.2, 1.2)),
    "Tangent.",
    ir="{out} = call double @tan(double {0})",
)

asin = _define(
    "asin", 1, np.arcsin,
    (lambda x, out: 1.0 / sqrt(1.0 - x**2),),
    lambda sp, x: sp.asin(x),
    "math.asin({0})", _uniform((-0.9, 0.9)),
    "Inverse sine; nan outside [-1, 1], derivative inf at +-1.",
    ir="{out} = call double @asin(double {0})",
)

acos = _define(
    "acos", 1, np.arccos,
    (lambda x, out: -1.0 / sqrt(1.0 - x**2),),
    lambda sp, x: sp.acos(x),
    "math.acos({0})", _uniform((-0.9, 0.9)),
    "Inverse cosine; nan outside [-1, 1], derivative -inf at +-1.",
    ir="{out} = call double @acos(double {0})",
)

atan = _define(
    "atan", 1, np.arctan,
    (lambda x, out: 1.0 / (1.0 + x**2),),
    lambda sp, x: sp.atan(x),
    "math.atan({0})", _uniform((-3, 3)),
    "Inverse tangent.",
    ir="{out} = call double @atan(double {0})",
)

atan2 = _define(
    "atan2", 2, np.arctan2,
    (
        lambda y, x, out: x / (x**2 + y**2),
        lambda y, x, out: -y / (x**2 + y**2),
    ),
    lambda sp, y, x: sp.atan2(y, x),
    "math.atan2({0}, {1})", _uniform((0.2, 2), (-2, 2)),
    "atan2(y, x), the angle of the point (x, y). Its partials are nan at the "
    "origin; the branch cut on the negative x-axis is a jump.",
    ir="{out} = call double @atan2(double {0}, double {1})",
)

# -- hyperbolic ------------------------------------------------------------------

sinh = _define(
    "sinh", 1, np.sinh,
    (lambda x, out: cosh(x),),
    lambda sp, x: sp.sinh(x),
    "math.sinh({0})", _uniform((-2, 2)),
    "Hyperbolic sine.",
    ir="{out} = call double @sinh(double {0})",
)

cosh = _define(
    "cosh", 1, np.cosh,
    (lambda x, out: sinh(x),),
    lambda sp, x: sp.cosh(x),
    "math.cosh({0})", _uniform((-2, 2)),
    "Hyperbolic cosine.",
    ir="{out} = call double @cosh(double {0})",
)

tanh = _define(
    "tanh", 1, np.tanh,
    (lambda x, out: 1.0 - out**2,),
    lambda sp, x: sp.tanh(x),
    "math.tanh({0})", _uniform((-2, 2)),
    "Hyperbolic tangent.",
    ir="{out} = call double @tanh(double {0})",
)

asinh = _define(
    "asinh", 1, np.arcsinh,
    (lambda x, out: 1.0 / sqrt(x**2 + 1.0),),
    lambda sp, x: sp.asinh(x),
    "math.asinh({0})", _uniform((-3, 3)),
    "Inverse hyperbolic sine.",
    ir="{out} = call double @asinh(double {0})",
)

acosh = _define(
    "acosh", 1, np.arccosh,
    (lambda x, out: (1.0 / sqrt(x**2 - 1.0)) * _inside(x >= 1.0),),
    lambda sp, x: sp.acosh(x),
    "math.acosh({0})", _uniform((1.1, 3)),
    "Inverse hyperbolic cosine; nan for x < 1, derivative inf at 1.",
    ir="{out} = call double @acosh(double {0})",
)

atanh = _define(
    "atanh", 1, np.arctanh,
    (lambda x, out: (1.0 / (1.0 - x**2)) * _inside(abs(x) <= 1.0),),
    lambda sp, x: sp.atanh(x),
    "math.atanh({0})", _uniform((-0.9, 0.9)),
    "Inverse hyperbolic tangent; +-inf at +-1, nan outside [-1, 1].",
    ir="{out} = call double @atanh(double {0})",
)

# -- special ---------------------------------------------------------------------

_erf_ufunc = np.frompyfunc(math.erf, 1, 1)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

erf = _define(
    "erf", 1, lambda x: np.asarray(_erf_ufunc(x), dtype=np.float64),
    (lambda x, out: _TWO_OVER_SQRT_PI * exp(-(x**2)),),
    lambda sp, x: sp.erf(x),
    "math.erf({0})", _uniform((-2, 2)),
    "The error function, 2/sqrt(pi) times the integral of exp(-t**2) from 0 to x.",
    ir="{out} = call double @erf(double {0})",
)

# -- piecewise ---------------------------------------------------------------------

abs = _define(
    "abs", 1, np.abs,
    (lambda x, out: sign(x),),
    lambda sp, x: sp.Abs(x),
    "abs({0})", _signed(0.1, 2),
    "Absolute value |x|; by convention abs'(0) = 0 (the subgradient of least norm).",
    ir="{out} = call double @llvm.fabs.f64(double {0})",
    curvature="linear",
)

sign = _define(
    "sign", 1, np.sign,
    (None,),
    lambda sp, x: sp.sign(x),
    "np.sign({0})", _signed(0.1, 2),
    "Sign: -1, 0 or 1 (nan for nan). Its derivative is 0 everywhere, 0 included.",
    ir=(
        "{t}p = fcmp ogt double {0}, 0.0\n"
        "{t}n = fcmp olt double {0}, 0.0\n"
        "{t}a = select i1 {t}p, double 1.0, double 0.0\n"
        "{t}b = select i1 {t}n, double -1.0, double {t}a\n"
        "{t}u = fcmp uno double {0}, 0.0\n"
        "{out} = select i1 {t}u, double {0}, double {t}b"
    ),
    curvature="linear",
)


def _hypot_partial(i):
    # where() selects rather than multiplies, so 0/0 at the origin never leaks.
    return lambda x, y, out: where(out > 0.0, (x, y)[i] / out, 0.0)


hypot = _define(
    "hypot", 2, np.hypot,
    (_hypot_partial(0), _hypot_partial(1)),
    lambda sp, x, y: sp.sqrt(x**2 + y**2),
    "math.hypot({0}, {1})", _uniform((-2, 2), (0.2, 2)),
    "sqrt(x**2 + y**2) without overflow; its partials at the origin are (0, 0).",
    ir="{out} = call double @hypot(double {0}, double {1})",
)


def _select_jvp(first):
    """Forward rule of an op that picks argument a or b: select the tangent."""

    def jvp(args, out, tangents):
        cond, ta, tb = first(*args), *(0.0 if t is None else t for t in tangents[-2:])
        return where(cond, ta, tb)

    return jvp


def _select_vjp(first):
    """Reverse rule of an op that picks argument a or b: route the adjoint."""

    def vjp(args, out, g, needed):
        cond = first(*args)
        picked = (where(cond, g, 0.0) if needed[-2] else None, where(cond, 0.0, g) if needed[-1] else None)
        return (None,) * (len(args) - 2) + picked

    return vjp


def _maximum_first(a, b):
    return a >= b


def _minimum_first(a, b):
    return a <= b


def _maximum_value(a, b):
    # IEEE 754-2019 maximum, as compiled code computes it: -0 < +0 (NumPy's picks either zero)
    return np.where((a == 0) & (b == 0), a + b, np.maximum(a, b))


def _minimum_value(a, b):
    return np.where((a == 0) & (b == 0), -(-a - b), np.minimum(a, b))


maximum = _define(
    "maximum", 2, _maximum_value,
    (lambda a, b, out: a >= b, lambda a, b, out: a < b),
    lambda sp, a, b: sp.Max(a, b),
    "max({0}, {1}) if {0} == {0} and {1} == {1} else math.nan", _apart(),
    "The larger of a and b (nan if either is nan). At a tie a == b the "
    "derivative is that of a, the first argument.",
    jvp=_select_jvp(_maximum_first), vjp=_select_vjp(_maximum_first),
    ir="{out} = call double @llvm.maximum.f64(double {0}, double {1})",
    curvature="linear",
)

minimum = _define(
    "minimum", 2, _minimum_value,
    (lambda a, b, out: a <= b, lambda a, b, out: a > b),
    lambda sp, a, b: sp.Min(a, b),
    "min({0}, {1}) if {0} == {0} and {1} == {1} else math.nan", _apart(),
    "The smaller of a and b (nan if either is nan). At a tie a == b the "
    "derivative is that of a, the first argument.",
    jvp=_select_jvp(_minimum_first), vjp=_select_vjp(_minimum_first),
    ir="{out} = call double @llvm.minimum.f64(double {0}, double {1})",
    curvature="linear",
)


def _where_value(c, a, b):
    return np.where(c != 0, a, b)


def _where_cond(c, a, b):
    return c


where = _define(
    "where", 3, _where_value,
    (None, lambda c, a, b, out: where(c, 1.0, 0.0), lambda c, a, b, out: where(c, 0.0, 1.0)),
    lambda sp, c, a, b: sp.Piecewise((a, sp.Ne(c, 0)), (b, True)),
    "({1} if {0} != 0.0 else {2})",
    lambda rng: (rng.choice([-1.0, 0.0, 1.0]), rng.uniform(-2, 2), rng.uniform(-2, 2)),
    "where(cond, a, b): a where cond is nonzero (true), else b. Derivatives flow "
    "only into the branch taken; the condition has zero derivative.",
    jvp=_select_jvp(_where_cond), vjp=_select_vjp(_where_cond),
    simplify=lambda c, a, b: (
        a if a == b else (a if c.value != 0 else b) if c.is_constant and not c.shape else None
    ),
    ir="{t}c = fcmp une double {0}, 0.0\n{out} = select i1 {t}c, double {1}, double {2}",
    curvature="linear",
)

# -- comparisons: 0/1-valued nodes for where() -------------------------------------


def _comparison(name, symbol, ufunc, sympy_rel, fcmp):
    return _define(
        name, 2, lambda a, b: np.multiply(ufunc(a, b), 1.0),
        (None, None),
        lambda sp, a, b: sp.Piecewise((1, getattr(sp, sympy_rel)(a, b)), (0, True)),
        f"(1.0 if {{0}} {symbol} {{1}} else 0.0)", _apart(),
        f"a {symbol} b as 1.0 (true) or 0.0 (false); zero derivative.",
        fmt=f"{{0}} {symbol} {{1}}", prec=0, curvature="linear",
        ir=f"{{t}}c = fcmp {fcmp} double {{0}}, {{1}}\n{{out}} = uitofp i1 {{t}}c to double",
    )


lt = _comparison("lt", "<", np.less, "Lt", "olt")
le = _comparison("le", "<=", np.less_equal, "Le", "ole")
gt = _comparison("gt", ">", np.greater, "Gt", "ogt")
ge = _comparison("ge", ">=", np.greater_equal, "Ge", "oge")
