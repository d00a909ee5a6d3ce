"""SIMD math for compiled loops: glibc's libmvec, found when graphad is imported.

LLVM's loop vectoriser turns a loop of ``exp`` calls into calls of a vector
``exp`` only if it knows one. PyPI's llvmlite has no vector math library
configured (``-vector-library`` is ignored), so graphad says it per call site,
with the attribute ``"vector-function-abi-variant"`` that names libmvec's
functions (``_ZGVdN4v_exp`` is the 4-wide AVX2 ``exp``, see the x86-64 vector
function ABI). The vectoriser then emits the vector calls and the remainder
loop itself. The vector functions are declared and kept alive with
``@llvm.compiler.used``, and libmvec is loaded into the process so that the
JIT linker finds them.

Only x86-64 Linux with glibc has libmvec (2.22+ for exp, log, sin, cos and
pow; 2.35+ for the rest). Elsewhere, or with ``GRAPHAD_VECTOR_MATH=0``,
:func:`variants` is empty and compiled loops call scalar libm as before.
libmvec is accurate to a few ulp rather than libm's half ulp
(docs/compiler.md gives the measured bounds); ``exact_math=True`` keeps libm.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import sys

# the callee names in graphad's IR templates -> libmvec's base name and arity
FUNCTIONS = {
    "llvm.exp.f64": ("exp", 1), "llvm.log.f64": ("log", 1), "llvm.sin.f64": ("sin", 1),
    "llvm.cos.f64": ("cos", 1), "llvm.pow.f64": ("pow", 2), "log1p": ("log1p", 1), "expm1": ("expm1", 1),
    "tan": ("tan", 1), "asin": ("asin", 1), "acos": ("acos", 1), "atan": ("atan", 1), "atan2": ("atan2", 2),
    "sinh": ("sinh", 1), "cosh": ("cosh", 1), "tanh": ("tanh", 1), "asinh": ("asinh", 1),
    "acosh": ("acosh", 1), "atanh": ("atanh", 1), "erf": ("erf", 1), "hypot": ("hypot", 2),
}
# the vector ABI's ISA letter, its width in doubles, and the CPU feature it needs
_ISAS = (("b", 2, "sse2"), ("d", 4, "avx2"), ("e", 8, "avx512f"))
CALL = re.compile(r"call double @([\w.]+)\(([^)\n]*)\)")


def _mangled(isa: str, width: int, name: str, arity: int) -> str:
    return f"_ZGV{isa}N{width}{'v' * arity}_{name}"


@functools.cache
def variants() -> dict[str, tuple[tuple[str, int], ...]]:
    """For each callee in :data:`FUNCTIONS` that this machine can vectorise, the
    (ISA letter, width) pairs of its libmvec versions; empty where there is no
    libmvec (or ``GRAPHAD_VECTOR_MATH=0``)."""
    if os.environ.get("GRAPHAD_VECTOR_MATH", "1").strip() == "0":
        return {}
    if not sys.platform.startswith("linux") or platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    import llvmlite.binding as llvm

    try:
        lib = ctypes.CDLL("libmvec.so.1")
        llvm.load_library_permanently("libmvec.so.1")  # the JIT linker resolves the calls here
    except OSError:
        return {}
    features = {f.lstrip("+") for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+")}
    isas = [(isa, width) for isa, width, feature in _ISAS if feature in features]
    found = {}
    for callee, (name, arity) in FUNCTIONS.items():
        have = tuple((isa, w) for isa, w in isas if hasattr(lib, _mangled(isa, w, name, arity)))
        if have:
            found[callee] = have
    return found


def signature() -> str:
    """What :func:`annotate` adds on this machine, for cache keys: code compiled
    for one set of vector functions must not be reused where another is found."""
    return repr(sorted(variants().items()))


def annotate(ir: str) -> str:
    """``ir`` with each call of a vectorisable function marked with its libmvec
    versions, and those declared and kept alive. Unchanged where there are none."""
    found = variants()
    groups: dict[str, int] = {}  # callee -> attribute group number

    def mark(m):
        callee = m.group(1)
        if callee not in found:
            return m.group(0)
        groups.setdefault(callee, 9000 + len(groups))
        return f"{m.group(0)} #{groups[callee]}"

    ir = CALL.sub(mark, ir)
    if not groups:
        return ir
    lines, used = [], []
    for callee, number in groups.items():
        name, arity = FUNCTIONS[callee]
        names = []
        for isa, width in found[callee]:
            vector = f"<{width} x double>"
            mangled = _mangled(isa, width, name, arity)
            names.append(f"_ZGV_LLVM_N{width}{'v' * arity}_{callee}({mangled})")
            fnty = f"{vector} ({', '.join([vector] * arity)})"
            lines.append(f"declare {vector} @{mangled}({', '.join([vector] * arity)})")
            used.append(f"i8* bitcast ({fnty}* @{mangled} to i8*)")
        # a libm call may set errno, which keeps LLVM from vectorising it; graphad
        # never reads errno, so the call is marked as touching no memory (as C
        # compilers do under -fno-math-errno)
        lines.append(f'attributes #{number} = {{ memory(none) nounwind willreturn '
                     f'"vector-function-abi-variant"="{",".join(names)}" }}')
    lines.append(f"@llvm.compiler.used = appending global [{len(used)} x i8*] [{', '.join(used)}], "
                 'section "llvm.metadata"')
    return ir + "\n".join(lines) + "\n"
