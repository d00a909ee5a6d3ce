"""Machine code compiled by graphad itself with llvmlite, cached as object files.

Every compiled function's code (the scalar kernel, its batch loop and its
fast door; an array function's loops) is one IR module, compiled here to an
object file and loaded into an MCJIT engine of its own, which the function
owns: dropping the function frees its code. Small modules get LLVM's O3
passes and loop vectoriser; big ones a light pipeline (see PASSES_OPT and
CODEGEN_OPT below), since LLVM's O1+ code generation (SelectionDAG, greedy
register allocation) costs about 20 microseconds per IR line: minutes for a
100,000-node gradient at O3.

The object file is cached next to the IR with a SHA-256 checksum in front:
a corrupt file is detected and recompiled, never loaded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import threading

import llvmlite.binding as llvm
from numba.core.compiler_lock import global_compiler_lock

PASSES_OPT = 0  # IR passes add nothing measurable after graphad's own passes
CODEGEN_OPT = 1  # code generation level
_keep: list = []  # engines whose code Numba's code calls by symbol: never freed
_lock = threading.Lock()


def _target_machine(opt: int):
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=opt, codemodel="jitdefault")


@functools.cache
def host() -> tuple[str, str]:
    """The CPU that machine code is compiled for: part of every cache key, so that a
    cache folder shared between machines never runs one CPU's code on another."""
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def compile_object(ir_text: str, passes: int = PASSES_OPT, vectorize: bool = False) -> bytes:
    """Machine code (an object file) for the IR module ``ir_text``; ``vectorize`` runs
    LLVM's loop vectoriser (with ``passes`` of at least 2), and code generation at -O3
    (loops, not straight-line code: their time is spent in few instructions)."""
    with global_compiler_lock:  # LLVM's global context is Numba's too, and not thread-safe
        return _compile_object(ir_text, passes, vectorize)


def _compile_object(ir_text: str, passes: int, vectorize: bool) -> bytes:
    module = llvm.parse_assembly(ir_text)
    module.verify()
    tm = _target_machine(3 if vectorize else CODEGEN_OPT)
    if passes:
        pto = llvm.create_pipeline_tuning_options(speed_level=passes)
        pto.loop_vectorization = vectorize
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(module, pb)
    return tm.emit_object(module)


def write_file(path: str, data: str | bytes) -> None:
    """Write a cache file atomically (a private temporary file, then a rename), so
    another process or thread never reads half of it. A folder where the file
    belongs is removed; a failed write (a full disk) leaves no temporary file."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        clear_way(path)
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def clear_way(path: str) -> None:
    """Remove a folder that stands where the cache file ``path`` is to be written (it
    would make every later write fail)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)


def _read_checked(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    digest, obj = data[:32], data[32:]
    return obj if obj and hashlib.sha256(obj).digest() == digest else None


def publish(symbol: str, address: int, engine) -> None:
    """Make ``symbol`` (at ``address`` in ``engine``'s code) callable by name from
    Numba's code; ``engine`` is then kept, with its code, for the life of the process."""
    with _lock:
        _keep.append(engine)
        llvm.add_symbol(symbol, address)


def load_engine(path: str, ir, symbols, fresh: bool = False, passes: int = PASSES_OPT,
                vectorize: bool = False):
    """The addresses of ``symbols`` in the object file ``path`` if it is intact (and
    ``fresh`` is false), else in one compiled from the IR text ``ir()`` and cached
    there; with them the engine that holds the code (freed with it) and whether the
    object file was compiled afresh."""
    obj = None if fresh else _read_checked(path)
    compiled = obj is None
    if compiled:
        obj = compile_object(ir(), passes, vectorize)
        write_file(path, hashlib.sha256(obj).digest() + obj)
    with global_compiler_lock:  # LLVM's global context is Numba's too, and not thread-safe
        engine = Engine(llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine(CODEGEN_OPT)))
        engine.llvm.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.llvm.finalize_object()
        addresses = {}
        for symbol in symbols:
            addresses[symbol] = (engine.llvm.get_function_address(symbol)
                                 or engine.llvm.get_global_value_address(symbol))
            if not addresses[symbol]:
                raise RuntimeError(f"graphad: the compiled code in {path} has no symbol {symbol}")
    return engine, addresses, compiled


class Engine:
    """An MCJIT engine holding compiled code, freed when this is dropped: under Numba's
    compiler lock, since freeing its module touches LLVM's global context, which a
    compile in another thread may be using."""

    __slots__ = ("llvm",)

    def __init__(self, engine):
        self.llvm = engine

    def __del__(self):
        try:
            with global_compiler_lock:
                self.llvm.close()
        except Exception:  # at interpreter exit, the lock or llvmlite may be gone already
            pass
