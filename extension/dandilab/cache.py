"""Where dandilab keeps what it may keep: one directory, shared between processes.

``DANDILAB_CACHE_DIR`` overrides the default (the user's cache directory); on the
hub a shared directory lets every user reuse what anyone already fetched, since
everything in it is keyed by content digests of immutable blobs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "clear_cache"]


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
