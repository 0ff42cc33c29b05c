"""Culling with a real hub: jupyterhub-idle-culler (a hub service) with a short timeout, and
dandilab.activity in real JupyterLab servers. Running work keeps a server; idleness does not.

Three users, three servers, started together:
- ``idle``: an idle kernel and a terminal with only its shell -> culled after the timeout;
- ``busy``: a cell running ``time.sleep(60)``, browser gone -> kept while the cell runs;
- ``mover``: a download-like process in a terminal (reads a slow HTTP stream, writes a file),
  terminal closed -> kept while it transfers.
Then the cell is interrupted and the download stopped with Ctrl-C: both servers get culled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
import websocket
from dandihub.cli import crypt_key, find_proxy, free_port
from dandihub.config import Settings

from .hubutil import login, start_server

REPO = Path(__file__).resolve().parents[1]
TIMEOUT, EVERY, INTERVAL = 20, 5, 3  # culler timeout and period, activity check period (s)
USERS = ["idle", "busy", "mover"]


class LocalHub:
    """JupyterHub configured by `build_config` from ``Settings`` (as `dandihub up` does, with
    settings `dandihub up` has no flags for), its output in DATA_DIR/hub.log."""

    def __init__(self, data_dir: Path, archive_url: str, **settings):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.settings = Settings(
            archive_url=archive_url, data_dir=str(self.data_dir), port=self.port,
            hub_port=free_port(), proxy_api_port=free_port(), proxy_command=[find_proxy()],
            **settings,
        )
        self.proc: subprocess.Popen | None = None

    @property
    def log(self) -> str:
        return (self.data_dir / "hub.log").read_text(errors="replace")

    def start(self, timeout: float = 90) -> LocalHub:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.to_file(self.data_dir / "settings.json")
        # dandilab.activity is enabled by dandilab's installed server config; this also
        # enables it when the repository's extension is not (re)installed yet.
        extra = self.data_dir / "jupyter-config" / "jupyter_server_config.d"
        extra.mkdir(parents=True, exist_ok=True)
        source = REPO / "extension" / "jupyter-config" / "server-config" / "dandilab-activity.json"
        (extra / source.name).write_text(source.read_text())
        (self.data_dir / "jupyterhub_config.py").write_text(
            "from dandihub.config import load_config\n"
            f"c.merge(load_config({str(self.data_dir / 'settings.json')!r}))\n"
            f"c.Spawner.environment['JUPYTER_CONFIG_PATH'] = {str(extra.parent)!r}\n"
        )
        env = {**os.environ, "JUPYTERHUB_CRYPT_KEY": crypt_key(self.data_dir)}
        with open(self.data_dir / "hub.log", "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                cwd=self.data_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited ({self.proc.returncode}):\n{self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}hub/api/", timeout=2).status_code == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterHub did not answer in {timeout} s:\n{self.log}")

    def stop(self, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SlowStream(BaseHTTPRequestHandler):
    """A download that takes minutes: 16 KiB every 0.2 s."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        deadline = time.monotonic() + 180
        with contextlib.suppress(OSError):
            while time.monotonic() < deadline:
                self.wfile.write(b"\0" * 16384)
                self.wfile.flush()
                time.sleep(0.2)

    def log_message(self, *args):
        pass


DOWNLOAD = """import sys, urllib.request
with urllib.request.urlopen(sys.argv[1]) as r, open(sys.argv[2], "wb") as f:
    while chunk := r.read(16384):
        f.write(chunk)
        f.flush()
"""


@pytest.fixture(scope="module")
def culling_hub(tmp_path_factory):
    from dandihub.localarchive.accounts import ensure_accounts
    from dandihub.localarchive.server import LocalArchive

    folder = tmp_path_factory.mktemp("cull-archive")
    keys = ensure_accounts(folder, [
        {"username": u, "first_name": u.title(), "last_name": "User", "status": "APPROVED"}
        for u in USERS
    ])
    with LocalArchive(folder) as archive, LocalHub(
        tmp_path_factory.mktemp("cull-hub"), archive.api_url,
        cull_timeout=TIMEOUT, cull_every=EVERY, activity_interval=INTERVAL,
        usage_service=False,
        shared_account_users=0,  # three people on one system account: a test of culling only
    ) as hub:
        hub.keys = keys
        yield hub


def _xsrf(client: httpx.Client, user: str) -> dict:
    return {"X-XSRFToken": client.cookies.get("_xsrf", path=f"/user/{user}/") or ""}


def _ws(client: httpx.Client, path: str) -> websocket.WebSocket:
    url = str(client.base_url).replace("http", "ws", 1) + path
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    return websocket.create_connection(url, header=[f"Cookie: {cookie}"], timeout=30)


def start_cell(client: httpx.Client, user: str, code: str) -> str:
    """Run ``code`` in a new kernel and leave once it is busy (as a closed browser tab)."""
    answer = client.post(f"user/{user}/api/kernels", json={"name": "python3"},
                         headers=_xsrf(client, user))
    answer.raise_for_status()
    kernel_id = answer.json()["id"]
    if not code:
        return kernel_id
    ws = _ws(client, f"user/{user}/api/kernels/{kernel_id}/channels")
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": user,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if (msg.get("parent_header", {}).get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "busy"):
                return kernel_id
        raise TimeoutError(f"the cell never started in {user}'s kernel")
    finally:
        ws.close()


def terminal(client: httpx.Client, user: str, typed: str = "", name: str | None = None) -> str:
    """Open (or reopen) a terminal, type ``typed`` into it, close the connection."""
    if name is None:
        answer = client.post(f"user/{user}/api/terminals", headers=_xsrf(client, user))
        answer.raise_for_status()
        name = answer.json()["name"]
    ws = _ws(client, f"user/{user}/terminals/websocket/{name}")
    try:
        if typed:
            ws.send(json.dumps(["stdin", typed]))
        time.sleep(1)
    finally:
        ws.close()
    return name


def servers(client: httpx.Client, user: str) -> dict:
    answer = client.get(f"hub/api/users/{user}")
    answer.raise_for_status()
    return answer.json()["servers"]


def server_process(user: str, hub_pid: int | None = None) -> psutil.Process | None:
    """The user's server (of the hub ``hub_pid``: other hubs may run on the machine)."""
    for p in psutil.process_iter(["cmdline", "environ"]):
        with contextlib.suppress(psutil.Error, TypeError):
            if ("jupyterhub.singleuser" in " ".join(p.info["cmdline"] or [])
                    and (p.info["environ"] or {}).get("JUPYTERHUB_USER") == user
                    and (hub_pid is None or hub_pid in {a.pid for a in p.parents()})):
                return p
    return None


def wait_for(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout:.0f} s")


@pytest.mark.hub
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_running_work_is_kept_and_idle_servers_are_culled(culling_hub):
    hub = culling_hub
    stream = ThreadingHTTPServer(("127.0.0.1", 0), SlowStream)
    stream.daemon_threads = True
    threading.Thread(target=stream.serve_forever, daemon=True).start()
    try:
        clients = {}
        for user in USERS:  # ask for all three servers first: they start together
            clients[user], answer = login(hub.url, hub.keys[user])
            assert answer.status_code == 302, answer.text
            clients[user].get(f"hub/spawn/{user}")

        start_server(clients["busy"], "busy")
        kernel = start_cell(clients["busy"], "busy", "import time; time.sleep(60)")
        work_started = time.monotonic()

        start_server(clients["mover"], "mover")
        home = Path(hub.settings.data_dir) / "homes" / "mover"
        (home / "download.py").write_text(DOWNLOAD)
        url = f"http://127.0.0.1:{stream.server_address[1]}/dandiset.nwb"
        shell = terminal(clients["mover"], "mover", f"{sys.executable} download.py {url} data.bin\r")

        start_server(clients["idle"], "idle")
        start_cell(clients["idle"], "idle", "")  # an idle kernel
        terminal(clients["idle"], "idle")  # a terminal with only its shell

        # The servers run in their profile's cgroup (or with the fallback limits, logged).
        for user in USERS:
            assert f"Server of {user} (profile tiny): memory 2 GiB, CPU 2" in hub.log
            if f"Server of {user} (profile tiny): memory 2 GiB, CPU 2 enforced by cgroup" in hub.log:
                server = server_process(user, hub.proc.pid)
                cgroups = Path(f"/proc/{server.pid}/cgroup").read_text()
                assert f"/dandihub/hub-{hub.proc.pid}/{user}" in cgroups

        # idle: culled after the timeout
        culled = wait_for(lambda: not servers(clients["idle"], "idle"), TIMEOUT + 2 * EVERY + 20,
                          "the idle server was not culled")
        print(f"idle culled {culled - work_started:.0f} s after the busy cell started")
        assert "Culling server idle" in hub.log

        # busy and mover: still there two timeouts after their work began, with fresh activity
        wait_for(lambda: time.monotonic() - work_started > 2 * TIMEOUT, 3 * TIMEOUT, "")
        for user in ("busy", "mover"):
            assert servers(clients[user], user), f"{user}'s work was culled:\n{hub.log[-5000:]}"
            assert f"Culling server {user}" not in hub.log
        download = home / "data.bin"
        assert download.stat().st_size > 100_000  # the transfer ran all along
        assert time.monotonic() - work_started < 55, "the cell stopped before the check"

        # work over: interrupt the cell, Ctrl-C the download; then both are culled
        clients["busy"].post(f"user/busy/api/kernels/{kernel}/interrupt",
                             headers=_xsrf(clients["busy"], "busy")).raise_for_status()
        terminal(clients["mover"], "mover", "\x03", name=shell)
        stopped = time.monotonic()
        size = download.stat().st_size
        time.sleep(2)
        assert download.stat().st_size == size, "Ctrl-C did not stop the download"
        for user in ("busy", "mover"):
            wait_for(lambda u=user: not servers(clients[u], u), TIMEOUT + EVERY + INTERVAL + 25,
                     f"{user}'s server was not culled after its work ended")
        print(f"busy and mover culled {time.monotonic() - stopped:.0f} s after their work ended")
        for user in USERS:
            assert server_process(user, hub.proc.pid) is None
    finally:
        stream.shutdown()


def _python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], **kwargs)


def _orphan(code: str) -> psutil.Process:
    """A process whose parent has exited (like `nohup job &` from a closed terminal)."""
    out = subprocess.run(["bash", "-c", f'{sys.executable} -c "{code}" >/dev/null 2>&1 & echo $!'],
                         capture_output=True, text=True, check=True, timeout=30)
    return psutil.Process(int(out.stdout))


WRITER = "import time\nwhile True:\n    open('/dev/null', 'w').write('x' * 65536)\n    time.sleep(0.1)"
BURNER = "while True: pass"


@pytest.mark.timeout(60)
def test_what_counts_as_running_work(monkeypatch):
    """The rule of dandilab.activity on real processes; this test process plays the server."""
    from types import SimpleNamespace

    from dandilab.activity import ActivityReporter

    prefix = f"/user/rule-{uuid.uuid4().hex[:6]}/"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", prefix)
    procs, shell = [], None
    try:
        # a terminal: its shell runs an idle `sleep` and a writer (a transfer)
        shell = subprocess.Popen(
            ["bash", "-c", f"sleep 300 & {sys.executable} -c \"{WRITER}\" & wait"],
            stderr=subprocess.DEVNULL,
        )
        # kernels: one busy in a cell (its process idle), one computing in a thread while idle
        busy_kernel, computing_kernel, idle_kernel = (
            _python("import time; time.sleep(300)"), _python(BURNER), _python("import time; time.sleep(300)"))
        # a job detached from its terminal (nohup ... &): only the environment links it
        detached = _orphan(WRITER)
        detached_idle = _orphan("import time; time.sleep(300)")
        # the server's own helper (e.g. a language server) working: not user work
        helper = _python(WRITER)
        procs = [shell, busy_kernel, computing_kernel, idle_kernel, detached, detached_idle, helper]
        kernels = {
            "busy-kernel": SimpleNamespace(execution_state="busy",
                                           provisioner=SimpleNamespace(pid=busy_kernel.pid)),
            "computing-kernel": SimpleNamespace(execution_state="idle",
                                                provisioner=SimpleNamespace(pid=computing_kernel.pid)),
            "idle-kernel": SimpleNamespace(execution_state="idle",
                                           provisioner=SimpleNamespace(pid=idle_kernel.pid)),
        }
        serverapp = SimpleNamespace(
            kernel_manager=SimpleNamespace(list_kernel_ids=lambda: list(kernels),
                                           get_kernel=kernels.__getitem__),
            web_app=SimpleNamespace(settings={"terminal_manager": SimpleNamespace(
                terminals={"1": SimpleNamespace(ptyproc=SimpleNamespace(pid=shell.pid))})}),
        )
        reporter = ActivityReporter(serverapp=serverapp)
        time.sleep(1)
        reporter.find_work()  # baseline
        # Let the computing kernel use more than the rule's 1 s of CPU since the baseline;
        # on a loaded machine that takes longer than 2 s of wall time (bounded).
        burner = psutil.Process(computing_kernel.pid)
        start_cpu = sum(burner.cpu_times()[:2])
        deadline = time.monotonic() + 60
        time.sleep(2)
        while sum(burner.cpu_times()[:2]) - start_cpu < 1.5 and time.monotonic() < deadline:
            time.sleep(0.5)
        reasons = reporter.find_work()
        text = "\n".join(reasons)
        writer = next(c for c in psutil.Process(shell.pid).children() if "python" in c.name())
        assert "kernel busy-ker is busy" in text
        assert "kernel computin computes" in text
        assert "idle-ker" not in text
        assert f"process {writer.pid} " in text
        assert f"process {detached.pid} " in text
        working = {int(r.split()[1]) for r in reasons if r.startswith("process ")}
        assert working == {writer.pid, detached.pid}, reasons  # no shell, sleep, helper
        kernels["busy-kernel"].execution_state = "idle"  # the cell finished
        computing_kernel.kill()
        for p in psutil.Process(shell.pid).children():
            p.kill()
        detached.kill()
        time.sleep(1)
        reporter.find_work()
        assert reporter.find_work() == []  # everything left is idle
    finally:
        with contextlib.suppress(psutil.NoSuchProcess, AttributeError):
            procs += psutil.Process(shell.pid).children(recursive=True)
        for p in procs:
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                p.kill()
                p.wait(10)
