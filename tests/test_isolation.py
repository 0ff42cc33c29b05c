"""How `dandihub up` keeps users apart, and what it refuses when it cannot.

The attacks with two signed-in users of an isolated hub (``/proc/*/environ``, ``ps e``,
homes, the hub's secrets, the hub API) are replayed in tests/test_security.py; here: the
account names, the refusals of a hub without isolation, the file modes, and the admin policy.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from dandihub import isolation

from .hubutil import RunningHub, login, login_error, signed_in_user
from .localarchive_fixtures import USERS

KEYS = {name: key for name, (_, key, _) in USERS.items()}


@pytest.mark.parametrize("hub_name, expected", [
    ("alice", "dandi-alice"),
    ("bob_2", "dandi-bob_2"),
])
def test_account_names_are_the_hub_names_with_a_prefix(hub_name, expected):
    assert isolation.system_username(hub_name) == expected


def test_account_names_that_had_to_change_never_collide():
    names = ["a.b", "a-b", "A-b", "x" * 39, "x" * 38 + "y", "../root", "ro ot"]
    accounts = [isolation.system_username(n) for n in names]
    assert len(set(accounts)) == len(names), accounts
    for account in accounts:
        assert account.startswith("dandi-") and len(account) <= 32, account
        assert all(c.isalnum() or c in "-_" for c in account), account
    assert isolation.system_username("a-b") == "dandi-a-b"  # unchanged names stay readable


def test_isolation_needs_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(isolation.IsolationError, match=r"needs root.*sudo dandihub up --isolate"):
        isolation.check_can_isolate(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="the folder check runs after the root check")
def test_isolation_refuses_homes_other_accounts_cannot_reach(tmp_path):
    closed = tmp_path / "closed"
    (closed / "data").mkdir(parents=True)
    closed.chmod(0o700)
    with pytest.raises(isolation.IsolationError, match=rf"{closed} is closed to other accounts"):
        isolation.check_can_isolate(closed / "data")


def up(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dandihub.cli", "up", "--archive", "http://127.0.0.1:9/api",
         "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.0.2.7", "::"])
def test_a_hub_without_isolation_refuses_the_network(tmp_path, ip):
    run = up(tmp_path, "--ip", ip)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"Refusing --ip {ip}: without --isolate" in run.stderr, run.stderr
    assert "sudo dandihub up --isolate" in run.stderr


def test_a_hub_without_isolation_serves_one_person(archive, tmp_path):
    with RunningHub(tmp_path / "hub", "--archive", archive.api_url) as hub:
        assert "NOT isolated" in hub.log and "serves one person" in hub.log
        _, answer = login(hub.url, archive.keys["demo"])
        assert answer.status_code == 302, answer.text
        _, answer = login(hub.url, archive.keys["admin"])
        assert answer.status_code == 403, answer.text
        message = login_error(answer)
        assert "one system account, so it serves only demo" in message, message
        assert "sudo dandihub up --isolate" in message
        again, answer = login(hub.url, archive.keys["demo"])  # the one person comes back
        assert answer.status_code == 302, answer.text
        assert signed_in_user(again)["name"] == "demo"
        # what the hub keeps is its own: settings (client secrets), keys, database
        data = tmp_path / "hub"
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        for name in ("settings.json", "jupyterhub_crypt_key", "jupyterhub_cookie_secret",
                     "jupyterhub.sqlite"):
            mode = stat.S_IMODE((data / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {mode:o}"


def test_archive_admins_are_not_hub_admins_unless_configured(local_archive, tmp_path):
    root_key = KEYS["root"]  # an archive admin (localarchive_fixtures.USERS)
    with RunningHub(tmp_path / "hub", "--archive", local_archive.api_url) as hub:
        client, answer = login(hub.url, root_key)
        assert answer.status_code == 302, answer.text
        assert signed_in_user(client)["admin"] is False
    settings = json.loads((tmp_path / "hub" / "settings.json").read_text())
    assert settings["archive_admins_are_hub_admins"] is False
    with RunningHub(tmp_path / "hub2", "--archive", local_archive.api_url,
                    settings={"archive_admins_are_hub_admins": True}) as hub:
        client, answer = login(hub.url, root_key)
        assert answer.status_code == 302, answer.text
        assert signed_in_user(client)["admin"] is True
