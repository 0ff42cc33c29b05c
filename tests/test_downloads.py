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


# --- asset paths from the archive cannot leave the target folder ------------------------

CONTENT = b"not yours to write"


def _downloader():
    return lambda start_at=0: iter([CONTENT[start_at:]])


class ZarrEntry:
    """A key of a zarr asset as dandi's client lists it (its str is the key)."""

    def __init__(self, key: str):
        from types import SimpleNamespace

        self.key, self.size, self.digest = key, len(CONTENT), SimpleNamespace(value=None)
        self.get_download_file_iter = _downloader

    def __str__(self) -> str:
        return self.key


def fake_asset(path: str, keys: tuple[str, ...] = ()):
    """An asset record as an odd or malicious archive could send it (no archive needed: the
    path is the attack); ``keys``: those of a zarr."""
    from types import SimpleNamespace

    entries = [ZarrEntry(k) for k in keys]
    remote = SimpleNamespace(get_download_file_iter=_downloader, iterfiles=lambda: iter(entries))
    return SimpleNamespace(path=path, size=len(CONTENT) * max(1, len(keys)),
                           is_zarr=bool(keys), metadata={}, remote=remote)


def written(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


@pytest.mark.parametrize(("path", "reason"), [
    ("../escape.nwb", "has '..', '.' or empty parts"),
    ("sub-01/../../escape.nwb", "has '..', '.' or empty parts"),
    ("{outside}/absolute.nwb", "is absolute"),
    ("sub-01/a\x00b.nwb", "contains NUL or control characters"),
    ("..\\..\\escape.nwb", "contains a backslash"),
    ("sub-01\\..\\..\\..\\escape.nwb", "contains a backslash"),
    ("", "is empty"),
])
def test_an_asset_path_that_leaves_the_folder_is_refused(tmp_path, path, reason):
    to, outside = tmp_path / "to" / "inner", tmp_path / "outside"
    to.mkdir(parents=True)
    outside.mkdir()
    path = path.format(outside=outside)
    with pytest.raises(DownloadError) as refused:
        dl.download(fake_asset(path), to, progress=False)
    assert type(refused.value).__name__ == "UnsafePathError"
    assert str(refused.value) == (
        f"Refusing to download {path!r}: the archive's path {reason}, so the file could land "
        f"outside {to}. Nothing was written; report the asset to the archive.")
    assert written(tmp_path) == []


def test_a_symlink_in_the_folder_that_leads_out_is_not_followed(tmp_path):
    to, outside = tmp_path / "to", tmp_path / "outside"
    to.mkdir()
    outside.mkdir()
    (to / "shared").symlink_to(outside)  # a folder link someone left in the target folder
    with pytest.raises(DownloadError, match=r"'shared/x.nwb': the archive's path leads out "
                                                 r"of .* through a symlink"):
        dl.download(fake_asset("shared/x.nwb"), to, progress=False)
    (to / "x.nwb.part").symlink_to(outside / "victim")  # the .part a download appends to
    with pytest.raises(DownloadError, match=r"'x.nwb': the archive's path leads out"):
        dl.download(fake_asset("x.nwb"), to, progress=False)
    (to / "y.nwb").symlink_to(outside / "victim2")  # the final name itself
    with pytest.raises(DownloadError, match=r"'y.nwb': the archive's path leads out"):
        dl.download(fake_asset("y.nwb"), to, progress=False)
    assert written(outside) == []


def test_a_zarr_key_that_leaves_the_folder_is_refused_before_anything_is_written(tmp_path):
    to = tmp_path / "to"
    asset = fake_asset("x.zarr", ("zarr.json", "0/0", "../../../escape"))
    with pytest.raises(DownloadError, match=r"'x.zarr/../../../escape'"):
        dl.download(asset, to, progress=False)
    assert written(tmp_path) == []


def test_a_safe_path_through_an_inside_symlink_still_downloads(tmp_path):
    to = tmp_path / "to"
    (to / "real").mkdir(parents=True)
    (to / "alias").symlink_to(to / "real")
    assert dl.download(fake_asset("alias/sub-01/x.nwb"), to, progress=False) \
        == to / "alias/sub-01/x.nwb"
    assert (to / "real/sub-01/x.nwb").read_bytes() == CONTENT
    zarr = dl.download(fake_asset("y.zarr", ("zarr.json", "0/0")), to, progress=False)
    assert written(zarr) == ["0/0", "zarr.json"]
