"""The one place that decides how a remote HDF5 file is read.

``RemoteFile`` is a read-only file-like object over HTTP range requests that h5py
opens with its ``fileobj`` driver. What it does, and why (measured in
``benchmarks/streaming.py``):

- HDF5 files written by h5py/pynwb keep their metadata at the start and at the end
  of the file (objects created after a large dataset land after its data). The
  first round trip therefore fetches the head and the tail of the file in two
  parallel requests (a suffix range needs no size), which also gives the size and
  the ETag. A cold pynwb open then usually needs no further request.
- Other small reads (metadata, chunk indexes, small chunks) go through an aligned
  block cache: an LRU of at most ``BLOCK_CACHE`` bytes besides the head and tail
  blocks, which stay (a long scan of small chunks would otherwise grow it without
  limit). Large reads (stored chunks) take what the block cache already holds and
  fetch exactly the rest, so the bytes fetched stay close to the bytes touched.
  After two contiguous large reads the next one is prefetched in the background,
  hiding the round trip behind transfer (never past the file's end, what is cached
  already, or ``readahead_stop``).
- ``prefetch(ranges)`` fetches many byte ranges in parallel and ``read_range`` hands
  them out (``to_dask`` and the widgets read stored chunks so and decode them
  themselves, outside h5py's global lock: ``dandilab.codec``).
- The block cache is persisted under the cache directory, keyed by the content's
  ETag and size (DANDI blobs are immutable; the ETag is the asset's
  ``dandi:dandi-etag`` digest), so a second open, in any process or by any user
  sharing the directory, needs no request at all. Every response's ETag is checked.
- The bytes of large reads (chunks) are kept on disk too, under ``chunks/<key>/`` of
  the cache directory (one file per fetched range, a CRC32 per MiB beside the bytes,
  written atomically, mode 0600 in a 0700 folder, read only if ours and writable by
  no one else), within the cache's size budget: reading a slice again, in any process,
  costs a local read. ``DANDILAB_CHUNK_CACHE=0`` or ``chunk_cache=False`` turns it off.
- Requests are retried with exponential backoff on 5xx, 429, resets, truncated
  bodies and timeouts; the final error names the file, the byte range and the cause.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import functools
import hashlib
import io
import json
import os
import random
import tempfile
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import urllib3

from .cache import cache_dir, note_written, private_dir, trusted

__all__ = ["RemoteFile", "RemoteReadError", "open_h5", "source_of"]

BLOCK = 256 * 1024  # the block of the block cache: one small read costs one such request
HEAD = 64 * 1024  # fetched at open, with the tail: where h5py/pynwb put their metadata
TAIL = 1024 * 1024  # (a pynwb open of the demo files reads the first 8 KB and ~550 KB at the end)
LARGE = 256 * 1024  # reads at least this big are data: fetched exactly, not cached as blocks
PART = 16 * 1024 * 1024  # prefetches split into requests of at most this size
DATA_CACHE = 256 * 1024 * 1024  # in-memory bytes of prefetched data kept per file
PERSIST_MAX = 64 * 1024 * 1024  # most metadata bytes persisted per file
BLOCK_CACHE = 32 * 1024 * 1024  # in-memory blocks kept per file besides the head and tail
SEGMENT = 1024 * 1024  # the chunk cache keeps a CRC32 per MiB: reading part of a file checks only that part
RETRIES = int(os.environ.get("DANDILAB_RETRIES", "6"))
TIMEOUT = float(os.environ.get("DANDILAB_TIMEOUT", "30"))

_http = urllib3.PoolManager(maxsize=32, block=False, retries=False)
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dandilab-fetch")
_open_files: weakref.WeakValueDictionary[str, RemoteFile] = weakref.WeakValueDictionary()


class RemoteReadError(OSError):
    """A remote read failed after retries; the message names the file and the cause."""


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class RemoteFile(io.RawIOBase):
    """Read-only, seekable file over HTTP(S) range requests; see the module docstring.

    ``name`` is what errors call the file (an asset path); ``digest``/``size``, when
    known from the archive's record, key the persistent cache and let a cached open
    skip the network entirely (without them the server's ETag is the key).
    ``cache`` is a directory for persisted metadata blocks and chunk bytes (``None``:
    the default from ``DANDILAB_CACHE_DIR``; ``False``: no persistence); ``chunk_cache``
    (default: ``$DANDILAB_CHUNK_CACHE``, on unless "0") keeps chunk bytes there too.
    ``readahead_stop``, when a caller knows where the data it scans ends, bounds the
    read-ahead.
    """

    def __init__(self, url: str, *, name: str | None = None, digest: str | None = None,
                 size: int | None = None, cache: str | Path | bool | None = None,
                 timeout: float | None = None, retries: int | None = None,
                 readahead: bool = True, signer: tuple[str, dict] | None = None,
                 chunk_cache: bool | None = None):
        super().__init__()
        self.url = url
        # (the archive's download URL, its auth headers): where a new signed URL comes from
        # when the bytes need one (embargoed data; a signed URL that expired)
        self.signer = signer
        self.name = name or url
        self.timeout = TIMEOUT if timeout is None else timeout
        self.retries = RETRIES if retries is None else retries
        self.requests = 0
        self.readahead = readahead
        self.readahead_stop: int | None = None
        self.bytes_fetched = 0
        self._lock = threading.RLock()
        self._pos = 0
        self._blocks: dict[int, bytes] = {}
        self._lru: OrderedDict[int, None] = OrderedDict()  # the blocks that may be evicted
        self._block_bytes = 0  # their bytes
        self._pins: set[int] = set()  # the head's and the tail's blocks: never evicted
        self._data: OrderedDict[int, bytes] = OrderedDict()  # offset -> bytes (LRU)
        self._data_bytes = 0
        self._inflight: dict[tuple[int, int], Future] = {}
        self._seq_end = -1
        self._seq_run = 0
        self._new_blocks = False
        self._cache_root = None if cache is False else cache_dir(cache) / "blocks"
        self._key_from_url = (hashlib.sha256(url.encode()).hexdigest()[:32]
                              if self._cache_root else None)
        self.digest, self.size = digest, size
        self.etag: str | None = None  # the server's, fixed by the first response
        if not (self.digest and self.size):
            self._lookup_url()
        if not self._load_persisted():
            self._fetch_head_and_tail()
        if chunk_cache is None:
            chunk_cache = os.environ.get("DANDILAB_CHUNK_CACHE", "1").strip().lower() \
                not in ("0", "false", "no", "off")
        key = self.cache_key if chunk_cache else None
        self._chunks = _ChunkStore(cache_dir(cache) / "chunks" / key) if key else None
        _open_files[repr(self)] = self

    def __repr__(self) -> str:
        return f"<dandilab.RemoteFile {id(self):#x} {self.name}>"

    # -- the file interface h5py uses -----------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), max(0, self.size - self._pos))
        if n:
            view[:n] = self.pread(self._pos, n)
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self.save()
        super().close()

    # -- reading --------------------------------------------------------------------------
    def pread(self, offset: int, n: int) -> bytes:
        """Bytes ``[offset, offset + n)``, from memory or the network."""
        n = min(n, self.size - offset)
        if n <= 0:
            return b""
        if n >= LARGE:
            return self._read_large(offset, n)
        first = offset // BLOCK
        if first == (offset + n - 1) // BLOCK:  # the common case: metadata within one block
            block = self._blocks.get(first)
            skip = offset - first * BLOCK
            if block is not None and skip + n <= len(block):  # (the head may be a short block)
                if first in self._lru:
                    try:
                        self._lru.move_to_end(first)
                    except KeyError:  # evicted meanwhile by another thread
                        pass
                return block[skip:skip + n]
        data = self._from_data(offset, n)
        return data if data is not None else self._read_blocks(offset, n)

    def prefetch(self, ranges, wait: bool = True) -> list[Future]:
        """Fetch byte ranges ``[(offset, length), ...]`` in parallel into memory.

        Adjacent ranges are merged into requests of at most ``PART`` bytes.
        """
        futures = []
        for start, stop in _coalesce(ranges, PART):
            if self._from_data(start, stop - start, peek=True):
                continue
            futures.append(self._fetch_async(start, stop - start))
        if wait:
            for f in futures:
                f.result()
        return futures

    def read_range(self, offset: int, n: int) -> bytes:
        """Bytes ``[offset, offset + n)`` for a caller that reads chunks itself: from
        prefetched data (waiting for its fetch), else fetched exactly. Unlike ``pread``
        it does not count as a sequential scan, so it starts no read-ahead."""
        data = self._from_data(offset, n)
        if data is not None:
            return data
        if n < LARGE:
            return self.pread(offset, n)
        return self._assemble(offset, min(n, self.size - offset))

    def discard(self, ranges) -> None:
        """Forget prefetched data of these ranges (as given to ``prefetch``)."""
        with self._lock:
            for start, _ in _coalesce(ranges, PART):
                data = self._data.pop(start, None)
                self._data_bytes -= len(data) if data else 0

    def _read_large(self, offset: int, n: int) -> bytes:
        sequential = offset == self._seq_end
        self._seq_run = self._seq_run + 1 if sequential else 0
        self._seq_end = offset + n
        if self.readahead and self._seq_run >= 1:  # from the second contiguous large read on, read ahead by one
            start = self._seq_end
            own = self._blocks.get(start // BLOCK)
            # not past what can be read, nor into what is cached already (the tail's blocks)
            stop = start if own and start % BLOCK < len(own) else min(
                start + n, self.size, self.readahead_stop or self.size,
                self._next_block(start, start + n))
            if stop - start >= LARGE // 4 and not self._from_data(start, stop - start, peek=True):
                self._fetch_async(start, stop - start)
        data = self._from_data(offset, n)
        if data is not None:
            return data
        return self._assemble(offset, n)

    def _assemble(self, offset: int, n: int) -> bytes:
        """Bytes ``[offset, offset + n)`` from the cached blocks, prefetched data, the chunk
        cache, and requests for exactly the rest (chunk sizes vary: a read-ahead may cover
        only part of a read)."""
        end, p, pieces, fetched = offset + n, offset, [], False
        while p < end:
            b = p // BLOCK
            with self._lock:
                block = self._blocks.get(b)
            skip = p - b * BLOCK
            if block is not None and skip < len(block):
                piece = block[skip:skip + end - p]
            else:
                piece = self._from_data_prefix(p, end)
                if not piece and self._chunks:
                    piece = self._chunks.prefix(p, end)
                if not piece:
                    piece, fetched = self._fetch(p, self._gap_end(p, end) - p), True
            pieces.append(piece)
            p += len(piece)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if fetched and self._chunks:  # the whole read, as asked: a later prefetch finds it whole
            self._chunks.put(offset, data)
        return data

    def _next_block(self, p: int, end: int) -> int:
        """Where the first cached block after ``p``'s own starts, before ``end`` (else end)."""
        with self._lock:
            for b in range(p // BLOCK + 1, (end - 1) // BLOCK + 1):
                if b in self._blocks:
                    return b * BLOCK
        return end

    def _gap_end(self, p: int, end: int) -> int:
        """Where the bytes missing at ``p`` stop: the next cached or prefetched bytes, or end."""
        stop = self._next_block(p, end)
        with self._lock:
            starts = [s for s in self._data] + [s for s, _ in self._inflight]
        stop = min([stop] + [s for s in starts if p < s < stop])
        if self._chunks:
            stop = self._chunks.next_start(p, stop)
        return stop

    def _fetch_data(self, offset: int, n: int) -> bytes:
        """Chunk bytes, fetched and kept in the chunk cache."""
        data = self._fetch(offset, n)
        if self._chunks:
            self._chunks.put(offset, data)
        return data

    def _from_data_prefix(self, offset: int, end: int) -> bytes:
        with self._lock:
            futures = [f for (start, length), f in self._inflight.items()
                       if start <= offset < start + length]
        for f in futures:
            f.result()
        with self._lock:
            for start, data in self._data.items():
                if start <= offset < start + len(data):
                    self._data.move_to_end(start)
                    return data[offset - start:end - start]
        return b""

    def _read_blocks(self, offset: int, n: int) -> bytes:
        first, last = offset // BLOCK, (offset + n - 1) // BLOCK
        with self._lock:  # (held here: the LRU may evict them while the rest is fetched)
            have = {b: self._blocks[b] for b in range(first, last + 1) if self._whole(b)}
            for b in have:
                if b in self._lru:
                    self._lru.move_to_end(b)
            missing = [b for b in range(first, last + 1) if b not in have]
        # one request per run of contiguous missing blocks
        runs: list[list[int]] = []
        for b in missing:
            if runs and runs[-1][-1] == b - 1:
                runs[-1].append(b)
            else:
                runs.append([b])
        for run in runs:
            start = run[0] * BLOCK
            data = self._fetch(start, min((run[-1] + 1) * BLOCK, self.size) - start)
            with self._lock:
                for i, b in enumerate(run):
                    have[b] = data[i * BLOCK:(i + 1) * BLOCK]
                    self._put_block(b, have[b])
                self._new_blocks = True
        joined = b"".join(have[b] for b in range(first, last + 1))
        skip = offset - first * BLOCK
        return joined[skip:skip + n]

    def _put_block(self, b: int, data: bytes, pin: bool = False) -> None:
        """Cache block ``b`` (under the lock); evict the least recently used past the budget."""
        old = self._blocks.get(b)
        if old is not None and b in self._lru:
            self._block_bytes -= len(old)
            del self._lru[b]
        self._blocks[b] = data
        if pin or b in self._pins:  # (the head's short block, completed later, stays pinned)
            self._pins.add(b)
            return
        self._lru[b] = None
        self._block_bytes += len(data)
        while self._block_bytes > BLOCK_CACHE and len(self._lru) > 1:
            dropped, _ = self._lru.popitem(last=False)
            self._block_bytes -= len(self._blocks.pop(dropped))

    def _pinned(self, b: int) -> bool:
        """Whether block ``b`` is in the head or the tail fetched at open (metadata)."""
        return b * BLOCK < HEAD or (b + 1) * BLOCK > self.size - TAIL

    def _whole(self, b: int) -> bool:
        """Whether block ``b`` is cached in full (the head's block may be shorter)."""
        block = self._blocks.get(b)
        return block is not None and (len(block) == BLOCK or b * BLOCK + len(block) == self.size)

    def _from_data(self, offset: int, n: int, peek: bool = False):
        """The bytes from prefetched data (waiting for an in-flight fetch), else None."""
        with self._lock:
            for (start, length), fut in list(self._inflight.items()):
                if start <= offset and offset + n <= start + length:
                    break
            else:
                fut = None
        if fut is not None:
            if peek:
                return True
            fut.result()
        with self._lock:
            for start, data in reversed(self._data.items()):
                if start <= offset and offset + n <= start + len(data):
                    if peek:
                        return True
                    self._data.move_to_end(start)
                    return data[offset - start:offset - start + n]
        return None

    def _fetch_async(self, offset: int, n: int) -> Future:
        key = (offset, n)
        with self._lock:
            if key in self._inflight:
                return self._inflight[key]
            fut = _pool.submit(self._fetch_into_data, offset, n)
            self._inflight[key] = fut
        return fut

    def _fetch_into_data(self, offset: int, n: int) -> None:
        try:
            # fetched whole unless the disk has all of it (callers count a prefetch's bytes
            # as the chunks': tests/test_arrays.py, tests/test_widgets.py)
            kept = self._chunks.get(offset, offset + n) if self._chunks else None
            data = kept if kept is not None else self._fetch_data(offset, n)
            with self._lock:
                old = self._data.pop(offset, None)
                self._data_bytes -= len(old) if old else 0
                self._data[offset] = data
                self._data_bytes += len(data)
                while self._data_bytes > DATA_CACHE and len(self._data) > 1:
                    _, dropped = self._data.popitem(last=False)
                    self._data_bytes -= len(dropped)
        finally:
            with self._lock:
                self._inflight.pop((offset, n), None)

    # -- HTTP -----------------------------------------------------------------------------
    def _fetch(self, offset: int, n: int) -> bytes:
        return self._get(f"bytes={offset}-{offset + n - 1}", n)[0]

    def _get(self, range_header: str, expect: int | None):
        """GET a range with retries: (body, response). Checks length and ETag."""
        cause = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.1 * 2 ** (attempt - 1), 5.0) * (0.5 + random.random()))
            try:
                r = self._request(range_header)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                cause = f"{type(e).__name__}: {e}"
                continue
            finally:
                with self._lock:
                    self.requests += 1
            body = r.data
            with self._lock:
                self.bytes_fetched += len(body)
            if r.status in (200, 206):
                etag = r.headers.get("ETag", "").strip('"') or None
                with self._lock:
                    self.etag = self.etag or etag
                if etag and etag != self.etag:
                    raise RemoteReadError(
                        f"{self.name} changed on the server ({shown(self.url)}): ETag {etag}, "
                        f"expected {self.etag}; open it again")
                if expect is not None and len(body) != expect:
                    cause = f"truncated response ({len(body)} of {expect} bytes)"
                    continue
                if r.status == 200 and expect is not None:
                    raise RemoteReadError(f"{shown(self.url)} does not support range requests "
                                          f"(reading {self.name})")
                return body, r
            if _retryable_status(r.status):
                cause = f"HTTP {r.status}"
                continue
            raise RemoteReadError(f"reading {self.name} failed: HTTP {r.status} from {shown(self.url)}")
        raise RemoteReadError(f"reading {self.name} ({range_header}) failed after "
                              f"{self.retries + 1} attempts: {cause} ({shown(self.url)})")

    def _request(self, range_header: str):
        """One GET; redirects (the archive's download URL -> S3) are followed once and
        remembered, so later reads go straight to where the bytes are."""
        url, signed = self.url, False  # local: parallel reads may be redirected at once
        for _ in range(6):
            headers = {"Range": range_header}
            if self.signer and url == self.signer[0]:
                headers.update(self.signer[1])  # to the archive only, never to S3
            r = _http.request("GET", url, headers=headers,
                              timeout=urllib3.Timeout(connect=10, read=self.timeout),
                              preload_content=True, redirect=False)
            location = r.headers.get("Location")
            if r.status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                continue
            if r.status in (401, 403) and self.signer and not signed \
                    and url != self.signer[0]:
                url, signed = self.signer[0], True  # the archive signs a URL for us
                continue
            self.url = url
            return r
        raise RemoteReadError(f"too many redirects reading {self.name} ({shown(self.url)})")

    def _fetch_head_and_tail(self) -> None:
        # a suffix range needs no size; with the size known, an explicit range is safer
        # (some S3 servers misread suffix ranges; the Content-Range check catches them)
        # (starting on a block: a tail that starts mid-block would cache only its whole blocks)
        tail_range = (f"bytes={-(-max(0, self.size - TAIL) // BLOCK) * BLOCK}-{self.size - 1}"
                      if self.size else f"bytes=-{TAIL}")
        tail = _pool.submit(self._get, tail_range, None)
        head, r = self._get(f"bytes=0-{HEAD - 1}", None)
        size = _total_size(r) or len(head)
        if self.size and size != self.size:
            raise RemoteReadError(f"{self.name} has {size} bytes at {shown(self.url)}, "
                                  f"the archive says {self.size}")
        self.size = size
        tail_body, tr = tail.result()
        start = _range_start(tr, self.size, len(tail_body))
        if start is None:  # not the tail we asked for: ask again, explicitly
            start = max(0, self.size - TAIL)
            tail_body = self._fetch(start, self.size - start)
        with self._lock:
            for b in range(-(-len(head) // BLOCK)):  # the last one may be short
                self._put_block(b, head[b * BLOCK:(b + 1) * BLOCK], pin=True)
            first = -(-start // BLOCK)
            for b in range(first, -(-self.size // BLOCK)):
                lo = b * BLOCK - start
                if not self._whole(b):
                    self._put_block(b, tail_body[lo:lo + BLOCK], pin=True)
            self._new_blocks = True

    # -- persistence ----------------------------------------------------------------------
    @property
    def cache_key(self) -> str | None:
        digest = self.digest or self.etag
        if not (self._cache_root and digest and self.size):
            return None
        return hashlib.sha256(f"{digest}:{self.size}".encode()).hexdigest()[:32]

    def _lookup_url(self) -> None:
        """ETag and size of a URL seen before (checked again by every response)."""
        if not self._key_from_url:
            return
        try:
            known = json.loads((self._cache_root / "urls" / self._key_from_url).read_text())
            self.digest, self.size = known["digest"], known["size"]
        except (OSError, ValueError, KeyError):
            pass

    def _load_persisted(self) -> bool:
        key = self.cache_key
        if not key:
            return False
        try:
            raw = (self._cache_root / f"{key}.blocks").read_bytes()
            header_len = int.from_bytes(raw[:8], "little")
            header = json.loads(raw[8:8 + header_len])
        except (OSError, ValueError):
            return False
        if header.get("block") != BLOCK or header.get("size") != self.size:
            return False
        pos = 8 + header_len
        with self._lock:
            for b, length in header["blocks"]:
                self._put_block(b, raw[pos:pos + length], pin=self._pinned(b))
                pos += length
        return True

    def save(self) -> None:
        """Persist the metadata blocks (atomically; safe in a shared directory)."""
        key = self.cache_key
        if not key or not self._new_blocks:
            return
        with self._lock:
            blocks = sorted(self._blocks.items())
            self._new_blocks = False
        total, kept = 0, []
        for b, data in blocks:
            if total + len(data) > PERSIST_MAX:
                break
            kept.append((b, data))
            total += len(data)
        header = json.dumps({"block": BLOCK, "size": self.size, "etag": self.etag,
                             "blocks": [[b, len(d)] for b, d in kept]}).encode()
        try:
            (self._cache_root / "urls").mkdir(parents=True, exist_ok=True)
            path = self._cache_root / f"{key}.blocks"
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as f:
                f.write(len(header).to_bytes(8, "little"))
                f.write(header)
                f.writelines(d for _, d in kept)
            os.replace(tmp, path)
            url_entry = self._cache_root / "urls" / self._key_from_url
            url_entry.write_text(json.dumps({"url": shown(self.url), "size": self.size,
                                             "digest": self.digest or self.etag}))
            note_written(total)
        except OSError:
            pass  # a cache that cannot be written is only slower


class _ChunkStore:
    """Chunk bytes of one file on disk: one file ``<offset>-<length>`` per fetched range,
    holding a JSON header (its range, a CRC32 per ``SEGMENT``) and the bytes. What is on
    disk is listed once per RemoteFile, before its first write."""

    MAGIC = b"DLCHUNK1"

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._index: list[tuple[int, int]] | None = None  # sorted (start, stop) of the files
        self._writable: bool | None = None

    def _entries(self) -> list[tuple[int, int]]:
        if self._index is None:
            found = []
            with contextlib.suppress(OSError):
                for name in os.listdir(self.folder):
                    a, _, n = name.partition("-")
                    if a.isdigit() and n.isdigit():
                        found.append((int(a), int(a) + int(n)))
            self._index = sorted(found)
        return self._index

    def prefix(self, p: int, end: int) -> bytes:
        """The cached bytes from ``p`` on (up to ``end``), verified; b"" if none."""
        with self._lock:
            entries = self._entries()
            i = bisect.bisect_right(entries, (p, float("inf")))
            covering = [e for e in entries[max(0, i - 8):i] if e[1] > p]
        for start, stop in sorted(covering, key=lambda e: -e[1]):
            data = self._read(start, stop, p, min(stop, end))
            if data is not None:
                return data
        return b""

    def get(self, a: int, b: int) -> bytes | None:
        """Bytes ``[a, b)`` if the files on disk hold all of them (end to end), else None."""
        pieces, p = [], a
        while p < b:
            piece = self.prefix(p, b)
            if not piece:
                return None
            pieces.append(piece)
            p += len(piece)
        return b"".join(pieces)

    def next_start(self, p: int, stop: int) -> int:
        """Where the first cached range after ``p`` starts, if before ``stop``."""
        with self._lock:
            entries = self._entries()
            i = bisect.bisect_right(entries, (p, float("inf")))
            return min(stop, entries[i][0]) if i < len(entries) else stop

    def _read(self, start: int, stop: int, a: int, b: int) -> bytes | None:
        try:
            fd = os.open(self.folder / f"{start}-{stop - start}", os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            self._forget(start, stop)  # trimmed
            return None
        try:
            st = os.fstat(fd)
            if not trusted(st):  # another user could have written anything in it
                return None
            magic, header_len = os.pread(fd, 16, 0)[:8], int.from_bytes(os.pread(fd, 8, 8), "little")
            header = json.loads(os.pread(fd, header_len, 16))
            base, seg, crcs = 16 + header_len, header["segment"], header["crc"]
            if (magic != self.MAGIC or header["offset"] != start
                    or header["length"] != stop - start or st.st_size != base + stop - start):
                raise ValueError("not this range")
            s0, s1 = (a - start) // seg, (b - 1 - start) // seg
            lo, hi = s0 * seg, min((s1 + 1) * seg, stop - start)
            raw = os.pread(fd, hi - lo, base + lo)
            view = memoryview(raw)  # (checked without copies)
            if len(raw) != hi - lo or any(
                    zlib.crc32(view[(s - s0) * seg:(s - s0 + 1) * seg]) != crcs[s]
                    for s in range(s0, s1 + 1)):
                raise ValueError("checksum")
            with contextlib.suppress(OSError):
                os.utime(fd)  # recently used: trimmed last
            skip = a - start - lo
            return raw if skip == 0 and b - a == len(raw) else raw[skip:skip + b - a]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            self._forget(start, stop)
            with contextlib.suppress(OSError):
                os.remove(self.folder / f"{start}-{stop - start}")  # ours (checked), broken
            return None
        finally:
            os.close(fd)

    def _forget(self, start: int, stop: int) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._entries().remove((start, stop))

    def put(self, offset: int, data: bytes) -> None:
        """Keep ``data`` (atomically: readers see a whole file or none)."""
        if self._writable is None:
            self._writable = private_dir(self.folder.parent) is not None \
                and private_dir(self.folder) is not None
        if not self._writable or not data:
            return
        with self._lock:
            # listed before the first write: a file reads back what earlier opens kept, not
            # what it fetched itself (its memory caches decide what it keeps of that)
            self._entries()
        view = memoryview(data)
        crcs = [zlib.crc32(view[i:i + SEGMENT]) for i in range(0, len(data), SEGMENT)]
        header = json.dumps({"offset": offset, "length": len(data), "segment": SEGMENT,
                             "crc": crcs}).encode()
        path = self.folder / f"{offset}-{len(data)}"
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")  # mode 0600
            with open(fd, "wb") as f:
                f.write(self.MAGIC + len(header).to_bytes(8, "little") + header)
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.remove(tmp)
            return  # a cache that cannot be written is only slower
        note_written(len(data))


def shown(url: str) -> str:
    """A URL as messages may show it: without its query (a signed URL's signature)."""
    return url.split("?", 1)[0] + ("?..." if "?" in url else "")


def _total_size(r) -> int | None:
    content_range = r.headers.get("Content-Range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = r.headers.get("Content-Length")
    return int(length) if length and r.status == 200 else None


def _range_start(r, size: int, length: int) -> int | None:
    """Where a response's body starts, if it ends the file as a tail must; else None."""
    if r.status == 200 and length == size:
        return 0
    try:
        first, last = r.headers.get("Content-Range", "").split()[1].split("/")[0].split("-")
    except (IndexError, ValueError):
        return None
    if int(last) != size - 1 or int(last) - int(first) + 1 != length:
        return None
    return int(first)


def _coalesce(ranges, limit: int) -> list[tuple[int, int]]:
    """Sorted, merged ``(start, stop)`` spans of ``(offset, length)`` ranges, each <= limit."""
    spans: list[list[int]] = []
    for offset, length in sorted(ranges):
        if spans and offset <= spans[-1][1] and offset + length - spans[-1][0] <= limit:
            spans[-1][1] = max(spans[-1][1], offset + length)
        else:
            spans.append([offset, offset + length])
    return [(a, b) for a, b in spans]


_h5_files: weakref.WeakSet = weakref.WeakSet()


def open_h5(remote: RemoteFile):
    """``h5py.File(remote)``, closed before the interpreter exits if it is still open.

    HDF5 closes the files still open when the process exits, after Python has been
    finalised; for a file over a Python object (h5py's fileobj driver) that close calls
    back into Python and the process dies with SIGSEGV. A kernel or script that never
    closed a file it streamed would crash on exit; this closes such files while Python
    still runs.
    """
    import h5py

    from .codec import register_plugins

    register_plugins()  # Blosc, Zstd, bitshuffle...: h5py decodes what dandilab.codec does not
    _external_links_open_files_by_name()
    h5file = h5py.File(remote, "r")
    _h5_files.add(h5file)
    return h5file


@functools.cache
def _external_links_open_files_by_name() -> None:
    """Make h5py open an external link's target file by its name with the default driver.

    h5py passes no link access list, so HDF5 opens the target with the parent's file
    access list: for a file over a Python object that is the parent's own object, and a
    link to "raw.nwb:/acquisition/x" silently read the streamed file's /acquisition/x. With
    a plain access list the target is the named local file, or a KeyError ("unable to
    open external file, external link file name = ...") when there is none; local files
    are unaffected (their parent's access list is that default).
    """
    import h5py
    from h5py._hl import base

    if base.dlapl is None:
        lapl = h5py.h5p.create(h5py.h5p.LINK_ACCESS)
        lapl.set_elink_fapl(h5py.h5p.create(h5py.h5p.FILE_ACCESS))
        base.dlapl = lapl


@atexit.register
def _close_h5_files() -> None:
    for h5file in list(_h5_files):
        with contextlib.suppress(Exception):  # exiting: close what can be closed
            if h5file.id.valid:
                h5file.close()


def source_of(h5file) -> RemoteFile | None:
    """The RemoteFile under an h5py File opened by dandilab, else None."""
    return _open_files.get(h5file.filename)
