"""Where dandilab keeps what it may keep: one directory, shared between processes.

``DANDILAB_CACHE_DIR`` overrides the default (the user's cache directory); on the
hub a shared directory lets every user reuse what anyone already fetched, since
everything in it is keyed by content digests of immutable blobs.

It holds at most ``$DANDILAB_CACHE_MB`` megabytes (default 4000): writers call
``trim_sometimes()``, which at most every ten minutes per process removes the oldest
files in a background thread (readers treat a vanished file as not cached); a process
that wrote a tenth of the budget since its last trim trims at once (a long scan can
write gigabytes within ten minutes).

Files holding data that is read back as is (the chunk cache) are private: written
0600 in folders made 0700, and read only when ``trusted()`` (ours, writable by no one
else), since hubs may put several users on one machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "clear_cache", "private_dir", "trim", "trusted"]

TRIM_EVERY = 600.0  # seconds between a process's trims
_last_trim = -TRIM_EVERY
_written = 0  # bytes this process wrote since its last trim
_trimming = threading.Lock()


def cache_dir(explicit: str | Path | bool | None = None) -> Path:
    """The cache directory: ``explicit``, else ``$DANDILAB_CACHE_DIR``, else the user's."""
    if explicit not in (None, True):
        return Path(explicit)
    env = os.environ.get("DANDILAB_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("dandilab"))


def clear_cache(explicit: str | Path | None = None) -> None:
    """Remove everything dandilab cached (the next opens are cold again)."""
    shutil.rmtree(cache_dir(explicit), ignore_errors=True)


def budget() -> int:
    """The most bytes the cache may hold (``$DANDILAB_CACHE_MB``, default 4000)."""
    return int(float(os.environ.get("DANDILAB_CACHE_MB", "4000")) * 1e6)


def trim(explicit: str | Path | None = None, limit: int | None = None) -> int:
    """Remove the oldest files (by modification time) until the cache holds at most
    ``limit`` bytes (default: ``budget()``); returns the bytes removed."""
    limit = budget() if limit is None else limit
    files = []
    for folder, _, names in os.walk(cache_dir(explicit)):
        for name in names:
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                st = os.stat(path)
                files.append((st.st_mtime, st.st_size, path))
    excess = sum(size for _, size, _ in files) - limit
    removed = 0
    for _, size, path in sorted(files):
        if removed >= excess:
            break
        with contextlib.suppress(OSError):
            os.remove(path)
            removed += size
    return removed


def trim_sometimes() -> None:
    """``trim()`` in a background thread, at most every ``TRIM_EVERY`` seconds."""
    global _last_trim
    now = time.monotonic()
    if now - _last_trim < TRIM_EVERY:
        return
    _last_trim = now
    threading.Thread(target=_trim_once, name="dandilab-cache-trim", daemon=True).start()


_again = False  # a trim was asked for while one ran


def _trim_once() -> None:
    global _again
    if not _trimming.acquire(blocking=False):  # one trim at a time per process...
        _again = True  # ...which runs once more for what was written meanwhile
        return
    try:
        while True:
            _again = False
            trim()
            if not _again:
                break
    finally:
        _trimming.release()


def note_written(nbytes: int) -> None:
    """Count bytes written to the cache: past a tenth of the budget, trim now."""
    global _written, _last_trim
    _written += nbytes
    if _written > budget() // 10:
        _written = 0
        _last_trim = -TRIM_EVERY
    trim_sometimes()


def trusted(st: os.stat_result) -> bool:
    """Whether a cached file (its ``os.fstat``) may be read: ours, and no one else may write it."""
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def private_dir(path: Path) -> Path | None:
    """``path`` made (mode 0700) if needed; None if it is not ours alone to write."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISDIR(st.st_mode) and trusted(st) else None
