"""to_dask over remote (local archive's S3 server, through the proxy) and local datasets."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import dask
import h5py
import numpy as np
import pytest
from dandihub.localarchive.blobstore import BlobStore
from dandihub.localarchive.netproxy import NetProxy
from dandilab import arrays
from dandilab.arrays import to_dask
from dandilab.stream import open_nwb

ROWS, CHANNELS, CHUNKS = 20_000, 32, (2_500, 16)


def write_ecephys(path):
    """A small pynwb ElectricalSeries, chunked and gzipped like real acquisitions."""
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries

    nwb = NWBFile(session_description="to_dask test", identifier="arrays",
                  session_start_time=datetime(2024, 1, 2, tzinfo=UTC))
    device = nwb.create_device("probe")
    group = nwb.create_electrode_group("shank", description="", location="CA1", device=device)
    for i in range(CHANNELS):
        nwb.add_electrode(group=group, location="CA1", x=0.0, y=float(i), z=0.0)
    data = np.random.default_rng(0).integers(-500, 500, (ROWS, CHANNELS), dtype=np.int16)
    nwb.add_acquisition(ElectricalSeries(
        name="ElectricalSeries", rate=30000.0,
        data=H5DataIO(data, chunks=CHUNKS, compression="gzip", shuffle=True),
        electrodes=nwb.create_electrode_table_region(list(range(CHANNELS)), "all")))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return data


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arrays")
    path = folder / "ecephys.nwb"
    expected = write_ecephys(path)
    with BlobStore(folder / "s3") as s3, NetProxy(s3.endpoint_url, rtt=0, bandwidth=None) as proxy:
        s3.upload_file(path, "blobs/abc/def/ecephys")
        yield {"url": f"{proxy.url}/{s3.bucket}/blobs/abc/def/ecephys", "path": path,
               "expected": expected, "proxy": proxy}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cache"))
    arrays._handles.clear()


def test_chunks_follow_the_stored_chunks(served):
    with open_nwb(served["url"]) as nwb:
        array = to_dask(nwb.acquisition["ElectricalSeries"])
        for stored, task in zip(CHUNKS, array.chunks):
            assert all(c % stored == 0 or c == array.shape[0] % stored for c in task)
        small = to_dask(nwb.acquisition["ElectricalSeries"].data, limit=4 * 2_500 * 16 * 2)
        assert small.numblocks[0] > 1
        pickle.dumps(small.__dask_graph__())  # the graph pickles: no h5py object inside


@pytest.mark.parametrize("scheduler", ["threads", "processes", "sync"])
def test_computes_on_every_local_scheduler(served, scheduler):
    with open_nwb(served["url"]) as nwb:
        array = to_dask(nwb.acquisition["ElectricalSeries"].data, limit=100_000)
        assert array.numblocks[0] > 2
        (total,) = dask.compute(array.astype(np.int64).sum(axis=0), scheduler=scheduler)
    np.testing.assert_array_equal(total, served["expected"].astype(np.int64).sum(axis=0))


def test_computes_on_distributed_workers(served):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client, \
            open_nwb(served["url"]) as nwb:
        array = to_dask(nwb.acquisition["ElectricalSeries"].data, limit=100_000)
        mean = client.compute(array.mean(axis=0)).result(timeout=120)
    np.testing.assert_allclose(mean, served["expected"].mean(axis=0))


def test_each_stored_chunk_is_fetched_once(served):
    proxy = served["proxy"]
    with open_nwb(served["url"]) as nwb:  # metadata now cached: tasks open with no request
        dset = nwb.acquisition["ElectricalSeries"].data
        stored = []
        dset.id.chunk_iter(lambda info: stored.append(info.size))
        array = to_dask(dset, limit=100_000)
        arrays._handles.clear()
        proxy.reset_stats()
        array.sum().compute(scheduler="threads")
        stats = proxy.stats
    assert stats["bytes"] == sum(stored)
    assert stats["requests"] <= array.npartitions * 2


def test_local_files_and_zarr(served, tmp_path):
    import zarr

    with h5py.File(served["path"]) as f:
        array = to_dask(f["acquisition/ElectricalSeries/data"])
        (total,) = dask.compute(array.sum(axis=0, dtype=np.int64), scheduler="processes")
    np.testing.assert_array_equal(total, served["expected"].sum(axis=0, dtype=np.int64))
    z = zarr.open_array(tmp_path / "a.zarr", mode="w", shape=(1000, 8), chunks=(100, 8),
                        dtype="f4")
    z[:] = np.arange(8000, dtype="f4").reshape(1000, 8)
    array = to_dask(z, limit=1600)
    assert array.chunks[0][0] % 100 == 0 and array.numblocks[0] > 1
    np.testing.assert_array_equal(array.compute(), z[:])


def test_computations_show_progress_only_when_slow(served, capsys, monkeypatch):
    import time

    arrays.show_progress(False)
    with open_nwb(served["url"]) as nwb:
        data = to_dask(nwb.acquisition["ElectricalSeries"].data, limit=100_000)
        (total,) = arrays.compute(data.sum())  # quick: no bar
        assert total == served["expected"].sum(dtype=np.int64)
        data.sum().compute(scheduler="threads")
        assert "dandilab" not in capsys.readouterr().err
        monkeypatch.setattr(arrays, "PROGRESS_DELAY", 0.2)
        arrays.show_progress(False)
        arrays.show_progress()  # again, with the shorter delay
        slow = data.map_blocks(lambda b: (time.sleep(0.1), b)[1], dtype=data.dtype)
        assert slow.sum().compute(scheduler="threads") == total
    err = capsys.readouterr().err
    assert "dandilab" in err and "100%" in err  # tqdm's bar, to its end
    arrays.show_progress(False)


@pytest.mark.parametrize("filters", [{"compression": "gzip", "shuffle": True},
                                     {"compression": "gzip"}, {"shuffle": True}, {},
                                     {"compression": "lzf"}])
def test_decoded_regions_equal_h5py(tmp_path, filters):
    """Regions that cut stored chunks, unwritten chunks (fill value) and filters the codec
    does not decode (lzf: h5py decodes) read as h5py reads them, remote and local."""
    path = tmp_path / "f.h5"
    data = np.random.default_rng(1).normal(size=(1000, 30)).astype("f4")
    with h5py.File(path, "w") as f:
        d = f.create_dataset("x", shape=data.shape, dtype="f4", chunks=(128, 8),
                             fillvalue=-7.0, **filters)
        d[:700] = data[:700]  # the chunks past row 768 are never written
    with h5py.File(path) as f:
        expected = f["x"][:]
    with BlobStore(tmp_path / "s3") as s3, NetProxy(s3.endpoint_url, rtt=0, bandwidth=None) as proxy:
        s3.upload_file(path, "blobs/abc/def/f")
        from dandilab.remote import RemoteFile

        remote = RemoteFile(f"{proxy.url}/{s3.bucket}/blobs/abc/def/f", cache=False)
        with h5py.File(remote, "r") as rf, h5py.File(path) as lf:
            for source in (rf, lf):
                for chunks in ("auto", (300, 7)):
                    array = to_dask(source["x"], chunks=chunks, limit=128 * 8 * 4 * 3)
                    np.testing.assert_array_equal(array.compute(scheduler="threads"), expected)
                    np.testing.assert_array_equal(array[650:900, 5:20].compute(),
                                                  expected[650:900, 5:20])
        remote.close()


def test_a_contiguous_dataset_gets_row_tasks_of_the_usual_size(tmp_path):
    """A 2 GB contiguous (unchunked) dataset is split by rows into tasks of about the
    default limit, each one byte range of the file, not one 2 GB task."""
    path = tmp_path / "contiguous.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("big", shape=(100_000_000, 10), dtype="int16")  # unwritten: no bytes
        f["small"] = np.arange(30_000, dtype="f8").reshape(10_000, 3)
    with h5py.File(path, "r") as f:
        big = to_dask(f["big"])
        assert big.chunks[1] == (10,) and big.numblocks[0] >= 2e9 / arrays.DEFAULT_LIMIT
        assert max(big.chunks[0]) * 10 * 2 <= arrays.DEFAULT_LIMIT
        small = to_dask(f["small"], limit=24_000)  # 1 000 rows per task
        assert small.chunks == ((1_000,) * 10, (3,))
        (_read, _where, region, ranges) = small.__dask_graph__()[(small.name, 2, 0)]
        assert region == (slice(2_000, 3_000), slice(0, 3))
        offset = f["small"].id.get_offset()
        assert ranges == ((None, offset + 2_000 * 24, 1_000 * 24, 0),)  # its rows' bytes
        np.testing.assert_array_equal(small.compute(), f["small"][:])
