"""The dandilab server extension in a real jupyter_server process.

The archive is either a closed port (unreachable) or a small HTTP server in
this test that answers users/me and dandisets like the DANDI API does, and
records what it was sent (to check the key goes only there, as a header).
"""

from __future__ import annotations

import json
import os
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
from urllib.parse import parse_qs, urlsplit

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

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / "server.log"
        config = tmp / "jupyter_server_config.json"
        config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"dandilab": True}}}))
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


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, fake_archive) -> Iterator[JupyterServer]:
    """A server whose archive is the fake one, with an API key."""
    env = {"DANDI_API_URL": fake_archive.url + "/", "DANDI_API_KEY": API_KEY}
    server = JupyterServer(tmp_path_factory.mktemp("proxied"), env)
    server.wait()
    yield server
    server.stop()


def test_info_reports_an_unreachable_archive(unreachable):
    server, archive_url = unreachable
    status, body, _ = server.get("dandi/api/info")
    assert status == 200
    assert body["archive_url"] == archive_url
    assert body["authenticated"] is False and body["username"] is None
    assert archive_url in body["error"]


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
    status, body, _ = server.get(f"dandi/api/dandisets?{query}")
    assert status == 400
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
        "error": None,
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
    other = fake_archive.url.replace("/api", "/other")
    status, body, text = proxied.get(f"dandi/api/dandisets?archive={other}")
    assert status == 200
    sent = fake_archive.requests[-1]
    assert sent["path"] == "/other/dandisets/" and sent["authorization"] is None
    status, body, _ = proxied.get(f"dandi/api/info?archive={other}")
    assert status == 200 and body["archive_url"] == other and body["authenticated"] is False
    assert API_KEY not in text


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
