"""to_dask: chunk-aligned Dask arrays over HDF5 and zarr datasets, safe on any scheduler.

A task covers whole stored chunks (stored chunks merged up to ``limit`` bytes), so
every stored chunk is read by exactly one task, once. h5py objects do not pickle,
so a task carries only where the data is (URL or path, dataset name, the byte
ranges of its chunks) and opens its own handle, once per process. A task fetches its
chunks' stored bytes in parallel (remote files) and decodes them in a thread pool
(``dandilab.codec``), outside h5py, whose global lock would otherwise serialise the
network and the decompression; filters the codec does not know go through h5py.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.utils import parse_bytes

__all__ = ["compute", "show_progress", "to_dask"]

DEFAULT_LIMIT = 64 * 1024 * 1024
PROGRESS_DELAY = 2.0  # seconds before a computation shows a progress bar
_progress = None  # the tqdm callback registered with dask's local schedulers


@dataclass(frozen=True)
class _Where:
    """Where a dataset lives, in a form that pickles."""

    dataset: str
    path: str | None = None  # local file
    url: str | None = None  # remote file
    name: str | None = None
    digest: str | None = None
    size: int | None = None
    cache: str | bool | None = None
    filters: tuple | None = None  # the filter pipeline when dandilab.codec decodes the chunks
    stored: tuple | None = None  # the stored chunk shape
    signer: tuple | None = field(default=None, repr=False)  # RemoteFile's: embargoed data


def to_dask(dataset, chunks="auto", limit: int | str = DEFAULT_LIMIT) -> da.Array:
    """A Dask array over ``dataset`` (h5py/pynwb or zarr; a pynwb TimeSeries gives its data).

    ``chunks`` "auto" merges stored chunks up to ``limit`` bytes per task; explicit
    chunks are used as given (then a stored chunk may be read by several tasks).
    """
    if hasattr(dataset, "data") and not hasattr(dataset, "dtype"):
        dataset = dataset.data
    show_progress()
    if _is_zarr(dataset):
        return da.from_zarr(dataset, chunks=_task_chunks(dataset, chunks, limit))
    import h5py

    if not isinstance(dataset, h5py.Dataset):
        raise TypeError(f"to_dask needs an h5py or zarr dataset, got {type(dataset).__name__}")
    where = _where(dataset)
    task_chunks = _task_chunks(dataset, chunks, limit)
    locations = _chunk_locations(dataset)
    contiguous = _contiguous(dataset)
    name = "dandilab-" + tokenize(where, task_chunks, dataset.dtype.str)
    graph = {}
    stored = dataset.chunks
    for index in itertools.product(*(range(len(c)) for c in task_chunks)):
        starts = [sum(c[:i]) for c, i in zip(task_chunks, index)]
        region = tuple(slice(s, s + c[i]) for s, c, i in zip(starts, task_chunks, index))
        ranges = (_chunks_in(region, stored, locations) if stored
                  else _rows_in(region, dataset.shape, contiguous))
        graph[(name, *index)] = (_read, where, region, ranges)
    return da.Array(graph, name, chunks=task_chunks, dtype=dataset.dtype)


def _is_zarr(obj) -> bool:
    return type(obj).__module__.startswith("zarr")


def _task_chunks(dataset, chunks, limit):
    stored = dataset.chunks or None
    if chunks != "auto":
        return da.core.normalize_chunks(chunks, dataset.shape, dtype=dataset.dtype)
    if stored is None:  # contiguous: split along the first axis only
        return da.core.normalize_chunks(
            ("auto",) + tuple(-1 for _ in dataset.shape[1:]), dataset.shape,
            limit=limit, dtype=dataset.dtype)
    # never split a stored chunk: a task is at least one of them
    limit = max(parse_bytes(limit), int(np.prod(stored)) * dataset.dtype.itemsize)
    return da.core.normalize_chunks("auto", dataset.shape, limit=limit, dtype=dataset.dtype,
                                    previous_chunks=stored)


def _where(dataset) -> _Where:
    from .codec import check_decodable, filters_of
    from .remote import source_of

    check_decodable(dataset)  # a filter nothing decodes: say which and how to fix, now
    remote = source_of(dataset.file)
    layout = {"filters": filters_of(dataset),
              "stored": tuple(dataset.chunks) if dataset.chunks else None}
    if remote is not None:
        cache = False if remote._cache_root is None else str(remote._cache_root.parent)
        return _Where(dataset.name, url=remote.url, name=remote.name,
                      digest=remote.digest or remote.etag, size=remote.size, cache=cache,
                      signer=remote.signer, **layout)
    if dataset.file.driver == "fileobj":
        raise ValueError("to_dask needs a dataset opened by dandilab (open_nwb) or from a "
                         "local file: tasks must reopen the file in other processes")
    return _Where(dataset.name, path=os.path.abspath(dataset.file.filename), **layout)


def _chunk_locations(dataset) -> dict | None:
    """{chunk start: (byte offset, stored size, filter mask)} of a chunked dataset, else None."""
    if not dataset.chunks:
        return None
    locations = {}

    def visit(info):
        locations[info.chunk_offset] = (info.byte_offset, info.size, info.filter_mask)

    dataset.id.chunk_iter(visit)
    return locations


def _chunks_in(region, stored, locations) -> tuple:
    """((chunk start, byte offset, stored size, filter mask), ...) of the written chunks
    that ``region`` touches (unwritten chunks read as the fill value)."""
    if not locations:
        return ()
    axes = [range(s.start - s.start % c, s.stop, c) for s, c in zip(region, stored)]
    return tuple((start, *locations[start]) for start in itertools.product(*axes)
                 if start in locations)


def _contiguous(dataset) -> tuple[int, int] | None:
    """(byte offset, bytes per row) of a contiguous numeric dataset stored in the file, else
    None (chunked, compact, external or unallocated data)."""
    import h5py

    if dataset.chunks or not dataset.shape or not dataset.size or dataset.dtype.kind not in "iufb":
        return None
    plist = dataset.id.get_create_plist()
    if plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_external_count():
        return None
    offset = dataset.id.get_offset()
    if offset is None:
        return None
    return offset, dataset.dtype.itemsize * int(np.prod(dataset.shape[1:]))


def _rows_in(region, shape, contiguous) -> tuple:
    """The one byte range of a contiguous dataset's rows that ``region`` covers (its task
    fetches it in one request before h5py copies it out), when it spans whole rows."""
    if contiguous is None or any((s.start, s.stop) != (0, n) for s, n in zip(region[1:], shape[1:])):
        return ()
    offset, row = contiguous
    rows = region[0]
    return ((None, offset + rows.start * row, (rows.stop - rows.start) * row, 0),)


_handles: dict = {}
_handles_lock = threading.Lock()


def _handle(where: _Where):
    """(RemoteFile or None, h5py File) for this process, opened once."""
    key = (os.getpid(), where.path, where.url, where.digest)
    with _handles_lock:
        if key not in _handles:
            import h5py

            if where.path:
                from .codec import register_plugins

                register_plugins()
                _handles[key] = (None, h5py.File(where.path, "r"))
            else:
                from .remote import RemoteFile, open_h5

                remote = RemoteFile(where.url, name=where.name, digest=where.digest,
                                    size=where.size, cache=where.cache,
                                    readahead=False, signer=where.signer)
                _handles[key] = (remote, open_h5(remote))
        return _handles[key]


def _local_fd(path: str) -> int:
    """A descriptor of a local file for this process: its chunks' bytes are read with
    os.pread, in parallel and outside h5py's global lock (read_direct_chunk holds it)."""
    key = (os.getpid(), path)
    with _handles_lock:
        if key not in _fds:
            _fds[key] = os.open(path, os.O_RDONLY)
        return _fds[key]


_fds: dict = {}


def _read(where: _Where, region, chunks) -> np.ndarray:
    remote, h5file = _handle(where)
    ranges = [(offset, size) for _, offset, size, _ in chunks]
    if remote is not None and chunks and chunks[0][0] is None:
        return _read_rows(remote, h5file[where.dataset], region, ranges)
    if remote is not None and ranges:
        remote.prefetch(ranges, wait=where.filters is None)  # in parallel, outside h5py's lock
    try:
        if where.filters is None or any(mask for *_, mask in chunks):
            return h5file[where.dataset][region]
        return _decode_region(where, remote, h5file, region, chunks)
    finally:
        if remote is not None and ranges:
            remote.discard(ranges)  # read once: free the memory now


def _read_rows(remote, dataset, region, ranges) -> np.ndarray:
    """Rows of a contiguous dataset: their byte range in parallel requests, no h5py copy."""
    from .remote import PART, _coalesce

    out = np.empty(tuple(s.stop - s.start for s in region), dataset.dtype)
    into = out.reshape(-1).view(np.uint8)
    first = ranges[0][0]
    remote.prefetch(ranges, wait=False)
    try:
        for a, b in _coalesce(ranges, PART):
            into[a - first:b - first] = np.frombuffer(remote.read_range(a, b - a), np.uint8)
    finally:
        remote.discard(ranges)
    return out


def _decode_region(where: _Where, remote, h5file, region, chunks) -> np.ndarray:
    """``region`` assembled from its stored chunks, decoded in parallel by dandilab.codec."""
    from .codec import decode, pool

    dataset = h5file[where.dataset]
    shape = tuple(s.stop - s.start for s in region)
    count = int(np.prod([len(range(s.start - s.start % c, s.stop, c))
                         for s, c in zip(region, where.stored)]))
    out = (np.empty(shape, dataset.dtype) if len(chunks) == count
           else np.full(shape, dataset.fillvalue, dataset.dtype))

    def one(chunk):
        start, offset, size, _ = chunk
        raw = (remote.read_range(offset, size) if remote is not None
               else os.pread(_local_fd(where.path), size, offset))
        src, dst = [], []
        for s, c0, n in zip(region, start, where.stored):
            lo, hi = max(s.start, c0), min(s.stop, c0 + n)
            src.append(slice(lo - c0, hi - c0))
            dst.append(slice(lo - s.start, hi - s.start))
        target = out[tuple(dst)]
        if target.shape == tuple(where.stored) and target.flags.c_contiguous:
            decode(raw, dataset.dtype, where.stored, where.filters, out=target)  # in place
            return
        data = decode(raw, dataset.dtype, where.stored, where.filters)
        out[tuple(dst)] = data[tuple(src)]

    for _ in pool().map(one, chunks):
        pass
    return out


def show_progress(on: bool = True) -> None:
    """Progress bars (tqdm.auto) for computations on dask's local schedulers that last
    more than ``PROGRESS_DELAY`` seconds. ``to_dask`` turns them on (unless
    ``$DANDILAB_PROGRESS`` is 0); ``show_progress(False)`` turns them off. On a
    distributed cluster, ``dandilab.compute`` shows the bar."""
    global _progress
    if on and _progress is None and os.environ.get("DANDILAB_PROGRESS", "1") != "0":
        from tqdm.dask import TqdmCallback

        _progress = TqdmCallback(delay=PROGRESS_DELAY, desc="dandilab")
        _progress.register()
    elif not on and _progress is not None:
        _progress.unregister()
        _progress = None


def compute(*arrays, progress: bool = True, **kwargs):
    """``dask.compute`` with a progress bar (tqdm.auto) when it takes more than 2 s.

    Uses the default distributed client when there is one, else the local scheduler.
    """
    import dask

    if not progress:
        return dask.compute(*arrays, **kwargs)
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    from tqdm.auto import tqdm

    if client is None:
        if _progress is not None:  # the registered bar shows it
            return dask.compute(*arrays, **kwargs)
        from tqdm.dask import TqdmCallback

        with TqdmCallback(delay=PROGRESS_DELAY, desc="dandilab"):
            return dask.compute(*arrays, **kwargs)
    from distributed import as_completed, futures_of

    futures = client.compute(list(arrays), **kwargs)
    pending = futures_of(futures)
    with tqdm(total=len(pending), delay=PROGRESS_DELAY, desc="dandilab") as bar:
        for _ in as_completed(pending):
            bar.update()
    return tuple(f.result() for f in futures)
