"""map() and table(): one analysis over every session of a Dandiset.

    result = dandilab.map(count_units, "000999", glob="sub-*/*.nwb")   # fn(nwbfile) per asset
    result.results        # {asset path: what fn returned}; result.frame: one row per asset
    result.failed         # DataFrame: path, asset_id, kind, error, message
    result = result.retry()                                         # the failed ones only
    units = dandilab.table("000999", "units", columns=["spike_times", "quality"])

How it runs:

- Each asset is one Dask task on ``dandilab.cluster()`` (Dask Gateway on the hub, else a
  LocalCluster; or the ``cluster=`` given, or the default client already made). A task
  gets a small picklable description of its asset (URL, digest, size) and streams only
  that asset itself; nothing but the result travels back.
- A failing asset is reported, never fatal: ``kind`` is ``legacy-nwb`` (NWB 1.x),
  ``not-nwb``, ``unreadable`` (the bytes could not be read), ``timeout`` (more than
  ``timeout`` seconds, default ``TIMEOUT``), ``worker-lost`` or ``error`` (``fn`` raised).
- Every finished result is written at once, by this process, to the user's cache
  (``dandilab.cache_dir()/map``), keyed by the function's source (or ``key=``), the
  Dandiset and its version, the asset's path and its digest. Running the same map again
  (after a kernel restart, on a new server with the same home) computes only what is
  missing; an asset whose digest changed is computed again. Results must pickle; a
  stored result is read back only from a file this user owns (a cache directory may be
  shared on a hub, and unpickling runs code).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import inspect
import os
import pickle
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .archive import Archive, Asset, Dandiset
from .cache import cache_dir, trim_sometimes

__all__ = ["AssetRef", "MapResult", "map", "table"]

TIMEOUT = 600.0  # seconds one asset may take (open + fn) before it is reported as failed


@dataclass(frozen=True)
class AssetRef:
    """What a task knows about its asset (picklable, no API client): ``open()`` streams it."""

    path: str
    identifier: str
    url: str
    digest: str | None
    size: int | None
    dandiset: str | None = None
    version: str | None = None
    label: str | None = None  # what results are keyed by, when not the path
    zarr: bool = False

    @property
    def name(self) -> str:
        """The result's key: the path, or ``DANDI:<id>/<version>/<path>`` across Dandisets."""
        return self.label or self.path

    @classmethod
    def of(cls, asset: Asset) -> AssetRef:
        ds = asset.dandiset
        return cls(asset.path, asset.identifier, asset.s3_url, asset.digest, asset.size,
                   ds.identifier if ds else None, ds.version if ds else None,
                   zarr=asset.is_zarr)

    def source(self):
        from .stream import Source

        return Source(self.path, url=self.url, digest=self.digest, size=self.size)

    def open(self, **kwargs):
        """As ``Asset.open``: ``open_zarr`` for a zarr, else ``open_nwb`` (close it, or use
        ``with``)."""
        from .stream import open_nwb, open_zarr

        if self.zarr:
            return open_zarr(self.source(), **kwargs)
        nwb = open_nwb(self.source(), **kwargs)
        handles = nwb.__dict__.get("_dandilab_handles")
        _count(handles[2] if handles else None)
        return nwb

    @contextlib.contextmanager
    def open_hdf5(self, **kwargs):
        """An h5py File of this asset, closed (with its connection) at the end of ``with``."""
        from .remote import source_of
        from .stream import _close_h5, open_hdf5

        h5file = open_hdf5(self.source(), **kwargs)
        _count(source_of(h5file))
        try:
            yield h5file
        finally:
            _close_h5(h5file)


_opened = threading.local()


def _count(remote) -> None:
    """Remember a RemoteFile opened by a task, whose bytes its outcome reports."""
    if remote is not None and getattr(_opened, "files", None) is not None:
        _opened.files.append(remote)


@dataclass
class _Outcome:
    """What a task sends back: a value or an error, and what it cost."""

    ok: bool
    value: object = None
    kind: str = ""
    error: str = ""
    message: str = ""
    bytes: int = 0
    requests: int = 0
    seconds: float = 0.0


def _classify(e: BaseException) -> str:
    from .remote import RemoteReadError
    from .stream import NWBError

    if isinstance(e, NWBError):
        return "legacy-nwb" if "NWB 2.x only" in str(e) else "not-nwb"
    if isinstance(e, RemoteReadError | OSError):
        return "unreadable"
    return "error"


def _run(fn: Callable, ref: AssetRef, open_file: bool) -> _Outcome:
    """Open the asset (when asked) and call ``fn``; every exception becomes an outcome."""
    t0 = time.perf_counter()
    _opened.files = []  # what AssetRef.open* open in this thread, to count their bytes
    nwb = None
    try:
        if open_file:
            nwb = ref.open()
            value = fn(nwb)
        else:
            value = fn(ref)
        outcome = _Outcome(True, value)
    except Exception as e:  # noqa: BLE001 - reported per asset, never fatal for the map
        outcome = _Outcome(False, kind=_classify(e), error=type(e).__name__, message=str(e))
    finally:
        if nwb is not None:
            with contextlib.suppress(Exception):
                nwb.close()
    for remote in _opened.files:
        outcome.bytes += remote.bytes_fetched
        outcome.requests += remote.requests
    _opened.files = []
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _task(fn: Callable, ref: AssetRef, open_file: bool, timeout: float | None) -> _Outcome:
    """``_run`` with a time limit: past it the asset is reported as a timeout.

    A thread cannot be stopped from outside, so an overrunning ``fn`` finishes in the
    background; the task (and the map) do not wait for it.
    """
    if not timeout:
        return _run(fn, ref, open_file)
    box: list[_Outcome] = []
    worker = threading.Thread(target=lambda: box.append(_run(fn, ref, open_file)),
                              name=f"dandilab-map-{ref.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if box:
        return box[0]
    return _Outcome(False, kind="timeout", error="TimeoutError",
                    message=f"{ref.name} took longer than {timeout:g} s (timeout=); "
                            "the rest of the map went on", seconds=float(timeout))


# -- the cache of results ---------------------------------------------------------------
def function_key(fn: Callable) -> str:
    """What identifies ``fn`` across sessions: its source (else its code), hashed."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):  # no source (built in, made by exec): its code instead
        code = getattr(fn, "__code__", None)
        text = repr((getattr(fn, "__qualname__", repr(fn)),
                     code.co_code if code else b"", code.co_consts if code else ()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class _Store:
    """One pickle per result under ``cache_dir()/map/<function key>/`` (atomic writes)."""

    def __init__(self, key: str, cache=None):
        self.folder = cache_dir(cache) / "map" / hashlib.sha256(key.encode()).hexdigest()[:24]

    def path(self, ref: AssetRef) -> Path | None:
        if not ref.digest:  # nothing says when the content changes: never reuse
            return None
        name = f"{ref.dandiset}/{ref.version}/{ref.path}:{ref.digest}:{ref.size}"
        return self.folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.pkl"

    def get(self, ref: AssetRef):
        path = self.path(ref)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                # unpickling runs code: only what this user wrote (a cache dir may be shared)
                info = os.fstat(f.fileno())
                if info.st_uid != os.getuid() or info.st_mode & 0o022:
                    return None
                # owned by this user and writable by nobody else: this user's own result
                return pickle.load(f)  # nosec B301
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return None  # absent, trimmed, or torn: compute again

    def put(self, ref: AssetRef, outcome: _Outcome) -> None:
        path = self.path(ref)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                pickle.dump(outcome, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
            trim_sometimes()
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            with contextlib.suppress(OSError, UnboundLocalError):
                os.remove(tmp)  # a result that cannot be stored is only not resumable


# -- the result -------------------------------------------------------------------------
@dataclass
class MapResult:
    """What ``map`` returns. ``results``: {path: value} of the assets that succeeded;
    ``failed``: a DataFrame (path, asset_id, kind, error, message); ``retry()``."""

    outcomes: dict[str, _Outcome]
    refs: dict[str, AssetRef]
    computed: list[str] = field(default_factory=list)  # paths computed now (not cached)
    _again: Callable | None = field(default=None, repr=False)

    @property
    def results(self) -> dict:
        return {p: o.value for p, o in sorted(self.outcomes.items()) if o.ok}

    @property
    def ids(self) -> dict[str, str]:
        """{path: asset id} of every asset mapped."""
        return {p: r.identifier for p, r in sorted(self.refs.items())}

    def __getitem__(self, path_or_id: str):
        for p, r in self.refs.items():
            if path_or_id in (p, r.identifier):
                o = self.outcomes[p]
                if not o.ok:
                    raise KeyError(f"{p} failed ({o.kind}): {o.message}")
                return o.value
        raise KeyError(path_or_id)

    @property
    def failed(self):
        import pandas as pd

        rows = [{"path": p, "asset_id": self.refs[p].identifier, "kind": o.kind,
                 "error": o.error, "message": o.message}
                for p, o in sorted(self.outcomes.items()) if not o.ok]
        return pd.DataFrame(rows, columns=["path", "asset_id", "kind", "error", "message"])

    @property
    def bytes(self) -> int:
        """Bytes streamed by the tasks of this run (cached results cost none)."""
        return sum(self.outcomes[p].bytes for p in self.computed)

    @property
    def frame(self):
        """One DataFrame: ``path`` and ``asset_id`` columns, then what fn returned (a dict or
        Series: its keys as columns; a DataFrame: its rows; anything else: ``result``)."""
        import pandas as pd

        parts = []
        for path, value in self.results.items():
            ident = self.refs[path].identifier
            if isinstance(value, pd.DataFrame):
                part = value.reset_index(drop=True).copy()
            elif isinstance(value, dict | pd.Series):
                part = pd.DataFrame([dict(value)])
            else:
                part = pd.DataFrame({"result": [value]})
            part.insert(0, "asset_id", ident)
            part.insert(0, "path", path)
            parts.append(part)
        if not parts:
            return pd.DataFrame(columns=["path", "asset_id"])
        return pd.concat(parts, ignore_index=True)

    def retry(self, **options) -> MapResult:
        """Run the failed assets again (same function and options, unless given); the
        successful results are kept. Returns the combined result."""
        failed = [self.refs[p] for p, o in self.outcomes.items() if not o.ok]
        if not failed:
            return self
        again = self._again(failed, **options)
        outcomes = dict(self.outcomes)
        outcomes.update(again.outcomes)
        return MapResult(outcomes, dict(self.refs), again.computed, self._again)

    def __repr__(self) -> str:
        ok = sum(o.ok for o in self.outcomes.values())
        return (f"<MapResult {ok} of {len(self.outcomes)} assets done, "
                f"{len(self.outcomes) - ok} failed, {len(self.computed)} computed now>")


# -- map --------------------------------------------------------------------------------
def _assets(assets_or_dandiset, glob: str | None, archive: Archive | None) -> list[AssetRef]:
    if isinstance(assets_or_dandiset, str):
        ident, _, version = assets_or_dandiset.removeprefix("DANDI:").partition("/")
        assets_or_dandiset = (archive or Archive()).dandiset(ident, version or None)
    if isinstance(assets_or_dandiset, Dandiset):
        glob = glob or "*.nwb"
        # the archive's glob knows only '*': it narrows, fnmatch below decides
        items: Iterable = assets_or_dandiset.assets(glob=re.sub(r"\[[^]]*\]|\?", "*", glob))
    elif isinstance(assets_or_dandiset, Asset | AssetRef):
        items = [assets_or_dandiset]
    elif isinstance(assets_or_dandiset, list | tuple) and any(
            isinstance(d, Dandiset | str) for d in assets_or_dandiset):
        # several Dandisets: paths may repeat, so results are keyed by DANDI references
        items = [replace(r, label=f"DANDI:{r.dandiset}/{r.version}/{r.path}")
                 for d in assets_or_dandiset for r in _assets(d, glob, archive)]
    else:
        items = assets_or_dandiset
    refs = {}
    for item in items:
        ref = item if isinstance(item, AssetRef) else AssetRef.of(item)
        if glob and not fnmatch.fnmatchcase(ref.path, glob):
            continue
        refs[ref.name] = ref
    return [refs[p] for p in sorted(refs)]


def map(fn: Callable, assets_or_dandiset, *, glob: str | None = None, cluster=None,
        open: bool = True, key: str | None = None, timeout: float | None = TIMEOUT,
        progress: bool = True, cache=None, archive: Archive | None = None) -> MapResult:
    """``fn(nwbfile)`` (``open=False``: ``fn(asset)``, an ``AssetRef``) for every asset.

    ``assets_or_dandiset``: a ``Dandiset``, a Dandiset id (``"000999"``,
    ``"000999/draft"``), a list of them (results keyed by ``DANDI:<id>/<version>/<path>``),
    or assets; ``glob``: which paths (default for a Dandiset:
    ``*.nwb``); ``cluster``: a ``distributed.Client``, a cluster, ``False`` (in this
    process, one asset after another) or None (the default client if there is one, else
    ``dandilab.cluster()``, closed at the end); ``key``: what names the function in the
    cache (default: a hash of its source; give one when the result depends on more than
    the source, e.g. globals); ``timeout``: seconds per asset (``TIMEOUT``, 10 minutes;
    None: no limit). Returns a ``MapResult``; see the module docstring.
    """
    refs = _assets(assets_or_dandiset, glob, archive)
    fn_key = key or function_key(fn)

    def again(selected: list[AssetRef], **options) -> MapResult:
        merged = {"cluster": cluster, "open": open, "key": fn_key, "timeout": timeout,
                  "progress": progress, "cache": cache} | options
        return map(fn, selected, **merged)

    store = _Store(f"{fn_key}:{'nwb' if open else 'asset'}", cache)
    outcomes: dict[str, _Outcome] = {}
    todo = []
    for ref in refs:
        hit = store.get(ref)
        if isinstance(hit, _Outcome) and hit.ok:
            outcomes[ref.name] = hit
        else:
            todo.append(ref)
    result = MapResult(outcomes, {r.name: r for r in refs}, [r.name for r in todo], again)
    if not todo:
        return result
    bar = _Progress(len(refs), len(outcomes), progress)
    try:
        if cluster is False:
            for ref in todo:
                bar.running(1)
                _finish(result, store, ref, _task(fn, ref, open, timeout), bar)
            bar.running(0)
        else:
            with _client(cluster) as client:
                _on_dask(client, fn, todo, open, timeout, result, store, bar)
    finally:
        bar.close()
    return result


def _finish(result: MapResult, store: _Store, ref: AssetRef, outcome: _Outcome, bar) -> None:
    result.outcomes[ref.name] = outcome
    if outcome.ok:
        store.put(ref, outcome)  # now: a run killed later keeps it
    bar.done(outcome)


@contextlib.contextmanager
def _client(cluster):
    """The client to use, and whether this call owns it (then it closes it)."""
    from distributed import Client

    if isinstance(cluster, Client):
        yield cluster
        return
    if cluster is not None:  # a cluster object (LocalCluster, GatewayCluster, ...)
        with Client(cluster, set_as_default=False) as client:
            yield client
        return
    from distributed import default_client

    try:
        yield default_client()
        return
    except ValueError:  # no client yet: make one for this map, and close it after
        pass
    from .cluster import cluster as make_cluster

    client = make_cluster()
    try:
        yield client
    finally:
        client.close()


def _on_dask(client, fn, todo, open_file, timeout, result, store, bar) -> None:
    from distributed import as_completed

    # one task per asset, named by it; pure=False: a rerun after a failure runs again
    futures = {client.submit(_task, fn, ref, open_file, timeout, pure=False,
                             key=f"dandilab-map-{hashlib.sha256(ref.name.encode()).hexdigest()[:12]}"
                                 f"-{time.time_ns()}"): ref for ref in todo}
    nthreads = sum(client.nthreads().values()) or 1
    bar.running(min(len(futures), nthreads))
    left = len(futures)
    for future in as_completed(futures):
        ref = futures[future]
        try:
            outcome = future.result()
        except Exception as e:  # noqa: BLE001 - the worker died (KilledWorker) or the task could not run
            kind = "worker-lost" if type(e).__name__ == "KilledWorker" else _classify(e)
            outcome = _Outcome(False, kind=kind, error=type(e).__name__, message=str(e))
        future.release()
        left -= 1
        _finish(result, store, ref, outcome, bar)
        bar.running(min(left, nthreads))


class _Progress:
    """tqdm.auto bar: assets done of total, with failed / running / cached / MB streamed."""

    def __init__(self, total: int, cached: int, enabled: bool):
        self.failed = self.bytes = self._running = 0
        self.cached = cached
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=cached, desc="dandilab.map", unit="asset")
            self._show()

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix(failed=self.failed, running=self._running, cached=self.cached,
                                 streamed=f"{self.bytes / 1e6:.1f} MB", refresh=True)

    def running(self, n: int) -> None:
        self._running = n
        self._show()

    def done(self, outcome: _Outcome) -> None:
        self.failed += not outcome.ok
        self.bytes += outcome.bytes
        if self.bar is not None:
            self.bar.update(1)
        self._show()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- table ------------------------------------------------------------------------------
TABLES = {
    "units": "units",
    "trials": "intervals/trials",
    "epochs": "intervals/epochs",
    "electrodes": "general/extracellular_ephys/electrodes",
}


def read_table(h5file, name: str, columns: list[str] | None = None):
    """One DynamicTable of an open NWB (h5py) file as a DataFrame, reading only ``columns``
    (and ``id``; a ragged column also reads its index). Missing table: KeyError."""
    import h5py
    import numpy as np
    import pandas as pd

    where = TABLES.get(name, name)
    if where not in h5file:
        raise KeyError(f"this file has no {name} table (no /{where})")
    group = h5file[where]
    available = [c.decode() if isinstance(c, bytes) else str(c)
                 for c in group.attrs.get("colnames", [])]
    wanted = available if columns is None else list(columns)
    missing = [c for c in wanted if c not in group]
    if missing:
        raise KeyError(f"the {name} table has no column(s) {', '.join(missing)} "
                       f"(it has: {', '.join(available)})")
    data = {"id": group["id"][()]}
    for col in wanted:
        values = group[col][()]
        if isinstance(values, np.ndarray) and values.dtype.kind in "OS":
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values.ravel()],
                              dtype=object).reshape(values.shape)
        if isinstance(values, np.ndarray) and values.dtype.kind == "O" and values.size and \
                isinstance(values.flat[0], h5py.Reference):
            raise ValueError(f"column {col} of {name} holds object references: read it with "
                             "pynwb (open_nwb) instead")
        index = f"{col}_index"
        if index in group:
            if f"{index}_index" in group:
                raise ValueError(f"column {col} of {name} is doubly ragged: read it with pynwb")
            ends = group[index][()]
            values = np.split(values, ends[:-1]) if len(ends) else []
        elif isinstance(values, np.ndarray) and values.ndim > 1:
            values = list(values)
        data[col] = list(values) if not isinstance(values, list) else values
    return pd.DataFrame(data)


def table(dandiset, name: str, columns: list[str] | None = None, *, glob: str | None = None,
          cluster=None, progress: bool = True, archive: Archive | None = None, **options):
    """One table (``"units"``, ``"trials"``, ``"epochs"``, ``"electrodes"`` or an HDF5 path)
    from every session, as one DataFrame with ``session`` (the asset path) and ``asset_id``
    columns first. Only the ``columns`` asked for (default: all) are read, with h5py,
    straight from the file. Sessions without the table or that fail are left out; the
    DataFrame's ``attrs["failed"]`` says which and why. ``cluster`` etc.: as ``map``.
    """
    import pandas as pd

    wanted = None if columns is None else list(columns)

    def read(asset):
        with asset.open_hdf5() as h5:
            return read_table(h5, name, wanted)

    result = map(read, dandiset, glob=glob, cluster=cluster, open=False, progress=progress,
                 key=f"dandilab.table:v1:{name}:{wanted}", archive=archive, **options)
    frame = result.frame.rename(columns={"path": "session"})
    frame.attrs["failed"] = result.failed
    if frame.empty:
        return pd.DataFrame(columns=["session", "asset_id", "id", *(wanted or [])])
    return frame
