"""Numba's cache files, sealed with a digest.

Numba caches a compiled function as pickled files (an ``.nbi`` index and
``.nbc`` data) next to graphad's own cache files. It unpickles them without a
check, and a damaged ``.nbc`` could crash every later process that compiled
the same function. graphad's functions write these files with a SHA-256
digest in front; a file whose digest does not match counts as missing, so
Numba compiles the function anew and writes it again. Nothing damaged is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import pickle

from numba.core.caching import IndexDataCacheFile

from .kernels import clear_way

_MAGIC = b"graphad-sealed-1\0"


def _sealed(data: bytes) -> bytes:
    return _MAGIC + hashlib.sha256(data).digest() + data


def _unsealed(raw: bytes) -> bytes | None:
    head = len(_MAGIC) + 32
    if raw[:len(_MAGIC)] != _MAGIC or hashlib.sha256(raw[head:]).digest() != raw[len(_MAGIC):head]:
        return None
    return raw[head:]


class SealedCacheFile(IndexDataCacheFile):
    """Numba's index and data files, each with a digest checked before unpickling."""

    def _save_index(self, overloads):
        data = pickle.dumps(self._version, protocol=-1) + self._dump((self._source_stamp, overloads))
        clear_way(self._index_path)
        with self._open_for_write(self._index_path) as f:
            f.write(_sealed(data))

    def _load_index(self):
        try:
            with open(self._index_path, "rb") as f:
                data = _unsealed(f.read())
        except OSError:
            return {}
        if data is None:
            return {}  # damaged: as if absent, so the function is compiled and the index written anew
        stream = io.BytesIO(data)
        if pickle.load(stream) != self._version:
            return {}
        stamp, overloads = pickle.loads(stream.read())
        return overloads if stamp == self._source_stamp else {}

    def _save_data(self, name, data):
        clear_way(self._data_path(name))
        with self._open_for_write(self._data_path(name)) as f:
            f.write(_sealed(self._dump(data)))

    def _load_data(self, name):
        with open(self._data_path(name), "rb") as f:
            data = _unsealed(f.read())
        if data is None:
            raise OSError(f"the cache file {name} is damaged")  # Numba treats it as missing
        return pickle.loads(data)


def seal(dispatcher) -> None:
    """Make a caching Numba dispatcher write and read sealed files (where this
    version of Numba has the cache layout this module knows)."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if type(cache_file) is IndexDataCacheFile:
        cache_file.__class__ = SealedCacheFile
