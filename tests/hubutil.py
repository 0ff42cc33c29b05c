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
    """

    def __init__(self, data_dir: Path, *up_args: str):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [
            sys.executable, "-m", "dandihub.cli", "up", *up_args,
            "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]
        self.proc = None

    @property
    def log(self) -> str:
        return (self.data_dir / "hub.log").read_text(errors="replace")

    def start(self, timeout: float = 120) -> RunningHub:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "hub.log", "ab") as out:  # the child keeps its own copy
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

    def stop(self, timeout: float = 60) -> None:
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


def login(hub_url: str, api_key: str) -> tuple[httpx.Client, httpx.Response]:
    """Fill in and post the hub's login form; returns the cookie-carrying client and answer."""
    client = httpx.Client(base_url=hub_url, timeout=30, follow_redirects=False)
    page = client.get("hub/login")
    page.raise_for_status()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    action = re.search(r'<form action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    answer = client.post(action, data={"_xsrf": xsrf, "api_key": api_key})
    return client, answer


def start_server(client: httpx.Client, username: str, timeout: float = 120) -> httpx.Response:
    """Ask for the user's server as the home page's button does; wait until its lab answers.

    Following redirects runs the hub's OAuth handshake with the server, as a browser does,
    so the client then holds the server's cookie too.
    """
    client.get(f"hub/spawn/{username}")
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
