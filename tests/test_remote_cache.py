"""dandilab.remote's caches against the local archive's S3 API (through the network proxy,
which counts requests and bytes): chunk bytes kept on disk and read back only when they are
ours and intact, a bounded in-memory block cache, and no byte fetched twice."""

from __future__ import annotations

import os
import uuid

import h5py
import numpy as np
import pytest
from dandihub.localarchive.netproxy import NetProxy
from dandilab import remote

from .localarchive_fixtures import local_archive, local_archive_dir  # noqa: F401

ROWS, COLS, CHUNK_ROWS = 60_000, 64, 3_000  # int16: 384 KB chunks, 7.7 MB of data


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DANDILAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DANDILAB_CHUNK_CACHE", raising=False)


@pytest.fixture()
def proxy(local_archive):  # noqa: F811
    with NetProxy(local_archive.s3_endpoint_url, rtt=0, bandwidth=None, stall=5) as running:
        yield running


def upload(local_archive, proxy, path) -> str:  # noqa: F811
    """Put a file in the archive's S3 bucket; its URL through the proxy."""
    key = f"test-remote-cache/{uuid.uuid4()}/{path.name}"
    local_archive.blobstore.upload_file(path, key)
    return f"{proxy.url}/{local_archive.blobstore.bucket}/{key}"


@pytest.fixture(scope="module")
def series_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "series.h5"
    data = np.random.default_rng(1).integers(-2000, 2000, (ROWS, COLS), dtype=np.int16)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data, chunks=(CHUNK_ROWS, COLS))
        f.attrs["note"] = "metadata at the end" * 100
    return path, data


def read_slice(url, size, digest="digest-1", **kw):
    """ES-like slice read through h5py over a new RemoteFile: (array, the RemoteFile)."""
    f = remote.RemoteFile(url, digest=digest, size=size, **kw)
    with remote.open_h5(f) as h5:
        out = h5["data"][0:30_000, 0:COLS]
    for fut in list(f._inflight.values()):
        fut.result()  # its read-ahead done (kept on disk), as a later open would find it
    f.close()
    return out, f


def chunk_files(tmp_path):
    return sorted((tmp_path / "cache" / "chunks").rglob("*-*"))


def test_a_second_open_reads_the_slice_from_disk(series_file, local_archive, proxy,  # noqa: F811
                                                 tmp_path, monkeypatch):
    path, data = series_file
    url, size = upload(local_archive, proxy, path), path.stat().st_size
    first, _ = read_slice(url, size)
    np.testing.assert_array_equal(first, data[0:30_000])
    assert proxy.reset_stats()["requests"] > 0
    second, f = read_slice(url, size)  # a new RemoteFile: metadata and chunks from disk
    np.testing.assert_array_equal(second, data[0:30_000])
    assert (f.requests, f.bytes_fetched) == (0, 0)
    assert proxy.stats["requests"] == 0
    files = chunk_files(tmp_path)
    assert files and all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    assert all(p.parent.stat().st_mode & 0o777 == 0o700 for p in files)
    # to_dask's way (prefetch, then read_range) is served from disk as well
    g = remote.RemoteFile(url, digest="digest-1", size=size)
    with remote.open_h5(g) as h5:
        ranges = [(c.byte_offset, c.size) for c in
                  (h5["data"].id.get_chunk_info(i) for i in range(5))]
    g.prefetch(ranges)
    assert all(g.read_range(o, n) == path.read_bytes()[o:o + n] for o, n in ranges)
    assert g.requests == 0
    # off: the same read fetches its chunks again
    monkeypatch.setenv("DANDILAB_CHUNK_CACHE", "0")
    _, off = read_slice(url, size)
    assert off.bytes_fetched > 0.9 * data[0:30_000].nbytes
    _, off = read_slice(url, size, chunk_cache=False)
    assert off.bytes_fetched > 0.9 * data[0:30_000].nbytes


def test_another_digest_does_not_reuse_the_cache(series_file, local_archive, proxy):  # noqa: F811
    path, data = series_file
    url, size = upload(local_archive, proxy, path), path.stat().st_size
    read_slice(url, size, digest="digest-1")
    again, f = read_slice(url, size, digest="digest-2")  # the asset changed
    np.testing.assert_array_equal(again, data[0:30_000])
    assert f.bytes_fetched > 0.9 * data[0:30_000].nbytes


@pytest.mark.parametrize("spoil", ["group-writable", "other-writable", "another-uid", "corrupt"])
def test_a_cache_file_that_is_not_ours_alone_or_is_damaged_is_not_read(
        series_file, local_archive, proxy, tmp_path, spoil):  # noqa: F811
    path, data = series_file
    url, size = upload(local_archive, proxy, path), path.stat().st_size
    read_slice(url, size)
    files = chunk_files(tmp_path)
    assert files
    for p in files:
        if spoil == "group-writable":
            os.chmod(p, 0o620)
        elif spoil == "other-writable":
            os.chmod(p, 0o602)
        elif spoil == "another-uid":
            if os.getuid() != 0:
                pytest.skip("changing a file's owner needs root")
            os.chown(p, 12345, 12345)
        else:
            with open(p, "r+b") as f:  # one byte of the data changed
                f.seek(-1000, 2)
                byte = f.read(1)
                f.seek(-1000, 2)
                f.write(bytes([byte[0] ^ 0xFF]))
    again, f = read_slice(url, size)
    np.testing.assert_array_equal(again, data[0:30_000])
    assert f.bytes_fetched > 0.9 * data[0:30_000].nbytes  # fetched again, not read from those files


def test_the_block_cache_stays_within_its_budget_over_a_long_scan(tmp_path, local_archive,  # noqa: F811
                                                                   proxy, monkeypatch):
    """h5py scanning a dataset of tiny chunks reads them through the block cache: it keeps
    at most BLOCK_CACHE bytes besides the head and tail blocks, which stay."""
    monkeypatch.setattr(remote, "BLOCK_CACHE", 1024 * 1024)
    path = tmp_path / "small-chunks.h5"
    data = np.arange(100_000 * 8, dtype=np.int16).reshape(100_000, 8)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data, chunks=(1, 8))
    url, size = upload(local_archive, proxy, path), path.stat().st_size
    f = remote.RemoteFile(url, digest="small", size=size, cache=False)
    pinned = set(f._blocks)
    peak = 0
    with remote.open_h5(f) as h5:
        for start in range(0, 100_000, 10_000):
            np.testing.assert_array_equal(h5["data"][start:start + 10_000], data[start:start + 10_000])
            peak = max(peak, f._block_bytes, sum(len(f._blocks[b]) for b in f._lru))
        # cold reads of more than the budget, none at the head or the tail...
        before = f.requests
        for offset in range(remote.HEAD + remote.BLOCK, size - remote.TAIL - remote.BLOCK,
                            remote.BLOCK):
            f.pread(offset, 10)
        assert f.requests - before > remote.BLOCK_CACHE // remote.BLOCK
        before = f.requests
        f.pread(0, 100), f.pread(size - 100, 100)  # ...left the metadata blocks there
        assert f.requests == before
    assert f.bytes_fetched > 3 * remote.BLOCK_CACHE  # it did scan more than the budget
    assert peak <= remote.BLOCK_CACHE
    assert sum(len(b) for b in f._blocks.values()) <= remote.BLOCK_CACHE + remote.BLOCK + remote.TAIL  # (the head block may be completed)
    assert pinned <= set(f._blocks)  # the metadata at the head and the tail stayed


@pytest.fixture()
def blob(tmp_path, local_archive, proxy):  # noqa: F811
    content = np.random.default_rng(7).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    (tmp_path / "blob").write_bytes(content)
    return upload(local_archive, proxy, tmp_path / "blob"), content


def test_a_read_within_the_tail_fetched_at_open_costs_no_request(blob, proxy):
    url, content = blob
    size = len(content)
    f = remote.RemoteFile(url, digest="blob", size=size, cache=False)
    opened = (f.requests, f.bytes_fetched)
    proxy.reset_stats()
    offset = size - 700_000  # a 300 KB (large) read inside the tail
    assert f.pread(offset, 300_000) == content[offset:offset + 300_000]
    assert (f.requests, f.bytes_fetched) == opened
    # a large read reaching into the tail fetches only the bytes before it
    tail_start = min(b for b in f._blocks if b > 0) * remote.BLOCK
    offset = tail_start - 100_000
    assert f.pread(offset, 400_000) == content[offset:offset + 400_000]
    assert (f.requests, f.bytes_fetched) == (opened[0] + 1, opened[1] + 100_000)
    assert proxy.stats["requests"] == 1


def test_a_sequential_scan_fetches_every_byte_once(blob):
    """Large sequential reads with read-ahead over the whole file: the read-ahead stops
    where the tail (cached at open) starts and at the end of the file."""
    url, content = blob
    f = remote.RemoteFile(url, digest="blob", size=len(content), cache=False)
    pos, got = remote.HEAD, [content[:remote.HEAD]]
    while pos < len(content):
        got.append(f.pread(pos, 300_000))
        pos += 300_000
    for fut in list(f._inflight.values()):
        fut.result()
    assert b"".join(got) == content
    assert f.bytes_fetched == len(content)
    # read-ahead bounded by the caller's extent
    g = remote.RemoteFile(url, digest="blob", size=len(content), cache=False)
    g.readahead_stop = remote.HEAD + 600_000
    for i in range(3):
        g.pread(remote.HEAD + i * 300_000, 300_000)
    for fut in list(g._inflight.values()):
        fut.result()
    assert g.bytes_fetched == remote.HEAD + 900_000 + (len(content) - min(
        b for b in g._blocks if b > 0) * remote.BLOCK)


def test_chunk_files_keep_to_the_cache_budget(series_file, local_archive, proxy, tmp_path,  # noqa: F811
                                              monkeypatch):
    """The chunk files count in DANDILAB_CACHE_MB: a process that wrote a tenth of it trims
    at once (oldest first), without waiting for the ten-minute trim."""
    import time

    from dandilab import cache

    monkeypatch.setenv("DANDILAB_CACHE_MB", "2")
    monkeypatch.setattr(cache, "_last_trim", time.monotonic())  # the periodic trim just ran
    path, data = series_file
    url, size = upload(local_archive, proxy, path), path.stat().st_size
    read_slice(url, size)  # 3.8 MB of chunks written

    def held():
        return sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file())

    deadline = time.monotonic() + 10
    while held() > 2e6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < held() <= 2e6
    again, f = read_slice(url, size)
    np.testing.assert_array_equal(again, data[0:30_000])
    assert f.bytes_fetched > 0  # what was trimmed is fetched again
