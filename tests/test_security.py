"""Security: no secret leaks after a full scenario, bad input is refused without 500s
(fuzzed from both OpenAPI descriptions), and bandit finds nothing unjustified.

The scenario runs the real thing: `dandihub up` against the local archive (the synthetic
Dandiset 000999, alice's known key), API-key sign-in, a spawned JupyterLab, the DANDI
panel's REST API through the proxy, ``open_nwb`` in alice's kernel and a download. Then
every place a secret could surface is scanned: the hub's log (it holds the proxy's and
the single-user server's output too: embedded mode sends all children to it), every URL
and response (headers and body) the client received, the kernel's outputs, and the files
the server wrote in alice's home. DANDI OAuth tokens: tests/test_oauth_login.py
(test_no_secret_reaches_the_hub_log) runs that flow and scans for its tokens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from .hubutil import RunningHub, login, run_in_server, start_server
from .localarchive_fixtures import SYNTHETIC, SYNTHETIC_ASSETS, USERS
from .paths import REPO

pytestmark = [pytest.mark.hub, pytest.mark.timeout(600)]

ALICE_KEY = USERS["alice"][1]
NWB = SYNTHETIC_ASSETS[0]  # sub-01/sub-01_ses-1_ecephys.nwb
SCHEMATHESIS = [str(Path(sys.executable).parent / "schemathesis"), "run"]


@dataclass
class Scenario:
    hub: RunningHub
    client: httpx.Client
    home: Path
    seen: list[str] = field(default_factory=list)  # every URL, header and body received
    outputs: list[str] = field(default_factory=list)  # kernel outputs
    secrets: dict[str, str] = field(default_factory=dict)

    def panel(self, path: str, method: str = "GET", **kw) -> httpx.Response:
        xsrf = self.client.cookies.get("_xsrf", path="/user/alice/") or ""
        return self.client.request(method, f"user/alice/dandi/api/{path}",
                                   headers={"X-XSRFToken": xsrf}, **kw)


def server_env(p) -> dict:
    """The environment of a single-user server process, else {}."""
    if "jupyterhub.singleuser" not in " ".join(p.info["cmdline"] or []):
        return {}
    return p.info["environ"] or {}


def _record(seen: list[str]):
    def hook(response: httpx.Response) -> None:
        response.read()
        seen.append(f"{response.request.method} {response.request.url} -> {response.status_code}")
        seen.append("\n".join(f"{k}: {v}" for k, v in response.headers.items()))
        seen.append(response.text)
    return hook


@pytest.fixture(scope="module")
def scenario(local_archive, tmp_path_factory):
    data = tmp_path_factory.mktemp("security-hub")
    with RunningHub(data, "--archive", local_archive.api_url) as hub:
        seen: list[str] = []
        client, answer = login(hub.url, ALICE_KEY)
        _record(seen)(answer)
        assert answer.status_code == 302, answer.text[:500]
        client.event_hooks["response"].append(_record(seen))
        lab = start_server(client, "alice")
        assert "JupyterLab" in lab.text
        hub_port = json.loads((data / "settings.json").read_text())["hub_port"]
        env = next(e for e in (server_env(p) for p in psutil.process_iter(["cmdline", "environ"]))
                   if e.get("JUPYTERHUB_USER") == "alice"
                   and f":{hub_port}/" in e.get("JUPYTERHUB_API_URL", ""))
        s = Scenario(hub, client, data / "homes" / "alice", seen)
        s.secrets = {
            "DANDI API key": ALICE_KEY,
            "cookie secret": (data / "jupyterhub_cookie_secret").read_text().strip(),
            "crypt key": (data / "jupyterhub_crypt_key").read_text().strip(),
            "the server's hub API token": env["JUPYTERHUB_API_TOKEN"],
        }
        yield s
        client.close()


def test_full_scenario_works(scenario, local_archive_dir):
    s = scenario
    info = s.panel("info")
    assert info.status_code == 200 and info.json()["username"] == "alice", info.text
    for path in ["dandisets?search=ecephys", f"dandisets/{SYNTHETIC}",
                 f"dandisets/{SYNTHETIC}/versions", f"dandisets/{SYNTHETIC}/versions/draft",
                 f"dandisets/{SYNTHETIC}/versions/draft/paths",
                 f"dandisets/{SYNTHETIC}/versions/draft/assets/{NWB.asset_id}"]:
        answer = s.panel(path)
        assert answer.status_code == 200, (path, answer.text)
    started = s.panel("downloads", "POST", json={
        "dandiset": SYNTHETIC, "version": "draft", "asset_id": NWB.asset_id, "dest": "dl/a.nwb"})
    assert started.status_code in (200, 202), started.text
    deadline = time.monotonic() + 60
    while (state := s.panel(f"downloads/{started.json()['id']}").json())["state"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert state["state"] == "done", state
    source = (local_archive_dir / "blobs" / NWB.blob).read_bytes()
    assert (s.home / "dl" / "a.nwb").read_bytes() == source

    code = f"""
import hashlib, dandilab
a = dandilab.Archive()
print(repr(a), a.url)
d = a.dandiset({SYNTHETIC!r}, "draft")
asset = d.asset({NWB.path!r})
print(repr(d), repr(asset), asset.s3_url)
with dandilab.open_nwb(asset) as nwb:
    print(repr(nwb))
    data = next(iter(nwb.acquisition.values())).data
    print("sha", hashlib.sha256(data[:].tobytes()).hexdigest())
    print(dandilab.to_dask(data).sum().compute())
try:
    a.dandiset("000998")
except Exception as e:
    print(repr(e))
"""
    out = run_in_server(s.client, "alice", code, timeout=180)
    s.outputs.append(out)
    import hashlib

    import h5py
    with h5py.File(local_archive_dir / "blobs" / NWB.blob) as f:
        expected = f["acquisition"][next(iter(f["acquisition"]))]["data"][:]
    assert f"sha {hashlib.sha256(expected.tobytes()).hexdigest()}" in out, out
    assert "000998" in out


BAD_PANEL = [
    "dandisets/..%2F..%2Fetc%2Fpasswd",
    "dandisets/" + "0" * 5000,
    "dandisets/00099%00",
    f"dandisets/{SYNTHETIC}/versions/..%2F..",
    f"dandisets/{SYNTHETIC}/versions/draft%3B%20rm",
    f"dandisets/{SYNTHETIC}/versions/9.999999.99999",
    f"dandisets/{SYNTHETIC}/versions/draft/paths?path_prefix=..%2F..%2Fetc",
    f"dandisets/{SYNTHETIC}/versions/draft/paths?path_prefix=%2Fetc",
    f"dandisets/{SYNTHETIC}/versions/draft/assets/..%2F..%2Fx",
    f"dandisets/{SYNTHETIC}/versions/draft/assets/" + "a" * 5000,
    "downloads/..%2F..%2Fetc",
]


@pytest.mark.parametrize("path", BAD_PANEL)
def test_the_panel_api_refuses_bad_input_through_the_hub(scenario, path):
    answer = scenario.panel(path)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text


@pytest.mark.parametrize("prefix, found", [("sub-02 #2", True), ("sübject ☃/x y#z", False)])
def test_hash_space_and_unicode_paths(scenario, prefix, found):
    answer = scenario.panel(f"dandisets/{SYNTHETIC}/versions/draft/paths",
                            params={"path_prefix": prefix})
    assert answer.status_code == (200 if found else 404), answer.text
    if found:
        assert any("säule" in r["path"] for r in answer.json()["results"]), answer.text


@pytest.mark.parametrize("dest", ["../outside.nwb", "/etc/x.nwb", "a/../../b.nwb", "a\x00b"])
def test_downloads_cannot_leave_the_home(scenario, dest):
    answer = scenario.panel("downloads", "POST", json={
        "dandiset": SYNTHETIC, "version": "draft", "asset_id": NWB.asset_id, "dest": dest})
    assert answer.status_code == 400, answer.text


BAD_ARCHIVE = [
    "dandisets/..%2F..%2Fetc%2Fpasswd/", "dandisets/" + "0" * 5000 + "/",
    f"dandisets/{SYNTHETIC}/versions/..%2F..%2F/assets/",
    f"dandisets/{SYNTHETIC}/versions/0.999999.9999/", f"dandisets/{SYNTHETIC}/versions/%00/",
    "assets/not-a-uuid/", "assets/%E2%98%83/download/", "zarr/..%2F..%2F/files/?prefix=../../",
    f"dandisets/{SYNTHETIC}/versions/draft/assets/paths/?path_prefix=..%2F..%2F",
    "dandisets/?page=-1", "dandisets/?page=abc", "dandisets/?page_size=" + "9" * 40,
]


@pytest.mark.parametrize("path", BAD_ARCHIVE)
def test_the_local_archive_refuses_bad_input(local_archive, path):
    answer = httpx.get(f"{local_archive.api_url}/{path}", timeout=10)
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text
    if answer.status_code >= 400:
        assert "detail" in answer.json()


def test_the_local_archive_handles_hash_space_and_unicode_paths(local_archive):
    hashed = SYNTHETIC_ASSETS[1]
    answer = httpx.get(f"{local_archive.api_url}/dandisets/{SYNTHETIC}/versions/draft/assets/",
                       params={"path": hashed.path}, timeout=10)
    assert answer.status_code == 200 and answer.json()["count"] == 1, answer.text
    assert answer.json()["results"][0]["path"] == hashed.path


def schemathesis(schema: str, base: str, *headers: str, examples: int = 10,
                 timeout: float = 240) -> None:
    """Fuzz every operation of ``schema`` against ``base``: no 5xx, nothing hangs."""
    args = [*SCHEMATHESIS, schema, "--url", base, "--checks", "not_a_server_error",
            "-n", str(examples), "--generation-deterministic", "--workers", "1",
            "--request-timeout", "20", "--max-failures", "5"]
    for header in headers:
        args += ["-H", header]
    run = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout and "Tested" in run.stdout, run.stdout[-3000:]


def test_fuzz_the_local_archive_openapi(local_archive):
    root = local_archive.api_url.removesuffix("/api")
    schemathesis(f"{root}/api/docs/openapi.json", root, f"Authorization: token {ALICE_KEY}")


def test_fuzz_the_panel_openapi_through_the_hub(scenario, tmp_path):
    """The server extension's own description, minus ``archive`` (a URL the server would
    call: fuzzing it would send requests off this machine)."""
    spec = yaml.safe_load((REPO / "extension" / "dandilab" / "openapi.yaml").read_text())
    spec["components"].get("parameters", {}).pop("archive", None)
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            op["parameters"] = [p for p in op.get("parameters", [])
                                if p.get("$ref") != "#/components/parameters/archive"]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            body.get("schema", {}).get("properties", {}).pop("archive", None)
    path = tmp_path / "panel-openapi.json"
    path.write_text(json.dumps(spec))
    client = scenario.client
    cookies = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    xsrf = client.cookies.get("_xsrf", path="/user/alice/") or ""
    schemathesis(str(path), f"{scenario.hub.url}user/alice/dandi/api",
                 f"Cookie: {cookies}", f"X-XSRFToken: {xsrf}", examples=8)


def test_bandit_finds_nothing_unjustified():
    """Medium/high findings must be fixed or carry ``# nosec BXXX`` with a reason beside it."""
    run = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", "hub/dandihub", "extension/dandilab",
         "--exclude", "extension/dandilab/labextension", "-ll", "-f", "json", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    report = json.loads(run.stdout)
    found = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
             for r in report["results"]]
    assert not found, "\n".join(found)


# Last in the file: after everything above has run against the hub.
def test_no_secret_appears_anywhere(scenario):
    s = scenario
    s.hub.stop()  # flush and close every log
    log = s.hub.log
    assert "jupyterhub.singleuser" in log or "ServerApp" in log, "single-user log not in hub.log"
    assert "ConfigProxy" in log or "configurable-http-proxy" in log.lower() or \
        "Proxy" in log, "proxy log not in hub.log"
    places = {"hub, proxy and single-user logs": log,
              "responses and URLs seen by the client": "\n".join(s.seen),
              "kernel outputs": "\n".join(s.outputs)}
    for f in s.home.rglob("*"):
        if f.is_file() and "runtime" in f.parts:
            # jupyter_server's own connection files hold the server's token by design: the
            # user's private folder (0700), like ~/.ssh; they never leave the server.
            assert f.parent.stat().st_mode & 0o077 == 0, f"{f.parent} is open to others"
        elif f.is_file() and f.stat().st_size < 5_000_000 and f.suffix != ".nwb":
            places[f"home file {f.relative_to(s.home)}"] = f.read_text(errors="replace")
    leaks = [f"{what} in {where}" for what, secret in s.secrets.items()
             for where, text in places.items()
             if secret in text or secret[:16] in text]
    assert not leaks, leaks
    print(f"scanned {len(places)} places ({sum(map(len, places.values()))} chars) "
          f"for {len(s.secrets)} secrets: none found")
