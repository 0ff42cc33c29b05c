"""The hub restarts while users' servers run: the servers survive and answer afterwards.

Embedded mode stops servers with the hub by design (JupyterHub's ``cleanup_servers``: a
laptop's Ctrl-C leaves nothing behind). Deployments keep them: on Kubernetes
(``spawner: kubernetes``) and with ``keep_servers_on_restart: true`` build_config sets
``cleanup_servers = cleanup_proxy = False`` and the restarted hub finds the servers in its
database (sqlite here) and polls them. This test runs that at the JupyterHub level: the
real hub, proxy, database and APIKey sign-in; JupyterHub gets SIGTERM (as a restarted
hub pod does) and is started again on the same ports and data folder while rita's
JupyterLab keeps running.

Stopping the `dandihub up` wrapper itself (Ctrl-C) is a different thing: it kills every
descendant of the hub by design (cli.stop_process_group: nothing outlives `dandihub up`),
so servers do not survive that, whatever keep_servers_on_restart says.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil
import pytest
from dandihub.cli import free_port

from .hubutil import OAuthArchive, RunningHub, login, run_in_server, start_server, stop_server

pytestmark = [pytest.mark.hub, pytest.mark.timeout(400)]


def server_pid(username: str, hub_port: int) -> int:
    """The single-user server of ``username`` that talks to the hub on ``hub_port``."""
    for p in psutil.process_iter(["cmdline", "environ"]):
        env = p.info["environ"] or {}
        if "jupyterhub.singleuser" in " ".join(p.info["cmdline"] or []) \
                and env.get("JUPYTERHUB_USER") == username \
                and f":{hub_port}/" in env.get("JUPYTERHUB_API_URL", ""):
            return p.pid
    raise LookupError(username)


@pytest.fixture()
def archive(tmp_path):
    """An archive of one approved account, a name no other test's server uses."""
    running = OAuthArchive(tmp_path / "archive", {"rita": "APPROVED"}, "http://127.0.0.1:1/")
    running.running.start()
    yield running
    running.running.stop()


def test_servers_survive_a_hub_restart(archive, tmp_path):
    settings = {"keep_servers_on_restart": True, "hub_port": free_port(),
                "proxy_api_port": free_port()}
    first = RunningHub(tmp_path / "hub", "--archive", archive.api_url, settings=settings)
    pid = None
    try:
        with first:
            client, answer = login(first.url, archive.keys["rita"])
            assert answer.status_code == 302
            start_server(client, "rita")
            pid = server_pid("rita", settings["hub_port"])
            assert psutil.Process(pid).environ()["DANDI_API_KEY"] == archive.keys["rita"]
            run_in_server(client, "rita", "x = 1")
            # JupyterHub itself gets SIGTERM, as when Kubernetes restarts the hub's pod
            jupyterhub = psutil.Process(first.proc.pid).children()[0]
            jupyterhub.terminate()
            jupyterhub.wait(30)
        # the hub is gone; rita's server is not
        assert psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie", \
            first.log[-3000:]

        second = RunningHub(tmp_path / "hub", "--archive", archive.api_url, settings=settings)
        second.port, second.url = first.port, first.url
        second.args[second.args.index("--port") + 1] = str(first.port)
        with second:
            assert server_pid("rita", settings["hub_port"]) == pid  # the same process, not a new spawn
            # the old cookie still signs in (same cookie secret, same database)
            lab = client.get("user/rita/lab", follow_redirects=True)
            assert lab.status_code == 200 and "JupyterLab" in lab.text
            assert "restart-ok" in run_in_server(client, "rita", "print('restart-ok')")
            info = client.get("user/rita/dandi/api/info")
            assert info.status_code == 200 and info.json()["username"] == "rita", info.text
            stop_server(client, "rita")
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    finally:
        if pid and psutil.pid_exists(pid):  # the server this test started, by its id
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
