"""``ga.compile``: optimise once, lower to LLVM IR, compile to machine code, call many times.

The design (docs/compiler.md explains the measurements behind it):

- the optimised Program is written as LLVM IR text (:mod:`graphad.llvm`): the
  kernel and its batch loop over points; graphad compiles it with llvmlite,
  with the fast door's entry (:mod:`graphad.fastcall`), to one object file
  (:mod:`graphad.kernels`), so no Python is typed or compiled per program;
- the IR and the object file are files in the cache directory named by a
  structural hash, each with a checksum: a second process compiling the same
  graph loads the machine code instead of compiling it;
- the returned :class:`Compiled` owns the engine that holds its machine code,
  which is freed when the function is dropped. A call with floats (and 1-D
  arrays for vector inputs) takes its door, about what calling ``math.exp``
  costs; any other call comes to :meth:`Compiled._slow_call`, which converts,
  broadcasts, runs the batch loop (ctypes, the GIL released; in graphad's own
  threads with ``parallel=True``) or raises a clear error. ``@njit`` code calls
  it through a Numba function made at its first such call (:mod:`graphad.wrapper`).
"""

from __future__ import annotations

import builtins
import ctypes
import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import pickle
import re
import sys
import tempfile
import threading
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import llvmlite
import numba
import numpy as np
from numba import types
from numba.extending import typeof_impl

from . import cache, cluster, fastcall, kernels, vecmath, wrapper
from ._version import __version__
from .expr import Expr, Vector, as_expr, as_one_expr, as_symbol_list
from .fingerprint import fingerprint
from .llvm import CHUNK_SIZE, Layout, emit
from .passes import Report, optimise
from .program import Program, from_exprs
from .progress import Progress
from .registry import OPS
from .shapes import fmt as fmt_shape

NOGIL_NODES = 1000  # longer kernels release the GIL while they run
OPTIMISE_NODES = 1500  # shorter kernels get LLVM's O3 passes and loop vectoriser; longer ones a
#                        light pipeline, far faster to compile (docs/compiler.md)
_lock = threading.Lock()
# cache key -> the compiled function, while it is alive (its machine code is freed with it)
_functions: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_forked_after_omp = False  # this process is a fork of one whose GNU OpenMP threads had started


def _after_fork_in_child() -> None:
    # GNU OpenMP cannot run in a child forked after its threads started: Numba then
    # kills the child at its first parallel loop (and a fork Pool waits forever)
    global _forked_after_omp
    try:
        _forked_after_omp = numba.threading_layer() == "omp"
    except ValueError:  # no parallel loop has run: any start method is fine
        pass


if hasattr(os, "register_at_fork"):  # POSIX: where processes fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def _source_stamp(*modules: str) -> str:
    """A fingerprint of graphad source files, read once per process."""
    h = hashlib.sha256()
    here = os.path.dirname(__file__)
    for module in modules:
        with open(os.path.join(here, module), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


@functools.cache
def _generator_stamp() -> str:
    """A fingerprint of the passes and the code generator (with the IR templates of
    the ops a program uses, in the key): a changed generator never reuses old code."""
    folder = os.path.join(os.path.dirname(__file__), "passes")
    passes = sorted(p for p in os.listdir(folder) if p.endswith(".py"))
    return _source_stamp("llvm.py", "compiler.py", "kernels.py", "wrapper.py", "program.py", "numba_cache.py",
                         "fastcall.py", "vecmath.py", *(os.path.join("passes", p) for p in passes))


_fallbacks: dict[str, str] = {}  # an unusable cache folder -> this process's temporary one
_lock_fallback = threading.Lock()  # not _lock: _build holds that while a module loads


def cache_dir() -> str:
    """Where compiled functions are cached: ``$GRAPHAD_CACHE_DIR``, else the user cache.

    A folder that cannot be used (a file, a path under a file, no permission, a
    read-only or full disk) costs one warning: this process then caches in a
    temporary folder of its own."""
    path = os.environ.get("GRAPHAD_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        if sys.platform == "darwin":
            base = os.path.join(os.path.expanduser("~"), "Library", "Caches")
        elif os.name == "nt":
            base = os.environ.get("LOCALAPPDATA") or tempfile.gettempdir()
        path = os.path.join(base, "graphad")
    if path in _fallbacks:
        return _fallbacks[path]
    try:
        _make_writable(path)
    except OSError as e:
        return _fallback(path, e)
    return path


def _make_writable(folder: str) -> None:
    """Make ``folder`` if it is missing, and check that files can be written there
    (an OSError says why not)."""
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def _fallback(path: str, error: OSError) -> str:
    """This process's temporary cache folder, in place of ``path``; one warning."""
    with _lock_fallback:
        if path not in _fallbacks:
            _fallbacks[path] = tempfile.mkdtemp(prefix="graphad-cache-")
            warnings.warn(f"graphad: the cache folder {path!r} cannot be used ({error.strerror or error}); "
                          f"this process caches compiled code in {_fallbacks[path]} instead",
                          RuntimeWarning, stacklevel=4)
    return _fallbacks[path]



class _SourceOnly(importlib.machinery.SourceFileLoader):
    """Compiles a generated module from its source at every import: Python trusts a
    ``.pyc`` by its header alone, so a damaged one would break the module for good."""

    def get_code(self, fullname):
        return builtins.compile(self.get_data(self.path), self.path, "exec", dont_inherit=True)


def _spec(module_name: str, path: str):
    return importlib.util.spec_from_file_location(module_name, path, loader=_SourceOnly(module_name, path))


def _import(path: str, module_name: str):
    spec = _spec(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module


# -- the public entry point -----------------------------------------------------------


def _groups(items, what: str, check):
    """Flatten ``items`` (entries or lists of entries) into a list plus group sizes."""
    flat, sizes = [], []
    for i, item in enumerate(items):
        if isinstance(item, (list, tuple)):
            if not item:
                raise ValueError(f"compile: {what}[{i}] is an empty list")
            for e in item:
                flat.append(check(e, f"{what}[{i}]"))
            sizes.append(len(item))
        else:
            flat.append(check(item, f"{what}[{i}]"))
            sizes.append(0)
    return flat, tuple(sizes)


def _labels(in_items) -> list[str]:
    """Argument names: a symbol's name, or for a vector the stem of its symbols'
    names (x0:100 -> x), made unique."""
    labels = []
    for item in in_items:
        if isinstance(item, Expr):
            labels.append(item.name)
            continue
        stem = os.path.commonprefix([s.name for s in item]).rstrip("0123456789") or "v"
        labels.append(stem)
    taken = set()
    for i, label in enumerate(labels):
        while label in taken:
            label += "_"
        labels[i] = label
        taken.add(label)
    return labels


def _distinct_names(symbols, what: str) -> list[str]:
    """The symbols' names; a name given twice is an error naming it."""
    names = [s.name for s in symbols]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{what}: symbol(s) {', '.join(twice)} appear more than once in the inputs")
    return names


def _check_symbol(e, where):
    if not (isinstance(e, Expr) and e.is_symbol):
        raise TypeError(f"compile: {where} is {e!r}, not a symbol (or a list of symbols)")
    return e


def _check_output(e, where):
    try:
        return as_expr(e)
    except TypeError as err:
        raise TypeError(f"compile: {where}: {err}") from None


def compile(outputs, inputs, *, parallel: bool = False, assume_finite: bool = False, exact_math: bool = False,
            passes=None, chunk_size: int = CHUNK_SIZE) -> Compiled:
    """Compile ``outputs`` as a function of ``inputs``, once; call it many times.

    ``inputs`` is a list whose entries are symbols (the function takes a float)
    or lists of symbols (it takes a 1-D array). ``outputs`` is an expression
    (the function returns it) or a list whose entries are expressions (floats)
    or lists of expressions (1-D arrays), returned as a tuple. All outputs
    share one compiled kernel, so a value and its gradient share their work.

    In a graph with array symbols, an array symbol takes an array of its
    shape (size names are bound at each call), array outputs come back as
    arrays and a list of outputs as a tuple (docs/arrays.md).

    Called with floats, it returns floats; called with arrays (broadcast
    against each other and against floats; vector inputs gain a leading axis
    of points) it runs one compiled loop over the points, in parallel threads
    if ``parallel=True``. Where the machine has SIMD math (glibc's libmvec on
    x86-64 Linux), that loop computes exp, sin, log and the like several
    points at a time, within a few ulp of libm (docs/compiler.md);
    ``exact_math=True`` keeps scalar libm, so a batch gives exactly the values
    of calls one point at a time. ``assume_finite`` lets the simplifier fold
    ``x*0`` and ``x-x`` in your own arithmetic (see docs/compiler.md);
    ``passes`` replaces the default pass pipeline (``[]`` for none).

    Examples:
        >>> import graphad as ga
        >>> x, y = ga.symbols("x y")
        >>> f = ga.exp(x**2) * ga.sin(y)
        >>> fg = ga.compile([f, ga.grad(f, [x, y])], [x, y])
        >>> value, gradient = fg(0.5, 1.0)
        >>> round(value, 6), gradient.round(6).tolist()
        (1.08047, [1.08047, 0.693762])
        >>> fg([0.5, 1.0], 1.0)[0].round(6).tolist()  # two points at once
        [1.08047, 2.287355]
    """
    # one expression, or one Vector (ga.grad(f, xs) and the like: one array), is returned alone
    single = not isinstance(outputs, (list, tuple)) or isinstance(outputs, Vector)
    in_items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    flat_in, in_sizes = _groups(in_items, "inputs", _check_symbol)
    _distinct_names(flat_in, "compile")
    flat_out, out_sizes = _groups([outputs] if single else list(outputs), "outputs", _check_output)
    if not flat_out:
        raise ValueError("compile: no outputs given")
    if len({e.graph for e in flat_out + flat_in}) > 1:
        raise ValueError("compile: the outputs and inputs come from different graphad graphs")
    options = _options("compile", Layout(in_sizes, out_sizes), single, _labels(in_items), parallel,
                       assume_finite, exact_math, passes, chunk_size)
    for i, item in enumerate(in_items):
        for e in item if isinstance(item, (list, tuple)) else ():
            if e.shape:
                raise TypeError(f"compile: inputs[{i}] is a list of symbols, which takes a 1-D array of "
                                f"their values; {e.name} has shape {fmt_shape(e.shape)}: give it as an "
                                "input of its own")
    if _has_arrays(flat_out + flat_in):
        if options.passes is not None:
            raise NotImplementedError("compile: passes= applies to graphs of scalars; the pass pipeline does "
                                      "not run on graphs with arrays yet")
        from . import compiled_arrays
        from .lowering import loops

        return compiled_arrays.build(loops.from_exprs(flat_out, flat_in), options.in_labels, in_sizes,
                                     out_sizes, single, options.parallel, options.assume_finite,
                                     options.exact_math)
    return _build(from_exprs(flat_out, flat_in), options)


def _has_arrays(exprs: list[Expr]) -> bool:
    graph = exprs[0].graph
    return graph.has_arrays and any(graph.shapes[v] for v in graph.ancestors(e.id for e in exprs))


def compile_grad(f, wrt, *, data=(), value: bool = True, parallel: bool = False, assume_finite: bool = False,
                 exact_math: bool = False, passes=None, chunk_size: int = CHUNK_SIZE) -> Compiled:
    """The gradient of ``f`` over the symbols ``wrt``, compiled and cached as one unit.

    The result takes one 1-D array (the values of ``wrt``) and returns the
    value and the gradient array (``value=False``: the gradient alone). Unlike
    ``compile([f, grad(f, wrt)], [wrt])``, the cache is keyed on ``f`` itself,
    so a cache hit (another process, a later run) skips building the gradient
    graph too; the gradient program is built only when code must be generated
    or ``.program`` is asked for.

    ``data`` lists symbols that ``f`` also reads but that are not
    differentiated (a data set); the function then takes them after the
    values of ``wrt``. In a graph with arrays, each symbol of ``wrt`` and
    ``data`` is an argument of its own, and the gradient is one array per
    symbol of ``wrt`` (a tuple, for a list).

    Examples:
        >>> import numpy as np
        >>> import graphad as ga
        >>> xs = ga.symbols("x0:3")
        >>> fg = ga.compile_grad(xs[0] * xs[1] + ga.sin(xs[2]), xs)
        >>> value, gradient = fg(np.array([1.0, 2.0, 0.0]))
        >>> value, gradient.tolist()
        (2.0, [2.0, 1.0, 1.0])
    """
    f = as_one_expr(f, "compile_grad")
    syms, single = as_symbol_list(wrt, "compile_grad", f.graph)
    if not syms:
        raise ValueError("compile_grad: no symbols given")
    names = _distinct_names(syms, "compile_grad")
    data, _ = as_symbol_list(list(data) if isinstance(data, (list, tuple)) else [data], "compile_grad",
                             f.graph)
    arrays = _has_arrays([f, *syms])
    if data or arrays:
        from .reverse import grad

        g = grad(f, syms)
        group = g[0] if single and arrays else g
        inputs = syms + data if arrays else [syms, *data]
        return compile([f, group] if value else group, inputs, parallel=parallel, assume_finite=assume_finite,
                       exact_math=exact_math, passes=passes, chunk_size=chunk_size)
    source = GradientSource(tuple(f.graph.export([f.id])), tuple(names), value)
    n = len(syms)
    options = _options("compile_grad", Layout((n,), (0, n) if value else (n,)), not value, _labels([syms]),
                       parallel, assume_finite, exact_math, passes, chunk_size)
    return _build(source, options)


def _options(what: str, layout, single, labels, parallel, assume_finite, exact_math, passes,
             chunk_size) -> Options:
    """Type-checked :class:`Options`: option values are data, never code."""
    for name, flag in (("parallel", parallel), ("assume_finite", assume_finite), ("exact_math", exact_math)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{what}: {name} must be True or False, not {flag!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise TypeError(f"{what}: chunk_size must be a whole number >= 1, not {chunk_size!r}")
    if passes is not None:
        if not isinstance(passes, (list, tuple)):
            raise TypeError(f"{what}: passes must be a list of passes, not {type(passes).__name__}")
        for p in passes:
            if not callable(getattr(p, "run", None)):
                raise TypeError(f"{what}: the pass {p!r} has no run(program, assume_finite=...) function")
        passes = tuple(passes)
    return Options(layout, single, tuple(labels), bool(parallel), bool(assume_finite), bool(exact_math),
                   passes, int(chunk_size))


@dataclass(frozen=True)
class GradientSource:
    """The gradient of a function (its exported records), built only when needed."""

    records: tuple
    wrt: tuple[str, ...]
    value: bool

    def function(self) -> Program:
        """The program of f itself."""
        return Program(self.records, (len(self.records) - 1,), self.wrt)

    def op_counts(self) -> dict[str, int]:
        return self.function().op_counts()

    def key(self) -> str:
        # f's structure, the inputs, and what differentiates it: the rules of its ops
        function = self.function()
        rules = []  # a custom op's rules: their helpers and closed-over values count too
        for op in sorted(function.op_counts()):
            if op in OPS:
                rules.append((op, [fingerprint(r) if r else None for r in OPS[op].partials]))
        stamp = _source_stamp("ops.py", "reverse.py", "registry.py")
        body = function.key()
        return hashlib.sha256(repr(("grad", body, self.wrt, self.value, rules, stamp)).encode()).hexdigest()

    def program(self) -> Program:
        from .graph import Graph
        from .reverse import grad

        graph = Graph()
        ids = graph.load(list(self.records))
        f = Expr(graph, ids[-1])
        syms = [Expr(graph, graph.add("symbol", name=n)) for n in self.wrt]
        g = grad(f, syms)
        return from_exprs([f, *g] if self.value else g, syms)


@dataclass(frozen=True)
class Options:
    """Everything besides the program that decides what code is generated."""

    layout: Layout
    single: bool
    in_labels: tuple[str, ...]
    parallel: bool
    assume_finite: bool
    exact_math: bool
    passes: tuple | None
    chunk_size: int

    def key(self) -> str:
        passes = None if self.passes is None else [(getattr(p, "__name__", ""), fingerprint(p.run))
                                                   for p in self.passes]
        # the SIMD functions found on this machine are part of the code (vecmath.signature)
        math = "exact" if self.exact_math else vecmath.signature()
        return repr((self.layout, self.single, self.in_labels, self.parallel, self.assume_finite, math,
                     passes, self.chunk_size))


def _build(source, options: Options) -> Compiled:
    """The compiled function for ``source``: a Program before the passes, or a
    lazy source such as :class:`GradientSource` (anything with ``key()``,
    ``op_counts()`` and ``program()``). The cache is keyed on the source, so a
    cache hit skips the passes, and for a lazy source building the program too."""
    ops = source.op_counts()
    unknown = sorted(op for op in ops if op not in OPS and op not in ("const", "symbol"))
    if unknown:
        raise ValueError(f"the op(s) {', '.join(unknown)} are not registered in this process: import "
                         "the module that defines them (with ga.define_op) first")
    templates = sorted((op, OPS[op].ir) for op in ops if op in OPS)
    door = _door_type(options.layout)
    key = hashlib.sha256(repr((
        source.key(), options.key(), templates, door is not None, __version__, _generator_stamp(),
        llvmlite.__version__, kernels.host(),
    )).encode()).hexdigest()[:40]
    with _lock:
        fn = _functions.get(key)
        if fn is None:
            with Progress(f"compiling {sum(ops.values()):,} nodes") as shown:
                fn = _load(source, options, key, door or Compiled, shown)
            _functions[key] = fn
    return fn


def _door_type(layout: Layout):
    """The class of compiled functions with a fast door for this layout, or None."""
    door = fastcall.door_type(Compiled)
    return door if door is not None and fastcall.fits(layout) else None


def _load(source, options: Options, key: str, cls, shown: Progress) -> Compiled:
    folder = cache_dir()
    try:
        return _load_from(source, options, key, cls, os.path.join(folder, f"graphad_{key}"), shown)
    except OSError as e:  # the folder could not be written after all (a full disk, removed...)
        return _load_from(source, options, key, cls, os.path.join(_fallback(folder, e), f"graphad_{key}"),
                          shown)


def _load_from(source, options: Options, key: str, cls, base: str, shown: Progress) -> Compiled:
    name = f"graphad_{key}"
    layout = options.layout
    optimised = None

    def generate() -> str:
        """Write the entry anew (the IR, the program, their digests); the IR."""
        nonlocal optimised
        shown.stage("the passes (CSE, folding, simplification)")
        optimised = _run_passes(source, options)
        program = optimised[0]
        shown.stage(f"writing LLVM IR for {len(program):,} nodes")
        files = {".ll": _ir(program, options, name).encode()}
        kernels.write_file(base + ".ll", files[".ll"])
        try:  # optional: .program recomputes it when it is missing
            files[".pkl"] = pickle.dumps(optimised)
            kernels.write_file(base + ".pkl", files[".pkl"])
        except OSError:
            del files[".pkl"]
        # written last: the digests of every file, checked before any is used
        kernels.write_file(base + ".sum", json.dumps({ext: _digest(data) for ext, data in files.items()}))
        cache.trim(keep=name)
        return files[".ll"].decode()

    try:
        ir, fresh = _read_intact(base, ".ll").decode(), False
        cache.touch(base)
    except (OSError, ValueError):  # missing, or changed since written (a flipped bit gives wrong numbers)
        ir, fresh = generate(), True
    for attempt in range(2):
        try:
            nodes = int(ir[:ir.index("\n")].removeprefix("; graphad: ").removesuffix(" nodes"))
            small, nogil = nodes <= OPTIMISE_NODES, nodes > NOGIL_NODES
            text, symbols = ir, [name, name + ".batch"]
            if cls is not Compiled:
                text += fastcall.entry_ir(name, layout, options.single, nogil)
                symbols += [f"{name}.{s}" for s in fastcall.DOOR_SYMBOLS]
            shown.stage("compiling machine code (LLVM)")
            engine, addresses, compiled = kernels.load_engine(
                base + ".o", lambda text=text: text, symbols, fresh,
                passes=3 if small else kernels.PASSES_OPT, vectorize=small)
            fn = cls(source, options, base, engine, addresses, nodes, from_cache=not compiled)
            if cls is not Compiled:
                fastcall.install(fn, addresses, name, Compiled._door_fallback)
            if optimised is not None:
                fn._optimised_result = optimised
            return fn
        except OSError:
            raise
        except Exception:
            if attempt:
                raise
            ir, fresh = generate(), True  # a corrupt or stale cache entry: write it anew, compile afresh
    raise AssertionError("unreachable")


def _ir(program: Program, options: Options, name: str) -> str:
    """The IR module of the kernel ``@name`` and its batch loop, with its node count in front."""
    vector = len(program) <= OPTIMISE_NODES and not options.exact_math
    text = emit(program, options.layout, name, options.chunk_size, vector)
    return f"; graphad: {len(program)} nodes\n{text}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_intact(base: str, ext: str) -> bytes:
    """The cache file ``base + ext``, if it matches the digest written with it (else ValueError)."""
    with open(base + ".sum") as f:
        recorded = json.load(f)
    with open(base + ext, "rb") as f:
        data = f.read()
    if not isinstance(recorded, dict) or recorded.get(ext) != _digest(data):
        raise ValueError(f"the cache file {base + ext} is missing or changed")
    return data


def _intact(base: str, extensions: tuple[str, ...]) -> bool:
    """Whether the cache files ``base + ext`` exist and match the digests written with them."""
    try:
        for ext in extensions:
            _read_intact(base, ext)
    except (OSError, ValueError):
        return False
    return True


def _holds(path: str, text: str) -> bool:
    """Whether the file ``path`` holds exactly ``text``."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == text
    except (OSError, ValueError):
        return False


class _NumbaModules(importlib.abc.MetaPathFinder):
    """Imports ``graphad_<key>``, the Numba module through which ``@njit`` code calls
    the compiled function ``<key>``, while that function is alive: at its first
    ``@njit`` use, or when Numba's cache of an ``@njit(cache=True)`` caller, in a
    later process, asks for the module by name."""

    def find_spec(self, name, path=None, target=None):
        if path is not None or not _MODULE.fullmatch(name):
            return None
        fn = _functions.get(name[len("graphad_"):])
        if fn is None:
            raise ImportError(
                f"{name} is the Numba module of a graphad function that is not compiled in this process: "
                "an @njit(cache=True) function cached against another version of that function (a changed "
                "graph or options, another graphad) asks for it. Numba's cache does not follow the globals "
                "a function calls: clear that function's cache (its .nbi and .nbc files), or compile it "
                "without cache=True", name=name)
        return _spec(name, fn._numba_module())


_MODULE = re.compile(r"graphad_[0-9a-f]{40}")
sys.meta_path.append(_NumbaModules())


def _run_passes(source, options: Options) -> tuple[Program, Report]:
    return optimise(source.program(), options.passes, assume_finite=options.assume_finite)


# -- batches in parallel: graphad's own threads -------------------------------------------

BLOCK = 4096  # points: a parallel batch is cut into shares of whole blocks
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (the process that made it, the pool)
_pool_lock = threading.Lock()


def _run_parallel(loop, n: int, pointers, keep) -> None:
    """``loop(lo, hi, *pointers)`` over points 0 to n - 1, in shares run by one thread
    each (a ctypes call releases the GIL). Each share holds ``keep`` (the function and
    the arrays that ``pointers`` point into) until it is done, so that a caller that
    returns early (Ctrl-C) frees nothing under it. The pool is made afresh in a forked
    child, whose copy of the parent's pool has no threads."""
    global _pool
    step = -(-max(BLOCK, -(-n // _threads())) // BLOCK) * BLOCK
    shares = [(lo, min(n, lo + step)) for lo in range(0, n, step)]
    futures = []
    try:
        try:
            with _pool_lock:
                if len(shares) > 1 and (_pool is None or _pool[0] != os.getpid()):
                    _pool = (os.getpid(), ThreadPoolExecutor(_threads(), thread_name_prefix="graphad"))
            for lo, hi in shares[1:]:
                futures.append(_pool[1].submit(_share, keep, loop, lo, hi, pointers))
        except RuntimeError:  # the interpreter is shutting down (an atexit handler): no new threads
            pass
        for lo, hi in [shares[0], *shares[1 + len(futures):]]:  # this thread's share, and any left
            loop(lo, hi, *pointers)
    finally:
        interrupted = None
        while futures:  # Ctrl-C takes effect once the threads are done
            try:
                futures[-1].result()
                futures.pop()
            except KeyboardInterrupt as e:
                interrupted = e
        if interrupted is not None:
            raise interrupted


def _share(keep, loop, lo, hi, pointers) -> None:
    loop(lo, hi, *pointers)


def _threads() -> int:
    """How many threads a parallel batch uses: Numba's setting (``NUMBA_NUM_THREADS``,
    or ``numba.set_num_threads`` where Numba's threads have started)."""
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False):
        return max(1, numba.get_num_threads())
    return max(1, numba.config.NUMBA_NUM_THREADS)


class Compiled:
    """A compiled function: call it like ``fn(x, y)``.

    A call with floats (and 1-D float64 arrays for vector inputs) goes through
    its fast door (:mod:`graphad.fastcall`) straight into the machine code;
    any other call comes to :meth:`_door_fallback`, which converts,
    broadcasts, runs the batch loop or raises a clear error. The machine code
    is freed when the function is dropped. ``@njit`` code may call it too
    (through a Numba function made at the first such call, :mod:`graphad.wrapper`).

    Attributes: ``program`` (the optimised Program), ``report`` (node counts
    per pass), ``source`` (a readable listing, one assignment per node),
    ``llvm_ir`` (the IR that was compiled).
    """

    def __init__(self, source, options: Options, base: str, engine, addresses: dict[str, int], nodes: int,
                 from_cache: bool):
        self.layout = options.layout
        self._source = source
        self._options = options
        self._single = options.single
        self._in_labels = options.in_labels
        self._base = base
        self._engine = engine  # its machine code lives as long as the function
        self._from_cache = from_cache  # whether the machine code was loaded, not compiled
        self._nodes = nodes
        self._kernel = addresses[os.path.basename(base)]
        n = len(self.layout.in_sizes) + len(self.layout.out_sizes)
        self._loop = _batch_entry(n)(addresses[os.path.basename(base) + ".batch"])
        self._optimised_result = None

    def __reduce__(self):
        return _build, (self._source, self._options)

    def __repr__(self) -> str:
        return f"<graphad.Compiled ({', '.join(self._in_labels)}) -> {len(self.layout.out_sizes)} output(s)>"

    def __call__(self, *args, **kwargs):
        return self._door_fallback(*args, **kwargs)

    def _door_fallback(self, *args, **kwargs):
        """Every call that the fast door (:mod:`graphad.fastcall`) does not take."""
        if kwargs:
            raise TypeError(f"a compiled function takes its arguments by position "
                            f"({', '.join(self._in_labels)}), not by keyword ({', '.join(kwargs)})")
        if len(args) == len(self.layout.in_sizes):
            for g, (size, a) in enumerate(zip(self.layout.in_sizes, args)):
                if size and isinstance(a, (np.ndarray, list, tuple)) and np.ndim(a) == 1 and len(a) != size:
                    raise ValueError(f"argument {g + 1} takes the {size} values of {self._names(g)}, "
                                     f"got {len(a)}")
        return self._slow_call(args)

    def _names(self, g: int) -> str:
        """The symbols of input group ``g``, for error messages: ``x`` or ``[x0, x1, ..., x99]``."""
        sizes = self.layout.in_sizes
        start = sum(max(s, 1) for s in sizes[:g])
        names = list(self.program.inputs[start:start + max(sizes[g], 1)])
        if not sizes[g]:
            return names[0]
        return "[" + ", ".join(names if len(names) <= 4 else [*names[:2], "...", names[-1]]) + "]"

    def _arity_message(self, args) -> str:
        sizes = self.layout.in_sizes
        message = (f"expected {len(sizes)} argument(s) "
                   f"({', '.join(self._names(g) for g in range(len(sizes)))}), got {len(args)}")
        try:
            shape = np.shape(args[0]) if len(args) == 1 else ()
        except ValueError:  # a ragged list: no shape, and no hint to give
            shape = ()
        if len(sizes) > 1 and not any(sizes) and shape[-1:] == (len(sizes),):
            message += ("; each symbol is an argument of its own: to pass one vector of values, unpack it, "
                        "fn(*v) (rows of points: fn(*V.T)), or compile with the symbols as one list input, "
                        f"ga.compile(..., [[{', '.join(self.program.inputs)}]])")
        elif len(sizes) == 1 and sizes[0] == len(args) > 1:
            message += f"; it takes one array of the {sizes[0]} values: fn(np.array([...]))"
        return message

    def _optimised(self) -> tuple[Program, Report]:
        if self._optimised_result is None:
            try:
                self._optimised_result = pickle.loads(_read_intact(self._base, ".pkl"))
            except Exception:  # unreadable: the passes are deterministic, run them again
                self._optimised_result = _run_passes(self._source, self._options)
        return self._optimised_result

    @property
    def program(self) -> Program:
        """The optimised program that was compiled."""
        return self._optimised()[0]

    @property
    def report(self) -> Report:
        """Node counts before and after each pass."""
        return self._optimised()[1]

    @property
    def llvm_ir(self) -> str:
        """The kernel's LLVM IR module (without the fast door's entry)."""
        try:
            return _read_intact(self._base, ".ll").decode()
        except (OSError, ValueError):  # gone from the cache, or changed: written again from the program
            return _ir(self.program, self._options, os.path.basename(self._base))

    def _dispatcher(self):
        """The Numba function through which ``@njit`` code calls this one: the function
        ``point`` of the module ``graphad_<key>``, imported at the first such call in the
        process (through :class:`_NumbaModules`; :mod:`graphad.wrapper`)."""
        return importlib.import_module(os.path.basename(self._base)).point

    def _numba_module(self) -> str:
        """Make ready the module of :meth:`_dispatcher` for an import: its kernel's IR
        handed to :mod:`graphad.wrapper` (or, for a big kernel, its code published by
        symbol, and then kept for good), its source written; the source's path."""
        name = os.path.basename(self._base)
        linked = self._nodes <= OPTIMISE_NODES  # Numba compiles small kernels' IR itself
        # no graphad lock here: Numba's compiler lock is held (a compile that types this
        # function), and graphad takes that one inside its own (kernels.load_engine)
        if linked:
            wrapper.IR[name] = self.llvm_ir
        else:
            kernels.publish(name, self._kernel, self._engine)
        text = wrapper.source(name[len("graphad_"):], name, self.layout, self._in_labels, self._single,
                              self._nodes > NOGIL_NODES, linked)
        folder = os.path.dirname(self._base)
        for attempt in range(2):
            path = os.path.join(folder, name + ".py")
            try:
                if not _holds(path, text):
                    os.makedirs(folder, exist_ok=True)  # the cache folder may have been removed
                    kernels.write_file(path, text)
                return path
            except OSError as e:  # the folder cannot be written
                if attempt:
                    raise
                folder = _fallback(folder, e)
        raise AssertionError("unreachable")

    @property
    def source(self) -> str:
        """A readable listing of the compiled program: one assignment per node."""
        names: list[str] = []
        slots = dict(zip(self.program.inputs, self.layout.in_slots()))
        lines = [f"def f({', '.join(self._in_labels)}):"]
        for i, (op, args, payload) in enumerate(self.program.nodes):
            if op == "const":
                names.append(repr(float(payload)))
                continue
            if op == "symbol":
                g, k = slots[payload]
                names.append(payload if self.layout.in_sizes[g] == 0 else f"{self._in_labels[g]}[{k}]")
                continue
            names.append(f"v{i}")
            lines.append(f"    v{i} = {OPS[op].code.format(*(names[a] for a in args))}")
        outs, flat = [], iter(self.program.outputs)
        for size in self.layout.out_sizes:
            outs.append(names[next(flat)] if size == 0 else "[" + ", ".join(names[next(flat)]
                                                                           for _ in range(size)) + "]")
        lines.append(f"    return {outs[0] if self._single else ', '.join(outs)}")
        return "\n".join(lines)

    # -- everything that is not a call with floats ------------------------------------

    def _slow_call(self, args):
        sizes = self.layout.in_sizes
        if len(args) != len(sizes):
            raise TypeError(self._arity_message(args))
        if cluster.any_dask(args):  # lazily, one task per block
            return cluster.batch_call(self, args)
        arrays, batch_shapes = [], []
        for g, (label, size, a) in enumerate(zip(self._in_labels, sizes, args)):
            if type(a) is np.ndarray and a.dtype == _FLOAT64:
                arr = a  # the common batch call: no conversion
            else:
                arr = _as_float_array(a, label)
            if size:
                if arr.ndim == 0 or arr.shape[-1] != size:
                    raise ValueError(f"argument {g + 1} takes the {size} values of {self._names(g)} in its "
                                     f"last axis, got shape {arr.shape}")
                batch_shapes.append(arr.shape[:-1])
            else:
                batch_shapes.append(arr.shape)
            arrays.append(arr)
        shape = batch_shapes[0] if batch_shapes else ()
        if any(s != shape for s in batch_shapes):
            try:
                shape = np.broadcast_shapes(*batch_shapes)
            except ValueError:
                raise ValueError(f"the arguments' point shapes {batch_shapes} do not broadcast") from None
        if shape == () and type(self) is not Compiled:  # the door's class (graphad.fastcall)
            # exactly what the door takes, so this call takes it and cannot come back here:
            # exact floats, and C-contiguous aligned arrays whose dtype *is* NumPy's float64
            # (an equal dtype from a pickle, or with metadata, is another object)
            return self(*[float(a) if s == 0 else np.require(a, requirements=["C", "A"]).view(_FLOAT64)
                          for a, s in zip(arrays, sizes)])
        return self._batch(arrays, shape)

    def _batch(self, arrays, shape):
        n = math.prod(shape)
        ins = []
        for a, s in zip(arrays, self.layout.in_sizes):
            full = shape + (s,) if s else shape
            if a.shape != full:
                a = np.broadcast_to(a, full)
            if not (a.flags.c_contiguous and a.flags.aligned):
                a = np.array(a, dtype=np.float64, order="C")  # a contiguous, aligned copy
            ins.append(a)
        outs = [np.empty(shape + (s,) if s else shape) for s in self.layout.out_sizes]
        if n:
            pointers = fastcall.data_pointers(ins + outs)  # the arrays live until we return
            if self._options.parallel and n > BLOCK:
                _run_parallel(self._loop, n, pointers, (self, ins, outs))
            else:
                self._loop(0, n, *pointers)
        if shape == ():  # one point, without the door: floats, as the door returns them
            outs = [float(o) if s == 0 else o for o, s in zip(outs, self.layout.out_sizes)]
        return outs[0] if self._single else tuple(outs)


@typeof_impl.register(Compiled)
def _typeof_compiled(fn, context):
    """In ``@njit`` code a compiled function is its Numba function (:meth:`Compiled._dispatcher`)."""
    return types.Dispatcher(fn._dispatcher())


def _batch_entry(n: int):
    """The ctypes type of a batch loop ``@name.batch(lo, hi, n pointers)``; ctypes
    releases the GIL while it runs."""
    return ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, *[ctypes.c_void_p] * n)


_FLOAT64 = np.dtype(np.float64)


def _as_float_array(a, label: str) -> np.ndarray:
    """``a`` as a float64 array, or a clear error naming the argument."""
    if isinstance(a, (str, bytes)) or a is None or isinstance(a, complex):
        raise TypeError(f"argument {label!r} is {a!r}; give a real number or an array of them")
    if isinstance(a, np.ma.MaskedArray):  # its mask would be lost
        raise TypeError(f"argument {label!r} is a masked array; fill it first (a.filled(np.nan))")
    try:
        arr = np.asarray(a)
    except Exception as e:
        raise TypeError(f"argument {label!r} is not a number or array: {e}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"argument {label!r} has dtype {arr.dtype}; give real numbers")
    return arr.astype(np.float64, copy=False)
