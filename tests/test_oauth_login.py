"""DANDI OAuth sign-in, end to end: a real hub (`dandihub up`, authenticator "dandi-oauth")
and two real local archives ("DANDI" and "DANDI staging") as OAuth2 providers (authlib,
authorization code + PKCE). Every redirect is followed by hand, as a browser would, and once
by Chromium with a screenshot of every refusal page."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time

import httpx
import pytest

from .hubutil import (
    OAuthArchive,
    RunningHub,
    error_page,
    oauth_approve,
    oauth_login,
    oauth_start,
    query_param,
    server_environment,
    signed_in_user,
    start_server,
    stop_server,
)

pytestmark = [pytest.mark.hub, pytest.mark.timeout(400)]

CLIENT_ID = "dandihub"
ARCHIVE_USERS = {
    # archive: {username: status}
    "main": {"alice": "APPROVED", "pat": "PENDING", "rex": "REJECTED", "newbie": "INCOMPLETE",
             "boss": "PENDING"},
    "staging": {"sam": "APPROVED", "alice": "PENDING"},
}
NAMES = {"main": "DANDI", "staging": "DANDI staging"}


@pytest.fixture(scope="module")
def oauth(tmp_path_factory):
    """The hub and its two archives: ``.hub``, ``.main``, ``.staging``, ``.seen`` (codes)."""
    base = tmp_path_factory.mktemp("oauth-login")
    hub = RunningHub(base / "hub", "--archive", "http://127.0.0.1:9/api")
    archives = {key: OAuthArchive(base / key, users, hub.callback_url, CLIENT_ID)
                for key, users in ARCHIVE_USERS.items()}
    secret_file = base / "main-client-secret"
    secret_file.write_text(archives["main"].client_secret + "\n")
    secret_file.chmod(0o600)
    for archive in archives.values():
        archive.running.start()
    try:
        main, staging = archives["main"], archives["staging"]
        hub.args[hub.args.index("--archive") + 1] = main.api_url
        hub.settings = {
            "authenticator": "dandi-oauth",
            "archives": [
                {"name": NAMES["main"], "api_url": main.api_url, "client_id": CLIENT_ID,
                 "client_secret_file": str(secret_file)},
                {"name": NAMES["staging"], "api_url": staging.api_url, "client_id": CLIENT_ID,
                 "client_secret": staging.client_secret},
            ],
            "admin_users": ["boss"],
            "shared_account_users": 0,  # many people sign in: a test of sign-in only
        }
        with hub:
            yield type("OAuthSetup", (), {"hub": hub, "main": main, "staging": staging,
                                          "seen": set()})
    finally:
        for archive in archives.values():
            archive.running.stop()



# --- the local archive as OAuth2 provider (its endpoints alone, over HTTP) -----------------

PROVIDER_CALLBACK = "http://127.0.0.1:1/hub/oauth_callback"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    archive = OAuthArchive(tmp_path_factory.mktemp("oauth-provider") / "archive",
                           {"alice": "APPROVED", "pat": "PENDING"}, PROVIDER_CALLBACK, CLIENT_ID)
    archive.running.start()
    try:
        archive.root = archive.api_url.removesuffix("/api")
        yield archive
    finally:
        archive.running.stop()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(provider, username="alice", challenge=None, **extra) -> httpx.Response:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": PROVIDER_CALLBACK,
              "state": "st4te", "code_challenge_method": "S256", **extra}
    if challenge:
        params["code_challenge"] = challenge
    return httpx.post(f"{provider.root}/oauth/authorize/", params=params, timeout=10,
                      data=provider.form(username))


def exchange(provider, code, verifier, **extra) -> httpx.Response:
    return httpx.post(f"{provider.root}/oauth/token/", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": PROVIDER_CALLBACK,
        "client_id": CLIENT_ID, "client_secret": provider.client_secret,
        "code_verifier": verifier, **extra})


def test_provider_issues_a_bearer_token_that_the_api_accepts(provider):
    verifier, challenge = pkce()
    answer = authorize(provider, challenge=challenge)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(PROVIDER_CALLBACK) and query_param(location, "state") == "st4te"
    token = exchange(provider, query_param(location, "code"), verifier)
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    me = httpx.get(f"{provider.api_url}/users/me/", headers=bearer, timeout=10).json()
    assert me["username"] == "alice" and me["status"] == "APPROVED"
    key = httpx.get(f"{provider.api_url}/auth/token/", headers=bearer, timeout=10).json()
    assert key == provider.keys["alice"]


def test_provider_gives_no_key_to_an_unapproved_account(provider):
    verifier, challenge = pkce()
    code = query_param(authorize(provider, "pat", challenge).headers["location"], "code")
    bearer = {"Authorization": f"Bearer {exchange(provider, code, verifier).json()['access_token']}"}
    assert httpx.get(f"{provider.api_url}/users/me/", headers=bearer,
                     timeout=10).json()["status"] == "PENDING"
    assert httpx.get(f"{provider.api_url}/auth/token/", headers=bearer,
                     timeout=10).status_code == 403


def test_provider_codes_are_single_use_and_a_replay_revokes_the_token(provider):
    verifier, challenge = pkce()
    code = query_param(authorize(provider, challenge=challenge).headers["location"], "code")
    token = exchange(provider, code, verifier).json()["access_token"]
    replay = exchange(provider, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    me = httpx.get(f"{provider.api_url}/users/me/", timeout=10,
                   headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_provider_codes_expire(provider, monkeypatch):
    from dandihub.localarchive import oauth

    monkeypatch.setattr(oauth, "CODE_SECONDS", -1)
    verifier, challenge = pkce()
    code = query_param(authorize(provider, challenge=challenge).headers["location"], "code")
    assert exchange(provider, code, verifier).json()["error"] == "invalid_grant"


def test_provider_requires_pkce_s256_and_checks_the_verifier(provider):
    missing = authorize(provider)
    assert "error=invalid_request" in missing.headers["location"]
    assert "state=st4te" in missing.headers["location"]
    plain = authorize(provider, challenge="x" * 43, code_challenge_method="plain")
    assert "error=invalid_request" in plain.headers["location"]
    _, challenge = pkce()
    code = query_param(authorize(provider, challenge=challenge).headers["location"], "code")
    wrong = exchange(provider, code, secrets.token_urlsafe(32))  # not the challenge's verifier
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_provider_checks_the_client(provider):
    verifier, challenge = pkce()
    code = query_param(authorize(provider, challenge=challenge).headers["location"], "code")
    bad = exchange(provider, code, verifier, client_secret="wrong")
    assert bad.status_code in (400, 401) and bad.json()["error"] == "invalid_client"
    # A redirect URI the client did not register: an error page, never a redirect there.
    page = httpx.get(f"{provider.root}/oauth/authorize/", timeout=10, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": "http://evil.example/cb",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert page.status_code == 400 and "location" not in page.headers
    assert "not supported by client" in page.text


def test_provider_sign_in_form_refuses_a_wrong_key_and_can_be_cancelled(provider):
    _, challenge = pkce()
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": PROVIDER_CALLBACK,
              "state": "st4te", "code_challenge": challenge, "code_challenge_method": "S256"}
    url = f"{provider.root}/oauth/authorize/"
    wrong = httpx.post(url, params=params, timeout=10,
                       data={"username": "alice", "api_key": "0" * 40, "action": "allow"})
    assert wrong.status_code == 401 and "not its API key" in wrong.text
    cancel = httpx.post(url, params=params, data={"action": "cancel"}, timeout=10)
    assert "error=access_denied" in cancel.headers["location"]
    assert "state=st4te" in cancel.headers["location"]


def sign_in(oauth, username: str, archive: str = "main"):
    a = getattr(oauth, archive)
    client, answer, callback = oauth_login(oauth.hub.url, a.form(username), NAMES[archive])
    oauth.seen.add(query_param(callback, "code"))
    return client, answer


def test_login_page_has_a_button_per_archive(oauth):
    page = httpx.get(f"{oauth.hub.url}hub/login", timeout=10)
    assert page.status_code == 200
    assert 'data-archive="DANDI"' in page.text and 'data-archive="DANDI staging"' in page.text
    assert "archive=DANDI%20staging" in page.text
    assert "Register on" in page.text


def test_approved_user_signs_in_and_gets_a_server_with_their_key(oauth):
    client, answer = sign_in(oauth, "alice")
    assert answer.status_code == 302, error_page(answer)
    assert signed_in_user(client)["name"] == "alice"
    lab = start_server(client, "alice")
    assert "JupyterLab" in lab.text
    assert oauth.main.keys["alice"] not in lab.text
    env = server_environment("alice")
    assert env["DANDI_API_KEY"] == oauth.main.keys["alice"]
    assert env["DANDI_API_URL"] == oauth.main.api_url
    assert env["GIT_AUTHOR_NAME"] == "Alice Example"
    stop_server(client, "alice")


def test_user_of_the_second_archive_is_pointed_at_it(oauth):
    client, answer = sign_in(oauth, "sam", "staging")
    assert answer.status_code == 302, error_page(answer)
    start_server(client, "sam")
    env = server_environment("sam")
    assert env["DANDI_API_URL"] == oauth.staging.api_url
    assert env["DANDI_API_KEY"] == oauth.staging.keys["sam"]
    stop_server(client, "sam")


@pytest.mark.parametrize("username, archive, title, message", [
    ("pat", "main", "Account pending approval", "'pat' is pending approval"),
    ("rex", "main", "Account not approved", "'rex' was not approved"),
    ("newbie", "main", "Registration not finished", "has not finished registration"),
    # approved on DANDI, pending on staging: the archive chosen decides
    ("alice", "staging", "Account pending approval", "'alice' is pending approval"),
])
def test_unapproved_accounts_get_a_page_saying_why(oauth, username, archive, title, message):
    client, answer = sign_in(oauth, username, archive)
    assert answer.status_code == 403
    page_title, page_message = error_page(answer)
    assert title in page_title and message in page_message
    assert signed_in_user(client) is None


def test_unfinished_registration_page_says_where_to_register(oauth):
    _, answer = sign_in(oauth, "newbie")
    web = oauth.main.api_url.removesuffix("/api")
    assert f'<a href="{web}">{web}</a>' in answer.text


def test_configured_admin_gets_in_whatever_the_archive_says(oauth):
    client, answer = sign_in(oauth, "boss")  # PENDING on the archive, in admin_users
    assert answer.status_code == 302, error_page(answer)
    assert signed_in_user(client)["admin"] is True


def test_state_mismatch_is_refused(oauth):
    client = httpx.Client(base_url=oauth.hub.url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client, "DANDI"), oauth.main.form("alice"))
    oauth.seen.add(query_param(callback, "code"))
    forged = callback.replace(query_param(callback, "state"), "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ==")
    answer = client.get(forged)
    assert answer.status_code == 400
    assert "Sign-in not recognised" in error_page(answer)[0]
    assert signed_in_user(client) is None


def test_replayed_code_is_refused(oauth):
    victim, answer, callback = oauth_login(oauth.hub.url, oauth.main.form("alice"), "DANDI")
    oauth.seen.add(query_param(callback, "code"))
    assert answer.status_code == 302
    # The same browser again: its sign-in is over.
    again = victim.get(callback)
    assert again.status_code == 400 and "already completed" in error_page(again)[1]
    # Someone else with the code, in a sign-in of their own: the archive refuses the code.
    attacker = httpx.Client(base_url=oauth.hub.url, timeout=30, follow_redirects=False)
    own_state = query_param(oauth_start(attacker, "DANDI"), "state")
    stolen = callback.replace(query_param(callback, "state"), own_state)
    answer = attacker.get(stolen)
    assert answer.status_code == 403
    assert "did not accept this sign-in" in error_page(answer)[1]
    assert signed_in_user(attacker) is None


def test_unknown_archive_choice_is_refused(oauth):
    answer = httpx.get(f"{oauth.hub.url}hub/oauth_login", params={"archive": "Elsewhere"},
                       timeout=10)
    assert answer.status_code == 400
    assert "does not sign in with an archive named 'Elsewhere'" in error_page(answer)[1]


def test_archive_down_is_a_temporary_failure_not_an_allow(oauth):
    client = httpx.Client(base_url=oauth.hub.url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client, "DANDI staging"),
                             oauth.staging.form("sam"))
    oauth.seen.add(query_param(callback, "code"))
    oauth.staging.down()
    try:
        started = time.monotonic()
        answer = client.get(callback)
        assert time.monotonic() - started < 30
    finally:
        oauth.staging.up()
    assert answer.status_code == 503
    title, message = error_page(answer)
    assert "DANDI archive unavailable" in title
    assert "did not answer" in message and "try again in a few minutes" in message
    assert signed_in_user(client) is None


def test_sign_in_pages_in_a_browser(oauth, artifacts):
    """Chromium through the whole dance; a screenshot of every refusal page."""
    from .browser import browser_page

    def sign_in_with(page, archive: str, username: str, key: str):
        page.context.clear_cookies()
        page.goto(f"{oauth.hub.url}hub/login?next=/hub/home")
        page.click(f'a[data-archive="{archive}"]')
        page.wait_for_selector("#oauth-sign-in")
        page.fill("#username", username)
        page.fill("#api_key", key)
        page.click("#allow")
        page.wait_for_load_state()

    with browser_page() as page:
        page.goto(f"{oauth.hub.url}hub/login")
        page.screenshot(path=str(artifacts / "login-dandi-oauth.png"))
        for username, shot, text in [
            ("pat", "login-refused-pending.png", "pending approval"),
            ("rex", "login-refused-rejected.png", "was not approved"),
            ("newbie", "login-refused-incomplete.png", "has not finished registration"),
        ]:
            sign_in_with(page, "DANDI", username, oauth.main.keys[username])
            assert text in page.inner_text(".error")
            page.screenshot(path=str(artifacts / shot))

        # The archive goes down between the person's approval and the hub's code exchange:
        # its answer to the sign-in form (the redirect back to the hub) is its last.
        def approval(url: str) -> bool:
            return url.startswith(f"{oauth.staging.running.api_url.removesuffix('/api')}/oauth/")

        def archive_goes_down(route):
            if route.request.method != "POST":
                return route.continue_()
            answer = route.fetch(max_redirects=0)
            oauth.staging.down()
            route.fulfill(response=answer)

        page.route(approval, archive_goes_down)
        try:
            sign_in_with(page, "DANDI staging", "sam", oauth.staging.keys["sam"])
        finally:
            page.unroute(approval)
            oauth.staging.up()
        assert "DANDI archive unavailable" in page.inner_text(".error")
        page.screenshot(path=str(artifacts / "login-archive-down.png"))

        sign_in_with(page, "DANDI", "alice", oauth.main.keys["alice"])
        page.wait_for_url("**/hub/home")
        assert "alice" in page.inner_text("body")
        page.screenshot(path=str(artifacts / "login-approved-home.png"))


def every_kind_of_sign_in(oauth) -> tuple[set[str], set[str]]:
    """Each way a sign-in goes, once, here (a test run alone must not depend on the tests
    before it): the authorization codes used and the access tokens the archives issued."""
    codes, tokens = set(), set()

    def signed(username: str, archive: str = "main", expected: int = 302):
        form = getattr(oauth, archive).form(username)
        client, answer, callback = oauth_login(oauth.hub.url, form, NAMES[archive])
        assert answer.status_code == expected, (username, archive, answer.status_code)
        codes.add(query_param(callback, "code"))
        return client

    alice = signed("alice")
    start_server(alice, "alice")  # the spawner hands her key to the server: a place to leak it
    stop_server(alice, "alice")
    signed("sam", "staging")
    for username, archive in (("pat", "main"), ("rex", "main"), ("newbie", "main"),
                              ("alice", "staging")):
        signed(username, archive, 403)
    signed("boss")
    # a forged state, a replayed code, the archive down at the callback
    client = httpx.Client(base_url=oauth.hub.url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client, "DANDI"), oauth.main.form("alice"))
    codes.add(query_param(callback, "code"))
    forged = callback.replace(query_param(callback, "state"), "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ==")
    assert client.get(forged).status_code == 400
    victim, answer, callback = oauth_login(oauth.hub.url, oauth.main.form("alice"), "DANDI")
    codes.add(query_param(callback, "code"))
    assert answer.status_code == 302 and victim.get(callback).status_code == 400
    attacker = httpx.Client(base_url=oauth.hub.url, timeout=30, follow_redirects=False)
    own_state = query_param(oauth_start(attacker, "DANDI"), "state")
    stolen = callback.replace(query_param(callback, "state"), own_state)
    assert attacker.get(stolen).status_code == 403
    client = httpx.Client(base_url=oauth.hub.url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client, "DANDI staging"),
                             oauth.staging.form("sam"))
    codes.add(query_param(callback, "code"))
    tokens |= set(oauth.staging.provider.tokens)  # a restarted archive forgets its tokens
    oauth.staging.down()
    try:
        assert client.get(callback).status_code == 503
    finally:
        oauth.staging.up()
    return codes, tokens | set(oauth.main.provider.tokens)


def test_no_secret_reaches_the_hub_log(oauth):
    codes, tokens = every_kind_of_sign_in(oauth)
    assert len(codes) == 10  # every flow above got a code of its own
    assert len(tokens) >= 4  # alice, sam, boss, the replayed code's victim
    log = oauth.hub.log
    secret_values = {
        *oauth.main.keys.values(), *oauth.staging.keys.values(),
        oauth.main.client_secret, oauth.staging.client_secret,
        *codes, *oauth.seen, *tokens, *oauth.main.provider.tokens,
        *oauth.staging.provider.tokens,
    }
    leaked = [value for value in secret_values if value in log]
    assert not leaked, f"{len(leaked)} secret value(s) in the hub's log"


# --- settings ---------------------------------------------------------------------------


def test_settings_describe_the_archives():
    from dandihub.archive import Archive
    from dandihub.config import Settings, SettingsError, build_config

    public = Archive.from_dict({"api_url": "https://api.dandiarchive.org/api"})
    # where dandi-archive serves django-oauth-toolkit (its web app's VITE_APP_OAUTH_API_ROOT)
    assert public.authorize_url == "https://api.dandiarchive.org/oauth/authorize/"
    assert public.token_url == "https://api.dandiarchive.org/oauth/token/"
    assert public.web_url == "https://dandiarchive.org"

    with pytest.raises(SettingsError, match="needs client_id"):
        Settings.from_dict({"authenticator": "dandi-oauth"})
    with pytest.raises(SettingsError, match="needs service_token"):
        Settings.from_dict({"authenticator": "github", "github_client_id": "x"})
    entry = {"name": "DANDI", "api_url": "https://api.dandiarchive.org/api", "client_id": "hub",
             "client_secret_file": "/run/secrets/dandi-client-secret"}
    with pytest.raises(SettingsError, match="unique"):
        Settings.from_dict({"authenticator": "dandi-oauth", "archives": [entry, entry]})
    with pytest.raises(SettingsError, match="unknown key"):
        Settings.from_dict({"authenticator": "dandi-oauth",
                            "archives": [{**entry, "client_secrt": "typo"}]})

    c = build_config(Settings.from_dict({"authenticator": "dandi-oauth", "archives": [entry]}))
    assert c.JupyterHub.authenticator_class == "dandihub.auth.DandiOAuthenticator"
    assert c.DandiOAuthenticator.archives == [entry]  # the secret file is read by the hub
