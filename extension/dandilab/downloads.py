"""Download an asset (a file or a whole zarr), resumable, checked, with a progress bar.

Streaming is the point of dandilab, but some work wants a local copy (a tool that needs
a path, a file read many times over). ``download(asset)`` (or ``asset.download()``)
writes ``<to>/<asset path>`` through dandi's own download iterators (the archive's
download URL, redirected to S3), shows a tqdm progress bar, resumes an interrupted
download from its ``.part`` file, retries a broken connection from where it stopped,
checks the size and the archive's digest (sha256 or DANDI etag) before the file takes
its final name, and skips a file already downloaded. Errors name the asset and the cause;
what was downloaded stays in the ``.part`` file for the next attempt.

An asset's path comes from the archive, so it is checked before anything is written: a path
that is absolute, has '..' parts, NUL or control characters, backslashes, or that leads out of
``to`` through a symlink already there is refused (``UnsafePathError``) and nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from requests.exceptions import ChunkedEncodingError, HTTPError, Timeout
from requests.exceptions import ConnectionError as RequestsConnectionError

__all__ = ["DownloadError", "UnsafePathError", "download"]

ATTEMPTS = int(os.environ.get("DANDILAB_RETRIES", "6"))
PROGRESS_DELAY = 0.5  # seconds before a bar shows: quick downloads stay quiet
_BROKEN = (ChunkedEncodingError, RequestsConnectionError, Timeout, OSError)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows


class DownloadError(OSError):
    """A download failed after retries or its content does not match the archive's digest."""


class UnsafePathError(DownloadError):
    """An asset path from the archive that would be written outside the target folder."""


def _unsafe(path: str) -> str | None:
    """Why ``path`` (an archive's '/'-separated relative path) may not be joined to a folder."""
    if not path:
        return "is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "contains NUL or control characters"
    if "\\" in path:  # a separator on Windows; on POSIX no DANDI path needs one
        return "contains a backslash"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has '..', '.' or empty parts"
    return None


def _target(root: Path, path: str) -> Path:
    """``root / path``, refused unless it stays inside ``root`` with symlinks resolved."""
    reason = _unsafe(path)
    if reason is None:
        real_root = root.resolve()
        target = real_root / path
        # the target and its .part, each through any symlink already on disk
        for candidate in (target, target.with_name(target.name + ".part")):
            if real_root not in candidate.resolve().parents:
                reason = f"leads out of {root} through a symlink"
                break
    if reason:
        raise UnsafePathError(f"Refusing to download {path!r}: the archive's path {reason}, "
                              f"so the file could land outside {root}. Nothing was written; "
                              "report the asset to the archive.")
    return root / path


def download(asset, to: str | os.PathLike = ".", *, progress: bool = True) -> Path:
    """Download ``asset`` to ``to/<asset.path>``; returns that path (see the module docstring)."""
    from tqdm.auto import tqdm

    root = Path(to)
    target = _target(root, asset.path)
    # every file's place is checked before the first byte is written
    files = []
    if asset.is_zarr:
        for entry in asset.remote.iterfiles():
            name = f"{asset.path}/{entry}"
            files.append((entry, name, _target(root, name)))
    with tqdm(total=asset.size, unit="B", unit_scale=True, unit_divisor=1024,
              desc=Path(asset.path).name, disable=not progress, delay=PROGRESS_DELAY) as bar:
        if asset.is_zarr:
            for entry, name, path in files:
                digest = entry.digest.value  # S3's ETag: an MD5 unless uploaded in parts
                _one(name, entry.get_download_file_iter(), path, entry.size,
                     {"md5": digest} if digest and "-" not in digest else {}, bar)
        else:
            _one(asset.path, asset.remote.get_download_file_iter(), target, asset.size,
                 _digests(asset), bar)
    return target


def _digests(asset) -> dict[str, str]:
    found = asset.metadata.get("digest") or {}
    out = {}
    if found.get("dandi:sha2-256"):
        out["sha256"] = found["dandi:sha2-256"]
    if found.get("dandi:dandi-etag"):
        out["dandi-etag"] = found["dandi:dandi-etag"]
    return out


def _one(name: str, downloader, target: Path, size: int, digests: dict, bar) -> None:
    if target.exists() and target.stat().st_size == size and _matches(target, digests):
        bar.update(size)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for restart in range(2):  # a .part that does not check out is downloaded again once
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        bar.update(have)
        _fetch(name, downloader, part, have, size, bar)
        if _matches(part, digests):
            os.replace(part, target)
            return
        part.unlink()
        bar.update(-size)
    raise DownloadError(f"{name}: the downloaded bytes do not match the archive's digest "
                        f"{digests}, twice. The file on the archive's storage may be damaged; "
                        "report it to the archive.")


def _fetch(name: str, downloader, part: Path, have: int, size: int, bar) -> None:
    cause = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))
        try:
            # O_NOFOLLOW: a symlink put in place of the .part since the check is not followed
            fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o666)
            with open(fd, "ab") as out:
                for chunk in downloader(have) if have < size else ():
                    out.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
            if have == size:
                return
            cause = f"the connection closed after {have} of {size} bytes"
        except HTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status is not None and status < 500 and status not in (408, 429):
                raise DownloadError(f"{name}: the archive answered HTTP {status} "
                                    f"({e}); nothing was lost: {part} keeps {have} bytes") from None
            cause = f"HTTP {status}"
        except _BROKEN as e:
            cause = f"{type(e).__name__}: {e}"
        have = part.stat().st_size
    raise DownloadError(f"{name}: download failed after {ATTEMPTS} attempts ({cause}). "
                        f"{part} keeps the {have} bytes downloaded so far; run the same "
                        "download again to resume.")


def _matches(path: Path, digests: dict) -> bool:
    if "sha256" in digests:
        return _hash(path, hashlib.sha256()) == digests["sha256"]
    if "md5" in digests:
        return _hash(path, hashlib.md5(usedforsecurity=False)) == digests["md5"]
    if "dandi-etag" in digests:
        from dandi.support.digests import get_dandietag

        return get_dandietag(path).as_str() == digests["dandi-etag"]
    return True  # no digest on record: the size was checked


def _hash(path: Path, h) -> str:
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()
