"""The archives a hub signs people in with, and the few asynchronous calls it makes to them.

The user-facing client (``dandilab.archive``) is built on dandi's DandiAPIClient; the hub
only needs a handful of calls (users/me, users/search, auth/token) and must not block its
event loop, hence this small httpx client. Errors are exceptions a login page can show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

PUBLIC_API_URL = "https://api.dandiarchive.org/api"


class ArchiveError(Exception):
    """The archive could not answer: down, unreachable, or answered with an error."""


class ArchiveUnavailable(ArchiveError):
    """The archive did not answer (network error, timeout, 5xx)."""


class InvalidToken(ArchiveError):
    """The archive rejected the API key or token."""


class NotFound(ArchiveError):
    """The archive has no such thing (HTTP 404)."""


@dataclass(frozen=True)
class ArchiveUser:
    """A DANDI account as ``/api/users/me/`` (and each result of users/search) describes it."""

    username: str
    name: str
    status: str
    admin: bool = False

    @property
    def approved(self) -> bool:
        return self.status.upper() == "APPROVED"

    @classmethod
    def from_json(cls, data: dict) -> ArchiveUser:
        return cls(
            username=data["username"],
            name=data.get("name") or "",
            status=data.get("status") or "UNKNOWN",
            admin=bool(data.get("admin", False)),
        )


def web_url(api_url: str) -> str:
    """The archive's web UI for its API root (where users register and find their key)."""
    if api_url.rstrip("/") == PUBLIC_API_URL:
        return "https://dandiarchive.org"
    return api_url.rstrip("/").removesuffix("/api")


def oauth_url(api_url: str) -> str:
    """The archive's OAuth2 provider: django-oauth-toolkit at /oauth/ of the API's host."""
    parts = urlsplit(api_url.rstrip("/"))
    root = parts.path.removesuffix("/api")
    return f"{parts.scheme}://{parts.netloc}{root}/oauth"


def _secret(entry: dict, key: str, read: bool = True) -> str:
    """``entry[key]``, else the file ``entry[key_file]``, else the variable ``entry[key_env]``."""
    if entry.get(key):
        return str(entry[key])
    if not read:
        return ""
    if entry.get(f"{key}_file"):
        return Path(entry[f"{key}_file"]).read_text().strip()
    if entry.get(f"{key}_env"):
        return os.environ.get(entry[f"{key}_env"], "").strip()
    return ""


@dataclass(frozen=True)
class Archive:
    """One DANDI archive the hub trusts: DANDI, its staging instance, an EMBER-style one.

    From a settings entry (`from_dict`)::

        {"name": "DANDI", "api_url": "https://api.dandiarchive.org/api",
         "web_url": ...,            # where people register (default: from api_url)
         "oauth_url": ...,          # default: {API host}/oauth, as dandi-archive serves it
         "authorize_url", "token_url": ...,   # default: {oauth_url}/authorize/, /token/
         "client_id": ..., "client_secret" | "client_secret_file" | "client_secret_env": ...,
         "service_token" | "service_token_file" | "service_token_env": ...}

    ``client_*``: the hub's OAuth application on this archive (DANDI OAuth sign-in).
    ``service_token``: the API key of an approved account, to look people up (GitHub sign-in).
    """

    name: str
    api_url: str
    web_url: str = ""
    oauth_url: str = ""
    authorize_url: str = ""  # default: {oauth_url}/authorize/
    token_url: str = ""  # default: {oauth_url}/token/
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    service_token: str = field(default="", repr=False)

    def __post_init__(self):
        def default(name, value):
            if not getattr(self, name):
                object.__setattr__(self, name, value)

        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))
        default("web_url", web_url(self.api_url))
        default("oauth_url", oauth_url(self.api_url))
        object.__setattr__(self, "oauth_url", self.oauth_url.rstrip("/"))
        default("authorize_url", f"{self.oauth_url}/authorize/")
        default("token_url", f"{self.oauth_url}/token/")

    @classmethod
    def from_dict(cls, entry: dict, read_secrets: bool = True) -> Archive:
        """An archive from its settings entry; secrets are read from their files or variables
        unless ``read_secrets`` is False (validating settings where the secrets are absent)."""
        known = {"name", "api_url", "web_url", "oauth_url", "authorize_url", "token_url",
                 "client_id"} | {
            f"{key}{suffix}" for key in ("client_secret", "service_token")
            for suffix in ("", "_file", "_env")
        }
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(
                f"Archive entry {entry.get('name', '?')!r} has unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        api_url = str(entry.get("api_url") or "")
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(
                f"Archive entry {entry.get('name', '?')!r} needs api_url, the archive's API root "
                f"(like {PUBLIC_API_URL})"
            )
        return cls(
            name=str(entry.get("name") or web_url(api_url)),
            api_url=api_url,
            web_url=str(entry.get("web_url") or ""),
            oauth_url=str(entry.get("oauth_url") or ""),
            authorize_url=str(entry.get("authorize_url") or ""),
            token_url=str(entry.get("token_url") or ""),
            client_id=str(entry.get("client_id") or ""),
            client_secret=_secret(entry, "client_secret", read_secrets),
            service_token=_secret(entry, "service_token", read_secrets),
        )

    def client(self, timeout: float = 10.0) -> ArchiveClient:
        return ArchiveClient(self.api_url, timeout=timeout)


def _url(description: str) -> dict:
    return {"type": "string", "pattern": "^https?://", "description": description}


# An archive entry as the chart's values.schema.json describes it (dandihub.config writes it
# there): the keys of `Archive.from_dict` but the secrets, which never go into values.
ARCHIVE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "api_url"],
    "description": "An archive people may sign in with (dandihub.archive.Archive). Its secrets "
    "go to dandihub.secrets.archives.<name>, never here.",
    "properties": {
        "name": {"type": "string",
                 "description": "Unique; labels the login button and names its secrets."},
        "api_url": _url("The archive's API root (ends in /api)."),
        "web_url": _url("Where people register (default: from api_url)."),
        "oauth_url": _url("The archive's OAuth2 root (default: {API host}/oauth)."),
        "authorize_url": _url("Default: {oauth_url}/authorize/."),
        "token_url": _url("Default: {oauth_url}/token/."),
        "client_id": {"type": "string",
                      "description": "The hub's OAuth application on this archive (dandi-oauth)."},
    },
}


def parse_archives(entries: list[dict], read_secrets: bool = True) -> list[Archive]:
    """The archives of a settings list; names must be unique (they label the login buttons)."""
    archives = [Archive.from_dict(e, read_secrets) for e in entries]
    names = [a.name for a in archives]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Archive names must be unique; repeated: {', '.join(duplicates)}")
    return archives


class ArchiveClient:
    """Asynchronous calls to one archive's REST API.

    Credentials: a DANDI API key (``Authorization: token KEY``, the default scheme) or an
    OAuth access token of the archive (``scheme="Bearer"``).
    """

    def __init__(self, api_url: str, timeout: float = 10.0):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    async def _request(
        self, method: str, path: str, token: str | None = None, scheme: str = "token",
        params: dict | None = None,
    ):
        headers = {"Accept": "application/json", "User-Agent": "DANDI Hub"}
        if token:
            headers["Authorization"] = f"{scheme} {token}"
        url = f"{self.api_url}/{path.lstrip('/')}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(method, url, headers=headers, params=params)
        except httpx.HTTPError as e:
            raise ArchiveUnavailable(
                f"The DANDI archive at {self.api_url} did not answer ({type(e).__name__})."
            ) from None
        if response.status_code in (401, 403):
            raise InvalidToken(
                f"The DANDI archive at {self.api_url} refused the credentials for {path} "
                f"(HTTP {response.status_code})."
            )
        if response.status_code >= 500:
            raise ArchiveUnavailable(
                f"The DANDI archive at {self.api_url} answered HTTP {response.status_code}."
            )
        if response.status_code == 404:
            raise NotFound(f"The DANDI archive at {self.api_url} has no {path}.")
        if response.status_code >= 400:
            raise ArchiveError(
                f"The DANDI archive at {self.api_url} answered HTTP {response.status_code} "
                f"for {path}."
            )
        try:
            return response.json()
        except ValueError:
            raise ArchiveUnavailable(
                f"The DANDI archive at {self.api_url} answered with something that is not JSON; "
                "is this the API root (it ends in /api)?"
            ) from None

    async def _get(self, path: str, token: str | None = None, params: dict | None = None):
        return await self._request("GET", path, token, params=params)

    async def me(self, token: str, scheme: str = "token") -> ArchiveUser:
        """The account that owns ``token`` (an API key, or an access token with "Bearer")."""
        return ArchiveUser.from_json(await self._request("GET", "users/me/", token, scheme))

    async def search_users(self, username: str, token: str) -> list[dict]:
        """Users matching ``username`` (needs the API key of an approved account).

        Like dandi-archive: a substring search over APPROVED accounts only, at most 10.
        """
        return await self._get("users/search/", token=token, params={"username": username})

    async def find_user(self, username: str, token: str) -> ArchiveUser | None:
        """The account named exactly ``username`` (ignoring case), or None.

        users/search matches substrings ("ali" finds "alice"), so only an exact match counts.
        """
        wanted = username.lower()
        for record in await self.search_users(username, token):
            if str(record.get("username", "")).lower() == wanted:
                return ArchiveUser.from_json(record)
        return None

    async def api_key(self, access_token: str, create: bool = True) -> str:
        """The DANDI API key of the account that owns ``access_token`` (an OAuth token).

        An account that never made a key gets one (``POST``), as the archive's web UI does.
        """
        try:
            return await self._request("GET", "auth/token/", access_token, "Bearer")
        except NotFound:
            if not create:
                raise
            return await self._request("POST", "auth/token/", access_token, "Bearer")
