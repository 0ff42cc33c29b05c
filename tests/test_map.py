"""dandilab.map and dandilab.table over a Dandiset of small sessions in a real local archive
(the API, the S3 server), on a LocalCluster, in this process, and on a real
dask-gateway-server (local backend)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from dandilab.archive import Archive
from dandilab.mapping import map as dmap
from dandilab.mapping import table
from dandilab.stream import open_nwb

from .localarchive_fixtures import _asset_record, _digest, write_users
from .paths import REPO, SHARED
from .test_cluster import gateway  # noqa: F401 - the real dask-gateway-server fixture

SESSIONS = "000777"
OTHER = "000776"  # two sessions whose paths are also in SESSIONS
N_SESSIONS = 10
BAD = "sub-bad/sub-bad_ses-1_ecephys.nwb"  # bytes that are not HDF5
LEGACY = "sub-old/sub-old_ses-1_nwb1.nwb"  # NWB 1.0.5, when ../shared/fixtures is there
WAVEFORM = (10, 40_000)  # a units column of 3.2 MB that table() must not read unless asked


def session_path(i: int) -> str:
    return f"sub-{i:02d}/sub-{i:02d}_ses-1_ecephys.nwb"


def write_session(path: Path, i: int, *, shift: float = 0.0) -> None:
    """A small real session: 10 units (ragged spike times, a quality, a big waveform
    column), trials, and a TimeSeries."""
    from datetime import UTC, datetime

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    rng = np.random.default_rng(i)
    nwb = NWBFile(session_description=f"map test session {i}", identifier=f"map-{i:02d}",
                  session_start_time=datetime(2024, 3, 1, 10, tzinfo=UTC), session_id=str(i))
    nwb.add_unit_column("quality", "good or mua")
    nwb.add_unit_column("waveform", "a big per-unit array")
    for u in range(WAVEFORM[0]):
        nwb.add_unit(spike_times=np.sort(rng.uniform(0, 10, 5 + i + u)) + shift,
                     quality="good" if u % 3 else "mua",
                     waveform=rng.standard_normal(WAVEFORM[1]))
    for t in range(3 + i):
        nwb.add_trial(start_time=float(t), stop_time=t + 0.5)
    nwb.add_acquisition(TimeSeries(name="trace", data=np.arange(100 * (i + 1), dtype="f4"),
                                   unit="V", rate=100.0))
    tmp = path.with_name(path.name + ".nwb")  # pynwb warns about other suffixes
    with NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwb)
    os.replace(tmp, path)


def _blob(i: int) -> str:
    return f"b7770000-0000-4000-8000-{i:012d}"


def write_dandiset(folder: Path, with_legacy: bool, identifier: str = SESSIONS) -> None:
    """``SESSIONS``: N_SESSIONS sessions, one unreadable file, the legacy NWB 1 file;
    ``OTHER``: two sessions at the paths of the first two."""
    ds = folder / "dandisets" / identifier
    ds.mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    records = []
    items = [(i, session_path(i)) for i in range(N_SESSIONS)] + [(90, BAD)]
    if with_legacy:
        items.append((91, LEGACY))
    if identifier == OTHER:
        items = [(50, session_path(0)), (51, session_path(1))]
    for i, path in items:
        blob = folder / "blobs" / _blob(i)
        if path == BAD:
            blob.write_bytes(b"this is not an HDF5 file\n" * 100)
        elif path == LEGACY:
            shutil.copyfile(SHARED / "fixtures/nwb/legacy_nwb1_brain_observatory_496908818s.nwb",
                            blob)
        else:
            write_session(blob, i)
        records.append(_record(i, path, blob))
    (ds / "draft.assets.json").write_text(json.dumps(records, indent=1))
    (ds / "draft.metadata.json").write_text(json.dumps({
        "schemaKey": "Dandiset", "schemaVersion": "0.6.4", "id": f"DANDI:{identifier}/draft",
        "identifier": f"DANDI:{identifier}", "version": "draft", "name": "dandilab.map sessions",
        "description": "Written by tests/test_map.py", "license": ["spdx:CC-BY-4.0"],
        "contributor": [{"schemaKey": "Person", "name": "Tester, Ada",
                         "roleName": ["dcite:ContactPerson"]}],
    }))
    (ds / "dandiset.json").write_text(json.dumps({
        "identifier": identifier, "created": "2024-03-01T10:00:00+00:00",
        "modified": "2024-03-01T10:00:00+00:00", "contact_person": "Tester, Ada",
        "embargo_status": "OPEN", "owners": ["alice"]}))


def _record(i: int, path: str, blob: Path) -> dict:
    from .localarchive_fixtures import SyntheticAsset

    asset = SyntheticAsset(f"0a777000-0000-4000-8000-{i:012d}", path, blob=_blob(i))
    return _asset_record(asset, blob.stat().st_size, _digest(blob), "application/x-nwb")


@pytest.fixture(scope="module")
def sessions_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("map-archive")
    write_dandiset(folder, with_legacy=(SHARED / "fixtures/nwb").is_dir())
    write_dandiset(folder, with_legacy=False, identifier=OTHER)
    write_users(folder)
    return folder


@pytest.fixture(scope="module")
def sessions_archive(sessions_dir):
    from dandihub.localarchive.server import LocalArchive

    with LocalArchive(sessions_dir) as running:
        yield running


@pytest.fixture()
def dandiset(sessions_archive):
    return Archive(sessions_archive.api_url).dandiset(SESSIONS, "draft")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # before the gateway fixture starts its server: its workers inherit this too
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAP_OPENS_LOG", str(tmp_path / "opens.log"))
    monkeypatch.delenv("DASK_GATEWAY__ADDRESS", raising=False)


# -- the functions mapped (module level: LocalCluster workers import them) ---------------
def summary(nwb):
    """Per session: units, spikes, trials, mean firing rate; and log the open."""
    with open(os.environ["MAP_OPENS_LOG"], "a") as log:
        log.write(nwb.identifier + "\n")
    units = nwb.units
    spikes = sum(len(units["spike_times"][u]) for u in range(len(units)))
    return {"units": len(units), "spikes": spikes, "trials": len(nwb.trials),
            "first_spike": float(min(units["spike_times"][u][0] for u in range(len(units))))}


def slow_summary(nwb):
    """As summary, slowly: a run can be killed mid-way."""
    time.sleep(0.7)
    return summary(nwb)


def failing_on_03(nwb):
    if nwb.identifier == "map-03":
        raise ZeroDivisionError("session 3 has no baseline")
    return len(nwb.units)


def opens() -> list[str]:
    log = Path(os.environ["MAP_OPENS_LOG"])
    return log.read_text().split() if log.exists() else []


def serial(dandiset, fn) -> dict:
    """What the user writes today: a loop that opens each session."""
    out = {}
    for asset in dandiset.assets(glob="sub-0*/*.nwb"):
        with open_nwb(asset, cache=False) as nwb:  # leaves the map's cache cold
            out[asset.path] = fn(nwb)
    return out


# -- tests --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_map_on_a_local_cluster_equals_a_serial_loop_and_reports_failures(dandiset):
    expected = serial(dandiset, summary)
    assert len(expected) == N_SESSIONS
    Path(os.environ["MAP_OPENS_LOG"]).unlink()
    from dandilab.cluster import cluster

    with cluster(workers=2) as client:
        result = dmap(summary, dandiset, cluster=client, progress=False)
        assert result.results == expected
        assert sorted(opens()) == sorted(f"map-{i:02d}" for i in range(N_SESSIONS))
        failed = result.failed.set_index("path")
        assert failed.loc[BAD, "kind"] == "not-nwb"
        assert failed.loc[BAD, "error"] == "NWBError"
        assert "is not an HDF5 file" in failed.loc[BAD, "message"]
        if LEGACY in failed.index:
            assert failed.loc[LEGACY, "kind"] == "legacy-nwb"
            assert "pynwb reads NWB 2.x only" in failed.loc[LEGACY, "message"]
        assert len(failed) == len(result.refs) - N_SESSIONS
        # keyed by path and by id; a frame with a row per session
        path = session_path(2)
        assert result[result.ids[path]] == result[path] == expected[path]
        frame = result.frame
        assert list(frame.columns[:2]) == ["path", "asset_id"]
        assert frame.set_index("path").loc[path, "trials"] == 5
        assert result.bytes > 0
        # each task streamed its own asset, once: no more than the files hold
        sizes = {r.path: r.size for r in result.refs.values()}
        for p in expected:
            assert 0 < result.outcomes[p].bytes <= sizes[p]

        # a second run is all cache: nothing opened, nothing computed
        again = dmap(summary, dandiset, cluster=client, progress=False)
        assert again.computed == sorted(failed.index)  # only the failures are tried again
        assert again.results == expected
        assert len(opens()) == N_SESSIONS


def test_an_asset_whose_fn_fails_is_reported_and_retry_runs_only_the_failed(dandiset, capsys):
    result = dmap(failing_on_03, dandiset, glob="sub-0*/*.nwb", cluster=False)
    bar = capsys.readouterr().err.rsplit("\r", 1)[-1]  # the progress bar's last state
    assert f"{N_SESSIONS}/{N_SESSIONS}" in bar and "failed=1" in bar and "running=0" in bar
    assert len(result.results) == N_SESSIONS - 1
    row = result.failed.iloc[0]
    assert (row.path, row.kind, row.error, row.message) == (
        session_path(3), "error", "ZeroDivisionError", "session 3 has no baseline")
    assert row.asset_id == result.ids[session_path(3)]
    with pytest.raises(KeyError, match="failed \\(error\\): session 3 has no baseline"):
        result[session_path(3)]
    # retry() runs the failed assets only, even when no cached result would spare the others
    shutil.rmtree(Path(os.environ["DANDILAB_CACHE_DIR"]) / "map")
    retried = result.retry()
    assert retried.computed == [session_path(3)]  # only the failed asset ran again
    assert len(retried.results) == N_SESSIONS - 1 and len(retried.failed) == 1


def test_a_timeout_is_reported_per_asset(dandiset):
    def stuck_on_05(nwb):
        if nwb.identifier == "map-05":
            time.sleep(3)
        return 1

    t0 = time.monotonic()
    result = dmap(stuck_on_05, dandiset, glob="sub-0[4-6]/*.nwb", cluster=False,
                  timeout=1.0, progress=False)
    assert time.monotonic() - t0 < 3 + 2  # did not wait for the stuck one
    row = result.failed.iloc[0]
    assert (row.path, row.kind, row.error) == (session_path(5), "timeout", "TimeoutError")
    assert row.message == f"{session_path(5)} took longer than 1 s (timeout=); the rest " \
                          "of the map went on"
    assert sorted(result.results) == [session_path(4), session_path(6)]


KILL_SCRIPT = """
import sys
from dandilab.archive import Archive
from dandilab.cluster import cluster
from dandilab.mapping import map
from tests.test_map import slow_summary

with cluster(workers=1, threads_per_worker=1) as client:
    map(slow_summary, Archive(sys.argv[1]).dandiset(sys.argv[2], "draft"),
        glob="sub-0*/*.nwb", cluster=client, progress=False)
print("finished")
"""


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_killed_run_resumes_computing_only_what_is_missing(dandiset, sessions_archive,
                                                             tmp_path):
    cache = Path(os.environ["DANDILAB_CACHE_DIR"]) / "map"
    run = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, sessions_archive.api_url,
                            SESSIONS], cwd=REPO, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(list(cache.rglob("*.pkl"))) < 3:
            assert run.poll() is None, run.stdout.read().decode()
            assert time.monotonic() < deadline, "the map stored no 3 results in 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the kernel dies, with its LocalCluster
        run.wait(30)
    assert b"finished" not in run.stdout.read()
    before = opens()
    assert 3 <= len(before) < N_SESSIONS  # killed mid-way
    stored = len(list(cache.rglob("*.pkl")))

    result = dmap(slow_summary, dandiset, glob="sub-0*/*.nwb", cluster=False, progress=False)
    assert len(result.results) == N_SESSIONS
    assert len(result.computed) == N_SESSIONS - stored  # only the missing ones ran
    after = opens()[len(before):]
    assert sorted(after) == sorted(f"map-{p[4:6]}" for p in result.computed)
    # what was stored by the killed run was not opened again
    done_before = {f"map-{i:02d}" for i in range(N_SESSIONS)} - set(after)
    assert len(done_before) == stored


def test_a_changed_asset_is_computed_again(sessions_dir, dandiset, tmp_path):
    """The same Dandiset on a new server where one session's content (digest) changed."""
    from dandihub.localarchive.server import LocalArchive

    first = dmap(summary, dandiset, glob="sub-0*/*.nwb", cluster=False, progress=False)
    assert len(first.computed) == N_SESSIONS
    changed = tmp_path / "changed"
    shutil.copytree(sessions_dir, changed, ignore=shutil.ignore_patterns(".s3store"))
    blob = changed / "blobs" / _blob(4)
    write_session(blob, 4, shift=100.0)
    records_file = changed / "dandisets" / SESSIONS / "draft.assets.json"
    records = json.loads(records_file.read_text())
    for r in records:
        if r["path"] == session_path(4):
            r.update(_record(4, session_path(4), blob))
    records_file.write_text(json.dumps(records))
    with LocalArchive(changed) as new_server:
        moved = Archive(new_server.api_url).dandiset(SESSIONS, "draft")
        second = dmap(summary, moved, glob="sub-0*/*.nwb", cluster=False, progress=False)
    assert second.computed == [session_path(4)]
    assert second.results[session_path(4)]["first_spike"] > 100
    assert {p: v for p, v in second.results.items() if p != session_path(4)} == \
           {p: v for p, v in first.results.items() if p != session_path(4)}
    # an explicit key is another cache entry: everything runs again
    third = dmap(summary, dandiset, glob="sub-0*/*.nwb", cluster=False, progress=False,
                 key="summary v2")
    assert len(third.computed) == N_SESSIONS


def test_several_dandisets_are_keyed_by_dandi_references(dandiset, sessions_archive):
    other = Archive(sessions_archive.api_url).dandiset(OTHER, "draft")
    result = dmap(summary, [dandiset, f"{OTHER}/draft"], glob="sub-0[0-2]/*.nwb",
                  cluster=False, progress=False, archive=other.archive)
    assert sorted(result.results) == sorted(
        [f"DANDI:{SESSIONS}/draft/{session_path(i)}" for i in range(3)]
        + [f"DANDI:{OTHER}/draft/{session_path(i)}" for i in range(2)])
    assert result.failed.empty
    # the same path in two Dandisets: two results, each from its own file
    assert result[f"DANDI:{SESSIONS}/draft/{session_path(0)}"]["trials"] == 3
    assert result[f"DANDI:{OTHER}/draft/{session_path(0)}"]["trials"] == 3 + 50


def test_a_zarr_asset_opens_as_zarr(local_archive):
    from .localarchive_fixtures import SYNTHETIC, ZARR_IMAGE

    ds = Archive(local_archive.api_url).dandiset(SYNTHETIC, "draft")
    result = dmap(lambda z: int(z["0"][:].sum()), ds, glob="*.zarr", cluster=False,
                  progress=False)
    assert result.results == {"sub-01/sub-01_image.zarr": int(ZARR_IMAGE.sum())}


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_results_another_user_wrote_are_not_loaded(dandiset):
    first = dmap(failing_on_03, dandiset, glob="sub-0[0-2]/*.nwb", cluster=False,
                 progress=False)
    assert len(first.computed) == 3
    stored = list((Path(os.environ["DANDILAB_CACHE_DIR"]) / "map").rglob("*.pkl"))
    assert len(stored) == 3
    os.chown(stored[0], 65534, 65534)  # as if someone else put it in a shared cache
    again = dmap(failing_on_03, dandiset, glob="sub-0[0-2]/*.nwb", cluster=False,
                 progress=False)
    assert len(again.computed) == 1 and len(again.results) == 3


def test_table_reads_only_the_columns_asked_for(dandiset, monkeypatch, tmp_path):
    units = table(dandiset, "units", columns=["spike_times", "quality"], glob="sub-0*/*.nwb",
                  cluster=False, progress=False)
    assert list(units.columns) == ["session", "asset_id", "id", "spike_times", "quality"]
    assert len(units) == N_SESSIONS * WAVEFORM[0]
    first = units[units.session == session_path(0)]
    with open_nwb(dandiset.asset(session_path(0))) as nwb:
        expected = nwb.units.to_dataframe()
    assert list(first.quality) == list(expected.quality)
    for got, want in zip(first.spike_times, expected.spike_times, strict=True):
        np.testing.assert_array_equal(got, want)

    # the waveform column (3.2 MB a session) was not read: a cold open's head and tail,
    # and at most a block more, is all it cost
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cold"))
    from dandilab import mapping, remote

    res = mapping.map(_read_units_quality, dandiset, glob="sub-0*/*.nwb", cluster=False,
                      open=False, progress=False)
    waveform_bytes = WAVEFORM[0] * WAVEFORM[1] * 8
    for p, outcome in res.outcomes.items():
        assert outcome.ok, outcome.message
        assert 0 < outcome.bytes <= remote.HEAD + remote.TAIL + remote.BLOCK, p
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cold2"))
    wide = mapping.map(_read_units_all, dandiset, glob="sub-0[0-1]/*.nwb", cluster=False,
                       open=False, progress=False)
    for outcome in wide.outcomes.values():
        assert outcome.bytes > waveform_bytes  # reading it does cost its bytes

    trials = table(dandiset, "trials", columns=["start_time"], glob="sub-0*/*.nwb",
                   cluster=False, progress=False)
    assert trials.groupby("session").size().to_dict() == {
        session_path(i): 3 + i for i in range(N_SESSIONS)}
    ref = mapping.AssetRef.of(dandiset.asset(session_path(0)))
    with ref.open_hdf5() as h5, pytest.raises(
            KeyError, match=r"the units table has no column\(s\) nope "
                            r"\(it has: quality, waveform, spike_times\)"):
        mapping.read_table(h5, "units", ["nope"])


def _read_units_quality(asset):
    from dandilab.mapping import read_table

    with asset.open_hdf5() as h5:
        return read_table(h5, "units", ["quality", "spike_times"])


def _read_units_all(asset):
    from dandilab.mapping import read_table

    with asset.open_hdf5() as h5:
        return read_table(h5, "units", None)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_map_on_a_real_dask_gateway(gateway, dandiset, monkeypatch):  # noqa: F811
    import dask

    monkeypatch.setenv("DASK_GATEWAY__ADDRESS", gateway["address"])
    monkeypatch.setenv("DASK_GATEWAY__PROXY_ADDRESS", gateway["proxy"])
    monkeypatch.setenv("DASK_GATEWAY__AUTH__TYPE", "basic")
    dask.config.refresh()

    def units_and_trials(nwb):  # nested: pickled by value, the gateway's workers need no tests/
        # the gateway names its cluster in its workers' environment
        return len(nwb.units), len(nwb.trials), os.environ.get("DASK_GATEWAY_CLUSTER_NAME")

    try:
        result = dmap(units_and_trials, dandiset, glob="sub-0*/*.nwb", progress=False)
    finally:
        dask.config.refresh()
    names = {v[2] for v in result.results.values()}
    assert len(names) == 1 and None not in names  # all on the gateway's one cluster
    assert {p: v[:2] for p, v in result.results.items()} == {
        session_path(i): (WAVEFORM[0], 3 + i) for i in range(N_SESSIONS)}
    assert result.failed.empty
    from dask_gateway import Gateway

    with Gateway(gateway["address"], auth="basic") as gw:  # the map's own cluster is gone
        deadline = time.monotonic() + 30
        while gw.list_clusters() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert gw.list_clusters() == []
