"""cluster(): a LocalCluster here, Dask Gateway when the hub says so (a real
dask-gateway-server with its local backend, in a subprocess)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dandilab.cluster import cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_cluster_is_sized_to_the_machine(monkeypatch):
    monkeypatch.delenv("DASK_GATEWAY__ADDRESS", raising=False)
    from dask.system import CPU_COUNT

    with cluster() as client:
        assert len(client.scheduler_info()["workers"]) == CPU_COUNT
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        local = client.cluster
    assert local.status.name == "closed"


@pytest.fixture()
def gateway(tmp_path):
    api, proxy = _free_port(), _free_port()
    bin_dir = Path(sys.executable).parent
    config = tmp_path / "dask_gateway_config.py"
    config.write_text(f"""
c.DaskGateway.address = "127.0.0.1:{api}"
c.Proxy.address = "127.0.0.1:{proxy}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.LocalBackend.cluster_start_timeout = 60
c.ClusterConfig.scheduler_cmd = ["{bin_dir / 'dask'}", "scheduler"]  # no dask-scheduler any more
c.ClusterConfig.worker_cmd = ["{bin_dir / 'dask'}", "worker"]
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "1 G"
c.ClusterConfig.idle_timeout = 120
""")
    log = open(tmp_path / "gateway.log", "w")  # noqa: SIM115 - the server writes it until the fixture ends
    server = subprocess.Popen([str(bin_dir / "dask-gateway-server"), "-f", str(config)],
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", api), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("dask-gateway-server did not start:\n"
                            + (tmp_path / "gateway.log").read_text())
            time.sleep(0.2)
    try:
        yield {"address": f"http://127.0.0.1:{api}", "proxy": f"gateway://127.0.0.1:{proxy}"}
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_gateway_cluster_when_the_hub_provides_one(gateway, monkeypatch):
    import dask

    monkeypatch.setenv("DASK_GATEWAY__ADDRESS", gateway["address"])
    monkeypatch.setenv("DASK_GATEWAY__PROXY_ADDRESS", gateway["proxy"])
    monkeypatch.setenv("DASK_GATEWAY__AUTH__TYPE", "basic")
    dask.config.refresh()
    try:
        client = cluster(workers=1)
        try:
            assert type(client.cluster).__name__ == "GatewayCluster"
            assert client.submit(sum, [1, 2, 3]).result(timeout=90) == 6
        finally:
            client.close()
        from dask_gateway import Gateway

        with Gateway() as gw:
            deadline = time.monotonic() + 30
            while gw.list_clusters() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert gw.list_clusters() == []
    finally:
        dask.config.refresh()
