"""Reading a time window of a (time, channel) dataset chunk by chunk, and decimating it.

``ChunkedSeries(dataset)`` reads whole stored chunks (the unit HDF5 stores and S3 serves),
fetches the missing ones in parallel (remote files: ``RemoteFile.prefetch``), decodes
gzip/shuffle chunks itself in a thread pool (``dandilab.codec``: inflate releases the GIL; h5py decodes one
chunk at a time under its global lock), keeps decoded chunks in an LRU, and reduces each
piece into min/max bins as it goes, so a window never exists in memory at full rate.

``window(i0, i1, channels, bins)`` returns ``Window`` (bin start indices, mins, maxs) of
at most ``bins`` bins per channel, whatever the window's length. When the chunks a
window touches exceed ``max_bytes`` (an hour at 30 kHz on 384 channels is ~80 GB), it
reads an evenly spaced subset of chunk rows instead and says so (``Window.sampled``).

``windows(...)`` is the same window drawn progressively: it yields the window first with
the chunk rows already decoded (after a pan, the half it shares with the last window),
then again as each missing row is decoded, the last one complete. Missing rows are
fetched one row after another in the direction of the pan, the next row's transfer
overlapping this row's decode: with a shared bandwidth, rows fetched all at once would
all arrive at the end, rows fetched in order arrive one by one. A 10 s window of 384
channels is ~5 chunk rows of ~36 MB stored: at 100 MB/s its first row is drawn after
~0.4 s, the whole window after >= 1.5 s, whatever the reader (bandwidth bound).
``prefetch_rows`` reads rows ahead in the background (the next pan's) the same way; a
row being loaded by one thread is waited for, never fetched twice.

Remote datasets keep a persistent min/max overview (``overview.Overview``, in the dandilab
cache, keyed by the asset's digest), filled as chunks are decoded: a wide window over
rows that have one draws them from it at once (``Window.approx_rows``), then exactly.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..codec import check_decodable, decode, filters_of, pool
from .overview import Overview

__all__ = ["ChunkedSeries", "Window", "minmax_bins"]

CACHE_BYTES = int(float(os.environ.get("DANDILAB_WIDGET_CACHE_MB", "512")) * 1e6)
MAX_BYTES = int(float(os.environ.get("DANDILAB_WIDGET_WINDOW_MB", "256")) * 1e6)
_ahead_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dandilab-ahead")
_overview_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dandilab-overview")


@dataclass
class Window:
    """Min/max of channels over bins: ``starts`` (bins,) sample index of each bin,
    ``lo``/``hi`` (channels, bins) in stored units (NaN where nothing was read)."""

    i0: int
    i1: int
    starts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    decimated: bool
    sampled: tuple[int, int] | None = None  # (chunk rows read, chunk rows in the window)
    chunk_bytes: int = 0  # stored bytes of the chunks this window needed
    fetched_chunks: int = 0  # of which were not in the cache
    stats: dict = field(default_factory=dict)
    rows_done: int = 0  # chunk rows reduced into lo/hi so far (windows(): progressive)
    rows_total: int = 0  # chunk rows the window reads
    approx_rows: int = 0  # of the rows not done, drawn from the persistent overview

    @property
    def complete(self) -> bool:
        """Whether every chunk row the window reads is in ``lo``/``hi``."""
        return self.rows_done >= self.rows_total


def minmax_bins(block: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``block`` (rows, ch) over row bins starting at ``edges`` (sorted,
    within block, first 0)."""
    return np.minimum.reduceat(block, edges, axis=0), np.maximum.reduceat(block, edges, axis=0)


class _LRU:
    def __init__(self, budget: int):
        self.budget, self.used = budget, 0
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key, value: np.ndarray) -> None:
        with self.lock:
            if key in self.items:
                return
            self.items[key] = value
            self.used += value.nbytes
            while self.used > self.budget and len(self.items) > 1:
                _, old = self.items.popitem(last=False)
                self.used -= old.nbytes


_cache = _LRU(CACHE_BYTES)


class ChunkedSeries:
    """A 1-D or 2-D dataset read as (time, channel) windows; see the module docstring."""

    def __init__(self, dataset, *, max_bytes: int = MAX_BYTES):
        self.ds = dataset
        self.shape = tuple(dataset.shape) if dataset.ndim == 2 else (dataset.shape[0], 1)
        self.dtype = np.dtype(dataset.dtype)
        self.max_bytes = max_bytes
        self.is_h5 = type(dataset).__module__.startswith("h5py")
        self.chunks = None
        if self.is_h5 and dataset.chunks:
            self.chunks = (tuple(dataset.chunks) if dataset.ndim == 2
                           else (dataset.chunks[0], 1))
        self.remote = None
        if self.is_h5:
            from ..remote import source_of

            self.remote = source_of(dataset.file)
        self.fast = self.chunks is not None and self._plain_filters()
        self._key = (id(dataset.file.id) if self.is_h5 else id(dataset), getattr(dataset, "name", ""))
        self._info: dict = {}
        self.bytes_read = 0  # stored bytes of chunks fetched/decoded (not from the cache)
        self._ahead = None
        self._ahead_rows: set = set()
        self._ahead_gen = 0  # bumped to stop a read-ahead at its next row
        self._claims: dict[int, threading.Event] = {}  # chunk rows a thread is loading
        self._claims_lock = threading.Lock()
        self.overview = Overview.of(self) if self.fast else None

    # -- what is stored where ---------------------------------------------------------
    def _plain_filters(self) -> bool:
        self._filters = filters_of(self.ds)
        if self._filters is None:
            check_decodable(self.ds)  # the view then names the filter and the fix, not h5py
        return self._filters is not None

    def info(self, r: int, c: int):
        """(byte offset, stored size, filter mask) of chunk (row r, column c), or None."""
        key = (r, c)
        if key not in self._info:
            coords = (r * self.chunks[0], c * self.chunks[1])[: self.ds.ndim]
            si = self.ds.id.get_chunk_info_by_coord(coords)
            self._info[key] = (None if si.byte_offset is None
                               else (si.byte_offset, si.size, si.filter_mask))
        return self._info[key]

    def rows_of(self, i0: int, i1: int) -> range:
        return range(i0 // self.chunks[0], (i1 - 1) // self.chunks[0] + 1)

    def cols_of(self, channels: np.ndarray) -> list[int]:
        return sorted(set((np.asarray(channels) // self.chunks[1]).tolist()))

    def chunk_bytes(self, rows, cols) -> int:
        total = 0
        for r in rows:
            for c in cols:
                info = self.info(r, c)
                total += info[1] if info else 0
        return total

    # -- reading chunks ---------------------------------------------------------------
    def _region(self, r: int, c: int):
        (cr, cc), (n, m) = self.chunks, self.shape
        return slice(r * cr, min(n, (r + 1) * cr)), slice(c * cc, min(m, (c + 1) * cc))

    def _decode(self, raw: bytes, r: int, c: int) -> np.ndarray:
        arr = decode(raw, self.dtype, self.chunks, self._filters)
        rows, cols = self._region(r, c)
        return arr[: rows.stop - rows.start, : cols.stop - cols.start]

    def _load(self, keys: list[tuple[int, int]]) -> dict:
        """Decoded chunks for ``keys`` (from the cache, else fetched in parallel)."""
        out, missing = {}, []
        for key in keys:
            got = _cache.get((self._key, key))
            if got is None:
                missing.append(key)
            else:
                out[key] = got
        if not missing:
            return out
        infos = {k: self.info(*k) for k in missing}
        present = [k for k in missing if infos[k] is not None]
        for k in missing:
            if infos[k] is None:  # never written: the fill value
                rows, cols = self._region(*k)
                fill = self.ds.fillvalue if self.is_h5 else 0
                out[k] = np.full((rows.stop - rows.start, cols.stop - cols.start), fill,
                                 self.dtype)
        ranges = [(infos[k][0], infos[k][1]) for k in present]
        if self.remote is not None and ranges:
            self.remote.prefetch(ranges, wait=False)  # all in flight at once
        try:
            if self.fast:
                def one(k):
                    off, size, mask = infos[k]
                    if mask:  # a filter was skipped for this chunk: let HDF5 decode it
                        return self.ds[self._region(*k)]
                    raw = (self.remote.read_range(off, size) if self.remote is not None
                           else self.ds.id.read_direct_chunk(
                               (k[0] * self.chunks[0], k[1] * self.chunks[1])[: self.ds.ndim])[1])
                    return self._decode(raw, *k)

                decoded = dict(zip(present, pool().map(one, present)))
            else:
                decoded = {k: self._read_h5(k) for k in present}
        finally:
            if self.remote is not None and ranges:
                self.remote.discard(ranges)
        for k, arr in decoded.items():
            _cache.put((self._key, k), arr)
            self.bytes_read += infos[k][1]
        out.update(decoded)
        return out

    def _read_h5(self, k) -> np.ndarray:
        rows, cols = self._region(*k)
        block = self.ds[rows] if self.ds.ndim == 1 else self.ds[rows, cols]
        return np.asarray(block).reshape(rows.stop - rows.start, cols.stop - cols.start)

    # -- windows ----------------------------------------------------------------------
    def read(self, i0: int, i1: int, channels=None) -> np.ndarray:
        """Samples ``[i0, i1)`` of ``channels`` (all by default) at full rate, (rows, ch)."""
        channels = np.arange(self.shape[1]) if channels is None else np.asarray(channels)
        i0, i1 = max(0, i0), min(self.shape[0], i1)
        if i1 <= i0:
            return np.empty((0, len(channels)), self.dtype)
        if self.chunks is None:
            return self._read_plain(i0, i1, channels)
        parts = []
        for r in self.rows_of(i0, i1):
            a, b = max(i0, r * self.chunks[0]), min(i1, (r + 1) * self.chunks[0])
            parts.append(self._row_block(r, a, b, channels))
        return np.concatenate(parts, axis=0)

    def _read_plain(self, i0, i1, channels) -> np.ndarray:
        if self.ds.ndim == 1:
            return np.asarray(self.ds[i0:i1]).reshape(-1, 1)
        lo, hi = int(channels.min()), int(channels.max()) + 1
        block = np.asarray(self.ds[i0:i1, lo:hi])
        return block[:, channels - lo]

    def _row_block(self, r: int, a: int, b: int, channels: np.ndarray,
                   loaded: dict | None = None) -> np.ndarray:
        cc = self.chunks[1]
        cols = self.cols_of(channels)
        got = loaded if loaded is not None else self._load([(r, c) for c in cols])
        base = r * self.chunks[0]
        out = np.empty((b - a, len(channels)), self.dtype)
        for c in cols:
            sel = np.nonzero(channels // cc == c)[0]
            out[:, sel] = got[(r, c)][a - base:b - base][:, channels[sel] - c * cc]
        return out

    def window(self, i0: int, i1: int, channels=None, bins: int = 1000) -> Window:
        """Min/max over at most ``bins`` bins of samples ``[i0, i1)``; see the docstring.

        Bins are ``spb = ceil(n / bins)`` samples wide on a grid aligned to multiples of
        ``spb`` (so panning does not reshuffle which samples share a bin).
        """
        for win in self.windows(i0, i1, channels, bins):
            pass
        return win

    def windows(self, i0: int, i1: int, channels=None, bins: int = 1000, *,
                direction: int = 1, stop: Callable[[], bool] | None = None) -> Iterator[Window]:
        """``window(...)`` progressively: the rows already decoded first, then each missing
        chunk row as it is decoded (in ``direction``: 1 from the start, -1 from the end),
        each yield a new ``Window`` whose ``rows_done`` grows; the last is complete.
        ``stop()`` true between rows ends it early (a newer window was asked for)."""
        channels = np.arange(self.shape[1]) if channels is None else np.asarray(channels)
        i0, i1 = max(0, int(i0)), min(self.shape[0], int(i1))
        n, bins = i1 - i0, max(1, int(bins))
        if n <= 0 or len(channels) == 0:
            e = np.empty((len(channels), 0), np.float32)
            yield Window(i0, i0, np.empty(0, np.int64), e, e, False)
            return
        if n <= 2 * bins:  # few enough samples to draw them all
            before = self.bytes_read
            block = self.read(i0, i1, channels)
            values = block.T.astype(np.float32)
            yield Window(i0, i1, np.arange(i0, i1), values, values, False,
                         chunk_bytes=self._bytes_for(i0, i1, channels),
                         stats={"bytes_read": self.bytes_read - before})
            return
        spb = -(-n // bins)
        g0 = i0 // spb
        nb = (i1 - 1) // spb - g0 + 1
        starts = np.maximum((g0 + np.arange(nb)) * spb, i0)
        lo = np.full((len(channels), nb), np.nan, np.float32)
        hi = np.full((len(channels), nb), np.nan, np.float32)
        before = self.bytes_read
        if self.chunks is None:
            for a, b in self._plain_pieces(i0, i1, len(channels)):
                self._reduce(self._read_plain(a, b, channels), a, np.arange(len(channels)),
                             spb, g0, lo, hi)
            yield Window(i0, i1, starts, lo, hi, True,
                         stats={"bytes_read": self.bytes_read - before})
            return
        rows_all = list(self.rows_of(i0, i1))
        pieces, sampled = rows_all, None
        cols = self.cols_of(channels)
        # stored bytes bound the network, decoded bytes the CPU (unwritten chunks are
        # free to fetch but not to fill): either over budget reads a sample of rows
        per_row = max(self.chunk_bytes(rows_all[:1], cols),
                      self.chunks[0] * self.chunks[1] * len(cols) * self.dtype.itemsize // 4,
                      1)
        if per_row * len(rows_all) > self.max_bytes:
            keep = max(1, min(len(rows_all), self.max_bytes // per_row))
            pick = np.unique(np.linspace(0, len(rows_all) - 1, keep).round().astype(int))
            pieces = [rows_all[k] for k in pick]
            sampled = (len(pieces), len(rows_all))
        keys = [(r, c) for r in pieces for c in cols]
        fetched = sum(_cache.get((self._key, k)) is None for k in keys)
        touched = self.chunk_bytes(pieces, cols)
        cached = [r for r in pieces if self._cached(r, cols)]
        missing = [r for r in pieces if r not in cached]
        if direction < 0:
            missing.reverse()
        done, done_rows = 0, set()
        approx, alo, ahi = set(), None, None
        if missing and self.overview is not None and sampled is None and \
                self.overview.ob <= 8 * spb <= 8 * self.chunks[0]:
            alo, ahi = np.full_like(lo, np.nan), np.full_like(hi, np.nan)
            ends = np.append(starts[1:], i1) - 1
            approx = {r for r in missing
                      if self.overview.fold(r, cols, channels, starts, ends, alo, ahi)}
            bin_rows = (starts // self.chunks[0], ends // self.chunks[0])

        def state() -> Window:
            show_lo, show_hi = lo.copy(), hi.copy()
            if approx - done_rows:  # bins not read exactly yet: the overview's
                exact = np.isin(bin_rows[0], list(done_rows)) & \
                    np.isin(bin_rows[1], list(done_rows))
                show_lo[:, ~exact] = np.fmin(lo[:, ~exact], alo[:, ~exact])
                show_hi[:, ~exact] = np.fmax(hi[:, ~exact], ahi[:, ~exact])
            return Window(i0, i1, starts, show_lo, show_hi, True, sampled,
                          chunk_bytes=touched, fetched_chunks=fetched,
                          stats={"bytes_read": self.bytes_read - before},
                          rows_done=done, rows_total=len(pieces),
                          approx_rows=len(approx - done_rows))

        for r in cached:
            got = self._load([(r, c) for c in cols])  # in the cache (or just evicted: read)
            self._reduce_row(r, got, i0, i1, channels, cols, spb, g0, lo, hi)
            done += 1
            done_rows.add(r)
        if (cached or approx) and missing:
            yield state()
        for r, got in self.load_rows(missing, cols, stop=stop):
            self._reduce_row(r, got, i0, i1, channels, cols, spb, g0, lo, hi)
            done += 1
            done_rows.add(r)
            yield state()
        if not missing:
            yield state()

    def _reduce_row(self, r, got, i0, i1, channels, cols, spb, g0, lo, hi) -> None:
        a, b = max(i0, r * self.chunks[0]), min(i1, (r + 1) * self.chunks[0])
        base, cc = r * self.chunks[0], self.chunks[1]
        for c in cols:
            sel = np.nonzero(channels // cc == c)[0]
            local = channels[sel] - c * cc
            chunk = got[(r, c)][a - base:b - base]
            if len(local) == chunk.shape[1] and np.array_equal(local, np.arange(len(local))):
                block = chunk  # the whole chunk's channels: no copy
            elif len(local) and np.array_equal(local, np.arange(local[0], local[-1] + 1)):
                block = chunk[:, local[0]:local[-1] + 1]
            else:
                block = chunk[:, local]
            self._reduce(block, a, sel, spb, g0, lo, hi)

    # -- loading chunk rows in order, once each -----------------------------------------------
    def _cached(self, r: int, cols) -> bool:
        return all(_cache.get((self._key, (r, c))) is not None for c in cols)

    def _row_ranges(self, r: int, cols) -> list[tuple[int, int]]:
        infos = (self.info(r, c) for c in cols)
        return [(i[0], i[1]) for i in infos if i is not None]

    def _to_overview(self, r: int, got: dict) -> None:
        """Add freshly decoded chunks of row ``r`` to the persistent overview (off the
        drawing thread)."""
        if self.overview is None:
            return
        todo = {k: v for k, v in got.items() if not self.overview.has(*k)}
        if todo:
            _overview_pool.submit(lambda: [self.overview.put(*k, v) for k, v in todo.items()])

    def _claim(self, r: int) -> tuple[threading.Event, bool]:
        """(event set when row ``r`` is loaded, whether this thread is to load it)."""
        with self._claims_lock:
            ev = self._claims.get(r)
            if ev is not None:
                return ev, False
            ev = self._claims[r] = threading.Event()
            return ev, True

    def _release(self, r: int, ev: threading.Event) -> None:
        with self._claims_lock:
            self._claims.pop(r, None)
        ev.set()

    def load_rows(self, rows, cols, *, stop: Callable[[], bool] | None = None) -> Iterator:
        """Yield ``(row, chunks)`` for each chunk row of ``rows`` (in that order) once its
        chunks ``cols`` are decoded (``chunks``: {(row, col): array}). A row's bytes are
        requested when the previous row's have arrived, so its transfer overlaps that
        row's decode; a row another thread is loading is waited for, not fetched again."""
        rows = list(rows)
        for k, r in enumerate(rows):
            if stop is not None and stop():
                return
            keys = [(r, c) for c in cols]
            while True:
                if self._cached(r, cols):
                    got = self._load(keys)  # from the cache
                    break
                ev, mine = self._claim(r)
                if not mine:
                    ev.wait()  # loaded by the other thread, or given up by it: look again
                    continue
                try:
                    if self.remote is not None:
                        for f in self.remote.prefetch(self._row_ranges(r, cols), wait=False):
                            f.result()  # this row's bytes are here: ask for the next row's
                        for nxt in rows[k + 1:]:
                            if not self._cached(nxt, cols):
                                self.remote.prefetch(self._row_ranges(nxt, cols), wait=False)
                                break
                    got = self._load(keys)  # unwritten chunks: the fill value, not cached
                finally:
                    self._release(r, ev)
                self._to_overview(r, got)
                break
            yield r, got

    @staticmethod
    def _reduce(block, a, sel, spb, g0, lo, hi) -> None:
        """Fold samples ``block`` (starting at sample ``a``) into bins of ``spb`` samples."""
        b = a + block.shape[0]
        first_full = -(-a // spb) * spb
        last_full = (b // spb) * spb

        def fold(k, mn, mx):
            lo[sel, k] = np.fmin(lo[sel, k], mn)
            hi[sel, k] = np.fmax(hi[sel, k], mx)

        if first_full >= last_full:  # within one bin (or two partial ones)
            for s0 in sorted({a, min(b, first_full)}):
                s1 = min(b, (s0 // spb + 1) * spb)
                if s1 > s0:
                    part = block[s0 - a:s1 - a]
                    fold(s0 // spb - g0, part.min(0), part.max(0))
            return
        if first_full > a:
            part = block[:first_full - a]
            fold(a // spb - g0, part.min(0), part.max(0))
        if last_full < b:
            part = block[last_full - a:]
            fold(last_full // spb - g0, part.min(0), part.max(0))
        mid = block[first_full - a:last_full - a]
        r = mid.reshape(-1, spb, mid.shape[1])
        k0 = first_full // spb - g0
        k1 = k0 + r.shape[0]
        lo[sel, k0:k1] = np.fmin(lo[sel, k0:k1], r.min(1).T)
        hi[sel, k0:k1] = np.fmax(hi[sel, k0:k1], r.max(1).T)

    def _plain_pieces(self, i0, i1, nch):
        step = max(1, (16 << 20) // max(1, nch * self.dtype.itemsize))
        return [(a, min(i1, a + step)) for a in range(i0, i1, step)]

    def _bytes_for(self, i0, i1, channels) -> int:
        if self.chunks is None:
            return 0
        return self.chunk_bytes(self.rows_of(i0, i1), self.cols_of(channels))

    def prefetch_rows(self, rows, channels) -> None:
        """Load chunk rows in the background, in the order given (the next ones in the
        direction of a pan); a read-ahead still running stops at its next row."""
        if self.chunks is None:
            return
        n_rows = -(-self.shape[0] // self.chunks[0])
        cols = self.cols_of(channels)
        rows = [r for r in rows if 0 <= r < n_rows and not self._cached(r, cols)]
        self._ahead_gen += 1
        if not rows:
            return
        gen = self._ahead_gen
        self._ahead_rows = set(rows)

        def ahead():
            for _ in self.load_rows(rows, cols, stop=lambda: gen != self._ahead_gen):
                pass  # each row lands in the cache

        self._ahead = _ahead_pool.submit(ahead)

    def cancel_prefetch(self) -> None:
        """Stop the read-ahead at its next row (the view jumped elsewhere)."""
        self._ahead_gen += 1

    def wait_prefetch(self) -> None:
        if self._ahead is not None:
            self._ahead.result()
