"""GitHub sign-in with the archives' registration check, end to end: a real hub (`dandihub
up`, authenticator "github"), the stand-in GitHub (tests/githubstub.py, GitHub's real OAuth
and REST endpoints) and two real local archives answering users/search like dandi-archive."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from .githubstub import GitHubStub
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

GITHUB_USERS = {
    "OctoCat": {"name": "The Octocat", "email": None, "private_email": "octo@example.org"},
    "stager": {"name": "Stella Stager", "email": "stella@example.org"},
    "pat": {"name": "Pat Pending"},
    "rex": {"name": "Rex Rejected"},
    "nobody": {"name": "No Body"},
    "ali": {"name": "Ali Substring"},  # the archive has "alice": a search hit, not a match
    "boss": {"name": "The Boss"},
}
ARCHIVE_USERS = {
    "main": {"octocat": "APPROVED", "alice": "APPROVED", "pat": "PENDING", "rex": "REJECTED",
             "hubbot": "APPROVED"},
    "staging": {"stager": "APPROVED", "hubbot": "APPROVED"},
}
NAMES = {"main": "DANDI", "staging": "DANDI staging"}


@pytest.fixture(scope="module")
def gh(tmp_path_factory):
    """``.hub``, ``.github`` (the stand-in), ``.main``, ``.staging``, ``.seen`` (codes)."""
    base = tmp_path_factory.mktemp("github-login")
    hub = RunningHub(base / "hub", "--archive", "http://127.0.0.1:9/api")
    archives = {k: OAuthArchive(base / k, users, hub.callback_url)
                for k, users in ARCHIVE_USERS.items()}
    client_id, client_secret = "Iv1." + secrets.token_hex(8), secrets.token_hex(20)
    secret_file = base / "github-client-secret"
    secret_file.write_text(client_secret)
    token_file = base / "main-service-token"
    token_file.write_text(archives["main"].keys["hubbot"])
    with GitHubStub(users=GITHUB_USERS) as github:
        github.register_app(client_id, client_secret, hub.callback_url)
        for archive in archives.values():
            archive.running.start()
        try:
            main, staging = archives["main"], archives["staging"]
            hub.args[hub.args.index("--archive") + 1] = main.api_url
            hub.settings = {
                "authenticator": "github",
                "github_url": github.url,
                "github_client_id": client_id,
                "github_client_secret_file": str(secret_file),
                "archives": [
                    {"name": NAMES["main"], "api_url": main.api_url,
                     "service_token_file": str(token_file)},
                    {"name": NAMES["staging"], "api_url": staging.api_url,
                     "service_token": staging.keys["hubbot"]},
                ],
                "admin_users": ["boss"],
                "shared_account_users": 0,  # many people sign in: a test of sign-in only
            }
            with hub:
                yield type("GitHubSetup", (), {
                    "hub": hub, "github": github, "main": main, "staging": staging,
                    "client_secret": client_secret, "seen": set()})
        finally:
            for archive in archives.values():
                archive.running.stop()


def sign_in(gh, login: str):
    client, answer, callback = oauth_login(gh.hub.url, {"login": login, "authorize": "1"})
    gh.seen.add(query_param(callback, "code"))
    return client, answer


# --- the stand-in speaks GitHub's protocol ----------------------------------------------


def test_stub_token_endpoint_answers_as_github_does(gh):
    url = f"{gh.github.url}/login/oauth/access_token"
    wrong = {"client_id": "nope", "client_secret": "nope", "code": "x"}
    # errors come with HTTP 200, form-encoded unless JSON is asked for
    form = httpx.post(url, data=wrong, timeout=10)
    assert form.status_code == 200
    assert form.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "error=incorrect_client_credentials" in form.text
    as_json = httpx.post(url, data=wrong, headers={"Accept": "application/json"}, timeout=10)
    assert as_json.json()["error"] == "incorrect_client_credentials"
    app = next(iter(gh.github.apps.values()))
    bad_code = httpx.post(url, data={"client_id": app.client_id, "client_secret":
                                     app.client_secret, "code": "0" * 20},
                          headers={"Accept": "application/json"}, timeout=10)
    assert bad_code.json()["error"] == "bad_verification_code"


def test_stub_api_needs_a_token_and_the_email_scope(gh):
    assert httpx.get(f"{gh.github.api_url}/user", timeout=10).status_code == 401
    bad = httpx.get(f"{gh.github.api_url}/user", headers={"Authorization": "token gho_x"},
                    timeout=10)
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    gh.github.tokens["gho_test"] = ("OctoCat", [])
    try:
        headers = {"Authorization": "Bearer gho_test"}
        user = httpx.get(f"{gh.github.api_url}/user", headers=headers, timeout=10)
        assert user.json()["login"] == "OctoCat" and user.json()["email"] is None
        emails = httpx.get(f"{gh.github.api_url}/user/emails", headers=headers, timeout=10)
        assert emails.status_code == 404  # no user:email scope
    finally:
        del gh.github.tokens["gho_test"]


def test_stub_refuses_a_foreign_redirect_uri(gh):
    app = next(iter(gh.github.apps.values()))
    answer = httpx.get(f"{gh.github.url}/login/oauth/authorize", timeout=10, params={
        "client_id": app.client_id, "redirect_uri": "http://127.0.0.1:1/steal", "state": "s"})
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(app.callback_url)
    assert "error=redirect_uri_mismatch" in answer.headers["location"]


# --- the hub --------------------------------------------------------------------------


def test_login_page_offers_github(gh):
    page = httpx.get(f"{gh.hub.url}hub/login", timeout=10)
    assert "Sign in with GitHub" in page.text


def test_approved_github_user_gets_a_server_pointed_at_their_archive(gh):
    client, answer = sign_in(gh, "OctoCat")  # "octocat" on the archive: case does not matter
    assert answer.status_code == 302, error_page(answer)
    assert signed_in_user(client)["name"] == "octocat"
    start_server(client, "octocat")
    env = server_environment("octocat")
    assert env["DANDI_API_URL"] == gh.main.api_url
    assert "DANDI_API_KEY" not in env  # the archive gives a key to its owner only
    assert env["GIT_AUTHOR_NAME"] == "The Octocat"
    assert env["GIT_AUTHOR_EMAIL"] == "octo@example.org"  # private: from /user/emails
    stop_server(client, "octocat")
    assert "GET /api/v3/user/emails" in gh.github.requests


def test_user_approved_by_the_second_archive_is_pointed_at_it(gh):
    _, answer = sign_in(gh, "stager")
    assert answer.status_code == 302, error_page(answer)
    admin, answer = sign_in(gh, "boss")
    xsrf = admin.cookies.get("_xsrf", path="/hub/")
    token = admin.post("hub/api/users/boss/tokens", json={"expires_in": 300},
                       headers={"X-XSRFToken": xsrf}).json()["token"]
    model = httpx.get(f"{gh.hub.url}hub/api/users/stager", timeout=10,
                      headers={"Authorization": f"token {token}"}).json()
    assert model["auth_state"]["dandi_api_url"] == gh.staging.api_url
    assert model["auth_state"]["dandi_registration"]["archive"] == "DANDI staging"


@pytest.mark.parametrize("login", ["pat", "rex", "nobody", "ali"])
def test_github_users_without_an_approved_account_are_told_where_to_register(gh, login):
    client, answer = sign_in(gh, login)
    assert answer.status_code == 403
    title, message = error_page(answer)
    assert title == "403 : Not a registered DANDI account"
    assert f"'{login}' is not an approved account of DANDI" in message
    assert "awaiting approval" in message
    for archive in (gh.main, gh.staging):
        web = archive.api_url.removesuffix("/api")
        assert f'<a href="{web}">{web}</a>' in answer.text
    assert signed_in_user(client) is None


def test_configured_admin_gets_in_without_an_archive_account(gh):
    client, answer = sign_in(gh, "boss")
    assert answer.status_code == 302, error_page(answer)
    assert signed_in_user(client)["admin"] is True


def test_archive_down_is_a_temporary_failure_unless_another_archive_approves(gh):
    gh.staging.down()
    try:
        started = time.monotonic()
        client, answer = sign_in(gh, "nobody")  # DANDI says no; staging might have said yes
        assert time.monotonic() - started < 30
        assert answer.status_code == 503
        title, message = error_page(answer)
        assert "DANDI archive unavailable" in title and "'DANDI staging'" in message
        assert signed_in_user(client) is None
        client, answer = sign_in(gh, "OctoCat")  # DANDI approves: staging is not needed
        assert answer.status_code == 302, error_page(answer)
    finally:
        gh.staging.up()


def test_state_mismatch_is_refused(gh):
    client = httpx.Client(base_url=gh.hub.url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client), {"login": "OctoCat", "authorize": "1"})
    gh.seen.add(query_param(callback, "code"))
    answer = client.get(callback.replace(query_param(callback, "state"),
                                         "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ=="))
    assert answer.status_code == 400 and "Sign-in not recognised" in error_page(answer)[0]
    assert signed_in_user(client) is None


def test_replayed_code_is_refused(gh):
    _, answer, callback = oauth_login(gh.hub.url, {"login": "OctoCat", "authorize": "1"})
    gh.seen.add(query_param(callback, "code"))
    assert answer.status_code == 302
    attacker = httpx.Client(base_url=gh.hub.url, timeout=30, follow_redirects=False)
    own_state = query_param(oauth_start(attacker), "state")
    answer = attacker.get(callback.replace(query_param(callback, "state"), own_state))
    assert answer.status_code == 403
    assert "incorrect or expired" in error_page(answer)[0] + error_page(answer)[1]
    assert signed_in_user(attacker) is None


def test_github_sign_in_in_a_browser(gh, artifacts):
    from .browser import browser_page

    with browser_page() as page:
        page.goto(f"{gh.hub.url}hub/login?next=/hub/home")
        page.screenshot(path=str(artifacts / "login-github.png"))
        page.click("text=Sign in with GitHub")
        page.fill("#login", "nobody")
        page.click("#authorize")
        page.wait_for_load_state()
        assert "Not a registered DANDI account" in page.inner_text(".error")
        page.screenshot(path=str(artifacts / "login-refused-unknown.png"))


def every_kind_of_sign_in(gh) -> set[str]:
    """Each way a sign-in goes, once, here (a test run alone must not depend on the tests
    before it): the authorization codes used."""
    codes = set()

    def signed(login: str, expected: int = 302):
        client, answer, callback = oauth_login(gh.hub.url, {"login": login, "authorize": "1"})
        assert answer.status_code == expected, (login, answer.status_code)
        codes.add(query_param(callback, "code"))
        return client

    octocat = signed("OctoCat")
    start_server(octocat, "octocat")  # the spawner builds its environment: a place to leak
    stop_server(octocat, "octocat")
    signed("stager")
    signed("boss")
    for login in ("pat", "rex", "nobody", "ali"):
        signed(login, 403)
    gh.staging.down()
    try:
        signed("nobody", 503)
        signed("OctoCat")
    finally:
        gh.staging.up()
    # a forged state, a replayed code
    client = httpx.Client(base_url=gh.hub.url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client), {"login": "OctoCat", "authorize": "1"})
    codes.add(query_param(callback, "code"))
    forged = callback.replace(query_param(callback, "state"), "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ==")
    assert client.get(forged).status_code == 400
    _, answer, callback = oauth_login(gh.hub.url, {"login": "OctoCat", "authorize": "1"})
    codes.add(query_param(callback, "code"))
    assert answer.status_code == 302
    attacker = httpx.Client(base_url=gh.hub.url, timeout=30, follow_redirects=False)
    own_state = query_param(oauth_start(attacker), "state")
    stolen = callback.replace(query_param(callback, "state"), own_state)
    assert attacker.get(stolen).status_code == 403
    return codes


def test_no_secret_reaches_the_hub_log(gh):
    codes = every_kind_of_sign_in(gh)
    assert len(codes) == 11  # every flow above got a code of its own
    assert gh.github.tokens  # GitHub tokens were issued, and are looked for
    log = gh.hub.log
    values = {gh.client_secret, *codes, *gh.seen, *gh.github.tokens,
              *gh.main.keys.values(), *gh.staging.keys.values()}
    leaked = [v for v in values if v in log]
    assert not leaked, f"{len(leaked)} secret value(s) in the hub's log"
