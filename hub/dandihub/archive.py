"""The few archive calls the hub needs, asynchronous, with errors a login page can show.

The user-facing client (``dandilab.archive``) is built on dandi's DandiAPIClient; the hub
only needs three calls and must not block its event loop, hence this small httpx client.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

PUBLIC_API_URL = "https://api.dandiarchive.org/api"


class ArchiveError(Exception):
    """The archive could not answer: down, unreachable, or answered with an error."""


class ArchiveUnavailable(ArchiveError):
    """The archive did not answer (network error, timeout, 5xx)."""


class InvalidToken(ArchiveError):
    """The archive rejected the API key or token."""


@dataclass(frozen=True)
class ArchiveUser:
    """A DANDI account as ``/api/users/me/`` describes it."""

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


class ArchiveClient:
    """Asynchronous calls to one archive's REST API."""

    def __init__(self, api_url: str, timeout: float = 10.0):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    async def _get(self, path: str, token: str | None = None, params: dict | None = None):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"token {token}"
        url = f"{self.api_url}/{path.lstrip('/')}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(url, headers=headers, params=params)
        except httpx.HTTPError as e:
            raise ArchiveUnavailable(
                f"The DANDI archive at {self.api_url} did not answer ({type(e).__name__})."
            ) from None
        if response.status_code in (401, 403):
            raise InvalidToken(f"The DANDI archive at {self.api_url} rejected the key.")
        if response.status_code >= 500:
            raise ArchiveUnavailable(
                f"The DANDI archive at {self.api_url} answered HTTP {response.status_code}."
            )
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

    async def me(self, token: str) -> ArchiveUser:
        """The account that owns ``token`` (a DANDI API key)."""
        return ArchiveUser.from_json(await self._get("users/me/", token=token))

    async def search_users(self, username: str, token: str) -> list[dict]:
        """Users matching ``username`` (needs a token of a registered account)."""
        return await self._get("users/search/", token=token, params={"username": username})

    async def api_key(self, token: str) -> str:
        """The DANDI API key of the account that owns ``token`` (an OAuth access token)."""
        return await self._get("auth/token/", token=token)
