"""The demo data generator: small variants of each file, opened with the same libraries
users use (pynwb, zarr), checked for content, chunking, compression, digests and
determinism; a small archive build; the full demo build (slow, cached)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from dandihub.localarchive import demo

from .paths import DEMO_HUB_DATA

REPO = Path(__file__).resolve().parents[1]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_nwb(path: Path):
    from pynwb import NWBHDF5IO

    io = NWBHDF5IO(str(path), "r")
    return io, io.read()


# ---- single files --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecephys(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ecephys") / "e.nwb"
    return demo.generate_ecephys_nwb(path, channels=70, rate=30000.0, seconds=1.0,
                                     lfp_rate=2500.0, seed=3)


def test_ecephys_contents(ecephys):
    io, nwb = read_nwb(ecephys)
    try:
        raw = nwb.acquisition["ElectricalSeries"]
        assert raw.data.shape == (30000, 70) and raw.data.dtype == np.int16
        assert raw.rate == 30000.0 and raw.conversion == pytest.approx(0.195e-6)
        # chunked as neuroconv does (64 channels, ~10 MB -> all frames here), compressed
        assert raw.data.chunks == (30000, 64)
        assert raw.data.compression == "gzip" and raw.data.shuffle
        assert len(nwb.electrodes) == 70
        assert set(nwb.electrodes["location"][:]) == {"CA1", "VISp"}  # Allen CCF terms
        assert {"rel_x", "rel_y", "group"} <= set(nwb.electrodes.colnames)
        lfp = nwb.processing["ecephys"]["LFP"]["ElectricalSeriesLFP"]
        assert lfp.data.shape == (2500, 70) and lfp.rate == 2500.0
        units = nwb.units
        assert len(units) == 8  # channels // 8
        assert units["waveform_mean"].data.shape == (8, 75, 8)  # 2.5 ms at 30 kHz, 8 electrodes
        spikes = np.concatenate([units.get_unit_spike_times(i) for i in range(len(units))])
        assert spikes.size > 0 and spikes.min() >= 0 and spikes.max() <= 1.0
        trials = nwb.trials.to_dataframe()
        assert len(trials) >= 1
        assert {"condition", "contrast", "response_time", "correct"} <= set(trials.columns)
        # realistic amplitudes: tens to a few hundred microvolts rms
        rms_uv = raw.data[:3000].astype(float).std(axis=0) * 0.195
        assert 10 < rms_uv.min() and rms_uv.max() < 400
        assert nwb.subject.species == "Mus musculus"
    finally:
        io.close()


def test_ecephys_spikes_are_in_the_raw_data(tmp_path):
    """A unit's mean waveform is visible in the raw signal at its spike times."""
    path = demo.generate_ecephys_nwb(tmp_path / "e.nwb", channels=16, seconds=2.0,
                                     n_units=2, seed=5)
    with h5py.File(path, "r") as f:
        raw = f["acquisition/ElectricalSeries/data"][:].astype(float)
        times = f["units/spike_times"][:]
        index = f["units/spike_times_index"][:]
        peak = int(f["units/peak_channel"][0])
    samples = np.round(times[: index[0]] * 30000).astype(int)
    samples = samples[(samples > 100) & (samples < raw.shape[0] - 100)]
    snippets = np.stack([raw[s - 3: s + 4, peak] for s in samples])
    baseline = np.median(raw[:, peak])
    assert snippets.mean(axis=0).min() < baseline - 100  # trough >= ~20 uV below baseline


def test_ophys_contents(tmp_path):
    path = demo.generate_ophys_nwb(tmp_path / "o.nwb", height=64, width=48, frames=40,
                                   n_rois=6, seed=1)
    io, nwb = read_nwb(path)
    try:
        tps = nwb.acquisition["TwoPhotonSeries"]
        assert tps.data.shape == (40, 64, 48) and tps.data.dtype == np.uint16
        assert tps.data.chunks == (4, 64, 48) and tps.data.compression == "gzip"
        assert tps.imaging_plane.indicator == "GCaMP6s"
        ophys = nwb.processing["ophys"]
        ps = ophys["ImageSegmentation"]["PlaneSegmentation"]
        masks = ps["image_mask"].data
        assert masks.shape == (6, 64, 48)
        assert all(masks[i].max() == pytest.approx(1.0) for i in range(6))
        assert ophys["Fluorescence"]["RoiResponseSeries"].data.shape == (40, 6)
        assert ophys["DfOverF"]["RoiResponseSeries"].data.shape == (40, 6)
        mean = ophys["SegmentationImages"]["mean"].data[:]
        assert mean.shape == (64, 48)
        # the analytic mean image matches the movie's mean up to noise
        movie_mean = tps.data[:].astype(float).mean(axis=0)
        assert np.abs(movie_mean - mean).mean() < 5
    finally:
        io.close()


def test_behavior_contents(tmp_path):
    path = demo.generate_behavior_nwb(tmp_path / "b.nwb", seconds=120.0, rate=60.0, seed=2)
    io, nwb = read_nwb(path)
    try:
        beh = nwb.processing["behavior"]
        pos = beh["Position"]["SpatialSeriesPosition"]
        assert pos.data.shape == (7200, 2) and pos.unit == "meters"
        xy = pos.data[:]
        assert xy.min() >= 0 and xy.max() <= 1
        assert beh["BehavioralTimeSeries"]["speed"].data.shape == (7200,)
        events = beh["BehavioralEvents"]
        assert set(events.time_series) == {"licks", "rewards"}
        trials = nwb.trials.to_dataframe()
        assert len(trials) >= 2
        assert {"target_zone", "rewarded", "path_length", "mean_speed"} <= set(trials.columns)
        assert len(events["rewards"].timestamps) == int(trials["rewarded"].sum())
    finally:
        io.close()


def test_ome_zarr(tmp_path):
    import zarr

    path = demo.generate_ome_zarr(tmp_path / "x.ome.zarr", shape=(8, 128, 96),
                                  chunks=(4, 64, 64), levels=3, seed=4)
    group = zarr.open_group(str(path), mode="r")
    ms = group.attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    assert [group[p].shape for p in "012"] == [(1, 8, 128, 96), (1, 8, 64, 48), (1, 8, 32, 24)]
    assert group["0"].dtype == np.uint16
    # zarr v2 keys, "/" separated, as DANDI's zarrs
    zarray = json.loads((path / "0" / ".zarray").read_text())
    assert zarray["zarr_format"] == 2 and zarray["dimension_separator"] == "/"
    assert zarray["chunks"] == [1, 4, 64, 64] and zarray["compressor"]["id"] == "blosc"
    assert (path / ".zgroup").is_file() and (path / "0" / "0" / "1" / "1" / "1").is_file()
    checksum, count, size = demo.zarr_checksum(path)
    files = [p for p in path.rglob("*") if p.is_file()]
    assert count == len(files) and size == sum(p.stat().st_size for p in files)
    assert re.fullmatch(rf"[0-9a-f]{{32}}-{count}--{size}", checksum)


def test_zarr_checksum_equals_dandi(tmp_path):
    pytest.importorskip("dandi")
    from dandi.support.digests import get_zarr_checksum

    path = demo.generate_ome_zarr(tmp_path / "x.ome.zarr", shape=(4, 64, 64),
                                  chunks=(2, 32, 32), levels=2)
    assert demo.zarr_checksum(path)[0] == get_zarr_checksum(path)


def test_file_digests(tmp_path):
    from dandischema.digests.dandietag import DandiETag

    p = tmp_path / "blob"
    p.write_bytes(np.random.default_rng(0).bytes(3_000_000))
    d = demo.file_digests(p)
    assert d["dandi:sha2-256"] == sha256(p)
    assert d["dandi:dandi-etag"] == DandiETag.from_file(p).as_str()


@pytest.mark.fixtures
def test_file_digests_match_real_dandi_records(shared_fixtures):
    nwb = shared_fixtures / "nwb" / "000006_sub-anm369963_ses-20170228.nwb"
    record = json.loads((shared_fixtures / "api" / "dandisets" / "000006"
                         / "asset_record_sub-anm369963_ses-20170228.json").read_text())
    assert demo.file_digests(nwb) == record["metadata"]["digest"]


@pytest.mark.parametrize("make, kwargs", [
    (demo.generate_ecephys_nwb, {"channels": 8, "seconds": 0.5}),
    (demo.generate_ophys_nwb, {"height": 32, "width": 32, "frames": 12, "n_rois": 3}),
    (demo.generate_behavior_nwb, {"seconds": 30.0}),
], ids=["ecephys", "ophys", "behavior"])
def test_deterministic(tmp_path, make, kwargs):
    a = make(tmp_path / "a" / "x.nwb", seed=7, **kwargs)
    b = make(tmp_path / "b" / "x.nwb", seed=7, **kwargs)
    c = make(tmp_path / "c" / "x.nwb", seed=8, **kwargs)
    assert sha256(a) == sha256(b)
    assert sha256(a) != sha256(c)


def test_zarr_deterministic(tmp_path):
    kw = {"shape": (4, 64, 64), "chunks": (2, 32, 32), "levels": 2, "seed": 1}
    a = demo.zarr_checksum(demo.generate_ome_zarr(tmp_path / "a.ome.zarr", **kw))
    b = demo.zarr_checksum(demo.generate_ome_zarr(tmp_path / "b.ome.zarr", **kw))
    assert a == b


def test_nwb_asset_metadata_is_dandis_extraction(ecephys):
    md = demo.nwb_asset_metadata(ecephys)
    assert md["encodingFormat"] == "application/x-nwb"
    assert {"ElectricalSeries", "LFP", "Units"} <= {v["value"] for v in md["variableMeasured"]}
    assert {"name": "electrophysiological approach", "schemaKey": "ApproachType"} in md[
        "approach"]
    (participant,) = md["wasAttributedTo"]
    assert participant["species"]["identifier"].endswith("NCBITaxon_10090")
    assert participant["sex"]["name"] == "Male"


# ---- the archive folder --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    assert demo.build_demo_dandisets(root, profile="small", workers=1) == list(demo.DEMO_IDS)
    return root


def test_archive_layout_and_records(small_archive):
    from dandischema import models

    root = small_archive
    for ident in demo.DEMO_IDS:
        folder = root / "dandisets" / ident
        info = json.loads((folder / "dandiset.json").read_text())
        assert info["identifier"] == ident and info["embargo_status"] == "OPEN"
        md = json.loads((folder / "draft.metadata.json").read_text())
        models.Dandiset(**md)
        assert md["id"] == f"DANDI:{ident}/draft" and md["version"] == "draft"
        assert "(generated demo)" in md["name"]
        records = json.loads((folder / "draft.assets.json").read_text())
        assert md["assetsSummary"]["numberOfFiles"] == len(records)
        assert md["assetsSummary"]["numberOfBytes"] == sum(r["size"] for r in records)
        for r in records:
            meta = r["metadata"]
            assert meta["path"] == r["path"] and meta["contentSize"] == r["size"]
            assert meta["contentUrl"][0] == (
                f"https://api.dandiarchive.org/api/assets/{r['asset_id']}/download/")
            if "blob" in r:
                b = r["blob"]
                blob = root / "blobs" / b
                assert meta["contentUrl"][1] == (
                    f"https://dandiarchive.s3.amazonaws.com/blobs/{b[:3]}/{b[3:6]}/{b}")
                assert blob.stat().st_size == r["size"]
                assert meta["digest"]["dandi:sha2-256"] == sha256(blob)
                assert meta["digest"]["dandi:dandi-etag"].endswith("-1")
            else:
                z = r["zarr"]
                assert meta["contentUrl"][1] == f"https://dandiarchive.s3.amazonaws.com/zarr/{z}/"
                assert meta["encodingFormat"] == "application/x-zarr"
                assert meta["digest"]["dandi:dandi-zarr-checksum"] == (
                    demo.zarr_checksum(root / "zarr" / z)[0])
    summary = json.loads((root / "dandisets" / "900004" / "draft.metadata.json")
                         .read_text())["assetsSummary"]
    assert {s["name"] for s in summary["dataStandard"]} >= {"OME/NGFF Standard"}


def test_archive_published_version(small_archive):
    from dandischema import models

    folder = small_archive / "dandisets" / "900001"
    v = demo.PUBLISHED_VERSION
    md = json.loads((folder / f"{v}.metadata.json").read_text())
    models.PublishedDandiset(**md)
    assert md["doi"] == f"10.48324/dandi.900001/{v}" and md["version"] == v
    published = json.loads((folder / f"{v}.assets.json").read_text())
    draft = json.loads((folder / "draft.assets.json").read_text())
    assert len(published) == 1 and len(draft) == 2  # one session added after publishing
    assert published[0] in draft and "datePublished" in published[0]["metadata"]
    assert md["assetsSummary"]["numberOfFiles"] == 1


def test_archive_build_is_cached(small_archive):
    marker = small_archive / ".demo" / "900003.json"
    blob_times = {p: p.stat().st_mtime_ns for p in (small_archive / "blobs").iterdir()}
    assert demo.build_demo_dandisets(small_archive, profile="small", workers=1)
    assert {p: p.stat().st_mtime_ns for p in blob_times} == blob_times
    # a stale marker rebuilds that Dandiset only, to the same bytes
    info = json.loads(marker.read_text())
    before = (small_archive / "dandisets" / "900003" / "draft.assets.json").read_text()
    marker.write_text(json.dumps(dict(info, fingerprint="old")))
    demo.build_demo_dandisets(small_archive, profile="small", workers=1)
    assert json.loads(marker.read_text())["fingerprint"] == info["fingerprint"]
    assert (small_archive / "dandisets" / "900003" / "draft.assets.json").read_text() == before
    for p, t in blob_times.items():
        if p.exists() and p.name not in before:
            assert p.stat().st_mtime_ns == t


# ---- the full demo -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_full_demo_build():
    """Builds the real demo once into the demo hub's cache (a few minutes); afterwards the
    build is a cache check and this test takes seconds."""
    root = Path(os.environ.get("DANDIHUB_DEMO_ARCHIVE", DEMO_HUB_DATA / "demo-archive"))
    assert demo.build_demo_dandisets(root) == list(demo.DEMO_IDS)
    records = json.loads((root / "dandisets" / "900001" / "draft.assets.json").read_text())
    big = max(records, key=lambda r: r["size"])
    with h5py.File(root / "blobs" / big["blob"], "r") as f:
        raw = f["acquisition/ElectricalSeries/data"]
        assert raw.shape == (1_800_000, 384) and raw.dtype == np.int16
        assert raw.chunks == (78125, 64) and raw.compression == "gzip"
    assert 0.4e9 < big["size"] < 1.38e9  # compressed, but noise does not compress much
    zrec = json.loads((root / "dandisets" / "900004" / "draft.assets.json").read_text())
    (z,) = [r for r in zrec if "zarr" in r]
    import zarr

    group = zarr.open_group(str(root / "zarr" / z["zarr"]), mode="r")
    assert group["0"].shape == (1, 64, 1024, 1024)
