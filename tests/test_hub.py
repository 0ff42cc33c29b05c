"""A real JupyterHub (`dandihub up`) with the real proxy, signing in with DANDI API keys
checked by a real local archive, spawning real JupyterLab servers."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

from .hubutil import RunningHub, login, login_error, start_server

pytestmark = [pytest.mark.hub, pytest.mark.timeout(400)]


def test_login_page_asks_for_a_dandi_api_key(hub):
    page = httpx.get(f"{hub.url}hub/login", timeout=10)
    assert page.status_code == 200
    assert 'name="api_key"' in page.text
    assert "DANDI API key" in page.text


def test_wrong_key_is_refused_with_a_message(hub):
    _, answer = login(hub.url, "0" * 40)
    assert answer.status_code == 403
    assert "does not recognise this API key" in login_error(answer)


def test_empty_key_is_refused_with_a_message(hub):
    _, answer = login(hub.url, "  ")
    assert answer.status_code == 400
    assert "Paste your DANDI API key" in login_error(answer)


@pytest.mark.parametrize(
    "username, message",
    [("pending", "pending approval"), ("rejected", "was not approved")],
)
def test_unapproved_users_are_refused_with_the_reason(hub, archive, username, message):
    _, answer = login(hub.url, archive.keys[username])
    assert answer.status_code == 403
    assert message in login_error(answer)
    assert username in login_error(answer)


def test_approved_user_signs_in_and_gets_jupyterlab_with_their_key(hub, archive):
    client, answer = login(hub.url, archive.keys["demo"])
    assert answer.status_code == 302, login_error(answer) if answer.status_code == 403 else answer
    lab = start_server(client, "demo")
    assert "JupyterLab" in lab.text
    # The key went to the server's environment, not to the browser.
    assert archive.keys["demo"] not in lab.text
    # This hub's server process (other hubs on the machine may have a "demo" too).
    server = next(
        p for p in psutil.Process(hub.proc.pid).children(recursive=True)
        if "jupyterhub.singleuser" in " ".join(p.cmdline())
        and p.environ().get("JUPYTERHUB_USER") == "demo"
    )
    env = server.environ()
    assert env["DANDI_API_KEY"] == archive.keys["demo"]
    assert env["DANDI_API_URL"] == archive.api_url
    # The server extension talks to the archive with that key, and never hands it out.
    info = client.get("user/demo/dandi/api/info")
    assert info.status_code == 200, info.text
    assert info.json()["username"] == "demo"
    assert archive.keys["demo"] not in info.text


def test_archive_down_gives_a_temporary_failure_page(tmp_path):
    with RunningHub(tmp_path, "--archive", "http://127.0.0.1:9/api") as down:
        started = time.monotonic()
        _, answer = login(down.url, "f" * 40)
        assert time.monotonic() - started < 30
    assert answer.status_code == 503
    assert "did not answer" in login_error(answer)
    assert "f" * 40 not in down.log


def test_keys_never_reach_the_hub_log(hub, archive):
    # Runs after the sign-ins above (file order): every key was posted at least once.
    for key in archive.keys.values():
        assert key not in hub.log


# The proxy logged "error: 404 GET /hub/api/" (and "Failed to get custom error page") while
# `dandihub up` asked it for the hub before the hub had added its routes: cli.py asks the
# hub directly first, and the proxy's --default-target is the hub.
def test_a_clean_start_prints_no_error_lines(hub):
    import re

    # the start only: the session's other tests use this hub too, refusals included
    start = hub.log.split("DANDI Hub is running")[0]
    assert start != hub.log, "the hub never said it was running"
    errors = [line for line in start.splitlines()
              if re.search(r"\[ConfigProxy\] \S*error|^\[E ", line)]
    assert errors == []
