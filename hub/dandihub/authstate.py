"""What a DANDI sign-in leaves in the encrypted auth_state, one shape for every authenticator.

The authenticators (`dandihub.auth`) write it and `dandihub.spawner.pre_spawn_hook` reads it.
It sits beside what OAuthenticator keeps there itself (access_token, token_response, ...):
`DandiAuthState.update` adds our keys to that dict, `DandiAuthState.from_dict` reads them
back, from auth states of any version of the hub (missing keys are empty)::

    {"dandi_api_key": "...",                 # the server's DANDI_API_KEY (absent: none)
     "dandi_api_url": "https://.../api",     # the server's DANDI_API_URL
     "dandi_archive": "DANDI",               # the archive's name (OAuth sign-ins)
     "dandi_user": {"username", "name", "email", "status", "admin"}}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

AUTH_STATE_KEY = "dandi_api_key"
AUTH_STATE_ARCHIVE = "dandi_api_url"
AUTH_STATE_ARCHIVE_NAME = "dandi_archive"
AUTH_STATE_USER = "dandi_user"


@dataclass(frozen=True)
class DandiUser:
    """Who signed in, on the archive: the server's git author comes from it."""

    username: str
    name: str = ""
    email: str = ""
    status: str = ""  # the archive's account status when the sign-in checked it
    admin: bool = False

    @property
    def display_name(self) -> str:
        return self.name or self.username

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DandiUser:
        # None where an archive (or GitHub) has no value: stored as "" (email: GitHub's private)
        return cls(
            username=str(data.get("username") or ""),
            name=str(data.get("name") or ""),
            email=str(data.get("email") or ""),
            status=str(data.get("status") or ""),
            admin=bool(data.get("admin", False)),
        )


@dataclass(frozen=True)
class DandiAuthState:
    """Our part of a user's auth_state; empty fields are left out of the dict."""

    api_url: str = ""
    archive: str = ""
    api_key: str = ""
    user: DandiUser | None = None

    def to_dict(self) -> dict:
        items = {
            AUTH_STATE_KEY: self.api_key,
            AUTH_STATE_ARCHIVE: self.api_url,
            AUTH_STATE_ARCHIVE_NAME: self.archive,
            AUTH_STATE_USER: self.user.to_dict() if self.user else None,
        }
        return {k: v for k, v in items.items() if v}

    def update(self, auth_state: dict) -> dict:
        """Write these fields into ``auth_state`` (which keeps its other keys); returns it."""
        auth_state.update(self.to_dict())
        return auth_state

    @classmethod
    def from_dict(cls, auth_state: dict | None) -> DandiAuthState:
        auth_state = auth_state or {}
        user = auth_state.get(AUTH_STATE_USER)
        return cls(
            api_url=str(auth_state.get(AUTH_STATE_ARCHIVE) or ""),
            archive=str(auth_state.get(AUTH_STATE_ARCHIVE_NAME) or ""),
            api_key=str(auth_state.get(AUTH_STATE_KEY) or ""),
            user=DandiUser.from_dict(user) if isinstance(user, dict) else None,
        )
