"""jupyter_server extension: the REST API behind the DANDI side panel.

The DANDI API key never reaches the browser: handlers call the archive from
the server, with ``DANDI_API_KEY``, and return the archive's answers.

Routes, under ``{base_url}dandi/api/``:

``GET info``
    ``{"archive_url", "username", "authenticated", "error"}``. Always 200;
    ``error`` says why the archive could not be used (else null).
``GET dandisets?search=&page=&page_size=&ordering=``
    The archive's ``GET /dandisets/`` page, as is. 400 for bad parameters,
    502/504 when the archive is unreachable or fails.

Both accept ``archive=URL`` to use another archive; it is then called without
the server's key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import url_concat
from tornado.simple_httpclient import HTTPTimeoutError

from . import __version__

DEFAULT_ARCHIVE_URL = "https://api.dandiarchive.org/api"
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 30.0

MAX_SEARCH_LENGTH = 200
MAX_PAGE = 100_000
MAX_PAGE_SIZE = 1000  # the archive's own limit
MAX_URL_LENGTH = 2048
# The archive's orderings for GET /dandisets/ ("-" for descending).
ORDERINGS = frozenset(
    f"{sign}{field}" for sign in ("", "-") for field in ("id", "name", "modified", "size", "stars")
)


class InvalidRequest(ValueError):
    """A request the panel API refuses (answered with 400)."""


class ArchiveError(Exception):
    """The archive could not answer usefully; ``status`` is what we answer."""

    def __init__(self, status: int, message: str, archive_status: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        #: The archive's HTTP status, None when it did not answer at all.
        self.archive_status = archive_status


@dataclass(frozen=True)
class ArchiveEndpoint:
    """Which archive to call, and the API key to call it with (None: anonymously)."""

    url: str
    api_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ArchiveEndpoint:
        """The archive the spawner configured: DANDI_API_URL and DANDI_API_KEY."""
        url = environ.get("DANDI_API_URL", "").strip() or DEFAULT_ARCHIVE_URL
        return cls(url.rstrip("/"), environ.get("DANDI_API_KEY", "").strip() or None)

    def with_override(self, url: str | None) -> ArchiveEndpoint:
        """This endpoint, or another archive named by the user (without our key)."""
        url = (url or "").strip().rstrip("/")
        if not url or url == self.url:
            return self
        parts = urlsplit(url)
        if (
            len(url) > MAX_URL_LENGTH
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.password
        ):
            raise InvalidRequest(f"archive must be an http(s) URL such as {DEFAULT_ARCHIVE_URL}")
        return ArchiveEndpoint(url, None)


def _detail(body: bytes) -> str:
    """The archive's error text (DRF puts it in "detail"), short."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return json.dumps(data)[:200]


async def archive_get(
    endpoint: ArchiveEndpoint, path: str, params: Mapping[str, str | int] | None = None
) -> Any:
    """GET ``{archive}/{path}`` and return its JSON; any failure is an ArchiveError.

    The one place this extension calls the archive. Redirects are not
    followed, so the key is only ever sent to the archive itself.
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
        raise ArchiveError(504, f"No answer from {where} within {REQUEST_TIMEOUT:g} s.") from None
    except (OSError, HTTPClientError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ArchiveError(
            502, f"Could not reach {where}: {reason}. Check DANDI_API_URL and the network."
        ) from None

    code = response.code
    if 200 <= code < 300:
        try:
            return json.loads(response.body)
        except ValueError:
            raise ArchiveError(502, f"{where} sent a response that is not JSON.", code) from None
    if 300 <= code < 400:
        location = response.headers.get("Location", "?")
        message = (
            f"{where} redirected {path} to {location}; "
            f"DANDI_API_URL should be the API root, such as {DEFAULT_ARCHIVE_URL}."
        )
        raise ArchiveError(502, message, code)
    detail = _detail(response.body)
    if code in (401, 403):
        who = "the server's DANDI API key" if endpoint.api_key else "an anonymous request"
        message = f"{where} refused {who} (HTTP {code}: {detail}). Check DANDI_API_KEY."
        raise ArchiveError(502, message, code)
    if code in (400, 404):
        raise ArchiveError(code, f"{where} answered HTTP {code} for {path}: {detail}", code)
    if code == 429:
        raise ArchiveError(503, f"{where} is rate-limiting requests; try again shortly.", code)
    raise ArchiveError(502, f"{where} failed with HTTP {code}: {detail}", code)


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


def dandiset_search_params(args: Mapping[str, str | None]) -> dict[str, str | int]:
    """Check the panel's search parameters; the archive's query for GET /dandisets/."""
    params: dict[str, str | int] = {}
    search = (args.get("search") or "").strip()
    if len(search) > MAX_SEARCH_LENGTH:
        raise InvalidRequest(f"search must be at most {MAX_SEARCH_LENGTH} characters")
    if search:
        params["search"] = search
    params["page"] = _int_argument(args, "page", 1, MAX_PAGE) or 1
    page_size = _int_argument(args, "page_size", 1, MAX_PAGE_SIZE)
    if page_size is not None:
        params["page_size"] = page_size
    ordering = args.get("ordering") or ""
    if ordering:
        if ordering not in ORDERINGS:
            raise InvalidRequest(f"ordering must be one of {', '.join(sorted(ORDERINGS))}")
        params["ordering"] = ordering
    return params


class DandiAPIHandler(APIHandler):
    """Base for the panel's handlers: the archive to call and JSON errors."""

    def endpoint(self) -> ArchiveEndpoint:
        return ArchiveEndpoint.from_env().with_override(self.get_query_argument("archive", None))

    def arguments(self) -> dict[str, str]:
        """Query arguments, last value wins."""
        return {
            name: values[-1].decode("utf-8", "replace")
            for name, values in self.request.query_arguments.items()
        }

    def send_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def send_error_message(self, status: int, message: str) -> None:
        # Not tornado's HTTPError: its log formatting chokes on "%" in URLs.
        self.log.warning("dandilab: %s -> %d: %s", self.request.path, status, message)
        self.send_json({"message": message}, status)


class InfoHandler(DandiAPIHandler):
    """The archive URL and the account the server's key belongs to."""

    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            endpoint = self.endpoint()
        except InvalidRequest as error:
            return self.send_error_message(400, str(error))
        info: dict[str, Any] = {
            "archive_url": endpoint.url,
            "username": None,
            "authenticated": False,
            "error": None,
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
                info["error"] = error.message
        self.send_json(info)


class DandisetsHandler(DandiAPIHandler):
    """One page of the archive's Dandiset search."""

    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            endpoint = self.endpoint()
            params = dandiset_search_params(self.arguments())
        except InvalidRequest as error:
            return self.send_error_message(400, str(error))
        try:
            page = await archive_get(endpoint, "dandisets/", params)
        except ArchiveError as error:
            return self.send_error_message(error.status, error.message)
        self.send_json(page)


#: (path under dandi/api/, handler); later handlers are appended here.
HANDLERS: list[tuple[str, type[DandiAPIHandler]]] = [
    ("info", InfoHandler),
    ("dandisets", DandisetsHandler),
]


def setup_handlers(web_app: tornado.web.Application) -> None:
    """Add the panel's routes under ``{base_url}dandi/api/``."""
    base = url_path_join(web_app.settings["base_url"], "dandi", "api")
    web_app.add_handlers(
        ".*$", [(url_path_join(base, path) + "/?", handler) for path, handler in HANDLERS]
    )
