"""Where dandilab keeps what it may keep: one directory, shared between processes.

``DANDILAB_CACHE_DIR`` overrides the default (the user's cache directory); on the
hub a shared directory lets every user reuse what anyone already fetched, since
everything in it is keyed by content digests of immutable blobs.

It holds at most ``$DANDILAB_CACHE_MB`` megabytes (default 4000): writers call
``trim_sometimes()``, which at most every ten minutes per process removes the oldest
files in a background thread (readers treat a vanished file as not cached).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "clear_cache", "trim"]

TRIM_EVERY = 600.0  # seconds between a process's trims
_last_trim = -TRIM_EVERY


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
    threading.Thread(target=trim, name="dandilab-cache-trim", daemon=True).start()
