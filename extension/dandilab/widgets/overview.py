"""A persistent min/max overview of a recording, per asset, filled as its chunks are decoded.

Each decoded chunk (row r, column c) of a (time, channel) dataset is reduced to ``BINS``
min/max bins per channel and saved in the dandilab cache directory, keyed by the asset's
content digest (``RemoteFile.cache_key``) and the dataset's path:
``overview/<key>/<dataset>/r<r>-c<c>.npy`` (min and max, bins x channels of the chunk, in
the dataset's dtype: 32 KB for a 78125 x 64 int16 chunk, which is ~6 MB stored). A later
window over chunks that have one (a revisit, or another user of a hub sharing the cache)
is drawn from it at once while the chunks are read: approximately, each overview bin
going to every window bin it overlaps, so a window bin may show up to one overview bin
(~20 ms at 30 kHz) of its neighbours' samples; it is used for windows whose bins are
at least an eighth of an overview bin wide (a 10 s window in 1000 bins: half).
Files are written whole, then renamed: a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..cache import cache_dir, trim_sometimes

__all__ = ["BINS", "Overview"]

BINS = 128  # per chunk row


class Overview:
    """The overview files of one chunked dataset; see the module docstring."""

    def __init__(self, root: Path, chunks: tuple[int, int], n: int):
        self.root = root
        self.cr, self.cc = chunks
        self.n = n
        self.ob = -(-self.cr // BINS)  # samples per overview bin

    @classmethod
    def of(cls, series) -> Overview | None:
        """The overview of a ``ChunkedSeries`` read over HTTP (None: nothing to key it by)."""
        key = series.remote.cache_key if series.remote is not None else None
        if not key or series.chunks is None:
            return None
        name = hashlib.sha256(str(getattr(series.ds, "name", "")).encode()).hexdigest()[:16]
        return cls(cache_dir() / "overview" / key / name, series.chunks, series.shape[0])

    def path(self, r: int, c: int) -> Path:
        return self.root / f"r{r}-c{c}.npy"

    def has(self, r: int, c: int) -> bool:
        return self.path(r, c).exists()

    def put(self, r: int, c: int, chunk: np.ndarray) -> None:
        """Save the overview of decoded chunk (r, c) (its rows from the row's start)."""
        path = self.path(r, c)
        if path.exists() or not len(chunk):
            return
        full = len(chunk) // self.ob * self.ob  # whole bins by reshaping (reduceat: 10x slower)
        bins = chunk[:full].reshape(-1, self.ob, chunk.shape[1])
        mins, maxs = [bins.min(1)], [bins.max(1)]
        if full < len(chunk):
            mins.append(chunk[full:].min(0, keepdims=True))
            maxs.append(chunk[full:].max(0, keepdims=True))
        both = np.stack([np.concatenate(mins), np.concatenate(maxs)])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, both)
            os.replace(tmp, path)
        except OSError:  # a read-only or full cache: no overview, windows still draw
            return
        trim_sometimes()

    def get(self, r: int, c: int) -> np.ndarray | None:
        """(2, bins, channels of the chunk): min and max, or None."""
        try:
            return np.load(self.path(r, c))
        except (OSError, ValueError):
            return None

    def fold(self, r: int, cols, channels: np.ndarray, starts: np.ndarray, ends: np.ndarray,
             lo: np.ndarray, hi: np.ndarray) -> bool:
        """Fold chunk row ``r``'s overview into window bins ``lo``/``hi`` (channels, bins)
        whose samples are ``[starts, ends]`` (inclusive): each window bin gets the min/max of
        the overview bins it overlaps. False (nothing folded) if a chunk has no overview."""
        parts = {c: self.get(r, c) for c in cols}
        if any(p is None for p in parts.values()):
            return False
        r0, r1 = r * self.cr, min(self.n, (r + 1) * self.cr)
        js = np.nonzero((starts < r1) & (ends >= r0))[0]
        if not len(js):
            return True
        a = (np.maximum(starts[js], r0) - r0) // self.ob
        b = (np.minimum(ends[js], r1 - 1) - r0) // self.ob
        idx = np.empty(2 * len(js), np.int64)  # reduce [a, b] at even places; odd ones unused
        idx[0::2], idx[1::2] = a, b + 1
        for c, both in parts.items():
            sel = np.nonzero(channels // self.cc == c)[0]
            local = channels[sel] - c * self.cc
            pad = np.concatenate([both[:, :, local], both[:, -1:, local]], axis=1)  # b + 1 <= len
            mn = np.minimum.reduceat(pad[0], idx, 0)[0::2].T
            mx = np.maximum.reduceat(pad[1], idx, 0)[0::2].T
            at = np.ix_(sel, js)
            lo[at] = np.fmin(lo[at], mn)
            hi[at] = np.fmax(hi[at], mx)
        return True
