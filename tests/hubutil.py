"""Run `dandihub up` as a user would, and sign in to it as a browser would (over HTTP)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dandihub.cli import free_port


class RunningHub:
    """`dandihub up --archive URL` in a subprocess, its output in DATA_DIR/hub.log."""

    def __init__(self, data_dir: Path, archive_url: str, extra_args=()):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [
            sys.executable, "-m", "dandihub.cli", "up", "--archive", archive_url,
            "--port", str(self.port), "--data-dir", str(self.data_dir), *extra_args,
        ]
        self.proc = None

    @property
    def log(self) -> str:
        return (self.data_dir / "hub.log").read_text(errors="replace")

    def start(self, timeout: float = 120) -> RunningHub:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.data_dir / "hub.log", "ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
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
    """Ask for the user's server as the home page's button does; wait until its lab answers."""
    client.get(f"hub/spawn/{username}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lab = client.get(f"user/{username}/lab")
        if lab.status_code == 200:
            return lab
        time.sleep(1)
    raise TimeoutError(f"{username}'s server did not answer in {timeout} s (last {lab.status_code})")
