"""The on-disk cache of compiled functions: where it is, how big, clearing it, a size cap.

Each compiled function is one *entry*: graphad's files ``graphad_<key>.*`` or
``graphad_arrays_<key>.*`` in the cache folder (:func:`graphad.compiler.cache_dir`)
and Numba's index and data files for the same module (in the folder's
``__pycache__``, or under ``NUMBA_CACHE_DIR`` where that is set). Every use of
an entry marks it (its ``.sum`` file's time), and when a compile writes a new
entry and the cache is over its cap (``GRAPHAD_CACHE_MAX``, default 2 GB), the
entries used longest ago are removed until it fits. A removed entry costs a
recompile, never an error.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass

_ENTRY = re.compile(r"^(graphad(?:_arrays)?_[0-9a-f]{40})\.")
_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
DEFAULT_MAX = "2G"


@dataclass(frozen=True)
class Entry:
    key: str  # the module name, graphad_<key> or graphad_arrays_<key>
    files: tuple[str, ...]
    size: int  # bytes
    used: float  # the time of its latest use or write


def folders() -> list[str]:
    """The folders that hold cache files: graphad's, and where Numba keeps its files for it."""
    from .compiler import cache_dir

    folder = cache_dir()
    found = [folder, os.path.join(folder, "__pycache__")]
    try:  # Numba's own rule for where NUMBA_CACHE_DIR keeps a module's functions
        from numba.core import config
        from numba.core.caching import _CacheLocator

        if config.CACHE_DIR:
            sub = _CacheLocator.get_suitable_cache_subpath(os.path.join(folder, "module.py"))
            found.append(os.path.join(config.CACHE_DIR, sub))
    except (ImportError, AttributeError, TypeError):
        pass
    return list(dict.fromkeys(found))


def entries() -> list[Entry]:
    """Every entry in the cache, the one used longest ago first."""
    files: dict[str, list[str]] = {}
    for folder in folders():
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            m = _ENTRY.match(name)
            if m:
                files.setdefault(m.group(1), []).append(os.path.join(folder, name))
    out = []
    for key, paths in files.items():
        size, used = 0, 0.0
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            size += st.st_size
            used = max(used, st.st_mtime)
        out.append(Entry(key, tuple(paths), size, used))
    return sorted(out, key=lambda e: e.used)


def remove(entry: Entry) -> None:
    for path in entry.files:
        try:
            os.remove(path)
        except OSError:
            pass


def clear() -> tuple[int, int]:
    """Remove every entry; returns how many and their bytes. Functions already
    loaded keep working; a later compile writes them anew."""
    found = entries()
    for entry in found:
        remove(entry)
    return len(found), sum(e.size for e in found)


def limit() -> int:
    """The cap in bytes: ``GRAPHAD_CACHE_MAX`` (``500M``, ``2G``, a number of bytes;
    ``0`` for no cap), else 2 GB."""
    return _size(os.environ.get("GRAPHAD_CACHE_MAX", DEFAULT_MAX))


def _size(given: str) -> int:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([kmgt]?)", given.strip().lower().removesuffix("b"))
    if not m:
        raise ValueError(f"GRAPHAD_CACHE_MAX={given!r}: give a size such as 500M or 2G")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def trim(keep: str | None = None) -> int:
    """Remove the entries used longest ago until the cache fits its cap (never
    the entry ``keep``, just written); returns how many were removed."""
    try:
        cap = limit()
    except ValueError as e:  # a cache setting costs a warning, never a compile
        warnings.warn(f"graphad: {e}; using {DEFAULT_MAX}", RuntimeWarning, stacklevel=2)
        cap = _size(DEFAULT_MAX)
    if not cap:
        return 0
    found = entries()
    total = sum(e.size for e in found)
    removed = 0
    for entry in found:
        if total <= cap:
            break
        if entry.key != keep:
            remove(entry)
            total -= entry.size
            removed += 1
    return removed


def touch(base: str) -> None:
    """Mark the entry whose files start with ``base`` as used now."""
    try:
        os.utime(base + ".sum")
    except OSError:
        pass
