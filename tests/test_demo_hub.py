"""`dandihub up --demo`, the command behind `make demo`, as a new user meets it: sign in
with the demo key it prints, get JupyterLab, and list and stream the demo Dandisets from
inside the server with the official `dandi` client, DandiAPIClient, remfile and pynwb."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from .hubutil import RunningHub, login, run_in_server, start_server
from .paths import DEMO_HUB_DATA

pytestmark = [pytest.mark.hub, pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def demo_hub():
    # The first run builds the full demo (minutes); later runs reuse .cache/demo-hub.
    with RunningHub(DEMO_HUB_DATA, "--demo", start_timeout=1200) as running:
        yield running


def test_demo_prints_the_url_and_the_demo_key(demo_hub):
    accounts = json.loads((DEMO_HUB_DATA / "demo-archive" / "archive.json").read_text())
    demo_key = next(u["api_key"] for u in accounts["users"] if u["username"] == "demo")
    assert f"Open:     {demo_hub.url}" in demo_hub.log
    assert demo_key in demo_hub.log  # the demo account's key, printed to sign in with


def test_new_user_lists_and_streams_the_demo_dandisets(demo_hub):
    key = re.search(r"'demo'.*\n\s+([0-9a-f]{40})", demo_hub.log).group(1)
    client, answer = login(demo_hub.url, key)
    assert answer.status_code == 302
    start_server(client, "demo", timeout=180)
    out = run_in_server(client, "demo", textwrap.dedent("""
        import os, subprocess
        from dandi.dandiapi import DandiAPIClient

        api = DandiAPIClient(api_url=os.environ["DANDI_API_URL"])
        print("DANDISETS", sorted(d.identifier for d in api.get_dandisets()))
        ls = subprocess.run(
            ["dandi", "ls", "-r", "-f", "json_pp", os.environ["DANDI_API_URL"] + "/dandisets/900001/"],
            capture_output=True, text=True, timeout=120)
        print("LS", ls.returncode, ls.stdout[-4000:], ls.stderr[-2000:])

        import h5py, remfile
        from pynwb import NWBHDF5IO
        asset = next(a for a in api.get_dandiset("900001", "draft").get_assets()
                     if a.path.endswith(".nwb"))
        url = asset.get_content_url(regex="s3|/dandiarchive/")
        with h5py.File(remfile.File(url), "r") as f, NWBHDF5IO(file=f, mode="r") as io:
            nwb = io.read()
            es = nwb.acquisition["ElectricalSeries"]
            print("NWB", es.data.shape, es.data[0:3, 0:2].tolist())
    """))
    dandisets = re.search(r"DANDISETS (\[.*\])", out).group(1)
    for generated in ("900001", "900002", "900003", "900004"):
        assert generated in dandisets
    assert "LS 0" in out, out
    assert ".nwb" in out.split("LS", 1)[1]
    shape = re.search(r"NWB \((\d+), (\d+)\)", out)
    assert shape and int(shape.group(2)) == 384, out


def test_ctrl_c_stops_everything_it_started(tmp_path):
    import psutil

    hub = RunningHub(tmp_path, "--demo", "--demo-profile", "small", start_timeout=300).start()
    try:
        client, _ = login(hub.url, re.search(r"'demo'.*\n\s+([0-9a-f]{40})", hub.log).group(1))
        start_server(client, "demo")
        started = psutil.Process(hub.proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        for part in ("jupyterhub", "configurable-http-proxy", "s3rver", "jupyterhub.singleuser"):
            assert part in names, f"{part} not among the processes `dandihub up` started"
    finally:
        hub.stop()
    assert hub.proc.returncode == 0
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"
