"""The dandilab server extension in a real jupyter_server process.

The archive is either a closed port (unreachable) or a small HTTP server in
this test that answers users/me and dandisets like the DANDI API does, and
records what it was sent (to check the key goes only there, as a header).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
API_KEY = "0123456789abcdef-secret-test-key"
SERVER_TOKEN = "test-server-token"

USER = {"admin": False, "username": "ann-neuro", "name": "Ann Neuro", "status": "APPROVED"}


def dandiset(identifier: str, name: str, published: str | None = None) -> dict:
    """A Dandiset record shaped like GET /dandisets/ lists it."""
    draft = {"version": "draft", "name": name, "asset_count": 53, "size": 139600500}
    return {
        "identifier": identifier,
        "created": "2020-03-15T22:56:55.655000Z",
        "modified": "2023-06-19T21:02:11Z",
        "contact_person": "Svoboda, Karel",
        "embargo_status": "OPEN",
        "draft_version": {**draft, "status": "Valid"},
        "most_recent_published_version": {**draft, "version": published} if published else None,
    }


@dataclass
class FakeArchive:
    """An HTTP server speaking the part of the DANDI API the panel uses."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)

    def page(self, query: dict[str, str]) -> tuple[int, dict]:
        page = int(query.get("page", "1"))
        if page > 2:
            return 404, {"detail": "Invalid page."}
        base = f"{self.url}/dandisets/"
        results = [
            dandiset("000006", "Mouse anterior lateral motor cortex (ALM)", "0.220126.1855"),
            dandiset("000004", "Human single-neuron activity, declarative memory"),
        ]
        return 200, {
            "count": 4 if page == 1 else None,
            "next": f"{base}?page=2" if page == 1 else None,
            "previous": f"{base}?page=1" if page == 2 else None,
            "results": results,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def fake_archive() -> Iterator[FakeArchive]:
    archive = FakeArchive()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            archive.requests.append(
                {
                    "path": parts.path,
                    "query": query,
                    "authorization": self.headers.get("Authorization"),
                }
            )
            if parts.path == "/api/users/me/":
                if self.headers.get("Authorization") != f"token {API_KEY}":
                    return self.reply(401, {"detail": "Invalid token."})
                return self.reply(200, USER)
            if parts.path.endswith("/dandisets/"):
                return self.reply(*archive.page(query))
            if parts.path == "/api/info/":
                return self.reply(200, {"version": "0.0.0-test"})
            return self.reply(404, {"detail": "Not found."})

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    archive.url = f"http://127.0.0.1:{server.server_address[1]}/api"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield archive
    server.shutdown()
    server.server_close()


class JupyterServer:
    """`jupyter server` with dandilab enabled, in a subprocess."""

    def __init__(self, tmp: Path, env: dict[str, str], config: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / "server.log"
        settings = {"ServerApp": {"jpserver_extensions": {"dandilab": True}}, **(config or {})}
        config = tmp / "jupyter_server_config.json"
        config.write_text(json.dumps(settings))
        # Only the DANDI settings given here: none leak in from the caller's environment.
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DANDI_")},
            "JUPYTER_CONFIG_DIR": str(tmp / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            # The source tree first, so the test runs whether or not dandilab is installed.
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "extension"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **env,
        }
        command = [
            sys.executable, "-m", "jupyter_server", "--no-browser",
            f"--port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={SERVER_TOKEN}", f"--ServerApp.root_dir={tmp}",
            f"--config={config}", "--allow-root",
        ]  # fmt: skip
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            command, env=environ, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                self.get("api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"jupyter server did not start:\n{self.log.read_text()[-3000:]}")

    def get(self, path: str, token: str | None = SERVER_TOKEN) -> tuple[int, dict, str]:
        """GET a path under the server; (status, JSON body, raw text)."""
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"token {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            body = json.loads(text)
        except ValueError:
            body = {}
        return status, body, text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="module")
def unreachable(tmp_path_factory) -> Iterator[tuple[JupyterServer, str]]:
    """A server whose archive is a closed port; no API key."""
    archive_url = f"http://127.0.0.1:{free_port()}/api"
    server = JupyterServer(tmp_path_factory.mktemp("unreachable"), {"DANDI_API_URL": archive_url})
    server.wait()
    yield server, archive_url
    server.stop()


def other_archive(fake_archive) -> str:
    """A second archive on the fake server, which the proxied server is configured to allow."""
    return fake_archive.url.replace("/api", "/other")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, fake_archive) -> Iterator[JupyterServer]:
    """A server whose archive is the fake one, with an API key; it may also call
    ``other_archive`` (c.DandiLab.allowed_archives)."""
    env = {"DANDI_API_URL": fake_archive.url + "/", "DANDI_API_KEY": API_KEY}
    config = {"DandiLab": {"allowed_archives": [other_archive(fake_archive) + "/"]}}
    server = JupyterServer(tmp_path_factory.mktemp("proxied"), env, config)
    server.wait()
    yield server
    server.stop()


def test_info_reports_an_unreachable_archive(unreachable):
    server, archive_url = unreachable
    status, body, _ = server.get("dandi/api/info")
    assert status == 200
    assert body["archive_url"] == archive_url
    assert body["authenticated"] is False and body["username"] is None
    assert body["has_api_key"] is False
    assert archive_url in body["error"] and body["error_reason"] == "unreachable"


def test_dandisets_is_502_naming_the_archive(unreachable):
    server, archive_url = unreachable
    status, body, _ = server.get("dandi/api/dandisets?search=mouse")
    assert status == 502
    assert archive_url in body["message"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("page=0", "page must be between"),
        ("page=two", "page must be a whole number"),
        ("page_size=5000", "page_size must be between"),
        ("search=" + "x" * 201, "at most 200 characters"),
        ("ordering=password", "ordering must be one of"),
        ("archive=file:///etc/passwd", "archive must be an http(s) URL"),
    ],
)
def test_bad_input_is_400_with_a_message(unreachable, query, expected):
    server, _ = unreachable
    status, body, text = server.get(f"dandi/api/dandisets?{query}")
    assert (status, body["reason"]) == (400, "invalid"), text
    assert expected in body["message"]


def test_handlers_need_jupyter_authentication(unreachable):
    server, _ = unreachable
    for path in ("dandi/api/info", "dandi/api/dandisets"):
        status, _, _ = server.get(path, token=None)
        assert status == 403


def test_info_names_the_account_of_the_key(proxied, fake_archive):
    status, body, text = proxied.get("dandi/api/info")
    assert status == 200
    assert body == {
        "archive_url": fake_archive.url,
        "username": "ann-neuro",
        "authenticated": True,
        "has_api_key": True,
        "error": None,
        "error_reason": None,
    }
    me = [r for r in fake_archive.requests if r["path"] == "/api/users/me/"]
    assert me and me[-1]["authorization"] == f"token {API_KEY}"
    assert API_KEY not in text


def test_dandisets_proxies_the_search_with_the_key(proxied, fake_archive):
    query = "search=mouse%20ALM&page=1&page_size=5&ordering=-modified"
    status, body, text = proxied.get(f"dandi/api/dandisets?{query}")
    assert status == 200
    assert [d["identifier"] for d in body["results"]] == ["000006", "000004"]
    assert body["count"] == 4 and body["next"].endswith("?page=2")
    sent = fake_archive.requests[-1]
    assert sent["path"] == "/api/dandisets/"
    assert sent["query"] == {
        "search": "mouse ALM",
        "page": "1",
        "page_size": "5",
        "ordering": "-modified",
    }
    assert sent["authorization"] == f"token {API_KEY}"
    assert API_KEY not in text


def test_archive_errors_keep_their_meaning(proxied, fake_archive):
    status, body, text = proxied.get("dandi/api/dandisets?page=3")
    assert status == 404
    assert "Invalid page." in body["message"] and fake_archive.url in body["message"]
    assert API_KEY not in text


def test_another_archive_gets_no_key(proxied, fake_archive):
    other = other_archive(fake_archive)
    status, body, text = proxied.get(f"dandi/api/dandisets?archive={other}")
    assert status == 200
    sent = fake_archive.requests[-1]
    assert sent["path"] == "/other/dandisets/" and sent["authorization"] is None
    status, body, _ = proxied.get(f"dandi/api/info?archive={other}")
    assert status == 200 and body["archive_url"] == other and body["authenticated"] is False
    assert API_KEY not in text


@pytest.mark.parametrize("spelling", [
    "http://127.0.0.1:{port}/elsewhere",  # any path of an allowed host is another archive
    "http://127.0.0.1:{port}/other/../elsewhere",
    "http://localhost:{port}/other",
    "https://example.org/api",
    "http://169.254.169.254/latest/meta-data",
])
def test_only_configured_archives_are_called(proxied, fake_archive, spelling):
    """A cross-site link (or a panel setting) naming any URL must not make the server fetch it."""
    url = spelling.format(port=urlsplit(fake_archive.url).port)
    before = len(fake_archive.requests)
    for path in ("dandisets", "info", "dandisets/000006/versions"):
        status, body, text = proxied.get(f"dandi/api/{path}?archive={quote(url, safe='')}")
        assert (status, body["reason"]) == (400, "archive-not-allowed"), text
        assert "c.DandiLab.allowed_archives" in body["message"], body
    status, body, text = request(proxied, "POST", "dandi/api/downloads", {
        "dandiset": "000006", "version": "draft", "asset_id": NWB_ASSET, "archive": url})
    assert (status, body["reason"]) == (400, "archive-not-allowed"), text
    assert fake_archive.requests[before:] == []


@pytest.mark.parametrize("spelling", ["{other}", "{other}/", "{other_upper}"])
def test_an_allowed_archive_may_be_spelled_differently(proxied, fake_archive, spelling):
    other = other_archive(fake_archive)
    url = spelling.format(other=other, other_upper=other.replace("http://", "HTTP://"))
    status, body, text = proxied.get(f"dandi/api/info?archive={quote(url, safe='')}")
    assert status == 200 and body["archive_url"] == other, text  # the configured spelling


def test_the_public_archives_need_no_configuration():
    from dandilab.server import KNOWN_ARCHIVES, ArchiveEndpoint, InvalidRequest

    home = ArchiveEndpoint("http://127.0.0.1:9/api", "key")
    for given, called in [
        ("HTTPS://API.sandbox.dandiarchive.org:443/api/", "https://api.sandbox.dandiarchive.org/api"),
        ("https://api.dandiarchive.org/api", "https://api.dandiarchive.org/api"),
        ("https://api-staging.dandiarchive.org/api/", "https://api-staging.dandiarchive.org/api"),
    ]:
        endpoint = home.with_override(given)
        assert (endpoint.url, endpoint.api_key) == (called, None)
        assert called in KNOWN_ARCHIVES
    assert home.with_override("http://127.0.0.1:9/api/") is home  # its own: with the key
    with pytest.raises(InvalidRequest) as refused:
        home.with_override("https://api.dandiarchive.org.evil.example/api")
    assert refused.value.reason == "archive-not-allowed"


def test_the_key_never_reaches_the_browser(proxied):
    for path in (
        "dandi/api/info",
        "dandi/api/dandisets",
        "dandi/api/dandisets?page=3",
        "dandi/api/dandisets?page=-1",
    ):
        _, _, text = proxied.get(path)
        assert API_KEY not in text, path


def test_importing_dandilab_is_light():
    """The server extension must not pull in the analysis stack."""
    code = (
        "import sys, dandilab, dandilab.server; "
        "heavy = [m for m in ('pynwb', 'h5py', 'dask', 'dandi') if m in sys.modules]; "
        "print(dandilab.__version__, heavy)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "extension")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().endswith("[]"), out.stdout


# --- against the local archive: Dandisets, versions, the asset tree, downloads ---------

EMBARGOED = "000998"
EMBARGOED_ASSET = "0e000000-0000-4000-8000-000000000001"
BIG_ASSET = "0a000000-0000-4000-8000-0000000000b1"
BIG_BLOB = "b1000000-0000-4000-8000-0000000000b1"
BIG_SIZE = 24 * 1024 * 1024 + 12345  # several chunks; not a multiple of any buffer size


@dataclass
class PanelArchive:
    """A LocalArchive over the synthetic Dandiset (000999, see localarchive_fixtures), a big
    blob, and an embargoed Dandiset owned by alice; the blob files by asset path."""

    running: object
    contents: dict[str, Path]

    @property
    def url(self) -> str:
        return self.running.api_url


def _add_big_asset(folder: Path, contents: dict[str, Path]) -> None:
    from .localarchive_fixtures import SYNTHETIC, SyntheticAsset, _asset_record, _digest

    blob = folder / "blobs" / BIG_BLOB
    blob.write_bytes(os.urandom(BIG_SIZE))
    assets = folder / "dandisets" / SYNTHETIC / "draft.assets.json"
    records = json.loads(assets.read_text())
    asset = SyntheticAsset(BIG_ASSET, "sub-03/sub-03_ses-1_ecephys.nwb", blob=BIG_BLOB)
    records.append(_asset_record(asset, BIG_SIZE, _digest(blob), "application/x-nwb"))
    assets.write_text(json.dumps(records))
    contents[asset.path] = blob


def _add_embargoed_dandiset(folder: Path) -> None:
    from .localarchive_fixtures import SYNTHETIC

    source, target = folder / "dandisets" / SYNTHETIC, folder / "dandisets" / EMBARGOED
    target.mkdir()
    metadata = json.loads((source / "draft.metadata.json").read_text())
    metadata.update(
        id=f"DANDI:{EMBARGOED}/draft",
        identifier=f"DANDI:{EMBARGOED}",
        name="Embargoed test Dandiset",
    )
    (target / "draft.metadata.json").write_text(json.dumps(metadata))
    record = json.loads((source / "draft.assets.json").read_text())[2]  # README.md
    record = {
        **record,
        "asset_id": EMBARGOED_ASSET,
        "metadata": {**record["metadata"], "identifier": EMBARGOED_ASSET},
    }
    (target / "draft.assets.json").write_text(json.dumps([record]))
    info = json.loads((source / "dandiset.json").read_text())
    info.update(identifier=EMBARGOED, embargo_status="EMBARGOED", owners=["alice"])
    (target / "dandiset.json").write_text(json.dumps(info))


@pytest.fixture(scope="module")
def panel_archive(tmp_path_factory) -> Iterator[PanelArchive]:
    from dandihub.localarchive.server import LocalArchive

    from .localarchive_fixtures import write_synthetic_dandiset, write_users

    folder = tmp_path_factory.mktemp("panel-archive")
    contents = write_synthetic_dandiset(folder)
    _add_big_asset(folder, contents)
    _add_embargoed_dandiset(folder)
    write_users(folder)
    with LocalArchive(folder) as running:
        yield PanelArchive(running, contents)


def _server(tmp_path_factory, name: str, env: dict[str, str]) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp(name), env)
    server.wait()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory, panel_archive) -> Iterator[JupyterServer]:
    """A server on the panel archive without a DANDI API key."""
    yield from _server(tmp_path_factory, "anonymous", {"DANDI_API_URL": panel_archive.url})


@pytest.fixture(scope="module")
def alice(tmp_path_factory, panel_archive) -> Iterator[JupyterServer]:
    """A server on the panel archive with alice's key (she owns the embargoed Dandiset)."""
    from .localarchive_fixtures import USERS

    env = {"DANDI_API_URL": panel_archive.url, "DANDI_API_KEY": USERS["alice"][1]}
    yield from _server(tmp_path_factory, "alice", env)


def request(server: JupyterServer, method: str, path: str, body=None) -> tuple[int, dict, str]:
    """Like JupyterServer.get, for any method, with a JSON body."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    req.add_header("Authorization", f"token {SERVER_TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text), text
    except ValueError:
        return status, {}, text


def home(server: JupyterServer) -> Path:
    return server.log.parent  # the server's root directory (its "home")


def wait_for_download(server: JupyterServer, download_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body, _ = server.get(f"dandi/api/downloads/{download_id}")
        assert status == 200, body
        if body["state"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"download {download_id} did not end in {timeout} s: {body}")


def download(server: JupyterServer, asset_id: str, **extra) -> dict:
    body = {"dandiset": "000999", "version": "draft", "asset_id": asset_id, **extra}
    status, answer, _ = request(server, "POST", "dandi/api/downloads", body)
    assert status in (200, 202), answer
    return wait_for_download(server, answer["id"])


NWB_ASSET = "0a000000-0000-4000-8000-000000000001"  # sub-01/sub-01_ses-1_ecephys.nwb
HASH_ASSET = "0a000000-0000-4000-8000-000000000002"  # "sub-02 #2/sub-02#2 säule_ecephys.nwb"
README_ASSET = "0a000000-0000-4000-8000-000000000003"  # metadata only
ZARR_ASSET = "0a000000-0000-4000-8000-000000000004"


def test_a_dandiset_its_versions_and_a_version(anonymous):
    status, dandiset, _ = anonymous.get("dandi/api/dandisets/000999")
    assert status == 200
    assert dandiset["identifier"] == "000999"
    assert dandiset["most_recent_published_version"]["version"] == "0.240102.1200"
    status, versions, _ = anonymous.get("dandi/api/dandisets/DANDI:000999/versions")
    assert status == 200
    assert {v["version"] for v in versions["results"]} == {"draft", "0.240102.1200"}
    status, version, _ = anonymous.get("dandi/api/dandisets/000999/versions/0.240102.1200")
    assert status == 200
    assert version["metadata"]["doi"] == "10.48324/dandi.000999/0.240102.1200"
    assert version["metadata"]["contributor"][0]["name"] == "Tester, Ada"


def test_the_asset_tree_folder_by_folder(anonymous, panel_archive):
    status, top, _ = anonymous.get("dandi/api/dandisets/000999/versions/draft/paths")
    assert status == 200
    entries = {e["path"]: e for e in top["results"]}
    assert set(entries) == {"README.md", "sub-01", "sub-02 #2", "sub-03"}
    assert entries["sub-01"]["asset"] is None and entries["sub-01"]["aggregate_files"] == 2
    assert entries["README.md"]["asset"]["asset_id"] == README_ASSET
    # '#', a space and unicode survive the round trip through two URL encodings.
    prefix = quote("sub-02 #2/", safe="")
    status, folder, _ = anonymous.get(
        f"dandi/api/dandisets/000999/versions/draft/paths?path_prefix={prefix}&page_size=1"
    )
    assert status == 200
    [entry] = folder["results"]
    assert entry["path"] == "sub-02 #2/sub-02#2 säule_ecephys.nwb"
    assert entry["asset"]["asset_id"] == HASH_ASSET
    assert entry["aggregate_size"] == panel_archive.contents[entry["path"]].stat().st_size


def test_an_asset_with_its_metadata(anonymous):
    status, asset, _ = anonymous.get(
        f"dandi/api/dandisets/000999/versions/draft/assets/{NWB_ASSET}"
    )
    assert status == 200
    assert asset["path"] == "sub-01/sub-01_ses-1_ecephys.nwb"
    assert asset["metadata"]["encodingFormat"] == "application/x-nwb"
    assert asset["metadata"]["digest"]["dandi:sha2-256"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("dandisets/12345", "six digits"),
        ("dandisets/00000a/versions", "six digits"),
        ("dandisets/000999/versions/latest", "a version is 'draft' or a published version"),
        ("dandisets/000999/versions/1.2.3/paths", "a version is 'draft'"),
        ("dandisets/000999/versions/draft/paths?path_prefix=../../etc", "'..'"),
        ("dandisets/000999/versions/draft/paths?path_prefix=/etc", "relative"),
        ("dandisets/000999/versions/draft/paths?path_prefix=a%00b", "control characters"),
        ("dandisets/000999/versions/draft/paths?path_prefix=a//b", "empty parts"),
        ("dandisets/000999/versions/draft/paths?path_prefix=" + "a" * 1025, "at most 1024"),
        ("dandisets/000999/versions/draft/paths?page=0", "page must be between"),
        ("dandisets/000999/versions/draft/paths?page_size=1001", "page_size must be between"),
        ("dandisets/000999/versions/draft/assets/not-a-uuid", "a UUID"),
        ("dandisets/000999/versions?archive=ftp://example.org/api", "http(s) URL"),
        ("dandisets?search=a%00b", "NUL"),
        ("downloads/xyz", "32 hex digits"),
    ],
)
def test_bad_input_is_400_before_the_archive_is_asked(anonymous, path, expected):
    status, body, _ = anonymous.get(f"dandi/api/{path}")
    assert status == 400, body
    assert expected in body["message"] and body["reason"] == "invalid"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("dandisets/000404", "Dandiset 000404 does not exist"),
        ("dandisets/000999/versions/0.990101.0000", "Version 0.990101.0000 of Dandiset 000999"),
        (
            "dandisets/000999/versions/draft/paths?path_prefix=sub-99",
            "Folder 'sub-99' of Dandiset 000999 (version draft)",
        ),
        (
            "dandisets/000999/versions/draft/assets/00000000-0000-4000-8000-000000000000",
            "Asset 00000000-0000-4000-8000-000000000000",
        ),
        ("downloads/" + "0" * 32, "no download"),
    ],
)
def test_not_found_is_404_saying_what(anonymous, panel_archive, path, expected):
    status, body, _ = anonymous.get(f"dandi/api/{path}")
    assert status == 404, body
    assert expected in body["message"] and body["reason"] == "not-found"
    if path.startswith("dandisets"):
        assert panel_archive.url in body["message"]


def test_embargoed_dandisets_need_an_owner(anonymous, alice):
    for path in (f"dandisets/{EMBARGOED}", f"dandisets/{EMBARGOED}/versions/draft/paths"):
        status, body, _ = anonymous.get(f"dandi/api/{path}")
        assert status == 403, body
        assert body["reason"] == "unauthorized"
        assert "embargoed" in body["message"] and "no DANDI API key" in body["message"]
        status, body, _ = alice.get(f"dandi/api/{path}")
        assert status == 200, body
    assert alice.get("dandi/api/info")[1]["username"] == "alice"


def test_the_key_stays_on_the_server(alice):
    from .localarchive_fixtures import USERS

    key = USERS["alice"][1]
    for path in (
        "info",
        "dandisets",
        f"dandisets/{EMBARGOED}",
        "dandisets/000404",
        f"dandisets/{EMBARGOED}/versions/draft/paths",
        "downloads",
    ):
        _, _, text = alice.get(f"dandi/api/{path}")
        assert key not in text, path


def test_download_to_home(anonymous, panel_archive):
    done = download(anonymous, NWB_ASSET)
    assert done["state"] == "done", done
    assert done["dest"] == "dandi/000999/draft/sub-01/sub-01_ses-1_ecephys.nwb"
    target = home(anonymous) / done["dest"]
    source = panel_archive.contents["sub-01/sub-01_ses-1_ecephys.nwb"]
    assert target.read_bytes() == source.read_bytes()
    assert done["received"] == done["size"] == source.stat().st_size
    listed = anonymous.get("dandi/api/downloads")[1]["downloads"]
    assert done["id"] in [d["id"] for d in listed]
    # Again: the file is there already.
    status, again, _ = request(
        anonymous,
        "POST",
        "dandi/api/downloads",
        {"dandiset": "000999", "version": "draft", "asset_id": NWB_ASSET},
    )
    assert status == 200 and again["state"] == "done"
    listed = anonymous.get("dandi/api/downloads")[1]["downloads"]
    assert [d["id"] for d in listed if d["dest"] == done["dest"]] == [again["id"]]  # replaced
    # Forgetting an ended download leaves the file.
    status, _, _ = request(anonymous, "DELETE", f"dandi/api/downloads/{again['id']}")
    assert status == 200 and target.exists()
    assert again["id"] not in [
        d["id"] for d in anonymous.get("dandi/api/downloads")[1]["downloads"]
    ]


def partial_file(client, archive, dest):
    """Where the server keeps the unfinished download of BIG_ASSET to ``dest``."""
    from dandilab.server import Download, Downloads

    return Downloads(home(client)).partial_path(Download(
        id="x", archive_url=archive.url, dandiset="000999", version="draft",
        asset_id=BIG_ASSET, path="", dest=dest, size=None,
    ))


def test_a_download_resumes_from_its_partial_file(anonymous, panel_archive):
    dest = "resumed/big.nwb"
    source = panel_archive.contents["sub-03/sub-03_ses-1_ecephys.nwb"].read_bytes()
    part = partial_file(anonymous, panel_archive, dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(source[:10_000_000])
    done = download(anonymous, BIG_ASSET, dest=dest)
    assert done["state"] == "done", done
    assert done["resumed_from"] == 10_000_000  # a Range request, answered 206
    assert (home(anonymous) / dest).read_bytes() == source
    assert not part.exists()


def test_a_corrupt_partial_file_fails_the_checksum_then_downloads_afresh(anonymous, panel_archive):
    dest = "corrupt/big.nwb"
    source = panel_archive.contents["sub-03/sub-03_ses-1_ecephys.nwb"].read_bytes()
    part = partial_file(anonymous, panel_archive, dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\xff" * 1000)
    failed = download(anonymous, BIG_ASSET, dest=dest)
    assert failed["state"] == "failed" and "SHA-256" in failed["error"]
    assert not (home(anonymous) / dest).exists() and not part.exists()
    done = download(anonymous, BIG_ASSET, dest=dest)
    assert done["state"] == "done" and done["resumed_from"] == 0
    assert (
        hashlib.sha256((home(anonymous) / dest).read_bytes()).digest()
        == hashlib.sha256(source).digest()
    )


def test_cancel_then_resume(anonymous, panel_archive):
    body = {"dandiset": "000999", "version": "draft", "asset_id": BIG_ASSET, "dest": "c/big.nwb"}
    status, started, _ = request(anonymous, "POST", "dandi/api/downloads", body)
    assert status == 202 and started["state"] in ("queued", "running")
    status, _, _ = request(anonymous, "DELETE", f"dandi/api/downloads/{started['id']}")
    assert status == 200
    assert wait_for_download(anonymous, started["id"])["state"] in ("cancelled", "done")
    done = download(anonymous, BIG_ASSET, dest="c/big.nwb")
    assert done["state"] == "done"
    source = panel_archive.contents["sub-03/sub-03_ses-1_ecephys.nwb"]
    assert (home(anonymous) / "c/big.nwb").read_bytes() == source.read_bytes()


DL = {"dandiset": "000999", "version": "draft", "asset_id": NWB_ASSET}


@pytest.mark.parametrize(
    ("body", "status", "reason", "expected"),
    [
        ({"version": "draft", "asset_id": NWB_ASSET}, 400, "invalid", "dandiset is required"),
        ({**DL, "dandiset": "999"}, 400, "invalid", "six digits"),
        ({**DL, "version": "v1"}, 400, "invalid", "a version is"),
        ({**DL, "asset_id": "../../x"}, 400, "invalid", "a UUID"),
        ({**DL, "dest": "../x.nwb"}, 400, "invalid", "'..'"),
        ({**DL, "dest": "a/../../x"}, 400, "invalid", "'..'"),
        ({**DL, "dest": "/etc/x"}, 400, "invalid", "relative"),
        ({**DL, "dest": 7}, 400, "invalid", "dest must be a string"),
        ({**DL, "path": "x"}, 400, "invalid", "unknown fields: path"),
        ({**DL, "asset_id": ZARR_ASSET}, 400, "unsupported", "Zarr asset"),
        ({**DL, "asset_id": "00000000-0000-4000-8000-000000000000"}, 404, "not-found",
         "does not exist"),
        ([1, 2], 400, "invalid", "a JSON object"),
        (b"{not json", 400, "invalid", "must be JSON"),
        # wrong types and sizes, each a 500 with a traceback before
        ({**DL, "archive": 123}, 400, "invalid", "archive must be a string"),
        ({**DL, "archive": ["http://127.0.0.1:1/api"]}, 400, "invalid",
         "archive must be a string"),
        ({**DL, "archive": {"url": "x"}}, 400, "invalid", "archive must be a string"),
        ({**DL, "dest": "dandi/" + "x" * 300 + ".nwb"}, 400, "invalid",
         "a folder or file name of 304 bytes"),
        ({**DL, "dest": "ü" * 200}, 400, "invalid", "a folder or file name of 400 bytes"),
        ({**DL, "dest": {"path": "x"}}, 400, "invalid", "dest must be a string"),
        ({**DL, "dest": ["x"]}, 400, "invalid", "dest must be a string"),
        ({**DL, "dandiset": 999}, 400, "invalid", "dandiset must be a string, not int"),
        ({**DL, "version": ["draft"]}, 400, "invalid", "version must be a string, not list"),
        ({**DL, "asset_id": True}, 400, "invalid", "asset_id must be a string, not bool"),
        (b'{"dandiset": "000999", "version": "draft", "asset_id": "' + NWB_ASSET.encode()
         + b'", "dest": "a\\ud800.nwb"}', 400, "invalid", "lone surrogate"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid", "must be JSON"),
        (b"\xff\xfe{}", 400, "invalid", "must be JSON"),
        (b'"just a string"', 400, "invalid", "a JSON object"),
    ],
)
def test_bad_downloads_are_refused(anonymous, body, status, reason, expected):
    answer_status, answer, text = request(anonymous, "POST", "dandi/api/downloads", body)
    assert (answer_status, answer.get("reason")) == (status, reason), text[:500]
    assert expected in answer["message"]
    assert "Traceback" not in text and set(answer) == {"message", "reason"}


def test_an_embargoed_download_needs_an_owner(anonymous, alice):
    """The embargoed asset exists (its owner sees it): the refusal is the embargo's."""
    body = {"dandiset": EMBARGOED, "version": "draft", "asset_id": EMBARGOED_ASSET}
    status, answer, _ = request(anonymous, "POST", "dandi/api/downloads", body)
    assert (status, answer["reason"]) == (403, "unauthorized"), answer
    assert "embargoed" in answer["message"] and "no DANDI API key" in answer["message"]
    path = f"dandi/api/dandisets/{EMBARGOED}/versions/draft/assets/{EMBARGOED_ASSET}"
    status, asset, _ = alice.get(path)
    assert status == 200 and asset["asset_id"] == EMBARGOED_ASSET, asset
    status, answer, _ = anonymous.get(path)
    assert (status, answer["reason"]) == (403, "unauthorized"), answer
    # while a Dandiset that does not exist is a 404, with a key or without
    for server in (anonymous, alice):
        status, answer, _ = server.get("dandi/api/dandisets/000997")
        assert (status, answer["reason"]) == (404, "not-found"), answer


#: tests/test_security.py's BAD_PANEL, through the hub there; here straight to the server.
BAD_PANEL = [
    ("dandisets/..%2F..%2Fetc%2Fpasswd", 400, "invalid", "six digits"),
    ("dandisets/" + "0" * 5000, 400, "invalid", "six digits"),
    ("dandisets/00099%00", 400, "invalid", "six digits"),
    ("dandisets/000999/versions/..%2F..", 400, "invalid", "a version is"),
    ("dandisets/000999/versions/draft%3B%20rm", 400, "invalid", "a version is"),
    ("dandisets/000999/versions/9.999999.99999", 400, "invalid", "a version is"),
    ("dandisets/000999/versions/draft/paths?path_prefix=..%2F..%2Fetc", 400, "invalid", "'..'"),
    ("dandisets/000999/versions/draft/paths?path_prefix=%2Fetc", 400, "invalid", "relative"),
    ("dandisets/000999/versions/draft/assets/..%2F..%2Fx", 400, "invalid", "a UUID"),
    ("dandisets/000999/versions/draft/assets/" + "a" * 5000, 400, "invalid", "a UUID"),
    ("downloads/..%2F..%2Fetc", 400, "invalid", "32 hex digits"),
    # and more of the same kind
    ("dandisets/000999/versions/draft/paths?path_prefix=%ff%fe", 400, "invalid",
     "path_prefix is not valid UTF-8"),
    ("dandisets?archive=%ff", 400, "invalid", "archive is not valid UTF-8"),
    ("dandisets?archive=http://127.0.0.1:1/api?x=1", 400, "invalid", "http(s) URL"),
    ("dandisets?archive=http://127.0.0.1:1/api%0d%0aX-Evil:%201", 400, "invalid", "http(s) URL"),
    ("dandisets?page=" + "9" * 5000, 400, "invalid", "page must be"),
]


@pytest.mark.parametrize(("path", "status", "reason", "expected"), BAD_PANEL)
def test_bad_panel_requests_get_their_exact_status_and_reason(anonymous, path, status, reason,
                                                             expected):
    answer_status, answer, text = anonymous.get(f"dandi/api/{path}")
    assert (answer_status, answer.get("reason")) == (status, reason), text[:500]
    assert expected in answer["message"]
    assert "Traceback" not in text and set(answer) == {"message", "reason"}


def test_tornado_errors_have_the_same_shape(anonymous):
    status, answer, text = request(anonymous, "PUT", "dandi/api/downloads", b"{}")
    assert (status, answer.get("reason")) == (405, "method-not-allowed"), text
    assert "Traceback" not in text and set(answer) == {"message", "reason"}


def test_downloads_stay_in_the_home_directory(anonymous, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    link = home(anonymous) / "escape"
    link.symlink_to(outside)
    body = {"dandiset": "000999", "version": "draft", "asset_id": NWB_ASSET, "dest": "escape/x.nwb"}
    status, answer, _ = request(anonymous, "POST", "dandi/api/downloads", body)
    assert status == 400 and "out of the home directory" in answer["message"]
    assert not list(outside.iterdir())


def test_unfinished_downloads_stay_in_the_home_directory(anonymous, tmp_path):
    from dandilab.server import PARTIAL_DIR

    outside = tmp_path / "outside"
    outside.mkdir()
    partial = home(anonymous) / PARTIAL_DIR
    moved = partial.with_name(PARTIAL_DIR + ".moved")
    if partial.exists():
        partial.rename(moved)
    partial.symlink_to(outside)
    try:
        body = {"dandiset": "000999", "version": "draft", "asset_id": NWB_ASSET,
                "dest": "linked/x.nwb"}
        status, answer, _ = request(anonymous, "POST", "dandi/api/downloads", body)
        assert (status, answer["reason"]) == (400, "invalid"), answer
        assert "outside the home directory" in answer["message"]
        assert f"~/{PARTIAL_DIR}" in answer["message"]
    finally:
        partial.unlink()
        if moved.exists():
            moved.rename(partial)
    assert list(outside.iterdir()) == [] and not (home(anonymous) / "linked").exists()


def test_an_existing_other_file_is_not_overwritten(anonymous):
    (home(anonymous) / "mine.nwb").write_bytes(b"my own work")
    body = {"dandiset": "000999", "version": "draft", "asset_id": NWB_ASSET, "dest": "mine.nwb"}
    status, answer, _ = request(anonymous, "POST", "dandi/api/downloads", body)
    assert status == 409 and answer["reason"] == "conflict"
    assert (home(anonymous) / "mine.nwb").read_bytes() == b"my own work"


def test_a_metadata_only_asset_fails_saying_why(anonymous):
    failed = download(anonymous, README_ASSET)
    assert failed["state"] == "failed"
    assert "not held by this local archive" in failed["error"]
    assert not (home(anonymous) / failed["dest"]).exists()


def test_the_openapi_description_covers_every_route(anonymous):
    import yaml
    from dandilab.server import HANDLERS
    from tornado.web import RequestHandler

    status, _, text = anonymous.get("dandi/api/openapi.yaml")
    assert status == 200
    spec = yaml.safe_load(text)
    assert spec["openapi"].startswith("3.")
    documented = {re.sub(r"\{[^}]+\}", "X", p).strip("/") for p in spec["paths"]}
    served = {route.replace("([^/]+)", "X") for route, _ in HANDLERS}
    assert documented == served
    for route, handler in HANDLERS:
        path = "/" + route.replace("([^/]+)", "{x}")
        entry = next(v for k, v in spec["paths"].items() if re.sub(r"\{[^}]+\}", "{x}", k) == path)
        methods = {
            m.lower()
            for m in ("GET", "POST", "DELETE")
            if getattr(handler, m.lower()) is not getattr(RequestHandler, m.lower())
        }
        assert methods <= set(entry), (route, methods, set(entry))


# --- the real Dandisets (../shared/fixtures) in the local archive ---------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory, real_dandisets) -> Iterator[JupyterServer]:
    yield from _server(tmp_path_factory, "real", {"DANDI_API_URL": real_dandisets.api_url})


def test_searching_anterior_lateral_motor_cortex_finds_000006(real):
    status, page, _ = real.get("dandi/api/dandisets?search=anterior%20lateral%20motor%20cortex")
    assert status == 200
    assert [d["identifier"] for d in page["results"]] == ["000006"]


def test_the_top_folder_of_000026(real):
    status, page, _ = real.get("dandi/api/dandisets/000026/versions/draft/paths?page_size=1000")
    assert status == 200
    folders = [e for e in page["results"] if e["asset"] is None]
    assert len(page["results"]) == page["count"] > 10 and folders
    assert sum(e["aggregate_files"] for e in page["results"]) > 50_000
