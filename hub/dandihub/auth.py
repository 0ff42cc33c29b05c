"""Sign in with a DANDI account.

Every authenticator here ends with the same decision: the archive must know the account and
have APPROVED it (configured admins, allowed users and allowed groups get in regardless).
Refusals raise ``HTTPError`` whose message JupyterHub renders (on the login page, or as an
error page after an OAuth redirect); an archive that does not answer is a 503, never an
allow. No key, token, code or state is ever logged.

- `DandiOAuthenticator`: the archive is the OAuth2 provider (the default for a deployment);
  the user's API key comes with the sign-in.
- `DandiGitHubOAuthenticator`: GitHub OAuth, then the archive's users/search, as DANDI's
  hub has done; the server gets no API key (the archive gives it only to its owner).
- `APIKeyAuthenticator`: the user pastes their DANDI API key (embedded mode, small hubs).

Both OAuth authenticators accept several archives (`archives`): DANDI, its staging, EMBER-
style instances. A user allowed by any of them gets in, and their server's DANDI_API_URL
points at that archive (the auth_state of `dandihub.authstate`).
"""

from __future__ import annotations

import base64
import html
import os
from urllib.parse import urlencode

from jupyterhub.auth import Authenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.oauth2 import (
    OAuthCallbackHandler,
    OAuthenticator,
    OAuthLoginHandler,
    _deserialize_state,
    _serialize_state,
)
from tornado.httpclient import HTTPClientError
from tornado.log import app_log, gen_log
from tornado.web import HTTPError
from traitlets import Bool, Dict, List, Unicode, default

from .archive import (
    PUBLIC_API_URL,
    Archive,
    ArchiveClient,
    ArchiveError,
    ArchiveUnavailable,
    ArchiveUser,
    InvalidToken,
    oauth_url,
    parse_archives,
    web_url,
)
from .authstate import (
    AUTH_STATE_ARCHIVE_NAME,
    AUTH_STATE_USER,
    DandiAuthState,
    DandiUser,
)

# Which archive issued an access token: kept in the token response (auth_state's
# token_response), the one thing OAuthenticator hands from the token exchange onwards.
TOKEN_ARCHIVE = "dandihub_archive"
# The archive chosen on the login page, kept in OAuthenticator's signed state cookie.
STATE_ARCHIVE = "archive"


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


def page_error(status: int, reason: str, message: str, links: tuple[str, ...] = ()) -> HTTPError:
    """An error JupyterHub renders as a page: ``reason`` as its title, ``message`` below with
    each of ``links`` clickable."""
    error = HTTPError(status, "%s", message, reason=reason)  # "%s": URLs may hold a '%'
    text = html.escape(message)
    for url in links:
        text = text.replace(html.escape(url), f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
    error.jupyterhub_html_message = text
    return error


def account_refused(user: ArchiveUser, register_url: str) -> HTTPError:
    """The 403 page for an archive account that is not approved (`refusal` says why)."""
    reasons = {"PENDING": "Account pending approval", "REJECTED": "Account not approved"}
    return page_error(
        403, reasons.get(user.status.upper(), "Registration not finished"),
        refusal(user, register_url) or "", (register_url,),
    )


def archive_unavailable(archives: list[Archive]) -> HTTPError:
    """The 503 page when an archive that has to decide did not answer."""
    names = ", ".join(f"'{a.name}' ({a.api_url})" for a in archives)
    return page_error(
        503, "DANDI archive unavailable",
        f"The DANDI archive {names} did not answer, so this hub cannot check your account "
        "right now. This is temporary: try again in a few minutes.",
    )


class SignInCallbackHandler(OAuthCallbackHandler):
    """OAuthenticator's callback, with no code or state in the log and a state check whose
    refusal says what to do."""

    def log_exception(self, typ, value, tb):
        # tornado's own logs the request's URL (and repr), query included: code and state.
        summary = f"{self.request.method} {self.request.path} ({self.request.remote_ip})"
        if isinstance(value, HTTPError):
            if value.get_message():
                gen_log.warning("%d %s: %s", value.status_code, summary, value.get_message())
        else:
            app_log.error("Uncaught exception %s", summary, exc_info=(typ, value, tb))

    def check_state(self):
        # Not super().check_state(): it logs both state ids on a mismatch. oauthenticator
        # 17.4 has no public (de)serializer of its state, hence _deserialize_state.
        def state_id(serialized: str) -> str | None:
            return _deserialize_state(serialized).get("state_id") if serialized else None

        expected = state_id(self.get_state_cookie())
        if not expected or expected != state_id(self.get_argument("state", "")):
            self.log.warning("Refused an OAuth callback that does not match a sign-in started "
                             "in this browser (state missing or mismatched)")
            raise page_error(
                400, "Sign-in not recognised",
                "This sign-in was not started in this browser, or it was already completed "
                "(OAuth state mismatch). Sign in again from the login page.",
            )


class ArchiveLoginHandler(OAuthLoginHandler):
    """OAuthenticator's redirect to the provider, to the archive chosen on the login page
    (``?archive=NAME``; the first archive without one) with that archive's client id."""

    @property
    def archive(self) -> Archive:
        if not hasattr(self, "_archive"):
            self._archive = self.authenticator.archive_named(self.get_argument("archive", None))
        return self._archive

    @property
    def _OAUTH_AUTHORIZE_URL(self):  # (tornado's OAuth2Mixin API, underscore and all)
        return self.archive.authorize_url

    # OAuthLoginHandler.get builds the state inline with no hook for a field of ours, and
    # oauthenticator 17.4's (de)serializers are module-private: hence _(de)serialize_state.
    def set_state_cookie(self, state_cookie_value):
        state = _deserialize_state(state_cookie_value)
        state[STATE_ARCHIVE] = self.archive.name
        super().set_state_cookie(_serialize_state(state))

    def authorize_redirect(self, *args, **kwargs):
        kwargs["client_id"] = self.archive.client_id
        return super().authorize_redirect(*args, **kwargs)


ARCHIVE_ADMINS_HELP = (
    "Make the archive's admins hub admins when they sign in. Off by default: a hub admin "
    "can act as (and so read the DANDI key of) any user; list hub admins in admin_users.")


class ArchivesMixin:
    """The archives of an authenticator: `archives`, or the single `archive_url`."""

    def single_archive(self) -> Archive:
        raise NotImplementedError

    @property
    def archive_list(self) -> list[Archive]:
        try:
            return parse_archives(self.archives) if self.archives else [self.single_archive()]
        except (ValueError, OSError) as e:
            self.log.error("The archives of %s are misconfigured: %s",
                           self.__class__.__name__, e)
            raise HTTPError(500, "This hub's archives are misconfigured; see the hub's log.") from None

    def archive_named(self, name: str | None) -> Archive:
        archives = self.archive_list
        if name is None:
            return archives[0]
        for archive in archives:
            if archive.name == name:
                return archive
        raise page_error(
            400, "Unknown archive",
            f"This hub does not sign in with an archive named '{name}'. Choose one on the "
            "login page.",
        )


class APIKeyAuthenticator(Authenticator):
    """Sign in by pasting a DANDI API key; the archive says who it belongs to.

    The key is checked with ``GET {archive_url}/users/me/``; only APPROVED accounts get in,
    under their DANDI username. The key is kept in the encrypted auth_state (it becomes
    the server's ``DANDI_API_KEY``), so ``enable_auth_state`` is on and the hub needs
    ``JUPYTERHUB_CRYPT_KEY``.
    """

    archive_admins_are_hub_admins = Bool(False, config=True, help=ARCHIVE_ADMINS_HELP)
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
            # None leaves the hub's own admin flag (admin_users) as it is
            "admin": True if (user.admin and self.archive_admins_are_hub_admins) else None,
            "auth_state": DandiAuthState(
                api_url=self.archive_url, api_key=key,
                user=DandiUser(user.username, user.name, status=user.status, admin=user.admin),
            ).to_dict(),
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
      No key yet? <a id="dandi-key-help" href="{{ authenticator.register_url | e }}"
        target="_blank" rel="noopener">How to get your DANDI API key</a>
      ({{ authenticator.register_url | e }}). On the DANDI Archive, sign in there and
      open the menu under your name.
    </p>
    <p class="help-block">Archive: {{ authenticator.archive_url | e }}
    </p>
    <input id="login_submit" type="submit" class="btn btn-jupyter form-control" value="Sign in" />
  </div>
</form>
"""


ARCHIVES_HELP = """The archives people may sign in with, one dict each::

    {"name": "DANDI", "api_url": "https://api.dandiarchive.org/api",
     "web_url": ...,        # where people register; default from api_url
     "oauth_url": ...,      # default {API host}/oauth (dandi-archive's django-oauth-toolkit)
     "client_id": ..., "client_secret" | "client_secret_file" | "client_secret_env": ...,
     "service_token" | "service_token_file" | "service_token_env": ...}

(`dandihub.archive.Archive`). Names label the login buttons and must be unique. Empty: the
one archive `archive_url` with this authenticator's own client_id/client_secret/URLs."""


class DandiOAuthenticator(ArchivesMixin, OAuthenticator):
    """Sign in on the DANDI archive: it is the OAuth2 provider (authorization code + PKCE).

    The archive (django-oauth-toolkit at ``{API host}/oauth/``) authenticates the person;
    ``users/me/`` with the access token says who they are and their status; only APPROVED
    accounts get in (plus admins, allowed users, allowed groups). Their API key, from
    ``auth/token/`` with the same token, is kept in the encrypted auth_state under
    `dandihub.authstate`, so `dandihub.spawner.pre_spawn_hook` gives it to their server.

    With several `archives` the login page shows one button per archive; the server then
    points at the archive the person chose. (``allow_all`` would let in every account the
    archive knows, approved or not.)
    """

    user_auth_state_key = AUTH_STATE_USER  # token_to_user's DandiUser, stored by OAuthenticator
    login_handler = ArchiveLoginHandler
    callback_handler = SignInCallbackHandler

    archive_admins_are_hub_admins = Bool(False, config=True, help=ARCHIVE_ADMINS_HELP)
    archive_url = Unicode(
        PUBLIC_API_URL,
        config=True,
        help="API root (ends in /api) of the archive people sign in with, when `archives` "
        "is empty.",
    )
    register_url = Unicode(
        config=True,
        help="Where people register on `archive_url` (default: the archive's web UI).",
    )
    archives = List(Dict(), config=True, help=ARCHIVES_HELP)

    @default("register_url")
    def _default_register_url(self):
        return web_url(self.archive_url)

    @default("login_service")
    def _default_login_service(self):
        return "DANDI"

    @default("authorize_url")
    def _default_authorize_url(self):
        return f"{oauth_url(self.archive_url)}/authorize/"

    @default("token_url")
    def _default_token_url(self):
        return f"{oauth_url(self.archive_url)}/token/"

    @default("username_claim")
    def _default_username_claim(self):
        return "username"

    @default("enable_auth_state")
    def _default_enable_auth_state(self):
        return True  # the API key lives there

    @default("any_allow_config")
    def _default_any_allow_config(self):
        return True  # the archive's approval is the allow list

    @default("refresh_user_hook")
    def _default_refresh_user_hook(self):
        return refresh_with_api_key

    @default("custom_html")
    def _default_custom_html(self):
        return ARCHIVE_BUTTONS

    def single_archive(self) -> Archive:
        return Archive(
            name=self.login_service, api_url=self.archive_url, web_url=self.register_url,
            authorize_url=self.authorize_url, token_url=self.token_url,
            client_id=self.client_id, client_secret=self.client_secret,
        )

    def chosen_archive(self, handler) -> Archive:
        """The archive of the sign-in ``handler`` completes (from the state cookie)."""
        cookie = handler.get_state_cookie() if handler is not None else ""
        return self.archive_named(_deserialize_state(cookie).get(STATE_ARCHIVE) if cookie else None)

    def build_access_tokens_request_params(self, handler, data=None):
        """OAuthenticator's code-exchange parameters, with the chosen archive's client."""
        params = super().build_access_tokens_request_params(handler, data)
        if not self.basic_auth:
            archive = self.chosen_archive(handler)
            params.update(client_id=archive.client_id, client_secret=archive.client_secret)
        return params

    async def get_token_info(self, handler, params):
        """OAuthenticator's code exchange, at the chosen archive's token URL with its client;
        a refused code is a 403 page, an archive that does not answer a 503 page."""
        # Overridden, not extended: oauthenticator 17.4 posts to self.token_url with
        # self.client_id's basic auth, with no per-request token URL or client.
        archive = self.chosen_archive(handler)
        headers = self.build_token_info_request_headers()
        if self.basic_auth:
            pair = f"{archive.client_id}:{archive.client_secret}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        try:
            token_info = await self.httpfetch(
                archive.token_url, "exchanging the sign-in code", method="POST",
                headers=headers, body=urlencode(params).encode("utf-8"),
                validate_cert=self.validate_server_cert,
            )
        except HTTPClientError as e:
            if e.code < 500:
                raise page_error(
                    403, "Sign-in refused by the archive",
                    f"The DANDI archive '{archive.name}' did not accept this sign-in (HTTP "
                    f"{e.code}): it was already used, has expired, or was not issued to this "
                    "hub. Sign in again from the login page.",
                ) from None
            raise archive_unavailable([archive]) from None
        except OSError:
            self.log.error("The DANDI archive %s did not answer at %s", archive.name,
                           archive.token_url)
            raise archive_unavailable([archive]) from None
        if "access_token" not in (token_info or {}):
            raise page_error(403, "Sign-in refused by the archive",
                             f"The DANDI archive '{archive.name}' returned no access token "
                             f"({(token_info or {}).get('error', 'no error given')}).")
        token_info[TOKEN_ARCHIVE] = archive.name
        return token_info

    async def token_to_user(self, token_info):
        """The account from ``users/me/`` of the archive that issued the token."""
        archive = self.archive_named(token_info.get(TOKEN_ARCHIVE))
        try:
            user = await archive.client().me(token_info["access_token"], scheme="Bearer")
        except InvalidToken:
            raise page_error(403, "Sign-in refused by the archive",
                             f"The DANDI archive '{archive.name}' did not accept its own "
                             "sign-in token. Sign in again from the login page.") from None
        except ArchiveError as e:
            self.log.error("Sign-in impossible: %s", e)
            raise archive_unavailable([archive]) from None
        return DandiUser(user.username, user.name, status=user.status, admin=user.admin).to_dict()

    async def update_auth_model(self, auth_model):
        """Record the archive and, for an approved account, fetch its API key."""
        auth_state = auth_model["auth_state"]
        archive = self.archive_named(auth_state["token_response"].get(TOKEN_ARCHIVE))
        user = ArchiveUser.from_json(auth_state[self.user_auth_state_key])
        DandiAuthState(api_url=archive.api_url, archive=archive.name).update(auth_state)
        if user.admin and self.archive_admins_are_hub_admins:
            auth_model["admin"] = True
        if user.approved:
            try:
                key = await archive.client().api_key(auth_state["access_token"])
                DandiAuthState(api_key=key).update(auth_state)
            except ArchiveUnavailable as e:
                self.log.error("Sign-in impossible: %s", e)
                raise archive_unavailable([archive]) from None
            except ArchiveError as e:
                self.log.warning("No DANDI API key for %s from %s: %s",
                                 user.username, archive.name, e)
        return auth_model

    async def check_allowed(self, username, auth_model):
        """APPROVED accounts, and whoever OAuthenticator allows (admins, allowed_users,
        allowed_groups); others get a page saying why."""
        if await super().check_allowed(username, auth_model):
            return True
        auth_state = auth_model["auth_state"]
        user = ArchiveUser.from_json(auth_state[self.user_auth_state_key])
        if user.approved:
            return True
        archive = self.archive_named(auth_state.get(AUTH_STATE_ARCHIVE_NAME))
        self.log.warning("Refused DANDI user %s of %s with status %s",
                         user.username, archive.name, user.status)
        raise account_refused(user, archive.web_url)


async def refresh_with_api_key(authenticator, user, auth_state):
    """Keep a DANDI sign-in fresh with the API key rather than the access token.

    The key is what the server uses and it outlives the token. A key the archive no longer
    accepts, or an account no longer approved, means signing in again; an archive that does
    not answer changes nothing.
    """
    state = DandiAuthState.from_dict(auth_state)
    if not state.api_key:
        return True  # nothing to check (admins without an approved account)
    try:
        account = await ArchiveClient(state.api_url).me(state.api_key)
    except InvalidToken:
        return False
    except ArchiveError:
        return True
    return account.approved or bool(user.admin)


class DandiGitHubOAuthenticator(ArchivesMixin, GitHubOAuthenticator):
    """Sign in with GitHub, for GitHub accounts registered and approved on a DANDI archive.

    After GitHub's OAuth, each archive of `archives` is asked in turn
    (``users/search/?username=LOGIN`` with that archive's service token); the first one with
    an exact (case-insensitive) APPROVED match lets the person in, and their server points at
    it. dandi-archive's users/search lists approved accounts only, so a pending or rejected
    registration looks like none: the refusal page says both.

    The server gets no DANDI API key: the archive gives a key only to its owner (use
    `DandiOAuthenticator` for that).
    """

    callback_handler = SignInCallbackHandler

    archive_url = Unicode(
        PUBLIC_API_URL,
        config=True,
        help="API root (ends in /api) of the archive to check, when `archives` is empty.",
    )
    service_token = Unicode(
        config=True,
        help="API key of an approved account of `archive_url`, to look people up "
        "(users/search needs one), when `archives` is empty. Default: $DANDI_SERVICE_TOKEN.",
    )
    archives = List(Dict(), config=True, help=ARCHIVES_HELP)

    @default("service_token")
    def _default_service_token(self):
        return os.environ.get("DANDI_SERVICE_TOKEN", "")

    @default("scope")
    def _default_scope(self):
        return ["user:email"]  # a private email too, for git's author in the server

    @default("enable_auth_state")
    def _default_enable_auth_state(self):
        return True

    @default("any_allow_config")
    def _default_any_allow_config(self):
        return True  # the archives' approval is the allow list

    @default("refresh_user_hook")
    def _default_refresh_user_hook(self):
        async def keep(authenticator, user, auth_state):
            # Approval was checked at sign-in; re-asking GitHub and every archive before
            # each spawn would make spawning depend on all of them answering.
            return True

        return keep

    def single_archive(self) -> Archive:
        return Archive(name="DANDI", api_url=self.archive_url, service_token=self.service_token)

    async def update_auth_model(self, auth_model):
        """GitHub's facts (email), then which archive approves this GitHub login."""
        auth_model = await super().update_auth_model(auth_model)
        auth_state = auth_model["auth_state"]
        github_user = auth_state[self.user_auth_state_key]
        login = github_user["login"]
        registration = {"archive": None, "unreachable": [], "statuses": {}}
        for archive in self.archive_list:
            try:
                user = await archive.client().find_user(login, archive.service_token)
            except ArchiveError as e:
                # A refused service token is the hub's problem, not the person's: unreachable.
                self.log.error("Cannot check %s on %s: %s", login, archive.name, e)
                registration["unreachable"].append(archive.name)
                continue
            if user is None:
                continue
            if user.approved:
                registration["archive"] = archive.name
                DandiAuthState(
                    api_url=archive.api_url, archive=archive.name,
                    user=DandiUser(user.username, github_user.get("name") or user.name,
                                   email=github_user.get("email") or "", status=user.status,
                                   admin=user.admin),
                ).update(auth_state)
                break
            registration["statuses"][archive.name] = user.status
        auth_state["dandi_registration"] = registration
        return auth_model

    async def check_allowed(self, username, auth_model):
        """Approved on an archive, or allowed by GitHubOAuthenticator (admins, allowed users,
        organizations, groups); else a page saying why, or a 503 if an archive that might
        approve did not answer."""
        if await super().check_allowed(username, auth_model):
            return True
        auth_state = auth_model["auth_state"]
        registration = auth_state["dandi_registration"]
        if registration["archive"]:
            return True
        login = auth_state[self.user_auth_state_key]["login"]
        if registration["unreachable"]:
            self.log.warning("Cannot decide on GitHub user %s: %s did not answer",
                             login, ", ".join(registration["unreachable"]))
            raise archive_unavailable(
                [a for a in self.archive_list if a.name in registration["unreachable"]])
        archives = self.archive_list
        for archive in archives:  # an archive that reports a status says exactly why
            status = registration["statuses"].get(archive.name)
            if status:
                self.log.warning("Refused GitHub user %s: status %s on %s",
                                 login, status, archive.name)
                raise account_refused(ArchiveUser(login, "", status), archive.web_url)
        self.log.warning("Refused GitHub user %s: not an approved account of %s",
                         login, ", ".join(a.name for a in archives))
        where = " or ".join(f"{a.name} ({a.web_url})" for a in archives)
        raise page_error(
            403, "Not a registered DANDI account",
            f"Your GitHub account '{login}' is not an approved account of {where}. To use "
            "this hub, register there with this GitHub account. If you already have, your "
            "registration may still be awaiting approval: the archive emails you when it is "
            "approved; sign in here again then.",
            tuple(a.web_url for a in archives),
        )


# The login page of DandiOAuthenticator: one button per archive. Rendered by JupyterHub's
# LoginHandler with its context (authenticator_login_url carries ?next=).
ARCHIVE_BUTTONS = """
<div class="service-login" id="dandi-sign-in">
  <h1>Sign in with your DANDI account</h1>
  {% for archive in authenticator.archive_list %}
  <p><a role="button" class="btn btn-jupyter btn-lg dandi-archive-login"
        data-archive="{{ archive.name | e }}"
        href="{{ (authenticator_login_url ~ '&archive=' ~ (archive.name | urlencode)) | e }}"
     >Sign in with {{ archive.name | e }}</a></p>
  {% endfor %}
  <p class="help-block">No account yet? Register on
  {%- for archive in authenticator.archive_list %}
    <a href="{{ archive.web_url | e }}" target="_blank" rel="noopener">{{ archive.name | e }}</a>
    {{- "," if not loop.last }}
  {%- endfor %}, then come back here.</p>
</div>
"""
