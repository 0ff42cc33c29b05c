"""Faults: a flaky network between the user and the archive, and the archive going down.

Streaming and downloads: the archive API and its S3 store each sit behind a NetProxy
(dandihub.localarchive.netproxy) that fails 5% of requests (500, 503, a reset halfway
through the body, or a stall past the client's timeout). Each test gets proxies of its own,
seeded so that faults certainly land on both sides early (``seed_with_early_faults``), and
checks that they did. Every round either returns the source's bytes or fails with one of
the errors it should (class and message); none hangs; the count of wrong bytes is zero.
The counts are printed (``pytest -s``) and written to artifacts/faults.json.

Sign-in: the archive down -> a refusal page (503, no traceback, nobody signed in); back
up -> sign-in works with the same hub process. Hub restart: tests/test_hub_restart.py.
Culling (busy servers kept, idle ones stopped): tests/test_culling.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest
import uvicorn
from dandihub.localarchive.app import create_app
from dandihub.localarchive.netproxy import FAULT_KINDS, NetProxy
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

    def arm(self, faults: dict[str, float] | None = None) -> None:
        self.api.faults, self.s3.faults = dict(faults or {}), dict(faults or {})

    def assert_faults_on_both_sides(self) -> None:
        api, s3 = self.api.stats, self.s3.stats
        assert api["faults"] >= EARLY_FAULTS and s3["faults"] >= EARLY_FAULTS, (api, s3)


def fault_plan(seed: int, requests: int) -> list[str | None]:
    """The fault each of a fresh NetProxy's first requests gets with FAULTS: it draws one
    random number per request from random.Random(seed) and cuts [0, 1) by FAULT_KINDS."""
    rng, plan = random.Random(seed), []
    for _ in range(requests):
        x, kind = rng.random(), None
        for name in FAULT_KINDS:
            if x < FAULTS.get(name, 0.0):
                kind = name
                break
            x -= FAULTS.get(name, 0.0)
        plan.append(kind)
    return plan


EARLY = 12  # fewer requests than each side gets in any of these tests
EARLY_FAULTS = 2


def seed_with_early_faults(start: int) -> int:
    """The first seed from ``start`` whose first EARLY requests get EARLY_FAULTS faults, one
    of them a reset halfway through the body (the hardest for resuming)."""
    for seed in itertools.count(start):
        plan = fault_plan(seed, EARLY)
        if sum(k is not None for k in plan) >= EARLY_FAULTS and "reset" in plan:
            return seed
    raise AssertionError("not reached")


API_SEED, S3_SEED = seed_with_early_faults(100), seed_with_early_faults(200)


@pytest.fixture(scope="module")
def flaky_archive(local_archive):
    """``with flaky_archive(faults) as flaky``: fresh proxies (seeded, faults from the first
    request when given) in front of a fresh API server for the local archive's store."""

    @contextmanager
    def start(faults: dict[str, float] | None = None):
        s3 = NetProxy(local_archive.s3_endpoint_url, rtt=0, bandwidth=None, stall=STALL,
                      seed=S3_SEED, faults=faults).start()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        api = NetProxy(f"http://127.0.0.1:{sock.getsockname()[1]}", rtt=0, bandwidth=None,
                       stall=STALL, seed=API_SEED, faults=faults).start()
        app = create_app(local_archive.store, f"{api.url}/api",
                         f"{s3.url}/{local_archive.bucket}")
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                               lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        try:
            yield FlakyArchive(api, s3, f"{api.url}/api")
        finally:
            server.should_exit = True
            thread.join(10)
            api.stop()
            s3.stop()

    return start


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


# What a round may fail with, besides returning the exact bytes: class, then message.
STREAM_ERRORS = {
    "RemoteReadError": r"reading .+ failed after \d+ attempts: .+",
    "ArchiveUnavailable": r"The DANDI archive at {api} did not answer .+ after 4 attempts"
                          r"( \(\w+\))?\. Check the (URL and the )?network, then try again\.",
}


def expected_error(error: BaseException, expected: dict[str, str], **names: str) -> str:
    """``error`` as "Class: message", asserting it is one of ``expected``."""
    kind, message = type(error).__name__, str(error)
    assert kind in expected, f"unexpected {kind}: {message}"
    pattern = expected[kind].format(**{k: re.escape(v) for k, v in names.items()})
    assert re.fullmatch(pattern, message, re.DOTALL), f"{kind}: {message}"
    return f"{kind}: {message}"[:200]


def test_streaming_through_faults_is_exact_or_fails_clearly(flaky_archive, local_archive_dir,
                                                            artifacts):
    """open_nwb (through the flaky API and S3), full reads, slices and to_dask sums."""
    expected = expected_series(local_archive_dir)
    with flaky_archive() as clean:
        assert read_round(clean, expected, 0)  # warm (dandi's client asks /info/ once)
        clean.api.reset_stats(), clean.s3.reset_stats()
        assert read_round(clean, expected, 0)  # without faults: how many requests a round takes
        per_round = clean.api.stats["requests"] + clean.s3.stats["requests"]
    counts = {"rounds": ROUNDS, "exact": 0, "clear_errors": 0, "wrong_bytes": 0, "errors": []}
    with flaky_archive(FAULTS) as flaky:
        started = time.monotonic()
        for i in range(ROUNDS):
            t = time.monotonic()
            try:
                counts["exact" if read_round(flaky, expected, i) else "wrong_bytes"] += 1
            except Exception as e:  # noqa: BLE001 - checked against the expected errors
                counts["errors"].append(expected_error(e, STREAM_ERRORS, api=flaky.api_url))
                counts["clear_errors"] += 1
            assert time.monotonic() - t < 120, "a round hung"
        flaky.arm({})
        counts["seconds"] = round(time.monotonic() - started, 1)
        total = flaky.api.stats["requests"] + flaky.s3.stats["requests"]
        counts["extra_requests_retried"] = total - per_round * ROUNDS  # retries (approximately)
        report("streaming", counts, flaky, artifacts)
        flaky.assert_faults_on_both_sides()
    assert counts["wrong_bytes"] == 0
    assert counts["exact"] + counts["clear_errors"] == ROUNDS
    assert counts["exact"] >= ROUNDS // 2, counts


# The panel's downloads: what a failed one says (ArchiveError messages of dandilab.server).
SERVER_DOWNLOAD_ERRORS = [
    r"the DANDI archive at {api} failed with HTTP 50[03]: netproxy: injected 50[03]",
    r"Could not reach the DANDI archive at {api}: .+\. Check DANDI_API_URL and the network\.",
    r"The blob store answered HTTP 50[03] for {path}: netproxy: injected 50[03]",
    r"The download of {path} broke off after \d+ bytes \(\w+: .+\); start it again to resume\.",
    r"The download of {path} ended after \d+ of \d+ bytes; start it again to resume\.",
]


def server_download_error(message: str, api: str, path: str) -> str:
    names = {"api": re.escape(api), "path": re.escape(path)}
    assert any(re.fullmatch(p.format(**names), message, re.DOTALL)
               for p in SERVER_DOWNLOAD_ERRORS), message
    return message[:200]


def test_downloads_through_faults_are_exact_or_fail_clearly(flaky_archive, local_archive_dir,
                                                           artifacts, tmp_path):
    """The panel's downloads (dandilab.server.Downloads: the archive's download URL, a
    redirect to S3, resumable Range reads, size and SHA-256 checks) through the faults."""
    from dandilab.server import ArchiveEndpoint, ArchiveError, Downloads

    targets = [(a, local_archive_dir / "blobs" / a.blob)
               for a in SYNTHETIC_ASSETS if a.blob and (local_archive_dir / "blobs" / a.blob).exists()]
    assert targets
    counts = {"downloads": 0, "exact": 0, "clear_errors": 0, "wrong_bytes": 0, "errors": []}

    async def run_all(flaky):
        downloads = Downloads(tmp_path)
        endpoint = ArchiveEndpoint(flaky.api_url)
        for i in range(DOWNLOADS):
            asset, source = targets[i % len(targets)]
            dest = f"dl/{i}/{source.name}"
            counts["downloads"] += 1
            try:
                d = await downloads.start(endpoint, {"dandiset": SYNTHETIC, "version": "draft",
                                                     "asset_id": asset.asset_id, "dest": dest})
            except ArchiveError as e:  # the asset's record did not come
                counts["errors"].append(server_download_error(e.message, flaky.api_url,
                                                              asset.path))
                counts["clear_errors"] += 1
                continue
            deadline = time.monotonic() + 60
            while d.active and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not d.active, f"download {i} hung: {d}"
            if d.state == "done":
                same = (tmp_path / dest).read_bytes() == source.read_bytes()
                counts["exact" if same else "wrong_bytes"] += 1
            else:
                assert d.state == "failed", d
                counts["errors"].append(server_download_error(d.error, flaky.api_url,
                                                              asset.path))
                counts["clear_errors"] += 1

    with flaky_archive(FAULTS) as flaky:
        asyncio.run(asyncio.wait_for(run_all(flaky), 300))
        flaky.arm({})
        report("downloads", counts, flaky, artifacts)
        flaky.assert_faults_on_both_sides()
    assert counts["wrong_bytes"] == 0
    assert counts["exact"] + counts["clear_errors"] == DOWNLOADS
    assert counts["exact"] >= DOWNLOADS // 2, counts


LIBRARY_DOWNLOAD_ERRORS = {
    "DownloadError": r"{path}: download failed after 4 attempts \(.+\)\. \S+\.part keeps the "
                     r"\d+ bytes downloaded so far; run the same download again to resume\.",
    "ArchiveUnavailable": STREAM_ERRORS["ArchiveUnavailable"],
}


def test_library_downloads_through_faults_are_exact_or_fail_clearly(flaky_archive,
                                                                    local_archive_dir,
                                                                    artifacts, tmp_path,
                                                                    monkeypatch):
    """Asset.download (dandi's download iterators, resume from the .part file, digest check)
    through the same faults: every file it leaves is exact, every failure names the asset."""
    from dandilab import downloads

    monkeypatch.setattr("dandi.dandiapi.DOWNLOAD_TIMEOUT", CLIENT_TIMEOUT * 2)
    monkeypatch.setattr(downloads, "ATTEMPTS", 4)
    expected = (local_archive_dir / "blobs" / NWB.blob).read_bytes()
    counts = {"downloads": 0, "exact": 0, "clear_errors": 0, "wrong_bytes": 0, "errors": []}
    with flaky_archive(FAULTS) as flaky:
        for i in range(DOWNLOADS):
            counts["downloads"] += 1
            try:
                asset = Archive(flaky.api_url).dandiset(SYNTHETIC, "draft").asset(NWB.path)
                path = asset.download(tmp_path / str(i), progress=False)
            except Exception as e:  # noqa: BLE001 - checked against the expected errors
                counts["errors"].append(expected_error(e, LIBRARY_DOWNLOAD_ERRORS,
                                                       api=flaky.api_url, path=NWB.path))
                counts["clear_errors"] += 1
                continue
            counts["exact" if path.read_bytes() == expected else "wrong_bytes"] += 1
        flaky.arm({})
        report("library_downloads", counts, flaky, artifacts)
        flaky.assert_faults_on_both_sides()
    assert counts["wrong_bytes"] == 0
    assert counts["exact"] + counts["clear_errors"] == DOWNLOADS
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
