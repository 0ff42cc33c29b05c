"""Faults: a flaky network between the user and the archive, and the archive going down.

Streaming and downloads: the archive API and its S3 store each sit behind a NetProxy
(dandihub.localarchive.netproxy) that fails 5% of requests (500, 503, a reset halfway
through the body, or a stall past the client's timeout). Every read either returns the
source's bytes or raises a clear error; none hangs; the count of wrong bytes is zero.
The counts are printed (``pytest -s``) and written to artifacts/faults.json.

Sign-in: the archive down -> a refusal page (503, no traceback, nobody signed in); back
up -> sign-in works with the same hub process. Hub restart: tests/test_hub_restart.py.
Culling (busy servers kept, idle ones stopped): tests/test_culling.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest
import uvicorn
from dandihub.localarchive.app import create_app
from dandihub.localarchive.netproxy import NetProxy
from dandilab import remote
from dandilab.archive import Archive
from dandilab.arrays import to_dask
from dandilab.stream import open_nwb

from .hubutil import OAuthArchive, RunningHub, error_page, login, signed_in_user
from .localarchive_fixtures import SYNTHETIC, SYNTHETIC_ASSETS

pytestmark = [pytest.mark.timeout(600)]

FAULTS = {"500": 0.0125, "503": 0.0125, "reset": 0.0125, "stall": 0.0125}  # 5% in all
CLIENT_TIMEOUT = 1.0  # the stream's read timeout here; stalls last STALL
STALL = 3.0
DOWNLOADS = 16
ROUNDS = 16
NWB = SYNTHETIC_ASSETS[0]


@dataclass
class FlakyArchive:
    """The local archive's store served again with its API and S3 behind fault proxies."""

    api: NetProxy
    s3: NetProxy
    api_url: str
    counts: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def flaky(local_archive):
    s3 = NetProxy(local_archive.s3_endpoint_url, rtt=0, bandwidth=None, stall=STALL,
                  seed=9).start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    api = NetProxy(f"http://127.0.0.1:{sock.getsockname()[1]}", rtt=0, bandwidth=None,
                   stall=STALL, seed=10).start()
    app = create_app(local_archive.store, f"{api.url}/api", f"{s3.url}/{local_archive.bucket}")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield FlakyArchive(api, s3, f"{api.url}/api")
    server.should_exit = True
    thread.join(10)
    api.stop()
    s3.stop()


@pytest.fixture(autouse=True)
def _short_timeouts(monkeypatch, tmp_path):
    monkeypatch.setattr(remote, "TIMEOUT", CLIENT_TIMEOUT)
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cache"))


def expected_series(local_archive_dir):
    with h5py.File(local_archive_dir / "blobs" / NWB.blob) as f:
        return f["acquisition"][next(iter(f["acquisition"]))]["data"][:]


def report(name: str, counts: dict, flaky: FlakyArchive, artifacts) -> None:
    counts = {**counts, "faults_injected": flaky.api.stats["faults"] + flaky.s3.stats["faults"],
              "api_requests": flaky.api.stats["requests"],
              "api_faults": flaky.api.stats["faults"],
              "s3_requests": flaky.s3.stats["requests"], "s3_faults": flaky.s3.stats["faults"]}
    print(f"\n{name}: {json.dumps(counts)}")
    path = artifacts / "faults.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, name: counts}, indent=1))


def read_round(flaky: FlakyArchive, expected, i: int) -> bool:
    """open_nwb through the API and S3, a full read, a slice and a to_dask sum: exact?"""
    archive = Archive(flaky.api_url)
    asset = archive.dandiset(SYNTHETIC, "draft").asset(NWB.path)
    with open_nwb(asset, cache=False) as nwb:
        data = next(iter(nwb.acquisition.values())).data
        full = data[:]
        part = data[123 + i : 1456 + i, 1:3]
        total = int(to_dask(data, chunks=(500, 4)).sum(dtype="int64").compute(
            scheduler="threads"))
    return (np.array_equal(full, expected)
            and np.array_equal(part, expected[123 + i : 1456 + i, 1:3])
            and total == int(expected.sum(dtype="int64")))


def test_streaming_through_faults_is_exact_or_fails_clearly(flaky, local_archive_dir, artifacts):
    """open_nwb (through the flaky API and S3), full reads, slices and to_dask sums."""
    expected = expected_series(local_archive_dir)
    flaky.api.reset_stats(), flaky.s3.reset_stats()
    assert read_round(flaky, expected, 0)  # warm (dandi's client asks /info/ once)
    flaky.api.reset_stats(), flaky.s3.reset_stats()
    assert read_round(flaky, expected, 0)  # without faults: how many requests a round takes
    clean = flaky.api.reset_stats()["requests"] + flaky.s3.reset_stats()["requests"]
    flaky.api.faults = flaky.s3.faults = FAULTS
    counts = {"rounds": ROUNDS, "exact": 0, "clear_errors": 0, "wrong_bytes": 0, "errors": []}
    started = time.monotonic()
    try:
        for i in range(ROUNDS):
            t = time.monotonic()
            try:
                counts["exact" if read_round(flaky, expected, i) else "wrong_bytes"] += 1
            except Exception as e:  # noqa: BLE001 - any error counts, if it is clear
                text = f"{type(e).__name__}: {e}"
                assert len(text) > 20 and "Traceback" not in text, text
                counts["clear_errors"] += 1
                counts["errors"].append(text[:200])
            assert time.monotonic() - t < 120, "a round hung"
    finally:
        flaky.api.faults = flaky.s3.faults = {}
    counts["seconds"] = round(time.monotonic() - started, 1)
    total = flaky.api.stats["requests"] + flaky.s3.stats["requests"]
    counts["extra_requests_retried"] = total - clean * ROUNDS  # retries (approximately)
    report("streaming", counts, flaky, artifacts)
    assert counts["wrong_bytes"] == 0
    assert flaky.api.stats["faults"] + flaky.s3.stats["faults"] > 0, "no fault was injected"
    assert counts["exact"] >= ROUNDS // 2, counts


def test_downloads_through_faults_are_exact_or_fail_clearly(flaky, local_archive_dir, artifacts,
                                                           tmp_path):
    """The panel's downloads (dandilab.server.Downloads: the archive's download URL, a
    redirect to S3, resumable Range reads, size and SHA-256 checks) through the faults."""
    from dandilab.server import ArchiveEndpoint, Downloads

    targets = [(a.asset_id, local_archive_dir / "blobs" / a.blob)
               for a in SYNTHETIC_ASSETS if a.blob and (local_archive_dir / "blobs" / a.blob).exists()]
    assert targets
    flaky.api.reset_stats(), flaky.s3.reset_stats()
    flaky.api.faults = flaky.s3.faults = {**FAULTS}
    counts = {"downloads": 0, "exact": 0, "clear_errors": 0, "wrong_bytes": 0, "errors": []}

    async def run_all():
        downloads = Downloads(tmp_path)
        endpoint = ArchiveEndpoint(flaky.api_url)
        for i in range(DOWNLOADS):
            asset_id, source = targets[i % len(targets)]
            dest = f"dl/{i}/{source.name}"
            try:
                d = await downloads.start(endpoint, {"dandiset": SYNTHETIC, "version": "draft",
                                                     "asset_id": asset_id, "dest": dest})
            except Exception as e:  # noqa: BLE001 - any error counts, if it is clear
                counts["clear_errors"] += 1
                counts["errors"].append(f"{type(e).__name__}: {e}"[:200])
                continue
            deadline = time.monotonic() + 60
            while d.active and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not d.active, f"download {i} hung: {d}"
            counts["downloads"] += 1
            if d.state == "done":
                same = (tmp_path / dest).read_bytes() == source.read_bytes()
                counts["exact" if same else "wrong_bytes"] += 1
            else:
                assert d.error and len(d.error) > 10, d
                counts["clear_errors"] += 1
                counts["errors"].append(d.error[:200])

    try:
        asyncio.run(asyncio.wait_for(run_all(), 300))
    finally:
        flaky.api.faults = flaky.s3.faults = {}
    report("downloads", counts, flaky, artifacts)
    assert counts["wrong_bytes"] == 0
    assert counts["exact"] >= DOWNLOADS // 2, counts


def test_library_downloads_through_faults_are_exact_or_fail_clearly(flaky, local_archive_dir,
                                                                    artifacts, tmp_path,
                                                                    monkeypatch):
    """Asset.download (dandi's download iterators, resume from the .part file, digest check)
    through the same faults: every file it leaves is exact, every failure names the asset."""
    from dandilab import downloads
    from dandilab.archive import ArchiveUnavailable
    from dandilab.downloads import DownloadError

    monkeypatch.setattr("dandi.dandiapi.DOWNLOAD_TIMEOUT", CLIENT_TIMEOUT * 2)
    monkeypatch.setattr(downloads, "ATTEMPTS", 4)
    expected = (local_archive_dir / "blobs" / NWB.blob).read_bytes()
    flaky.api.reset_stats(), flaky.s3.reset_stats()
    counts = {"downloads": 0, "exact": 0, "clear_errors": 0, "wrong_bytes": 0, "errors": []}
    flaky.api.faults = flaky.s3.faults = {**FAULTS}
    try:
        for i in range(DOWNLOADS):
            counts["downloads"] += 1
            try:
                asset = Archive(flaky.api_url).dandiset(SYNTHETIC, "draft").asset(NWB.path)
                path = asset.download(tmp_path / str(i), progress=False)
            except (DownloadError, ArchiveUnavailable) as e:
                assert NWB.path in str(e) or flaky.api_url in str(e), e
                counts["clear_errors"] += 1
                counts["errors"].append(str(e)[:200])
                continue
            counts["exact" if path.read_bytes() == expected else "wrong_bytes"] += 1
    finally:
        flaky.api.faults = flaky.s3.faults = {}
    report("library_downloads", counts, flaky, artifacts)
    assert counts["wrong_bytes"] == 0
    assert counts["exact"] >= DOWNLOADS // 2, counts


# --- sign-in while the archive is down --------------------------------------------------


@pytest.mark.hub
def test_archive_down_at_sign_in_then_back_up(tmp_path):
    archive = OAuthArchive(tmp_path / "archive", {"ann": "APPROVED"}, "http://127.0.0.1:1/")
    archive.running.start()
    try:
        with RunningHub(tmp_path / "hub", "--archive", archive.api_url) as hub:
            archive.down()
            started = time.monotonic()
            client, answer = login(hub.url, archive.keys["ann"])
            assert time.monotonic() - started < 30
            assert answer.status_code == 503, answer.text[:500]
            assert "Traceback" not in answer.text
            assert "did not answer" in answer.text
            assert signed_in_user(client) is None
            archive.up()
            client, answer = login(hub.url, archive.keys["ann"])
            assert answer.status_code == 302, error_page(answer) if answer.status_code >= 400 \
                else answer
            assert signed_in_user(client)["name"] == "ann"
            assert "Traceback" not in hub.log.split("DANDI Hub is running")[-1]
            assert archive.keys["ann"] not in hub.log
    finally:
        archive.running.stop()
