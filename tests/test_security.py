"""Security: two users of one hub cannot reach each other's secrets, no secret leaks after
a full scenario, bad input is refused without 500s (fuzzed from both OpenAPI descriptions),
and bandit finds nothing unjustified.

The scenario runs the real thing: `dandihub up --isolate` (as root; without root the
two-user attacks skip, saying why) against the local archive (the synthetic Dandiset 000999,
alice's known key), API-key sign-in of alice and of a second approved user, MALLORY (an
archive admin), spawned JupyterLabs, the DANDI panel's REST API through the proxy,
``open_nwb`` in alice's kernel and a download. From MALLORY's kernel every route to alice's
secrets we know of is tried (``/proc/*/environ``, ``ps e``, her home, the hub's key files
and database, the hub API with MALLORY's own token). Then every place a secret could surface
is scanned: the hub's log (it holds the proxy's and the single-user servers' output too:
embedded mode sends all children to it), every URL and response (headers and body) the
clients received, the kernels' outputs, and the files in both homes; and the modes of the
hub's files are checked. DANDI OAuth tokens: tests/test_oauth_login.py
(test_no_secret_reaches_the_hub_log) runs that flow and scans for its tokens.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from .hubutil import RunningHub, login, run_in_server, shared_python, start_server
from .localarchive_fixtures import EMBARGOED, SYNTHETIC, SYNTHETIC_ASSETS, USERS
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
    data: Path
    isolated: str | None  # None: users have accounts of their own; else why not
    seen: list[str] = field(default_factory=list)  # every URL, header and body received
    outputs: list[str] = field(default_factory=list)  # kernel outputs
    secrets: dict[str, str] = field(default_factory=dict)
    other: httpx.Client | None = None  # the second user's (MALLORY's) client

    def panel(self, path: str, method: str = "GET", **kw) -> httpx.Response:
        xsrf = self.client.cookies.get("_xsrf", path="/user/alice/") or ""
        return self.client.request(method, f"user/alice/dandi/api/{path}",
                                   headers={"X-XSRFToken": xsrf}, **kw)


MALLORY = "root"  # the second user: approved, and an archive admin (not a hub admin)
MALLORY_KEY = USERS[MALLORY][1]


def server_env(p) -> dict:
    """The environment of a single-user server process, else {}."""
    if "jupyterhub.singleuser" not in " ".join(p.info["cmdline"] or []):
        return {}
    return p.info["environ"] or {}


def server_process(username: str, hub_port: int) -> psutil.Process:
    for p in psutil.process_iter(["cmdline", "environ"]):
        env = server_env(p)
        if env.get("JUPYTERHUB_USER") == username and \
                f":{hub_port}/" in env.get("JUPYTERHUB_API_URL", ""):
            return p
    raise LookupError(f"no server of {username}")


def _record(seen: list[str]):
    def hook(response: httpx.Response) -> None:
        response.read()
        seen.append(f"{response.request.method} {response.request.url} -> {response.status_code}")
        seen.append("\n".join(f"{k}: {v}" for k, v in response.headers.items()))
        seen.append(response.text)
    return hook


def _isolation_data_dir() -> tuple[Path, str, str | None]:
    """A data folder other accounts can enter (pytest's own tmp is 0700), the interpreter
    for the users' servers, and None when this machine can give users accounts of their
    own, else why not."""
    from dandihub.isolation import IsolationError, check_can_isolate

    data = Path(tempfile.mkdtemp(prefix="dandihub-security-", dir="/var/tmp"))
    data.chmod(0o711)
    python = shared_python()
    try:
        check_can_isolate(data, python)
    except IsolationError as e:
        return data, python, str(e)
    return data, python, None


@pytest.fixture(scope="module")
def scenario(local_archive):
    data, python, why_not = _isolation_data_dir()
    args = ["--archive", local_archive.api_url] + ([] if why_not else ["--isolate"])
    # Without isolation the second user's attacks are skipped (they would succeed).
    settings = {"shared_account_users": 2} if why_not else {"user_python": python}
    try:
        with RunningHub(data, *args, settings=settings) as hub:
            seen: list[str] = []
            client, answer = login(hub.url, ALICE_KEY)
            _record(seen)(answer)
            assert answer.status_code == 302, answer.text[:500]
            client.event_hooks["response"].append(_record(seen))
            lab = start_server(client, "alice")
            assert "JupyterLab" in lab.text
            other, answer = login(hub.url, MALLORY_KEY)
            assert answer.status_code == 302, answer.text[:500]
            other.event_hooks["response"].append(_record(seen))
            start_server(other, MALLORY)
            hub_port = json.loads((data / "settings.json").read_text())["hub_port"]
            env = server_process("alice", hub_port).environ()
            s = Scenario(hub, client, data / "homes" / "alice", data, why_not, seen, other=other)
            mallory_env = server_process(MALLORY, hub_port).environ()
            s.secrets = {
                "alice's DANDI API key": ALICE_KEY,
                "mallory's DANDI API key": MALLORY_KEY,
                "cookie secret": (data / "jupyterhub_cookie_secret").read_text().strip(),
                "crypt key": (data / "jupyterhub_crypt_key").read_text().strip(),
                "alice's server's hub API token": env["JUPYTERHUB_API_TOKEN"],
                "mallory's server's hub API token": mallory_env["JUPYTERHUB_API_TOKEN"],
            }
            yield s
            client.close()
            other.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
        if not why_not:  # the accounts the hub made for this test
            for user in ("alice", MALLORY):
                subprocess.run(["userdel", f"dandi-{user}"], capture_output=True, check=False)


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
    a.dandiset({EMBARGOED!r})
except Exception as e:
    print("embargoed:", type(e).__name__, e)
"""
    out = run_in_server(s.client, "alice", code, timeout=180)
    s.outputs.append(out)
    import hashlib

    import h5py
    with h5py.File(local_archive_dir / "blobs" / NWB.blob) as f:
        expected = f["acquisition"][next(iter(f["acquisition"]))]["data"][:]
    assert f"sha {hashlib.sha256(expected.tobytes()).hexdigest()}" in out, out
    # the embargoed Dandiset exists (its owner alice sees it: her key is in her server)
    assert "embargoed:" not in out, out


# Run in the second user's kernel: every way to another user's secrets we know of. Prints
# only what it found (its own environment holds its own key: never printed).
ATTACK = r"""
import glob, json, os, subprocess, urllib.request, urllib.error
wanted = json.loads(WANTED)
found = {"proc": [], "denied": [], "ps": [], "tries": {}}
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        text = open(path, "rb").read().decode(errors="replace")
    except PermissionError:
        found["denied"].append(int(path.split("/")[2]))
        continue
    except OSError:
        continue
    found["proc"] += [f"{name} in {path}" for name, value in wanted.items() if value in text]
ps = subprocess.run(["ps", "e", "-e", "-ww", "-o", "user=,args="], capture_output=True,
                    text=True, timeout=30).stdout
found["ps"] = [name for name, value in wanted.items() if value in ps]
found["ps_lines"] = len(ps.splitlines())

def attempt(what, action):
    try:
        action()
        found["tries"][what] = "done"
    except Exception as e:
        found["tries"][what] = type(e).__name__

attempt("list the other's home", lambda: os.listdir(OTHER_HOME))
attempt("read the other's file", lambda: open(OTHER_HOME + "/notes.txt").read())
attempt("write into the other's home", lambda: open(OTHER_HOME + "/planted.py", "w").write("x"))
for name in ("jupyterhub_crypt_key", "jupyterhub_cookie_secret", "settings.json",
             "jupyterhub.sqlite", "jupyterhub_config.py", "hub.log"):
    attempt(f"read {name}", lambda name=name: open(os.path.join(DATA, name), "rb").read())
attempt("list the data folder", lambda: os.listdir(DATA))

def hub_api(method, path):
    request = urllib.request.Request(os.environ["JUPYTERHUB_API_URL"] + path, method=method,
        headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]},
        data=b"{}" if method == "POST" else None)
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code

found["hub_api"] = {"GET /users/alice": hub_api("GET", "/users/alice"),
                    "POST /users/alice/tokens": hub_api("POST", "/users/alice/tokens"),
                    "GET /users": hub_api("GET", "/users")}
found["uid"] = os.getuid()
print(json.dumps(found))
"""


def attack_from_mallory(s: Scenario) -> dict:
    if s.isolated:
        pytest.skip(f"users cannot have accounts of their own here: {s.isolated}")
    run_in_server(s.client, "alice", "open('notes.txt', 'w').write('alice only')")
    wanted = {k: v for k, v in s.secrets.items() if not k.startswith("mallory")}
    code = (f"WANTED = {json.dumps(json.dumps(wanted))}\nOTHER_HOME = {str(s.home)!r}\n"
            f"DATA = {str(s.data)!r}\n" + ATTACK)
    out = run_in_server(s.other, MALLORY, code, timeout=120)
    s.outputs.append(out)
    return json.loads(out.strip().splitlines()[-1])


def test_no_user_reaches_another_users_secrets(scenario):
    s = scenario
    found = attack_from_mallory(s)
    hub_port = json.loads((s.data / "settings.json").read_text())["hub_port"]
    alice = server_process("alice", hub_port)
    assert alice.pid in found["denied"], "alice's server's environment was not even tried"
    assert found["proc"] == [], found["proc"]
    assert found["ps_lines"] > 3 and found["ps"] == [], found
    assert all(v == "PermissionError" for v in found["tries"].values()), found["tries"]
    assert not (s.home / "planted.py").exists()
    # a user's token acts for that user alone (mallory is an archive admin, not a hub admin)
    assert found["hub_api"] == {"GET /users/alice": 404, "POST /users/alice/tokens": 403,
                                "GET /users": 403}, found["hub_api"]


def test_each_server_runs_as_its_users_own_account(scenario):
    s = scenario
    if s.isolated:
        pytest.skip(f"users cannot have accounts of their own here: {s.isolated}")
    import pwd

    hub_port = json.loads((s.data / "settings.json").read_text())["hub_port"]
    for user in ("alice", MALLORY):
        process = server_process(user, hub_port)
        account = pwd.getpwnam(f"dandi-{user}")
        assert process.uids().real == process.uids().effective == account.pw_uid != 0
        assert "allow_root" not in " ".join(process.cmdline())
        home = s.data / "homes" / user
        info = home.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (account.pw_uid, 0o700), user
        assert account.pw_dir == str(home)


def test_the_hubs_files_are_the_hubs_alone(scenario):
    s = scenario
    open_to = 0o711 if not s.isolated else 0o700
    assert stat.S_IMODE(s.data.stat().st_mode) == open_to
    assert stat.S_IMODE((s.data / "homes").stat().st_mode) == open_to
    for entry in s.data.iterdir():
        if entry.name in ("homes", "hub.log", "settings-override.json"):
            continue  # hub.log and the override are the test's own files
        mode = stat.S_IMODE(entry.stat().st_mode)
        assert mode & 0o077 == 0, f"{entry.name} is {mode:o}"
        assert entry.stat().st_uid == os.geteuid(), entry


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
    assert (answer.status_code, answer.json()["reason"]) == (400, "invalid"), answer.text[:300]
    assert set(answer.json()) == {"message", "reason"}
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
    for f in (s.data / "homes").rglob("*"):
        if f.is_file() and "runtime" in f.parts:
            # jupyter_server's own connection files hold the server's token by design: the
            # user's private folder (0700), like ~/.ssh; they never leave the server.
            assert f.parent.stat().st_mode & 0o077 == 0, f"{f.parent} is open to others"
        elif f.is_file() and f.stat().st_size < 5_000_000 and f.suffix != ".nwb":
            places[f"home file {f.relative_to(s.data)}"] = f.read_text(errors="replace")
    leaks = [f"{what} in {where}" for what, secret in s.secrets.items()
             for where, text in places.items()
             if secret in text or secret[:16] in text]
    assert not leaks, leaks
    print(f"scanned {len(places)} places ({sum(map(len, places.values()))} chars) "
          f"for {len(s.secrets)} secrets: none found")
