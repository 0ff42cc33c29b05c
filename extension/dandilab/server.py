"""jupyter_server extension: the REST API behind the DANDI side panel.

The DANDI API key never reaches the browser: handlers call the archive from
the server, with ``DANDI_API_KEY``, and return the archive's answers. Every
input is checked here before anything is sent to the archive or written to
disk. ``openapi.yaml`` beside this module describes the routes; in short,
under ``{base_url}dandi/api/``:

``GET info``                          archive URL, whether there is a key, and its account
``GET openapi.yaml``                  the OpenAPI description of these routes
``GET dandisets``                     search (the archive's ``GET /dandisets/`` page)
``GET dandisets/ID``                  one Dandiset (draft and latest published version)
``GET dandisets/ID/versions``         its versions
``GET dandisets/ID/versions/V``       a version: summary and metadata
``GET dandisets/ID/versions/V/paths`` one folder of its asset tree (``path_prefix=``)
``GET dandisets/ID/versions/V/assets/ASSET``  an asset: record and metadata
``GET|POST downloads``, ``GET|DELETE downloads/ID``  downloads into the home directory

GETs accept ``archive=URL`` (POST downloads: ``"archive"``) to use another archive; it is
then called without the server's key. Only archives this server is configured for may be
called (no request to any other host can be triggered through the panel, e.g. by a
cross-site link): the server's own ``DANDI_API_URL``, the public DANDI archives
(``KNOWN_ARCHIVES``) and those listed in ``c.DandiLab.allowed_archives``. Errors are JSON:
``{"message", "reason"}`` (400 ``invalid`` for bad input, never a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import url_concat
from tornado.simple_httpclient import HTTPTimeoutError
from traitlets import List, Unicode
from traitlets.config import Configurable

from . import __version__

DEFAULT_ARCHIVE_URL = "https://api.dandiarchive.org/api"
#: The public DANDI archives (dandi's own known instances): callable without configuration.
KNOWN_ARCHIVES = (
    DEFAULT_ARCHIVE_URL,
    "https://api.sandbox.dandiarchive.org/api",
    "https://api-staging.dandiarchive.org/api",
)
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 30.0
#: A download that receives nothing for this long has stalled and fails (it can be resumed).
STALL_TIMEOUT = 60.0
#: Downloads running at once; later ones wait their turn.
PARALLEL_DOWNLOADS = 2
#: Where unfinished downloads are kept, under the home directory (hidden from the file browser).
PARTIAL_DIR = ".dandi-downloads"
#: Where "Download to home" puts an asset, under the home directory, unless told otherwise.
DOWNLOAD_DIR = "dandi"

MAX_SEARCH_LENGTH = 200
MAX_PAGE = 100_000
MAX_PAGE_SIZE = 1000  # the archive's own limit
MAX_URL_LENGTH = 2048
MAX_PATH_LENGTH = 1024
MAX_NAME_BYTES = 255  # one file or folder name on Linux and macOS file systems
# The archive's orderings for GET /dandisets/ ("-" for descending).
ORDERINGS = frozenset(
    f"{sign}{field}" for sign in ("", "-") for field in ("id", "name", "modified", "size", "stars")
)
DANDISET_ID = re.compile(r"\d{6}")
VERSION = re.compile(r"draft|\d+\.\d{6}\.\d{4}")
ASSET_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DOWNLOAD_ID = re.compile(r"[0-9a-f]{32}")
OPENAPI = Path(__file__).with_name("openapi.yaml")


class DandiLab(Configurable):
    """Settings of the DANDI panel's server extension (``c.DandiLab.*`` in jupyter_server's
    configuration)."""

    allowed_archives = List(
        Unicode(),
        help="DANDI API URLs (such as https://dandi.example.org/api) the panel may call besides "
        "the server's DANDI_API_URL and the public DANDI archives (KNOWN_ARCHIVES). They are "
        "called without the server's API key.",
    ).tag(config=True)


def _archive_key(url: str) -> tuple[str, str, int | None, str]:
    """What makes two spellings of an archive URL the same archive."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        port = -1
    port = port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/"))


class InvalidRequest(ValueError):
    """A request the panel API refuses (answered with 400, or ``status``)."""

    def __init__(self, message: str, status: int = 400, reason: str = "invalid"):
        super().__init__(message)
        self.status, self.reason = status, reason


class ArchiveError(Exception):
    """The archive could not answer usefully; ``status`` and ``reason`` are what we answer.

    ``reason`` is one of: unreachable, timeout, not-found, unauthorized, key-refused,
    rate-limited, invalid, archive-error.
    """

    def __init__(
        self,
        status: int,
        message: str,
        archive_status: int | None = None,
        reason: str = "archive-error",
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        #: The archive's HTTP status, None when it did not answer at all.
        self.archive_status = archive_status


@dataclass(frozen=True)
class ArchiveEndpoint:
    """Which archive to call, and the API key to call it with (None: anonymously)."""

    url: str
    api_key: str | None = None
    #: Other archives that may be named (``with_override``), besides this one and KNOWN_ARCHIVES.
    allowed: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] = os.environ, allowed: tuple[str, ...] = ()
    ) -> ArchiveEndpoint:
        """The archive the spawner configured: DANDI_API_URL and DANDI_API_KEY."""
        url = environ.get("DANDI_API_URL", "").strip() or DEFAULT_ARCHIVE_URL
        key = environ.get("DANDI_API_KEY", "").strip() or None
        return cls(url.rstrip("/"), key, tuple(allowed))

    def with_override(self, url: object) -> ArchiveEndpoint:
        """This endpoint, or another archive named by the user (without our key), if allowed."""
        if url is None:
            return self
        if not isinstance(url, str):
            raise InvalidRequest(
                f"archive must be a string (an archive API URL such as {DEFAULT_ARCHIVE_URL}), "
                f"not {type(url).__name__}"
            )
        url = url.strip().rstrip("/")
        if not url or url == self.url:
            return self
        parts = urlsplit(url) if len(url) <= MAX_URL_LENGTH else None
        if (
            parts is None
            or not url.isascii()
            or any(ord(c) < 33 or ord(c) == 127 for c in url)
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.password
            or parts.query
            or parts.fragment
        ):
            raise InvalidRequest(f"archive must be an http(s) URL such as {DEFAULT_ARCHIVE_URL}")
        key = _archive_key(url)
        if key == _archive_key(self.url):
            return self
        for known in (*KNOWN_ARCHIVES, *self.allowed):
            if key == _archive_key(known):
                return ArchiveEndpoint(known.strip().rstrip("/"), None, self.allowed)
        raise InvalidRequest(
            f"archive {url[:100]!r} is not one this server may call: only its own "
            f"({self.url}), the public DANDI archives ({', '.join(KNOWN_ARCHIVES)}) and those "
            "listed in the server's c.DandiLab.allowed_archives setting. Ask the hub's "
            "administrators to add it there.",
            reason="archive-not-allowed",
        )


# --- the one place this extension calls the archive ------------------------------------


def _detail(body: bytes) -> str:
    """The archive's error text (DRF puts it in "detail"), short."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return json.dumps(data)[:200]


def _refusal(endpoint: ArchiveEndpoint, code: int, detail: str, what: str | None) -> ArchiveError:
    """The archive said 401/403: an embargoed resource, or a key it does not accept."""
    where = f"the DANDI archive at {endpoint.url}"
    if endpoint.api_key and (code == 401 or what is None):
        message = (
            f"{where} refused the server's DANDI API key (HTTP {code}: {detail}). "
            "Check DANDI_API_KEY, or sign in to the hub again."
        )
        return ArchiveError(502, message, code, "key-refused")
    if what is None:
        message = f"{where} refused an anonymous request (HTTP {code}: {detail})."
    elif endpoint.api_key:
        message = (
            f"{what} is embargoed, and the DANDI account this server uses may not see it "
            f"(HTTP {code}: {detail}). Ask its owners for access."
        )
    else:
        message = (
            f"{what} is embargoed: only its owners may see it, and this server has no DANDI "
            "API key. Sign in to the hub with a DANDI account that owns it (or set "
            "DANDI_API_KEY in the server's environment)."
        )
    return ArchiveError(403, message, code, "unauthorized")


async def archive_get(
    endpoint: ArchiveEndpoint,
    path: str,
    params: Mapping[str, str | int] | None = None,
    *,
    what: str | None = None,
    redirect: bool = False,
) -> Any:
    """GET ``{archive}/{path}``: its JSON, or with ``redirect`` the URL it redirects to.

    The one place this extension calls the archive; any failure is an ArchiveError
    whose message names the archive (and ``what`` was asked for, e.g. "Dandiset
    000006"). Redirects are not followed, so the key is only ever sent to the
    archive itself.
    """
    url = url_concat(f"{endpoint.url}/{path.lstrip('/')}", dict(params or {}))
    headers = {"Accept": "application/json", "User-Agent": f"dandilab/{__version__}"}
    if endpoint.api_key:
        headers["Authorization"] = f"token {endpoint.api_key}"
    request = HTTPRequest(
        url,
        headers=headers,
        connect_timeout=CONNECT_TIMEOUT,
        request_timeout=REQUEST_TIMEOUT,
        follow_redirects=False,
    )
    where = f"the DANDI archive at {endpoint.url}"
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except HTTPTimeoutError:
        raise ArchiveError(
            504, f"No answer from {where} within {REQUEST_TIMEOUT:g} s.", reason="timeout"
        ) from None
    except (OSError, HTTPClientError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ArchiveError(
            502,
            f"Could not reach {where}: {reason}. Check DANDI_API_URL and the network.",
            reason="unreachable",
        ) from None

    code = response.code
    if code == 599:  # tornado's "no HTTP answer" (connection reset, refused, ...)
        reason = str(response.error) if response.error else "no answer"
        raise ArchiveError(
            502,
            f"Could not reach {where}: {reason}. Check DANDI_API_URL and the network.",
            reason="unreachable",
        )
    if redirect and code in (301, 302, 303, 307, 308) and response.headers.get("Location"):
        return response.headers["Location"]
    if 200 <= code < 300 and not redirect:
        try:
            return json.loads(response.body)
        except ValueError:
            raise ArchiveError(502, f"{where} sent a response that is not JSON.", code) from None
    if 200 <= code < 400:
        location = response.headers.get("Location", "none")
        message = (
            f"{where} answered HTTP {code} for {path} (redirect: {location}); "
            f"DANDI_API_URL should be the API root, such as {DEFAULT_ARCHIVE_URL}."
        )
        raise ArchiveError(502, message, code)
    detail = _detail(response.body)
    if code in (401, 403):
        raise _refusal(endpoint, code, detail, what)
    if code == 404:
        if what:
            message = f"{what} does not exist on {where} ({detail})"
        else:
            message = f"{where} answered HTTP 404 for {path}: {detail}"
        raise ArchiveError(404, message, code, "not-found")
    if code == 400:
        about = what or path
        raise ArchiveError(
            400, f"{where} refused the request for {about}: {detail}", code, "invalid"
        )
    if code == 429:
        raise ArchiveError(
            503, f"{where} is rate-limiting requests; try again shortly.", code, "rate-limited"
        )
    raise ArchiveError(502, f"{where} failed with HTTP {code}: {detail}", code)


# --- checking inputs ----------------------------------------------------------------


def _int_argument(args: Mapping[str, str | None], name: str, low: int, high: int) -> int | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, not {value[:20]!r}") from None
    if not low <= number <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, not {number}")
    return number


def page_params(args: Mapping[str, str | None], default_size: int | None = None) -> dict[str, int]:
    """``page`` and ``page_size``, checked."""
    params = {"page": _int_argument(args, "page", 1, MAX_PAGE) or 1}
    page_size = _int_argument(args, "page_size", 1, MAX_PAGE_SIZE) or default_size
    if page_size is not None:
        params["page_size"] = page_size
    return params


def dandiset_search_params(args: Mapping[str, str | None]) -> dict[str, str | int]:
    """Check the panel's search parameters; the archive's query for GET /dandisets/."""
    params: dict[str, str | int] = {}
    search = (args.get("search") or "").strip()
    if len(search) > MAX_SEARCH_LENGTH:
        raise InvalidRequest(f"search must be at most {MAX_SEARCH_LENGTH} characters")
    if "\x00" in search:
        raise InvalidRequest("search must not contain NUL characters")
    if search:
        params["search"] = search
    params.update(page_params(args))
    ordering = args.get("ordering") or ""
    if ordering:
        if ordering not in ORDERINGS:
            raise InvalidRequest(f"ordering must be one of {', '.join(sorted(ORDERINGS))}")
        params["ordering"] = ordering
    return params


def check_dandiset_id(value: str) -> str:
    """A six-digit Dandiset identifier ("DANDI:" prefix allowed)."""
    value = value.strip().removeprefix("DANDI:")
    if not DANDISET_ID.fullmatch(value):
        raise InvalidRequest(
            f"a Dandiset identifier is six digits, such as 000006, not {value[:30]!r}"
        )
    return value


def check_version(value: str) -> str:
    """``draft`` or a published version ``0.YYMMDD.HHMM``."""
    if not VERSION.fullmatch(value):
        raise InvalidRequest(
            f"a version is 'draft' or a published version such as 0.220126.1855, not {value[:30]!r}"
        )
    return value


def check_asset_id(value: str) -> str:
    """An asset identifier: a UUID."""
    lowered = value.strip().lower()
    if not ASSET_ID.fullmatch(lowered):
        raise InvalidRequest(f"an asset identifier is a UUID, not {value[:40]!r}")
    return lowered


def check_relative_path(
    value: str, name: str, *, folder: bool = False, disk: bool = False
) -> str:
    """A relative '/'-separated path with no '.', '..' or empty parts and no control characters.

    ``folder``: a trailing '/' is allowed (and kept), and '' is the top. ``disk``: it names a
    file to write, so each part must also fit the file system (MAX_NAME_BYTES).
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string, not {type(value).__name__}")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as JSON's \ud800 gives
        raise InvalidRequest(f"{name} must be valid Unicode text (it has a lone surrogate)") from None
    if len(value) > MAX_PATH_LENGTH or len(encoded) > 4 * MAX_PATH_LENGTH:
        raise InvalidRequest(f"{name} must be at most {MAX_PATH_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidRequest(f"{name} must not contain control characters")
    if "\\" in value:
        raise InvalidRequest(f"{name} must use '/' between folders, not '\\'")
    if value.startswith("/"):
        raise InvalidRequest(f"{name} must be relative (no leading '/'), not {value[:60]!r}")
    body = value[:-1] if folder and value.endswith("/") else value
    if not body:
        if folder:
            return value
        raise InvalidRequest(f"{name} must not be empty")
    if any(part in ("", ".", "..") for part in body.split("/")):
        raise InvalidRequest(f"{name} must not contain '.', '..' or empty parts: {value[:60]!r}")
    if disk:
        for part in body.split("/"):
            if len(part.encode()) > MAX_NAME_BYTES:
                raise InvalidRequest(
                    f"{name} has a folder or file name of {len(part.encode())} bytes "
                    f"({part[:40]!r}...); the file system allows at most {MAX_NAME_BYTES}. "
                    "Choose a shorter dest."
                )
    return value


def destination(root: Path, relative: str) -> Path:
    """``root / relative``, refused unless it stays inside ``root`` (symlinks resolved)."""
    check_relative_path(relative, "dest", disk=True)
    real_root = root.resolve()
    target = (real_root / relative).resolve()
    if real_root not in target.parents:
        raise InvalidRequest(f"dest {relative!r} leads out of the home directory")
    return target


# --- downloads into the home directory ----------------------------------------------


@dataclass
class Download:
    """One asset being copied into the home directory; ``to_json`` is what the panel sees."""

    id: str
    archive_url: str
    dandiset: str
    version: str
    asset_id: str
    path: str  # the asset's path in the Dandiset
    dest: str  # relative to the home directory
    size: int | None
    sha256: str | None = None
    state: str = "queued"  # queued, running, done, failed, cancelled
    received: int = 0
    resumed_from: int = 0
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _PRIVATE}


_PRIVATE = frozenset({"task", "sha256"})


class _PartialFile:
    """An unfinished download on disk: appends and hashes (called in a worker thread)."""

    def __init__(self, path: Path, offset: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.hash = hashlib.sha256()
        self.file = open(path, "r+b" if offset else "wb")  # noqa: SIM115 - closed in close()
        self.file.truncate(offset)
        self.file.seek(0)
        while offset and (block := self.file.read(1 << 22)):  # hash what is already there
            self.hash.update(block)
        self.file.seek(offset)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.hash.update(chunk)

    def close(self) -> None:
        self.file.close()


class Downloads:
    """Downloads into ``root`` (the server's root directory: the user's home).

    A download writes ``root/.dandi-downloads/ASSET-KEY.part`` and moves it to its
    destination once its size (and SHA-256, when the archive has one) check out.
    A failed or cancelled download keeps its part: starting it again resumes with an
    HTTP Range request. Nothing blocks the server's event loop: the network is read
    asynchronously and the disk is written in a worker thread.
    """

    def __init__(self, root: Path, parallel: int = PARALLEL_DOWNLOADS):
        self.root = Path(root)
        self.items: dict[str, Download] = {}
        self._slots = asyncio.Semaphore(parallel)

    def partial_path(self, download: Download) -> Path:
        key = hashlib.sha1(
            f"{download.archive_url} {download.dest}".encode(), usedforsecurity=False
        ).hexdigest()[:12]
        return self.root / PARTIAL_DIR / f"{download.asset_id}-{key}.part"

    def list(self) -> list[dict]:
        return [d.to_json() for d in sorted(self.items.values(), key=lambda d: d.started)]

    def get(self, download_id: str) -> Download:
        if not DOWNLOAD_ID.fullmatch(download_id):
            raise InvalidRequest(
                f"a download identifier is 32 hex digits, not {download_id[:40]!r}"
            )
        try:
            return self.items[download_id]
        except KeyError:
            raise InvalidRequest(f"no download {download_id}", 404, "not-found") from None

    async def start(self, endpoint: ArchiveEndpoint, body: Mapping[str, Any]) -> Download:
        """Check the request, look the asset up, and start (or resume) its download."""
        unknown = set(body) - {"dandiset", "version", "asset_id", "dest", "archive"}
        if unknown:
            raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown))}")
        for name in ("dandiset", "version", "asset_id"):
            if body.get(name) is None:
                raise InvalidRequest(f"{name} is required (a string)")
            if not isinstance(body[name], str):
                raise InvalidRequest(f"{name} must be a string, not {type(body[name]).__name__}")
        dandiset = check_dandiset_id(body["dandiset"])
        version = check_version(body["version"])
        asset_id = check_asset_id(body["asset_id"])
        dest = body.get("dest")
        if dest is not None and not isinstance(dest, str):
            raise InvalidRequest("dest must be a string: a path under the home directory")
        if dest is not None:
            destination(self.root, dest)  # refuse a bad destination before asking the archive

        what = f"Asset {asset_id} of Dandiset {dandiset} (version {version})"
        record = await archive_get(
            endpoint,
            f"dandisets/{dandiset}/versions/{version}/assets/{asset_id}/info/",
            what=what,
        )
        if not isinstance(record, dict) or not isinstance(record.get("path"), str):
            raise ArchiveError(
                502,
                f"the DANDI archive at {endpoint.url} sent a record for {what} without a path; "
                "it may not be a DANDI archive (check its URL).",
            )
        path = record["path"]
        if record.get("zarr"):
            raise InvalidRequest(
                f"{path} is a Zarr asset (a folder of many objects): open it with "
                "dandilab.open_zarr, or download it with `dandi download`.",
                400,
                "unsupported",
            )
        # The archive's path is checked like the user's: it decides where we write.
        check_relative_path(path, "the asset's path")
        dest = dest or f"{DOWNLOAD_DIR}/{dandiset}/{version}/{path}"
        target = destination(self.root, dest)
        size = record.get("size")
        metadata = record.get("metadata")
        digests = metadata.get("digest") if isinstance(metadata, dict) else None
        digest = digests.get("dandi:sha2-256") if isinstance(digests, dict) else None

        for other in list(self.items.values()):
            if other.dest != dest:
                continue
            if not other.active:
                del self.items[other.id]  # a retry replaces the failed or cancelled attempt
            elif other.asset_id == asset_id:
                return other  # already under way
            else:
                raise InvalidRequest(f"another download is writing {dest}", 409, "conflict")
        download = Download(
            id=uuid.uuid4().hex,
            archive_url=endpoint.url,
            dandiset=dandiset,
            version=version,
            asset_id=asset_id,
            path=path,
            dest=dest,
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0
            else None,
            sha256=digest if isinstance(digest, str) else None,
        )
        real_root, part = self.root.resolve(), self.partial_path(download)
        if real_root not in part.resolve().parents:  # e.g. ~/.dandi-downloads, a symlink out
            raise InvalidRequest(
                f"the unfinished download would be written to {part.resolve()}, outside the "
                f"home directory (through a symlink at ~/{PARTIAL_DIR} or its part file); "
                "remove that link and try again."
            )
        if target.exists():
            if not target.is_file() or download.size is None or target.stat().st_size != size:
                raise InvalidRequest(
                    f"{dest} already exists in your home directory and is not this asset; "
                    "move it away, or download to another dest.",
                    409,
                    "conflict",
                )
            download.state, download.received = "done", download.size
            download.finished = time.time()
        elif download.size is not None:
            free = shutil.disk_usage(self._existing_parent(target)).free
            part = self.partial_path(download)
            have = part.stat().st_size if part.exists() else 0
            if download.size - have > free:
                raise InvalidRequest(
                    f"{path} needs {download.size - have} bytes; the home directory has "
                    f"{free} free.",
                    507,
                    "no-space",
                )
        self.items[download.id] = download
        if download.active:
            download.task = asyncio.ensure_future(self._run(endpoint, download))
        return download

    def cancel(self, download_id: str, discard: bool = False) -> Download:
        """Stop an active download (its part stays, to resume), or forget a finished one.

        ``discard`` also deletes the part.
        """
        download = self.get(download_id)
        if download.active:
            if download.task is not None:
                download.task.cancel()
            download.state, download.finished = "cancelled", time.time()
        else:
            self.items.pop(download.id, None)
        if discard:
            with contextlib.suppress(OSError):
                self.partial_path(download).unlink()
        return download

    @staticmethod
    def _existing_parent(path: Path) -> Path:
        while not path.exists():
            path = path.parent
        return path

    async def _run(self, endpoint: ArchiveEndpoint, download: Download) -> None:
        try:
            async with self._slots:
                download.state = "running"
                await self._fetch(endpoint, download)
            download.state = "done"
        except asyncio.CancelledError:
            download.state = "cancelled"
        except ArchiveError as error:
            download.state, download.error = "failed", error.message
        except Exception as error:  # noqa: BLE001 - the panel shows it; the server carries on
            download.state = "failed"
            download.error = f"{type(error).__name__}: {error}"
        finally:
            download.finished = time.time()

    async def _fetch(self, endpoint: ArchiveEndpoint, download: Download) -> None:
        import aiohttp  # only for downloads: the extension's import stays light

        loop = asyncio.get_running_loop()
        url = await archive_get(
            endpoint,
            f"dandisets/{download.dandiset}/versions/{download.version}/assets/"
            f"{download.asset_id}/download/",
            what=f"The content of {download.path}",
            redirect=True,
        )
        part_path = self.partial_path(download)
        offset = part_path.stat().st_size if part_path.exists() else 0
        if download.size is not None and offset > download.size:
            offset = 0
        download.resumed_from = download.received = offset
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT, sock_read=STALL_TIMEOUT
        )
        part = await loop.run_in_executor(None, _PartialFile, part_path, offset)
        try:
            if download.size is None or offset < download.size:
                # No Authorization here: the key is for the archive, this is the blob store.
                headers = {"User-Agent": f"dandilab/{__version__}"}
                if offset:
                    headers["Range"] = f"bytes={offset}-"
                async with (
                    aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
                    session.get(url, headers=headers) as response,
                ):
                    if response.status == 200 and offset:  # the store ignored the Range
                        await loop.run_in_executor(None, part.close)
                        part = await loop.run_in_executor(None, _PartialFile, part_path, 0)
                        download.resumed_from = download.received = 0
                    elif response.status not in (200, 206):
                        text = (await response.content.read(300)).decode("utf-8", "replace")
                        raise ArchiveError(
                            502,
                            f"The blob store answered HTTP {response.status} for "
                            f"{download.path}: {text.strip()[:200]}",
                            response.status,
                        )
                    async for chunk in response.content.iter_chunked(1 << 20):
                        await loop.run_in_executor(None, part.write, chunk)
                        download.received += len(chunk)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ArchiveError(
                502,
                f"The download of {download.path} broke off after {download.received} "
                f"bytes ({type(error).__name__}: {error or 'no data'}); start it again to resume.",
            ) from None
        finally:
            await loop.run_in_executor(None, part.close)
        if download.size is not None and download.received != download.size:
            raise ArchiveError(
                502,
                f"The download of {download.path} ended after {download.received} of "
                f"{download.size} bytes; start it again to resume.",
            )
        if download.sha256 and part.hash.hexdigest() != download.sha256:
            part_path.unlink()
            raise ArchiveError(
                502,
                f"{download.path} arrived with a different SHA-256 than the archive "
                "records; the partial file was removed, start again to download it afresh.",
            )
        target = destination(self.root, download.dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part_path, target)


# --- handlers -----------------------------------------------------------------------


class DandiAPIHandler(APIHandler):
    """Base for the panel's handlers: the archive to call and JSON errors."""

    def home_endpoint(self) -> ArchiveEndpoint:
        """The server's own archive, knowing which others it may be asked to call."""
        allowed = self.settings.get("dandilab_allowed_archives", ())
        return ArchiveEndpoint.from_env(allowed=tuple(allowed))

    def endpoint(self) -> ArchiveEndpoint:
        return self.home_endpoint().with_override(self.arguments().get("archive"))

    def arguments(self) -> dict[str, str]:
        """Query arguments, last value wins."""
        arguments = {}
        for name, values in self.request.query_arguments.items():
            try:
                arguments[name] = values[-1].decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(
                    f"{name[:40]} is not valid UTF-8 text; percent-encode its UTF-8 bytes"
                ) from None
        return arguments

    def send_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def send_error_message(self, status: int, message: str, reason: str = "invalid") -> None:
        # Not tornado's HTTPError: its log formatting chokes on "%" in URLs.
        self.log.warning("dandilab: %s -> %d: %s", self.request.path[:300], status, message)
        self.send_json({"message": message, "reason": reason}, status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised past ``answer`` (tornado's, or a bug): our JSON shape, no traceback."""
        error = (kwargs.get("exc_info") or (None, None))[1]
        if isinstance(error, tornado.web.HTTPError):
            reason = {400: "invalid", 403: "forbidden", 404: "not-found",
                      405: "method-not-allowed"}.get(status_code, "http-error")
            message = f"{error.log_message or error.reason or self._reason}"
            if status_code == 400:
                message += "; check the request's URL and arguments"
        else:  # the traceback went to the server's log (tornado logs it), not to the browser
            reason = "internal-error"
            message = (
                "The DANDI panel's server extension failed on this request; the details are "
                "in the Jupyter server's log. Please report it."
            )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "reason": reason}))

    async def answer(self, call, status=lambda body: 200) -> None:
        """Run ``call()`` (a coroutine function) and send its JSON (with ``status(body)``),
        or the error it raised."""
        try:
            body = await call()
        except InvalidRequest as error:
            return self.send_error_message(error.status, str(error), error.reason)
        except ArchiveError as error:
            return self.send_error_message(error.status, error.message, error.reason)
        self.send_json(body, status(body))


class InfoHandler(DandiAPIHandler):
    """The archive URL and the account the server's key belongs to."""

    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            endpoint = self.endpoint()
        except InvalidRequest as error:
            return self.send_error_message(error.status, str(error), error.reason)
        info: dict[str, Any] = {
            "archive_url": endpoint.url,
            "username": None,
            "authenticated": False,
            "has_api_key": endpoint.api_key is not None,
            "error": None,
            "error_reason": None,
        }
        try:
            if endpoint.api_key:
                user = await archive_get(endpoint, "users/me/")
                info["username"] = user.get("username") or user.get("name")
                info["authenticated"] = True
            else:
                # Anonymous: only check that the archive answers.
                await archive_get(endpoint, "info/")
        except ArchiveError as error:
            # An archive without info/ is still an archive.
            if endpoint.api_key or error.archive_status != 404:
                info["error"], info["error_reason"] = error.message, error.reason
        self.send_json(info)


class OpenAPIHandler(DandiAPIHandler):
    """The OpenAPI description of these routes (openapi.yaml, shipped in the package)."""

    @tornado.web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml; charset=utf-8")
        self.finish(OPENAPI.read_bytes())


class DandisetsHandler(DandiAPIHandler):
    """One page of the archive's Dandiset search."""

    @tornado.web.authenticated
    async def get(self) -> None:
        async def call():
            params = dandiset_search_params(self.arguments())
            return await archive_get(self.endpoint(), "dandisets/", params)

        await self.answer(call)


class DandisetHandler(DandiAPIHandler):
    """One Dandiset: identifier, embargo status, draft and most recent published version."""

    @tornado.web.authenticated
    async def get(self, dandiset: str) -> None:
        async def call():
            identifier = check_dandiset_id(dandiset)
            return await archive_get(
                self.endpoint(), f"dandisets/{identifier}/", what=f"Dandiset {identifier}"
            )

        await self.answer(call)


class VersionsHandler(DandiAPIHandler):
    """The versions of a Dandiset, newest last (the archive's order), a page at a time."""

    @tornado.web.authenticated
    async def get(self, dandiset: str) -> None:
        async def call():
            identifier = check_dandiset_id(dandiset)
            return await archive_get(
                self.endpoint(),
                f"dandisets/{identifier}/versions/",
                page_params(self.arguments(), default_size=100),
                what=f"Dandiset {identifier}",
            )

        await self.answer(call)


class VersionHandler(DandiAPIHandler):
    """A version's summary (name, asset count, size, status) and its metadata."""

    @tornado.web.authenticated
    async def get(self, dandiset: str, version: str) -> None:
        async def call():
            identifier, number = check_dandiset_id(dandiset), check_version(version)
            return await archive_get(
                self.endpoint(),
                f"dandisets/{identifier}/versions/{number}/info/",
                what=f"Version {number} of Dandiset {identifier}",
            )

        await self.answer(call)


class PathsHandler(DandiAPIHandler):
    """One folder of a version's asset tree: files and sub-folders with sizes."""

    @tornado.web.authenticated
    async def get(self, dandiset: str, version: str) -> None:
        async def call():
            identifier, number = check_dandiset_id(dandiset), check_version(version)
            args = self.arguments()
            prefix = check_relative_path(args.get("path_prefix", ""), "path_prefix", folder=True)
            params: dict[str, str | int] = {"path_prefix": prefix}
            params.update(page_params(args, default_size=100))
            what = f"Dandiset {identifier} (version {number})"
            return await archive_get(
                self.endpoint(),
                f"dandisets/{identifier}/versions/{number}/assets/paths/",
                params,
                what=f"Folder {prefix!r} of {what}" if prefix.strip("/") else what,
            )

        await self.answer(call)


class AssetHandler(DandiAPIHandler):
    """One asset of a version: its record and metadata (content URLs, format, digest)."""

    @tornado.web.authenticated
    async def get(self, dandiset: str, version: str, asset_id: str) -> None:
        async def call():
            identifier, number = check_dandiset_id(dandiset), check_version(version)
            asset = check_asset_id(asset_id)
            return await archive_get(
                self.endpoint(),
                f"dandisets/{identifier}/versions/{number}/assets/{asset}/info/",
                what=f"Asset {asset} of Dandiset {identifier} (version {number})",
            )

        await self.answer(call)


class DownloadsHandler(DandiAPIHandler):
    """The downloads of this server (GET), or start one (POST)."""

    @property
    def downloads(self) -> Downloads:
        return self.settings["dandilab_downloads"]

    @tornado.web.authenticated
    def get(self) -> None:
        self.send_json({"downloads": self.downloads.list()})

    @tornado.web.authenticated
    async def post(self) -> None:
        async def call():
            try:
                body = json.loads(self.request.body or b"{}")
            except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's
                raise InvalidRequest("the request body must be JSON") from None
            if not isinstance(body, dict):
                raise InvalidRequest("the request body must be a JSON object")
            endpoint = self.home_endpoint().with_override(body.get("archive"))
            return (await self.downloads.start(endpoint, body)).to_json()

        # 202: started (or resumed) in the background; 200: the file is there already.
        await self.answer(call, status=lambda body: 200 if body["state"] == "done" else 202)


class DownloadHandler(DandiAPIHandler):
    """One download: its progress (GET); DELETE cancels it, or forgets it once it ended
    (``discard=1`` also deletes its partial file)."""

    downloads = DownloadsHandler.downloads

    @tornado.web.authenticated
    async def get(self, download_id: str) -> None:
        async def call():
            return self.downloads.get(download_id).to_json()

        await self.answer(call)

    @tornado.web.authenticated
    async def delete(self, download_id: str) -> None:
        async def call():
            discard = self.arguments().get("discard", "") in ("1", "true")
            return self.downloads.cancel(download_id, discard).to_json()

        await self.answer(call)


_SEGMENT = r"([^/]+)"

#: (path under dandi/api/, handler).
HANDLERS: list[tuple[str, type[DandiAPIHandler]]] = [
    ("info", InfoHandler),
    ("openapi.yaml", OpenAPIHandler),
    ("dandisets", DandisetsHandler),
    (f"dandisets/{_SEGMENT}", DandisetHandler),
    (f"dandisets/{_SEGMENT}/versions", VersionsHandler),
    (f"dandisets/{_SEGMENT}/versions/{_SEGMENT}", VersionHandler),
    (f"dandisets/{_SEGMENT}/versions/{_SEGMENT}/paths", PathsHandler),
    (f"dandisets/{_SEGMENT}/versions/{_SEGMENT}/assets/{_SEGMENT}", AssetHandler),
    ("downloads", DownloadsHandler),
    (f"downloads/{_SEGMENT}", DownloadHandler),
]


def setup_handlers(web_app: tornado.web.Application, root_dir: str | None = None) -> None:
    """Add the panel's routes under ``{base_url}dandi/api/``.

    ``root_dir``: where downloads go (default: the server's root directory, which is
    what the file browser shows: the user's home on the hub).
    """
    root = root_dir or web_app.settings.get("server_root_dir") or os.getcwd()
    web_app.settings["dandilab_downloads"] = Downloads(Path(os.path.expanduser(root)))
    serverapp = web_app.settings.get("serverapp")
    config = DandiLab(config=serverapp.config) if serverapp is not None else DandiLab()
    for url in config.allowed_archives:  # a typo here would refuse that archive forever
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"c.DandiLab.allowed_archives: {url!r} is not an http(s) URL")
    web_app.settings["dandilab_allowed_archives"] = tuple(config.allowed_archives)
    base = url_path_join(web_app.settings["base_url"], "dandi", "api")
    web_app.add_handlers(
        ".*$", [(url_path_join(base, path) + "/?", handler) for path, handler in HANDLERS]
    )
