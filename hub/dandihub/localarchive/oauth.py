"""The local archive as an OAuth2 provider: what django-oauth-toolkit gives dandi-archive.

Endpoints, as dandi-archive serves them on its API host:

- ``GET  /oauth/authorize/``  the sign-in page (the request is validated first; an unknown
  client or redirect URI gets an error page, never a redirect);
- ``POST /oauth/authorize/``  the person's account and API key (a demo archive has no
  passwords); success redirects to the client with ``code`` and the client's ``state``;
- ``POST /oauth/token/``      authorization code -> Bearer access token.

Authorization code grant with PKCE (S256) required for every client; codes live
`CODE_SECONDS` and are single-use (a replay is ``invalid_grant`` and revokes the tokens the
code gave, as RFC 6749 section 4.1.2 recommends). Clients come from ``archive.json``'s
``"oauth_clients"``; a client without a secret is public (PKCE only). Codes and tokens are
kept in memory: restarting the archive signs everyone out of it.

Built on authlib's framework-independent AuthorizationServer; this module is only the
Starlette adapter and the in-memory models.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .store import ArchiveStore, User

log = logging.getLogger(__name__)

CODE_SECONDS = 60  # django-oauth-toolkit's AUTHORIZATION_CODE_EXPIRE_SECONDS
TOKEN_SECONDS = 36000  # and its ACCESS_TOKEN_EXPIRE_SECONDS


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered OAuth application (``archive.json``: ``oauth_clients``)."""

    client_id: str
    client_secret: str = field(default="", repr=False)
    redirect_uris: tuple[str, ...] = ()
    name: str = ""

    @classmethod
    def from_json(cls, data: dict) -> Client:
        return cls(
            client_id=data["client_id"],
            client_secret=data.get("client_secret", ""),
            redirect_uris=tuple(data.get("redirect_uris", [])),
            name=data.get("name", data["client_id"]),
        )

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return scope or ""

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris  # exact match, as the OAuth security BCP asks

    def check_client_secret(self, client_secret):
        return bool(self.client_secret) and secrets.compare_digest(
            self.client_secret.encode(), str(client_secret).encode()
        )

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint != "token":
            return True
        if not self.client_secret:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    username: str
    code_challenge: str
    code_challenge_method: str
    expires_at: float

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class AccessToken:
    username: str
    client_id: str
    expires_at: float
    code: str


class S256Required(CodeChallenge):
    """PKCE for every client, S256 only (RFC 9700 and django-oauth-toolkit 2's default)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (method S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class _Payload(OAuth2Payload):
    """Query and form parameters together, as Flask's ``request.values``."""

    def __init__(self, items: list[tuple[str, str]]):
        self._datalist = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class _Request(OAuth2Request):
    """A Starlette request whose form has already been read (authlib is synchronous)."""

    def __init__(self, request: Request, form: list[tuple[str, str]]):
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._args = dict(request.query_params)
        self._form = dict(form)
        self.payload = _Payload(list(request.query_params.multi_items()) + form)

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


class OAuthProvider(AuthorizationServer):
    """authlib's authorization server over the archive's accounts, with in-memory codes and
    tokens. `user_for_access_token` is what the API's ``Authorization: Bearer`` uses."""

    def __init__(self, store: ArchiveStore, clients: list[Client]):
        super().__init__()
        self.store = store
        self.clients = {c.client_id: c for c in clients}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.spent: dict[str, float] = {}  # used codes -> when they expire anyway
        self.lock = threading.Lock()
        self.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=lambda **_: generate_token(42),
            expires_generator=lambda client, grant_type: TOKEN_SECONDS,
        ))
        self.register_grant(CodeGrant, [S256Required(required=True)])

    @classmethod
    def from_store(cls, store: ArchiveStore) -> OAuthProvider:
        path = store.root / "archive.json"
        data = json.loads(path.read_text()) if path.is_file() else {}
        return cls(store, [Client.from_json(c) for c in data.get("oauth_clients", [])])

    # --- authlib's hooks ------------------------------------------------------

    def query_client(self, client_id):
        return self.clients.get(client_id)

    def save_token(self, token, request):
        with self.lock:
            self.tokens[token["access_token"]] = AccessToken(
                username=request.user.username,
                client_id=request.client.client_id,
                expires_at=time.time() + token.get("expires_in", TOKEN_SECONDS),
                code=request.authorization_code.code,
            )

    def create_oauth2_request(self, request):
        return request  # already an OAuth2Request (see _Request)

    def handle_response(self, status, body, headers):
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=headers)
        return Response(body or b"", status_code=status, headers=headers)

    def send_signal(self, name, *args, **kwargs):
        pass

    # --- accounts ---------------------------------------------------------------

    def user_for_access_token(self, token: str) -> User | None:
        with self.lock:
            found = self.tokens.get(token)
            if found is None or found.expires_at < time.time():
                return None
        return next((u for u in self.store.users if u.username == found.username), None)

    def authenticate(self, username: str, api_key: str) -> User | None:
        user = self.store.user_by_key(api_key.strip()) if api_key.strip() else None
        if user is None or user.username.lower() != username.strip().lower():
            return None
        return user

    def replayed(self, code: str) -> None:
        """A used code came back: refuse it and revoke what it gave (RFC 6749 4.1.2)."""
        with self.lock:
            revoked = [t for t, v in self.tokens.items() if v.code == code]
            for token in revoked:
                del self.tokens[token]
        log.warning("An authorization code was used twice; revoked %d token(s)", len(revoked))


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

    def save_authorization_code(self, code, request):
        data = request.payload.data
        with self.server.lock:
            self.server.codes[code] = AuthorizationCode(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=data.get("redirect_uri") or "",
                scope=request.scope or "",
                username=request.user.username,
                code_challenge=data.get("code_challenge") or "",
                code_challenge_method=data.get("code_challenge_method") or "",
                expires_at=time.time() + CODE_SECONDS,
            )

    def query_authorization_code(self, code, client):
        now = time.time()
        with self.server.lock:
            self.server.spent = {c: t for c, t in self.server.spent.items() if t > now}
            spent = code in self.server.spent
            item = self.server.codes.get(code)
        if spent:
            self.server.replayed(code)
            return None
        if item is None or item.client_id != client.client_id or item.expires_at < now:
            return None
        return item

    def delete_authorization_code(self, authorization_code):
        with self.server.lock:
            self.server.codes.pop(authorization_code.code, None)
            self.server.spent[authorization_code.code] = authorization_code.expires_at

    def authenticate_user(self, authorization_code):
        return next(
            (u for u in self.server.store.users if u.username == authorization_code.username), None
        )


# --- the routes -----------------------------------------------------------------


def mount(app: FastAPI, store: ArchiveStore) -> OAuthProvider:
    """Add /oauth/authorize/ and /oauth/token/ to ``app``; returns the provider."""
    provider = OAuthProvider.from_store(store)

    async def oauth_request(request: Request) -> _Request:
        form = []
        if request.method == "POST":  # OAuth bodies are always form-encoded (RFC 6749 3.2)
            form = parse_qsl((await request.body()).decode("utf-8", "replace"),
                             keep_blank_values=True)
        return _Request(request, form)

    def consent(req: _Request):
        """The validated grant, or the response for an invalid request."""
        try:
            return provider.get_consent_grant(req), None
        except OAuth2Error as error:
            if error.redirect_uri:  # the redirect URI is the client's own: tell the client
                return None, provider.handle_error_response(req, error)
            return None, error_page(store.name, error)

    @app.get("/oauth/authorize/")
    async def authorize_page(request: Request) -> Response:
        grant, refusal = consent(await oauth_request(request))
        return refusal or sign_in_page(store.name, grant.client)

    @app.post("/oauth/authorize/")
    async def authorize(request: Request) -> Response:
        req = await oauth_request(request)
        grant, refusal = consent(req)
        if refusal:
            return refusal
        if req.form.get("action") == "cancel":
            return provider.create_authorization_response(req, grant_user=None, grant=grant)
        user = provider.authenticate(req.form.get("username", ""), req.form.get("api_key", ""))
        if user is None:
            return sign_in_page(store.name, grant.client, req.form.get("username", ""),
                                "Unknown account, or this is not its API key.", status=401)
        log.info("%s signed in to OAuth client %s", user.username, grant.client.client_id)
        return provider.create_authorization_response(req, grant_user=user, grant=grant)

    @app.post("/oauth/token/")
    async def token(request: Request) -> Response:
        return provider.create_token_response(await oauth_request(request))

    app.state.oauth = provider
    return provider


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
 body {{ font-family: system-ui, sans-serif; background: #f4f6f8; margin: 0; }}
 main {{ max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem;
        border-radius: 8px; box-shadow: 0 1px 4px #0002; }}
 h1 {{ font-size: 1.3rem; margin-top: 0; }} label {{ display: block; margin-top: 1rem; }}
 input[type=text], input[type=password] {{ width: 100%; padding: .5rem; box-sizing: border-box; }}
 .error {{ color: #b00020; }} .buttons {{ margin-top: 1.5rem; display: flex; gap: 1rem; }}
 button {{ padding: .5rem 1.2rem; }} .muted {{ color: #555; font-size: .9rem; }}
</style></head><body><main>{body}</main></body></html>"""


def sign_in_page(archive: str, client: Client, username: str = "", error: str = "",
                 status: int = 200) -> HTMLResponse:
    e = html.escape
    body = f"""
<h1>Sign in to {e(archive)}</h1>
<p class="muted"><strong>{e(client.name)}</strong> asks to sign you in with your account of
this archive. It receives your name, your approval status and your API key.</p>
{f'<p class="error" role="alert">{e(error)}</p>' if error else ''}
<form method="post" id="oauth-sign-in">
  <label for="username">Account (username)</label>
  <input type="text" id="username" name="username" value="{e(username)}" required autofocus>
  <label for="api_key">API key</label>
  <input type="password" id="api_key" name="api_key" autocomplete="off" required>
  <div class="buttons">
    <button type="submit" name="action" value="allow" id="allow">Sign in</button>
    <button type="submit" name="action" value="cancel" id="cancel" formnovalidate>Cancel</button>
  </div>
</form>"""
    return HTMLResponse(_PAGE.format(title=f"Sign in to {e(archive)}", body=body),
                        status_code=status)


def error_page(archive: str, error: OAuth2Error) -> HTMLResponse:
    e = html.escape
    body = (f"<h1>This sign-in request is not valid</h1>"
            f"<p class='error'>{e(error.error)}: {e(error.description or '')}</p>"
            f"<p class='muted'>{e(archive)} did not send you back to the application, because "
            "it cannot tell that the request came from it.</p>")
    return HTMLResponse(_PAGE.format(title="Invalid sign-in request", body=body),
                        status_code=error.status_code or 400)
