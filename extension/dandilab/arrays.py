"""to_dask: chunk-aligned Dask arrays over HDF5 and zarr datasets, safe on any scheduler.

A task covers whole stored chunks (stored chunks merged up to ``limit`` bytes), so
every stored chunk is read by exactly one task, once. h5py objects do not pickle,
so a task carries only where the data is (URL or path, dataset name, the byte
ranges of its chunks) and opens its own handle, once per process. Remote tasks
fetch their chunks' bytes in parallel before touching h5py, whose global lock
would otherwise serialise the network.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.utils import parse_bytes

__all__ = ["compute", "to_dask"]

DEFAULT_LIMIT = 64 * 1024 * 1024


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


def to_dask(dataset, chunks="auto", limit: int | str = DEFAULT_LIMIT) -> da.Array:
    """A Dask array over ``dataset`` (h5py/pynwb or zarr; a pynwb TimeSeries gives its data).

    ``chunks`` "auto" merges stored chunks up to ``limit`` bytes per task; explicit
    chunks are used as given (then a stored chunk may be read by several tasks).
    """
    if hasattr(dataset, "data") and not hasattr(dataset, "dtype"):
        dataset = dataset.data
    if _is_zarr(dataset):
        return da.from_zarr(dataset, chunks=_task_chunks(dataset, chunks, limit))
    import h5py

    if not isinstance(dataset, h5py.Dataset):
        raise TypeError(f"to_dask needs an h5py or zarr dataset, got {type(dataset).__name__}")
    where = _where(dataset)
    task_chunks = _task_chunks(dataset, chunks, limit)
    locations = _chunk_locations(dataset)
    name = "dandilab-" + tokenize(where, task_chunks, dataset.dtype.str)
    graph = {}
    stored = dataset.chunks
    for index in itertools.product(*(range(len(c)) for c in task_chunks)):
        starts = [sum(c[:i]) for c, i in zip(task_chunks, index)]
        region = tuple(slice(s, s + c[i]) for s, c, i in zip(starts, task_chunks, index))
        ranges = _ranges_for(region, stored, locations) if where.url else ()
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
    from .remote import source_of

    remote = source_of(dataset.file)
    if remote is not None:
        cache = False if remote._cache_root is None else str(remote._cache_root.parent)
        return _Where(dataset.name, url=remote.url, name=remote.name,
                      digest=remote.digest or remote.etag, size=remote.size, cache=cache)
    if dataset.file.driver == "fileobj":
        raise ValueError("to_dask needs a dataset opened by dandilab (open_nwb) or from a "
                         "local file: tasks must reopen the file in other processes")
    return _Where(dataset.name, path=os.path.abspath(dataset.file.filename))


def _chunk_locations(dataset) -> dict | None:
    """{chunk start (tuple): (byte offset, stored size)} of a chunked dataset, else None."""
    if not dataset.chunks:
        return None
    locations = {}

    def visit(info):
        locations[info.chunk_offset] = (info.byte_offset, info.size)

    dataset.id.chunk_iter(visit)
    return locations


def _ranges_for(region, stored, locations) -> tuple:
    if not locations:
        return ()
    axes = [range(s.start - s.start % c, s.stop, c) for s, c in zip(region, stored)]
    return tuple(locations[start] for start in itertools.product(*axes) if start in locations)


_handles: dict = {}
_handles_lock = threading.Lock()


def _handle(where: _Where):
    """(RemoteFile or None, h5py File) for this process, opened once."""
    key = (os.getpid(), where.path, where.url, where.digest)
    with _handles_lock:
        if key not in _handles:
            import h5py

            if where.path:
                _handles[key] = (None, h5py.File(where.path, "r"))
            else:
                from .remote import RemoteFile

                remote = RemoteFile(where.url, name=where.name, digest=where.digest,
                                    size=where.size, cache=where.cache,
                                    readahead=False)
                _handles[key] = (remote, h5py.File(remote, "r"))
        return _handles[key]


def _read(where: _Where, region, ranges) -> np.ndarray:
    remote, h5file = _handle(where)
    if remote is not None and ranges:
        remote.prefetch(ranges)  # in parallel, outside h5py's lock
    data = h5file[where.dataset][region]
    if remote is not None and ranges:
        remote.discard(ranges)  # read once: free the memory now
    return data


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
        from tqdm.dask import TqdmCallback

        with TqdmCallback(delay=2, desc="dandilab"):
            return dask.compute(*arrays, **kwargs)
    from distributed import as_completed, futures_of

    futures = client.compute(list(arrays), **kwargs)
    pending = futures_of(futures)
    with tqdm(total=len(pending), delay=2, desc="dandilab") as bar:
        for _ in as_completed(pending):
            bar.update()
    return tuple(f.result() for f in futures)
