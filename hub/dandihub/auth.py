"""Sign in with a DANDI account.

Every authenticator here ends with the same decision (`check_archive_user`): the archive
must know the account and have APPROVED it. Refusals raise ``HTTPError`` whose message
JupyterHub renders on its login page; no key or token is ever logged.

- `APIKeyAuthenticator`: the user pastes their DANDI API key (embedded mode, small hubs).
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from tornado.web import HTTPError
from traitlets import Unicode, default

from .archive import (
    PUBLIC_API_URL,
    ArchiveClient,
    ArchiveError,
    ArchiveUnavailable,
    ArchiveUser,
    InvalidToken,
    web_url,
)

AUTH_STATE_KEY = "dandi_api_key"
AUTH_STATE_ARCHIVE = "dandi_api_url"


def refusal(user: ArchiveUser, register_url: str) -> str | None:
    """Why an archive account may not use the hub, or None when it may."""
    status = user.status.upper()
    if status == "APPROVED":
        return None
    if status == "PENDING":
        return (
            f"Your DANDI account '{user.username}' is pending approval by the archive's "
            "administrators. You will receive an email when it is approved; sign in again then."
        )
    if status == "REJECTED":
        return (
            f"Your DANDI account '{user.username}' was not approved by the archive's "
            "administrators, so it cannot use this hub. Contact the archive's help desk "
            "if you think this is a mistake."
        )
    return (
        f"Your DANDI account '{user.username}' has not finished registration "
        f"(status {status}). Complete it at {register_url} and sign in again."
    )


class APIKeyAuthenticator(Authenticator):
    """Sign in by pasting a DANDI API key; the archive says who it belongs to.

    The key is checked with ``GET {archive_url}/users/me/``; only APPROVED accounts get in,
    under their DANDI username. The key is kept in the encrypted auth_state (it becomes
    the server's ``DANDI_API_KEY``), so ``enable_auth_state`` is on and the hub needs
    ``JUPYTERHUB_CRYPT_KEY``.
    """

    archive_url = Unicode(
        PUBLIC_API_URL,
        config=True,
        help="The DANDI archive's API root (ends in /api) that checks keys and owns the accounts.",
    )
    register_url = Unicode(
        config=True,
        help="Where people register for an account and find their API key "
        "(default: the archive's web UI).",
    )

    @default("register_url")
    def _default_register_url(self):
        return web_url(self.archive_url)

    @default("enable_auth_state")
    def _default_enable_auth_state(self):
        return True

    @default("allow_all")
    def _default_allow_all(self):
        # The archive's approval is the allow list.
        return True

    login_service = "DANDI"

    @default("custom_html")
    def _default_custom_html(self):
        return LOGIN_FORM

    async def authenticate(self, handler, data):
        key = (data or {}).get("api_key", "").strip()
        if not key:
            raise HTTPError(
                400,
                "Paste your DANDI API key. You find it at "
                f"{self.register_url} (sign in there, then open the menu under your name).",
            )
        archive = ArchiveClient(self.archive_url)
        try:
            user = await archive.me(key)
        except InvalidToken:
            self.log.warning("Refused a DANDI API key that %s does not know", self.archive_url)
            raise HTTPError(
                403,
                f"The DANDI archive at {self.archive_url} does not recognise this API key. "
                f"Copy it again from {self.register_url} (menu under your name).",
            ) from None
        except ArchiveUnavailable as e:
            self.log.error("Login impossible: %s", e)
            raise HTTPError(
                503, f"{e} Signing in needs the archive; try again in a few minutes."
            ) from None
        except ArchiveError as e:
            self.log.error("Login impossible: %s", e)
            raise HTTPError(502, str(e)) from None
        reason = refusal(user, self.register_url)
        if reason:
            self.log.warning("Refused DANDI user %s with status %s", user.username, user.status)
            raise HTTPError(403, reason)
        self.log.info("DANDI user %s signed in with an API key", user.username)
        return {
            "name": user.username,
            "admin": True if user.admin else None,
            "auth_state": {
                AUTH_STATE_KEY: key,
                AUTH_STATE_ARCHIVE: self.archive_url,
                "dandi_user": {"username": user.username, "name": user.name},
            },
        }


# Rendered by JupyterHub's LoginHandler with its context (login_url, next, xsrf, login_error,
# authenticator), in place of the username/password form.
LOGIN_FORM = """
<form action="{{ login_url }}?next={{ next }}" method="post" role="form" id="dandi-apikey-form">
  <div class="auth-form-header"><h1>Sign in with your DANDI account</h1></div>
  <div class="auth-form-body m-auto">
    {% if login_error %}<p class="login_error" role="alert">{{ login_error | e }}</p>{% endif %}
    <input type="hidden" name="_xsrf" value="{{ xsrf }}" />
    <label for="api_key_input">DANDI API key</label>
    <input id="api_key_input" type="password" class="form-control" name="api_key"
           autocomplete="off" autofocus="autofocus" required />
    <p class="help-block">
      Find your key at
      <a href="{{ authenticator.register_url | e }}" target="_blank" rel="noopener">{{
        authenticator.register_url | e }}</a> (sign in, then open the menu under your name).
      Archive: {{ authenticator.archive_url | e }}
    </p>
    <input id="login_submit" type="submit" class="btn btn-jupyter form-control" value="Sign in" />
  </div>
</form>
"""
