"""Run `dandihub up` as a user would, and sign in to it as a browser would (over HTTP)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from dandihub.cli import free_port


class RunningHub:
    """`dandihub up ARGS` in a subprocess, its output in DATA_DIR/hub.log.

    ``RunningHub(dir, "--archive", url)`` or ``RunningHub(dir, "--demo")``.
    ``settings``: Settings fields over `dandihub up`'s own (``--settings FILE``), e.g.
    ``{"authenticator": "dandi-oauth", "archives": [...]}``; may be set until `start`.
    """

    def __init__(
        self, data_dir: Path, *up_args: str, settings: dict | None = None,
        start_timeout: float = 120,
    ):
        self.data_dir = Path(data_dir)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.callback_url = f"{self.url}hub/oauth_callback"  # where OAuth providers send people
        self.args = [
            sys.executable, "-m", "dandihub.cli", "up", *up_args,
            "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]
        self.settings = settings
        self.proc = None

    @property
    def log(self) -> str:
        return (self.data_dir / "hub.log").read_text(errors="replace")

    def start(self) -> RunningHub:
        timeout = self.start_timeout
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings is not None and "--settings" not in self.args:
            path = self.data_dir / "settings-override.json"
            path.write_text(json.dumps(self.settings, indent=1))
            self.args += ["--settings", str(path)]
        log = os.open(self.data_dir / "hub.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(log, "wb") as out:  # the child keeps its own copy; private, as a terminal
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, env=os.environ
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dandihub up exited ({self.proc.returncode}):\n{self.log}")
            if "DANDI Hub is running" in self.log:
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dandihub up not ready in {timeout} s:\n{self.log}")

    def stop(self, timeout: float = 120) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(2)  # Ctrl-C, as a person would
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def shared_python() -> str:
    """An interpreter of this environment that every account may run.

    Ours may live where only root can enter (a Python built under /root, as on the CI
    machines): then a venv of the system's Python of the same version, which reads this
    environment's packages (site.addsitedir, so editable installs work too), in /var/tmp.
    """
    import hashlib
    import shutil
    import stat

    def open_to_all(path: Path) -> bool:
        return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())

    if open_to_all(Path(sys.executable).resolve().parent) and open_to_all(Path(sys.prefix)):
        return sys.executable
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin") or ""
    if not system:
        return sys.executable  # nothing better: the isolation check then says why
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    venv = Path("/var/tmp") / f"dandihub-userenv-{hashlib.sha256(site.encode()).hexdigest()[:10]}"
    if not (venv / "bin" / "python").exists():
        subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    own_site = venv / "lib" / version / "site-packages"
    (own_site / "dandihub-test-env.pth").write_text(f"import site; site.addsitedir({site!r})\n")
    for shared in ("etc/jupyter", "share/jupyter"):  # server extensions, labextensions, kernels
        link = venv / shared
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(sys.prefix) / shared)
    return str(venv / "bin" / "python")


def login(hub_url: str, api_key: str) -> tuple[httpx.Client, httpx.Response]:
    """Fill in and post the hub's login form; returns the cookie-carrying client and answer."""
    client = httpx.Client(base_url=hub_url, timeout=30, follow_redirects=False)
    page = client.get("hub/login")
    page.raise_for_status()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    action = re.search(r'<form action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    answer = client.post(action, data={"_xsrf": xsrf, "api_key": api_key})
    return client, answer


def login_error(response: httpx.Response) -> str:
    """The message the API-key login form shows above its field."""
    import html

    text = html.unescape(response.text)
    start = text.index('class="login_error"')
    return text[text.index(">", start) + 1 : text.index("</p>", start)].strip()


def start_server(
    client: httpx.Client, username: str, timeout: float = 120, profile: str = "tiny"
) -> httpx.Response:
    """Ask for the user's server as the home page's button does; wait until its lab answers.

    ``profile`` answers the profile form, which machines with room for more than one
    profile show (the query is ignored when there is nothing to choose). Following
    redirects runs the hub's OAuth handshake with the server, as a browser does, so the
    client then holds the server's cookie too.
    """
    client.get(f"hub/spawn/{username}", params={"profile": profile})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lab = client.get(f"user/{username}/lab", follow_redirects=True)
        if lab.status_code == 200 and lab.url.path.endswith(f"/user/{username}/lab"):
            return lab
        time.sleep(1)
    raise TimeoutError(f"{username}'s server did not answer in {timeout} s (last {lab.status_code})")


def run_in_server(client: httpx.Client, username: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` in a new kernel of the user's server (the notebook protocol); its stdout.

    Raises with the traceback when the code fails.
    """
    import websocket

    prefix = f"user/{username}/api"
    xsrf = client.cookies.get("_xsrf", path=f"/user/{username}/") or ""
    headers = {"X-XSRFToken": xsrf}
    kernel = client.post(f"{prefix}/kernels", json={"name": "python3"}, headers=headers)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    ws_url = str(client.base_url).replace("http", "ws", 1) + f"{prefix}/kernels/{kernel_id}/channels"
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    ws = websocket.create_connection(ws_url, header=[f"Cookie: {cookie}"], timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": username,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        out, error = [], None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        else:
            raise TimeoutError(f"code did not finish in {timeout} s in {username}'s kernel")
    finally:
        ws.close()
        client.delete(f"{prefix}/kernels/{kernel_id}", headers=headers)
    if error:
        raise RuntimeError(f"code failed in {username}'s kernel:\n{error}")
    return "".join(out)


class OAuthArchive:
    """A local archive (not started) with ``users`` ({username: status}, each with a random
    API key in ``.keys``) and the hub as its OAuth client; `down` and `up` stop and restart it
    on the same port (to take it down in the middle of a sign-in)."""

    def __init__(self, folder: Path, users: dict[str, str], callback_url: str,
                 client_id: str = "dandihub"):
        import secrets

        from dandihub.localarchive.server import LocalArchive

        self.keys = {name: secrets.token_hex(20) for name in users}
        self.client_secret = secrets.token_urlsafe(24)
        folder.mkdir(parents=True)
        (folder / "archive.json").write_text(json.dumps({
            "name": folder.name,
            "users": [{"username": n, "first_name": n.title(), "last_name": "Example",
                       "email": f"{n}@example.org", "status": s, "api_key": self.keys[n]}
                      for n, s in users.items()],
            "oauth_clients": [{"client_id": client_id, "client_secret": self.client_secret,
                               "redirect_uris": [callback_url], "name": "DANDI Hub"}],
        }))
        self.running = LocalArchive(folder, port=free_port())

    @property
    def api_url(self) -> str:
        return self.running.api_url

    def down(self) -> None:
        self.running.stop()
        self.is_down = True

    def up(self) -> None:
        if getattr(self, "is_down", False):
            self.running.start()
            self.is_down = False

    @property
    def provider(self):
        return self.running._server.config.app.state.oauth

    def form(self, username: str) -> dict:
        return {"username": username, "api_key": self.keys[username], "action": "allow"}


# --- OAuth sign-in, one redirect at a time (as a browser follows them) ---------------


def oauth_start(client: httpx.Client, archive: str | None = None) -> str:
    """Press the login page's sign-in button; returns the provider's authorize URL."""
    params = {"archive": archive} if archive else {}
    answer = client.get("hub/oauth_login", params=params)
    assert answer.status_code == 302, f"{answer.status_code}: {answer.text[:500]}"
    return answer.headers["location"]


def oauth_approve(client: httpx.Client, authorize_url: str, form: dict) -> str:
    """Sign in on the provider's page and approve; returns where it sends the browser back
    (the hub's callback with code and state)."""
    page = client.get(authorize_url)
    assert page.status_code == 200, f"{page.status_code}: {page.text[:500]}"
    answer = client.post(authorize_url, data=form)
    assert answer.status_code == 302, f"{answer.status_code}: {answer.text[:500]}"
    return answer.headers["location"]


def oauth_login(hub_url: str, form: dict, archive: str | None = None):
    """The whole dance: returns (client, the hub's answer to the callback, callback URL)."""
    client = httpx.Client(base_url=hub_url, timeout=30, follow_redirects=False)
    callback = oauth_approve(client, oauth_start(client, archive), form)
    return client, client.get(callback), callback


def query_param(url: str, name: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)[name][0]


def error_page(response: httpx.Response) -> tuple[str, str]:
    """(title, message) of a JupyterHub error page."""
    import html

    def text(fragment: str) -> str:
        return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())

    page = response.text
    title = re.search(r"<h1>(.*?)</h1>", page, re.DOTALL).group(1)
    message = re.search(r"<p>(.*?)</p>", page[page.index("</h1>"):], re.DOTALL).group(1)
    return text(title), text(message)


def signed_in_user(client: httpx.Client) -> dict | None:
    """The hub's model of whoever the client's cookie signs in, or None."""
    answer = client.get("hub/api/user")
    return answer.json() if answer.status_code == 200 else None


def server_environment(username: str) -> dict:
    """The environment of the running single-user server of ``username``."""
    import psutil

    for p in psutil.process_iter(["cmdline", "environ"]):
        env = p.info["environ"] or {}
        if "jupyterhub.singleuser" in " ".join(p.info["cmdline"] or []) \
                and env.get("JUPYTERHUB_USER") == username:
            return env
    raise LookupError(f"no single-user server of {username} is running")


def stop_server(client: httpx.Client, username: str, timeout: float = 60) -> None:
    """Stop the user's server (REST API with the user's cookie, as the home page's button)."""
    xsrf = client.cookies.get("_xsrf", path="/hub/") or ""
    client.delete(f"hub/api/users/{username}/server", headers={"X-XSRFToken": xsrf})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        user = signed_in_user(client) or {}
        if not (user.get("servers") or {}).get(""):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{username}'s server did not stop in {timeout} s")
