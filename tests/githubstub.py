"""A stand-in for GitHub's OAuth apps and REST API, speaking their real protocol.

GitHub cannot be reached from the test machines, so this serves, on 127.0.0.1, what an
OAuth app and oauthenticator's GitHubOAuthenticator use (as GitHub documents them):

- ``GET  /login/oauth/authorize``      client_id, redirect_uri, scope, state, login,
  code_challenge(+_method S256): a sign-in page; approving redirects with ``code`` and
  ``state``; cancelling with ``error=access_denied``. A redirect_uri outside the app's
  callback URL gets ``error=redirect_uri_mismatch`` at the callback URL, as on GitHub.
- ``POST /login/oauth/access_token``   client_id, client_secret, code, redirect_uri,
  code_verifier: the token, form-encoded by default, JSON for ``Accept: application/json``,
  XML for ``application/xml``. Errors come with HTTP 200 and ``error``/``error_description``
  (``incorrect_client_credentials``, ``redirect_uri_mismatch``, ``bad_verification_code``)
  like GitHub's. Codes are single-use and expire after 10 minutes.
- ``GET  /user``, ``GET /user/emails`` (also under ``/api/v3``, GitHub Enterprise's API
  root, which is what GitHubOAuthenticator derives from a custom ``github_url``), with
  ``Authorization: token|Bearer TOKEN``, ``X-OAuth-Scopes`` headers, 401 ``Bad
  credentials``, and 404 for /user/emails without the ``user`` or ``user:email`` scope.

    with GitHubStub(users={"octocat": {"name": "The Octocat"}}) as github:
        github.register_app("ID", "SECRET", "http://127.0.0.1:8000/hub/oauth_callback")
        ... c.GitHubOAuthenticator.github_url = github.url
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape as xml_escape

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

CODE_SECONDS = 600
DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"


@dataclass
class App:
    client_id: str
    client_secret: str
    callback_url: str
    name: str = "DANDI Hub"


@dataclass
class Grant:
    client_id: str
    login: str
    redirect_uri: str
    scopes: list[str]
    code_challenge: str
    expires_at: float


@dataclass
class GitHubStub:
    """GitHub on 127.0.0.1: ``users`` maps login -> {name, email (public or None), emails}."""

    users: dict[str, dict] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every request

    def register_app(self, client_id: str, client_secret: str, callback_url: str) -> App:
        self.apps[client_id] = App(client_id, client_secret, callback_url)
        return self.apps[client_id]

    # --- running -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.api_url = f"{self.url}/api/v3"
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True, name="githubstub")
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("The GitHub stand-in did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    # --- the protocol ------------------------------------------------------------------

    def user_json(self, login: str) -> dict:
        u = self.users[login]
        number = int(hashlib.sha256(login.encode()).hexdigest()[:7], 16)
        return {
            "login": login, "id": number,
            "node_id": base64.b64encode(f"04:User{number}".encode()).decode(),
            "avatar_url": f"{self.url}/avatars/{login}", "gravatar_id": "",
            "url": f"{self.api_url}/users/{login}", "html_url": f"{self.url}/{login}",
            "type": "User", "site_admin": False, "name": u.get("name"),
            "company": None, "blog": "", "location": None, "email": u.get("email"),
            "hireable": None, "bio": None, "twitter_username": None,
            "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
            "created_at": "2020-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        }

    def app(self) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        stub = self

        @app.middleware("http")
        async def record(request: Request, call_next):
            stub.requests.append(f"{request.method} {request.url.path}")
            return await call_next(request)

        def authorize_error(message: str) -> HTMLResponse:
            return HTMLResponse(f"<h1>{html.escape(message)}</h1>", status_code=404)

        def check_authorize(q) -> tuple[App | None, str, Response | None]:
            application = stub.apps.get(q.get("client_id", ""))
            if application is None:
                return None, "", authorize_error("Not Found: no OAuth app has this client_id")
            redirect_uri = q.get("redirect_uri") or application.callback_url
            want, got = urlsplit(application.callback_url), urlsplit(redirect_uri)
            # GitHub: same host and port, path equal to or below the callback URL's
            if (got.scheme, got.netloc) != (want.scheme, want.netloc) or not (
                got.path == want.path or got.path.startswith(want.path.rstrip("/") + "/")
            ):
                params = {"error": "redirect_uri_mismatch",
                          "error_description": "The redirect_uri MUST match the registered "
                          "callback URL for this application.", "error_uri": DOCS}
                if q.get("state"):
                    params["state"] = q["state"]
                return None, "", RedirectResponse(
                    f"{application.callback_url}?{urlencode(params)}", status_code=302)
            if q.get("code_challenge") and q.get("code_challenge_method", "S256") != "S256":
                return None, "", authorize_error("code_challenge_method must be S256")
            return application, redirect_uri, None

        @app.get("/login/oauth/authorize")
        def authorize_page(request: Request) -> Response:
            q = request.query_params
            application, _, refusal = check_authorize(q)
            if refusal:
                return refusal
            e = html.escape
            return HTMLResponse(f"""<!doctype html><html><head><title>Authorize application</title>
<style>body{{font-family:sans-serif;background:#f6f8fa}}main{{width:22rem;margin:4rem auto;
background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1.5rem}}
input{{width:100%;padding:.4rem;box-sizing:border-box}}</style></head><body><main>
<h1>Sign in to GitHub</h1><p>to continue to <strong>{e(application.name)}</strong></p>
<form method="post"><label for="login">Username or email address</label>
<input id="login" name="login" value="{e(q.get('login', ''))}" required autofocus>
<p><button type="submit" name="authorize" value="1" id="authorize">Authorize</button>
<button type="submit" name="authorize" value="0" id="cancel" formnovalidate>Cancel</button></p>
</form></main></body></html>""")

        @app.post("/login/oauth/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            form = dict(parse_qsl((await request.body()).decode()))
            application, redirect_uri, refusal = check_authorize(q)
            if refusal:
                return refusal
            state = {"state": q["state"]} if q.get("state") else {}
            sep = "&" if "?" in redirect_uri else "?"
            if form.get("authorize") != "1":
                params = {"error": "access_denied", "error_description": "The user has denied "
                          "your application access.", "error_uri": DOCS, **state}
                return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", 302)
            login = next((u for u in stub.users if u.lower() == form.get("login", "").lower()),
                         None)
            if login is None:
                return HTMLResponse("<h1>Incorrect username or password.</h1>", status_code=401)
            code = secrets.token_hex(10)  # GitHub's codes are 20 hex characters
            stub.codes[code] = Grant(
                client_id=application.client_id, login=login, redirect_uri=redirect_uri,
                scopes=[s for s in q.get("scope", "").replace(",", " ").split() if s],
                code_challenge=q.get("code_challenge", ""),
                expires_at=time.time() + CODE_SECONDS,
            )
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode({'code': code, **state})}",
                                    302)

        def token_answer(request: Request, body: dict) -> Response:
            accept = request.headers.get("accept", "")
            if "application/json" in accept:
                return JSONResponse(body)
            if "application/xml" in accept:
                xml = "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in body.items())
                return Response(f"<OAuth>{xml}</OAuth>", media_type="application/xml")
            return Response(urlencode(body), media_type="application/x-www-form-urlencoded")

        def token_error(request: Request, error: str, description: str) -> Response:
            return token_answer(request, {"error": error, "error_description": description,
                                          "error_uri": DOCS})

        @app.post("/login/oauth/access_token")
        async def access_token(request: Request) -> Response:
            raw = (await request.body()).decode()
            if request.headers.get("content-type", "").startswith("application/json"):
                params = json.loads(raw or "{}")
            else:
                params = dict(parse_qsl(raw))
            params = {**dict(request.query_params), **params}
            application = stub.apps.get(params.get("client_id", ""))
            if application is None or not secrets.compare_digest(
                    application.client_secret, params.get("client_secret", "")):
                return token_error(request, "incorrect_client_credentials",
                                   "The client_id and/or client_secret passed are incorrect.")
            grant = stub.codes.pop(params.get("code", ""), None)  # single use
            if grant is None or grant.client_id != application.client_id \
                    or grant.expires_at < time.time():
                return token_error(request, "bad_verification_code",
                                   "The code passed is incorrect or expired.")
            if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
                return token_error(request, "redirect_uri_mismatch",
                                   "The redirect_uri MUST match the registered callback URL "
                                   "for this application.")
            if grant.code_challenge:
                verifier = params.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant.code_challenge:
                    return token_error(request, "bad_verification_code",
                                       "The code_verifier does not match the code_challenge.")
            token = "gho_" + secrets.token_urlsafe(27)[:36]
            stub.tokens[token] = (grant.login, grant.scopes)
            return token_answer(request, {"access_token": token, "token_type": "bearer",
                                          "scope": ",".join(grant.scopes)})

        def api_user(request: Request) -> tuple[str, list[str]] | Response:
            parts = request.headers.get("authorization", "").split()
            if len(parts) != 2 or parts[0].lower() not in ("token", "bearer"):
                return JSONResponse({"message": "Requires authentication",
                                     "documentation_url": "https://docs.github.com/rest",
                                     "status": "401"}, status_code=401)
            found = stub.tokens.get(parts[1])
            if found is None:
                return JSONResponse({"message": "Bad credentials",
                                     "documentation_url": "https://docs.github.com/rest",
                                     "status": "401"}, status_code=401)
            return found

        def scoped(body, scopes: list[str], accepted: str, status: int = 200) -> JSONResponse:
            return JSONResponse(body, status_code=status, headers={
                "X-OAuth-Scopes": ", ".join(scopes), "X-Accepted-OAuth-Scopes": accepted,
                "X-GitHub-Media-Type": "github.v3"})

        @app.get("/user")
        @app.get("/api/v3/user")
        def user(request: Request) -> Response:
            found = api_user(request)
            if isinstance(found, Response):
                return found
            login, scopes = found
            return scoped(stub.user_json(login), scopes, "")

        @app.get("/user/emails")
        @app.get("/api/v3/user/emails")
        def emails(request: Request) -> Response:
            found = api_user(request)
            if isinstance(found, Response):
                return found
            login, scopes = found
            if not {"user", "user:email"} & set(scopes):
                return scoped({"message": "Not Found", "documentation_url":
                               "https://docs.github.com/rest/users/emails", "status": "404"},
                              scopes, "user, user:email", status=404)
            u = stub.users[login]
            primary = u.get("private_email") or u.get("email") or f"{login}@users.noreply.github.com"
            return scoped([{"email": primary, "primary": True, "verified": True,
                            "visibility": "public" if u.get("email") else "private"}],
                          scopes, "user, user:email")

        return app
