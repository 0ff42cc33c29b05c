"""The usage and retention report: the rules on folders, then `dandihub usage` and the admin
page /services/usage/ against the real hub (`dandihub up`) of the test session."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from dandihub.usage import build_report, delete_past_reset, folder_size
from kubespawner.slugs import safe_slug

from .hubutil import login

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def days_ago(n: float, now: datetime = NOW) -> str:
    return (now - timedelta(days=n)).isoformat()


def make_home(root: Path, name: str, home_kib: int = 64, cache_kib: int = 0) -> Path:
    home = root / name
    (home / "notebooks").mkdir(parents=True, exist_ok=True)
    (home / "notebooks" / "analysis.ipynb").write_bytes(b"\1" * home_kib * 1024)
    if cache_kib:
        (home / ".cache" / "dandi").mkdir(parents=True, exist_ok=True)
        (home / ".cache" / "dandi" / "blob").write_bytes(b"\1" * cache_kib * 1024)
        (home / "nwb-cache").mkdir(exist_ok=True)
        (home / "nwb-cache" / "chunk").write_bytes(b"\1" * cache_kib * 1024)
    return home


def test_the_report_applies_the_retention_policy(tmp_path):
    users = [
        {"name": "fresh", "last_activity": days_ago(1), "servers": {}},
        {"name": "warned", "last_activity": days_ago(31), "servers": {}},
        {"name": "gone", "last_activity": days_ago(46), "servers": {}},
        # a running server is activity, whatever the timestamps say
        {"name": "running", "last_activity": days_ago(60), "servers": {"": {"ready": True}}},
        # never active: counted from the account's creation
        {"name": "new", "last_activity": None, "created": days_ago(2), "servers": {}},
        {"name": "Ann.Neuro", "last_activity": days_ago(3), "servers": {}},
    ]
    for name in ("fresh", "warned", "gone", "running", "no-such-user"):
        make_home(tmp_path, name, cache_kib=32)
    make_home(tmp_path, safe_slug("Ann.Neuro", max_length=48))  # as KubeSpawner names it
    report = build_report(users, tmp_path, as_of=NOW)
    rows = {r.user: r for r in report.rows}
    assert {u: r.status for u, r in rows.items()} == {
        "fresh": "ok", "warned": "warn", "gone": "reset", "running": "running", "new": "ok",
        "Ann.Neuro": "ok", "no-such-user": "no hub user",
    }
    assert rows["gone"].days_inactive == 46
    assert rows["new"].home is None and rows["new"].home_bytes is None
    assert rows["Ann.Neuro"].home.endswith(safe_slug("Ann.Neuro", max_length=48))
    assert rows["fresh"].cache_bytes >= 64 * 1024  # .cache and nwb-cache
    assert rows["fresh"].home_bytes >= rows["fresh"].cache_bytes + 64 * 1024
    assert [r.user for r in report.rows[:2]] == ["gone", "warned"]  # what needs attention first
    text = report.to_text()
    assert "1 past 30 days (warn), 1 past 45 days (reset)" in text


def test_only_homes_past_the_reset_threshold_are_deleted(tmp_path, caplog):
    users = [{"name": n, "last_activity": days_ago(d), "servers": s} for n, d, s in [
        ("gone", 50, {}), ("warned", 40, {}), ("running", 90, {"": {"pending": "spawn"}})]]
    for name in ("gone", "warned", "running", "stranger"):
        make_home(tmp_path, name)
    outside = make_home(tmp_path.parent / f"{tmp_path.name}-outside", "elsewhere")
    (tmp_path / "linked").symlink_to(outside, target_is_directory=True)
    users.append({"name": "linked", "last_activity": days_ago(50), "servers": {}})
    report = build_report(users, tmp_path, as_of=NOW)
    assert [r.user for r in report.past("reset")] == ["gone", "linked"]
    assert next(r for r in report.rows if r.user == "linked").home is None  # a symlink is no home
    deleted = delete_past_reset(report)
    assert [r.user for r in deleted] == ["gone"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linked", "running", "stranger", "warned"]
    assert outside.exists()
    assert "Deleting the home of gone (inactive 50 days" in caplog.text


def test_folder_size_counts_hard_links_once_and_not_symlinks(tmp_path):
    (tmp_path / "a").write_bytes(b"\1" * 100_000)
    (tmp_path / "b").hardlink_to(tmp_path / "a")
    (tmp_path / "c").symlink_to("/usr")
    assert 100_000 <= folder_size(tmp_path) < 200_000


# --- with the session's real hub -------------------------------------------------------


@pytest.fixture(scope="module")
def admin(hub, archive):
    """An admin's signed-in client and API token."""
    client, answer = login(hub.url, archive.keys["admin"])
    assert answer.status_code == 302
    xsrf = client.cookies.get("_xsrf", path="/hub/") or ""
    token = client.post("hub/api/users/admin/tokens", json={"note": "usage test"},
                        headers={"X-XSRFToken": xsrf})
    token.raise_for_status()
    client.token = token.json()["token"]
    return client


@pytest.fixture(scope="module")
def aged_users(hub, admin):
    """Hub users last active 50, 35 and 0 days ago, each with a home; removed afterwards."""
    api = httpx.Client(base_url=f"{hub.url}hub/api/", timeout=30,
                       headers={"Authorization": f"token {admin.token}"})
    now = datetime.now(UTC)
    ages = {"usage-gone": 50, "usage-warned": 35, "usage-fresh": 0}
    api.post("users", json={"usernames": list(ages)}).raise_for_status()
    homes = Path(hub.data_dir) / "homes"
    for name, age in ages.items():
        api.post(f"users/{name}/activity", json={"last_activity": days_ago(age, now)}).raise_for_status()
        make_home(homes, name, cache_kib=16)
    make_home(homes, "usage-stranger")
    yield homes
    for name in ages:
        api.delete(f"users/{name}")


def usage_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dandihub.cli", "usage", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.hub
@pytest.mark.timeout(300)
def test_dandihub_usage_lists_and_deletes_only_when_asked(hub, admin, aged_users):
    hub_api = ["--hub-api", f"{hub.url}hub/api", "--token", admin.token]
    listed = usage_cli(str(aged_users), *hub_api, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["user"]: r for r in json.loads(listed.stdout)["rows"]}
    assert rows["usage-gone"]["status"] == "reset"
    assert rows["usage-warned"]["status"] == "warn"
    assert rows["usage-fresh"]["status"] == "ok"
    assert rows["usage-stranger"]["status"] == "no hub user"
    # other tests of the session may have left admin's server running
    assert rows["admin"]["status"] in ("ok", "running")
    assert rows["usage-gone"]["cache_bytes"] >= 32 * 1024
    assert (aged_users / "usage-gone").exists()  # listing deletes nothing

    in_20_days = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    preview = usage_cli(str(aged_users), *hub_api, "--as-of", in_20_days)
    assert preview.returncode == 0, preview.stderr
    line = next(x for x in preview.stdout.splitlines() if x.startswith("usage-warned"))
    assert " reset " in line
    assert "--delete" in usage_cli(str(aged_users), *hub_api, "--as-of", in_20_days,
                                   "--delete").stderr

    deleted = usage_cli(str(aged_users), *hub_api, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleting the home of usage-gone (inactive 50 days" in deleted.stderr
    assert not (aged_users / "usage-gone").exists()
    for kept in ("usage-warned", "usage-fresh", "usage-stranger"):
        assert (aged_users / kept).exists()

    refused = usage_cli(str(aged_users), "--delete", "--hub-api", "", "--token", "")
    assert refused.returncode != 0 and "needs the hub's activity" in refused.stderr


@pytest.mark.hub
@pytest.mark.timeout(300)
def test_the_usage_page_is_for_admins(hub, archive, admin, aged_users):
    page = admin.get("services/usage/", follow_redirects=True)
    assert page.status_code == 200, page.text
    assert '<tr class="warn" data-user="usage-warned">' in page.text
    assert 'data-user="usage-fresh"' in page.text
    assert "dandihub usage --delete" in page.text  # the page only lists
    report = admin.get("services/usage/api/report", follow_redirects=True)
    assert report.status_code == 200
    rows = {r["user"]: r for r in report.json()["rows"]}
    assert rows["usage-warned"]["status"] == "warn"
    assert rows["usage-stranger"]["status"] == "no hub user"

    user, answer = login(hub.url, archive.keys["demo"])
    assert answer.status_code == 302
    refused = user.get("services/usage/", follow_redirects=True)
    assert refused.status_code == 403
    assert "usage-warned" not in refused.text
