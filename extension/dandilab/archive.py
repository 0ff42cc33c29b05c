"""Dandisets, versions and assets for users, on top of dandi's ``DandiAPIClient``.

    archive = Archive()                            # $DANDI_API_URL / $DANDI_API_KEY
    ds = archive.dandiset("000004")                # latest published, else draft
    for asset in ds.assets(glob="sub-*/*.nwb"): ...
    asset = ds.asset("sub-X/sub-X_ses-Y.nwb")
    nwb = asset.open()                             # dandilab.open_nwb(asset)
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import cached_property

# dandi's client asks a remote service whether it is up to date at construction:
# on the hub (and offline) that is a slow request to a host we do not need.
os.environ.setdefault("DANDI_NO_ET", "1")

from dandi.dandiapi import DandiAPIClient, RemoteAsset, RemoteDandiset
from dandi.exceptions import HTTP404Error, NotFoundError
from requests.exceptions import ChunkedEncodingError, Timeout
from requests.exceptions import ConnectionError as RequestsConnectionError

__all__ = ["PUBLIC_API_URL", "Archive", "ArchiveUnavailable", "Asset", "Dandiset", "NotFound"]

PUBLIC_API_URL = "https://api.dandiarchive.org/api"
DRAFT = "draft"
_DANDISET_ID = re.compile(r"^\d{6}$")


class NotFound(LookupError):
    """A Dandiset, version or asset the archive does not have (the message says which)."""


class ArchiveUnavailable(OSError):
    """The archive's API did not answer (or broke off its answer) even after retries."""


# dandi's client retries error statuses itself, but not an answer cut off mid-body.
_TRANSIENT = (ChunkedEncodingError, RequestsConnectionError, Timeout)
_ATTEMPTS = 4
# dandi's client sends its requests with no time limit (and retries them): each call to the
# archive gives up after this many seconds instead, saying so.
ARCHIVE_TIMEOUT = float(os.environ.get("DANDILAB_ARCHIVE_TIMEOUT", "60"))


def _bounded(url: str, what: str, fn: Callable, timeout: float | None = None):
    """``fn()`` in a thread of its own, given up (the thread left to finish) after
    ``timeout`` seconds with an ArchiveUnavailable that names the archive and the setting."""
    timeout = ARCHIVE_TIMEOUT if timeout is None else timeout
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = e

    worker = threading.Thread(target=run, name=f"dandilab-archive {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ArchiveUnavailable(
            f"The DANDI archive at {url} did not answer {what} within {timeout:g} s. It may "
            "be down or unreachable: check the URL and the network, then try again (the "
            "limit is DANDILAB_ARCHIVE_TIMEOUT, in seconds).")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _call(url: str, what: str, fn: Callable):
    """``fn()``, retried when the connection breaks, within ARCHIVE_TIMEOUT; then a clear
    error naming the archive."""
    return _bounded(url, what, lambda: _retried(url, what, fn))


def _retried(url: str, what: str, fn: Callable):
    for attempt in range(_ATTEMPTS):
        try:
            return fn()
        except _TRANSIENT as e:
            if attempt == _ATTEMPTS - 1:
                raise ArchiveUnavailable(
                    f"The DANDI archive at {url} did not answer {what} after {_ATTEMPTS} "
                    f"attempts ({type(e).__name__}). Check the network, then try again."
                ) from None
            time.sleep(0.2 * 2**attempt)
    return None  # not reached


class Archive:
    """A DANDI archive: ``url`` (its API), ``token`` (an API key, for embargoed data)."""

    def __init__(self, url: str | None = None, token: str | None = None):
        self.url = (url or os.environ.get("DANDI_API_URL") or PUBLIC_API_URL).rstrip("/")
        token = token or os.environ.get("DANDI_API_KEY") or None
        self.token = token  # for the archive only: signs URLs of embargoed bytes
        self.client = _bounded(self.url, "for its server info (/info/)",
                               lambda: self._client(token))

    def _client(self, token: str | None) -> DandiAPIClient:
        # dandi's client asks an archive it does not know for its /info/ at construction and
        # turns any failure into a RuntimeError: retried, then said in our words.
        for attempt in range(_ATTEMPTS):
            try:
                return DandiAPIClient(api_url=self.url, token=token)
            except RuntimeError as e:
                if "Could not retrieve server info" not in str(e):
                    raise
            if attempt < _ATTEMPTS - 1:
                time.sleep(0.2 * 2**attempt)
        raise ArchiveUnavailable(
            f"The DANDI archive at {self.url} did not answer for its server info (/info/) "
            f"after {_ATTEMPTS} attempts. Check the URL and the network, then try again."
        )

    def __repr__(self) -> str:
        return f"Archive({self.url!r})"

    def dandiset(self, identifier: str, version: str | None = None) -> Dandiset:
        """Dandiset ``identifier`` at ``version`` ("draft", "0.YYMMDD.HHMM", or None: the
        latest published version, else the draft)."""
        identifier = str(identifier).removeprefix("DANDI:")
        if not _DANDISET_ID.match(identifier):
            raise ValueError(f"{identifier!r} is not a Dandiset identifier (six digits)")
        try:
            remote = _call(self.url, f"for Dandiset {identifier}",
                           lambda: self.client.get_dandiset(identifier, lazy=False))
        except (NotFoundError, HTTP404Error):
            raise NotFound(f"Dandiset {identifier} does not exist on {self.url}") from None
        if version is not None and version != remote.version_id:
            try:
                base = remote
                if version == DRAFT:
                    remote = base.for_version(base.draft_version)
                else:
                    remote = _call(self.url, f"for version {version} of {identifier}",
                                   lambda: base.for_version(base.get_version(version)))
            except (NotFoundError, HTTP404Error):
                raise NotFound(f"Dandiset {identifier} has no version {version} "
                               f"on {self.url}") from None
        return Dandiset(self, remote)

    def asset(self, asset_id: str) -> Asset:
        """The asset with this identifier (a UUID), whatever Dandiset it is in."""
        try:
            return Asset(self, _call(self.url, f"for asset {asset_id}",
                                     lambda: self.client.get_asset(asset_id)))
        except (NotFoundError, HTTP404Error):
            raise NotFound(f"Asset {asset_id} does not exist on {self.url}") from None


class Dandiset:
    """One version of a Dandiset: ``identifier``, ``version``, ``assets()``, ``asset(path)``."""

    def __init__(self, archive: Archive, remote: RemoteDandiset):
        self.archive = archive
        self.remote = remote

    identifier = property(lambda self: self.remote.identifier)
    version = property(lambda self: self.remote.version_id)

    def __repr__(self) -> str:
        return f"<Dandiset {self.identifier}/{self.version} on {self.archive.url}>"

    @cached_property
    def metadata(self) -> dict:
        return _call(self.archive.url, f"for the metadata of {self}", self.remote.get_raw_metadata)

    def assets(self, glob: str | None = None) -> Iterator[Asset]:
        """Its assets (all, or those whose path matches ``glob``), page by page."""
        remote = self.remote.get_assets_by_glob(glob) if glob else self.remote.get_assets()
        what, done = f"for the assets of {self}", object()
        try:
            # one page at a time, each within the time limit (a generator cannot be retried)
            while (asset := _bounded(self.archive.url, what, lambda: next(remote, done))) \
                    is not done:
                yield Asset(self.archive, asset, self)
        except (NotFoundError, HTTP404Error):
            raise NotFound(f"{self} does not exist") from None

    def asset(self, path: str) -> Asset:
        try:
            remote = _call(self.archive.url, f"for asset {path!r} of {self}",
                           lambda: self.remote.get_asset_by_path(path))
            return Asset(self.archive, remote, self)
        except (NotFoundError, HTTP404Error):
            raise NotFound(f"Dandiset {self.identifier} version {self.version} has no asset "
                           f"{path!r} on {self.archive.url}") from None


class Asset:
    """A file (blob) or zarr of a Dandiset: ``path``, ``size``, ``identifier``, ``s3_url``,
    ``digest``; ``open()`` reads it lazily."""

    def __init__(self, archive: Archive, remote: RemoteAsset, dandiset: Dandiset | None = None):
        self.archive = archive
        self.remote = remote
        self.dandiset = dandiset

    identifier = property(lambda self: self.remote.identifier)
    path = property(lambda self: self.remote.path)
    size = property(lambda self: self.remote.size)

    def __repr__(self) -> str:
        where = f"{self.dandiset.identifier}/{self.dandiset.version}/" if self.dandiset else ""
        return f"<Asset {where}{self.path} ({self.size} bytes)>"

    @cached_property
    def metadata(self) -> dict:
        return _call(self.archive.url, f"for the metadata of {self}", self.remote.get_raw_metadata)

    @property
    def is_zarr(self) -> bool:
        return getattr(self.remote, "zarr", None) is not None

    @property
    def digest(self) -> str | None:
        """The content digest that keys caches (zarr checksum or DANDI etag)."""
        digests = self.metadata.get("digest") or {}
        return digests.get("dandi:dandi-zarr-checksum") or digests.get("dandi:dandi-etag")

    @property
    def s3_url(self) -> str:
        """The object's (or zarr's) URL on the archive's S3, else its download URL."""
        urls = self.metadata.get("contentUrl") or []
        api = self.archive.url.lower()
        for url in urls:
            if not url.lower().startswith(api):
                return url
        if urls:
            return urls[0]
        raise NotFound(f"{self} has no contentUrl in its metadata on {self.archive.url}")

    def download(self, to=".", *, progress: bool = True):
        """A local copy at ``to/<path>``: resumable, checked against the archive's digest,
        with a progress bar (``dandilab.downloads``). Returns its path. A path that would
        land outside ``to`` ('..', absolute, a symlink out) is refused before anything is
        written (``dandilab.downloads.UnsafePathError``)."""
        from .downloads import download

        return download(self, to, progress=progress)

    def open(self, **kwargs):
        """``open_zarr(self)`` for a zarr, else ``open_nwb(self)``."""
        from .stream import open_nwb, open_zarr

        return open_zarr(self, **kwargs) if self.is_zarr else open_nwb(self, **kwargs)
