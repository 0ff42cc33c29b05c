"""Decoding HDF5 chunks outside h5py: gzip (deflate), shuffle, Blosc and Zstd.

h5py decodes under its global lock, one chunk at a time, so a process never decodes
two chunks at once. Reading a chunk's stored bytes (``RemoteFile.prefetch`` for remote
files, ``read_direct_chunk`` for local ones) and decoding them here runs in parallel
threads: inflate releases the GIL. ISA-L's inflate (``isal``) is used when installed:
measured on the demo ecephys chunks (78125 x 64 int16, gzip 4 + shuffle), it inflates
in 0.35 s what zlib does in 0.74 s and h5py reads in 0.97 s; numcodecs (zarr's codecs)
undoes the shuffle and decodes Blosc (lz4, zstd, blosclz, zlib) and Zstd chunks. Other
filters (LZF, bitshuffle, LZ4, ...) go to h5py, with hdf5plugin's filters registered
(``register_plugins``); one that nothing decodes gives ``UnsupportedFilterError``.
"""

from __future__ import annotations

import functools

import numpy as np

try:  # same format and API as zlib, about twice as fast
    from isal.isal_zlib import decompress as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    from zlib import decompress as _inflate

__all__ = ["Filters", "UnsupportedFilterError", "check_decodable", "decode", "filters_of",
           "register_plugins"]

_DEFLATE, _SHUFFLE, _BLOSC, _ZSTD = 1, 2, 32001, 32015
FAST = {_DEFLATE, _SHUFFLE, _BLOSC, _ZSTD}  # what decode() undoes itself
# Names of registered HDF5 filters (HDF Group registry), for errors about files that name none.
NAMES = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset",
         305: "LZO", 307: "bzip2", 32000: "LZF", 32001: "Blosc", 32002: "MAFISC",
         32003: "Snappy", 32004: "LZ4", 32008: "bitshuffle", 32013: "ZFP", 32015: "Zstd",
         32017: "SZ", 32024: "SZ3", 32026: "Blosc2"}


class UnsupportedFilterError(OSError):
    """A dataset's HDF5 filter that neither dandilab nor h5py (with hdf5plugin) can decode."""


class Filters(tuple):
    """The filter pipeline ``((id, cd_values), ...)`` of a dataset whose chunks this
    module decodes itself (deflate, shuffle, Blosc, Zstd), in the order HDF5 applied them."""

    @property
    def ids(self) -> tuple:
        return tuple(f for f, _ in self)

    @property
    def shuffle(self) -> bool:
        return _SHUFFLE in self.ids

    @property
    def deflate(self) -> bool:
        return _DEFLATE in self.ids


@functools.cache
def register_plugins() -> bool:
    """Register hdf5plugin's filters (Blosc, Zstd, LZ4, bitshuffle, ...) with h5py's HDF5,
    once per process; False when hdf5plugin is not installed."""
    try:
        import hdf5plugin  # noqa: F401  (importing it registers the filters)
    except ImportError:  # pragma: no cover - a dependency; without it only h5py's own filters
        return False
    return True


def pipeline(dataset) -> list[tuple[int, tuple, str]]:
    """``[(filter id, cd_values, name), ...]`` of an h5py dataset, in HDF5's order."""
    plist = dataset.id.get_create_plist()
    out = []
    for i in range(plist.get_nfilters()):
        code, _flags, values, name = plist.get_filter(i)
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        out.append((code, tuple(values), NAMES.get(code) or name or "unnamed"))
    return out


def filters_of(dataset) -> Filters | None:
    """The filters of a chunked numeric h5py dataset if this module can decode them, else None
    (then h5py decodes, with hdf5plugin's filters registered)."""
    if not dataset.chunks or np.dtype(dataset.dtype).kind not in "iuf":
        return None
    steps = pipeline(dataset)
    if any(code not in FAST for code, _, _ in steps):
        return None
    return Filters((code, values) for code, values, _ in steps)


def check_decodable(dataset) -> None:
    """Raise ``UnsupportedFilterError`` naming the filter (id and name) and the fix if a
    filter of ``dataset`` can be decoded neither here nor by h5py."""
    import h5py

    from .remote import source_of

    register_plugins()
    remote = source_of(dataset.file)
    where = remote.name if remote is not None else dataset.file.filename
    for code, _, name in pipeline(dataset):
        if code in FAST or h5py.h5z.filter_avail(code):
            continue
        raise UnsupportedFilterError(
            f"{dataset.name} in {where} is compressed with HDF5 filter "
            f"{code} ({name}), which neither dandilab nor h5py can decode here; fix: install "
            f"hdf5plugin (pip install hdf5plugin: Blosc, Blosc2, Zstd, LZ4, LZF, bitshuffle, "
            f"bzip2, ZFP, SZ, SZ3), or if it does not ship filter {code}, build that HDF5 "
            f"plugin and set HDF5_PLUGIN_PATH to its folder")


def decode(raw, dtype, chunk_shape, filters: Filters, out: np.ndarray | None = None):
    """A stored chunk's bytes as an array of the (full) chunk shape; with ``out`` (a
    C-contiguous array of that shape) the last step decodes into it (no copy)."""
    dtype = np.dtype(dtype)
    data = raw
    steps = list(reversed(filters))  # undo the pipeline, last filter first
    for i, (code, _values) in enumerate(steps):
        into = out if i == len(steps) - 1 else None
        if code == _DEFLATE:
            data = _inflate(data)
        elif code == _SHUFFLE:
            if dtype.itemsize > 1:
                data = _unshuffle(dtype.itemsize).decode(data, into)
        else:  # Blosc and Zstd buffers describe themselves (Blosc's own shuffle included)
            data = _codec(code).decode(data, into)
    if out is not None:
        if data is not out:
            out[...] = np.frombuffer(data, dtype).reshape(chunk_shape)
        return out
    return np.frombuffer(data, dtype).reshape(chunk_shape)


@functools.cache
def _codec(code: int):
    """numcodecs' Blosc or Zstd (their C libraries, the GIL released while they decode)."""
    from numcodecs import Blosc, Zstd

    return Blosc() if code == _BLOSC else Zstd()


@functools.cache
def _unshuffle(itemsize: int):
    """numcodecs' byte shuffle (zarr's; 4x faster than a numpy transpose here)."""
    from numcodecs import Shuffle

    return Shuffle(elementsize=itemsize)


@functools.cache
def pool():
    """The thread pool that decodes chunks (one thread per core; created on first use)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                              thread_name_prefix="dandilab-decode")
