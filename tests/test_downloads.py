"""dandilab.downloads: an asset (file or zarr) to a local path, resumable and checked."""

from __future__ import annotations

import hashlib

import pytest
from dandilab import downloads as dl
from dandilab.archive import Archive
from dandilab.downloads import DownloadError

from .localarchive_fixtures import SYNTHETIC, SYNTHETIC_ASSETS, ZARR_KEYS

TINY = SYNTHETIC_ASSETS[0]


@pytest.fixture(scope="module")
def dandiset(local_archive):
    return Archive(local_archive.api_url).dandiset(SYNTHETIC, "draft")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recording(monkeypatch, asset):
    """Record where each request of the asset's downloader starts."""
    starts = []
    cls = type(asset.remote)
    original = cls.get_download_file_iter

    def wrapped(self, *args, **kwargs):
        downloader = original(self, *args, **kwargs)

        def record(start_at=0):
            starts.append(start_at)
            return downloader(start_at)

        return record

    monkeypatch.setattr(cls, "get_download_file_iter", wrapped)
    return starts


def test_download_is_checked_and_shows_progress(dandiset, local_archive_dir, tmp_path,
                                                monkeypatch, capsys):
    monkeypatch.setattr(dl, "PROGRESS_DELAY", 0)
    asset = dandiset.asset(TINY.path)
    path = asset.download(tmp_path)
    assert path == tmp_path / TINY.path
    assert sha256(path) == sha256(local_archive_dir / "blobs" / TINY.blob)
    assert not path.with_name(path.name + ".part").exists()
    assert "100%" in capsys.readouterr().err  # tqdm's bar reached the end
    starts = recording(monkeypatch, asset)
    assert asset.download(tmp_path) == path  # already there and intact: nothing fetched
    assert starts == []


def test_an_interrupted_download_resumes(dandiset, local_archive_dir, tmp_path, monkeypatch):
    asset = dandiset.asset(TINY.path)
    content = (local_archive_dir / "blobs" / TINY.blob).read_bytes()
    part = tmp_path / (TINY.path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(content[: len(content) // 2])
    starts = recording(monkeypatch, asset)
    path = asset.download(tmp_path, progress=False)
    assert starts == [len(content) // 2]  # only the rest was requested
    assert path.read_bytes() == content


def test_a_damaged_part_is_downloaded_again(dandiset, local_archive_dir, tmp_path,
                                            monkeypatch):
    asset = dandiset.asset(TINY.path)
    content = (local_archive_dir / "blobs" / TINY.blob).read_bytes()
    part = tmp_path / (TINY.path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * (len(content) // 2))  # right length so far, wrong bytes
    starts = recording(monkeypatch, asset)
    path = asset.download(tmp_path, progress=False)
    assert starts == [len(content) // 2, 0]  # resumed, failed the digest, then from 0
    assert path.read_bytes() == content


def test_a_zarr_downloads_file_by_file(dandiset, tmp_path):
    (asset,) = [a for a in dandiset.assets() if a.is_zarr]
    path = asset.download(tmp_path, progress=False)
    assert {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()} \
        == ZARR_KEYS


def test_an_asset_without_content_fails_clearly(dandiset, tmp_path):
    readme = dandiset.asset("README.md")  # metadata only: the archive has no bytes for it
    with pytest.raises(DownloadError, match=r"README.md: the archive answered HTTP 404"):
        readme.download(tmp_path, progress=False)
