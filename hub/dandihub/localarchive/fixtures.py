"""Turn the shared real fixtures (``../shared/fixtures``) into an archive folder.

The nine real Dandisets' records are copied as they are (their folders already
follow the archive layout); the NWB files that are byte-identical to an asset
(same sha256 as the record's digest) become that asset's blob, by symlink, so
those assets have real bytes; the real zarr listing becomes a listing-only zarr.
Everything else stays metadata-only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from .store import ArchiveFolderError

log = logging.getLogger(__name__)

ENV_VAR = "DANDIHUB_SHARED_FIXTURES"
# The files of a fixtures Dandiset folder that are part of the archive layout.
_RECORD_SUFFIXES = (".metadata.json", ".assets.json", ".assets.json.gz",
                    ".asset_listing.tsv", ".asset_listing.tsv.gz")


def find_shared_fixtures() -> Path | None:
    """The shared fixtures folder, or None when there is none.

    ``$DANDIHUB_SHARED_FIXTURES`` when set (set but empty: none, to run as if
    ../shared were absent), else ``<repo>/../shared/fixtures``.
    """
    env = os.environ.get(ENV_VAR)
    if env is not None:
        candidate = Path(env) if env else None
    else:
        repo_root = Path(__file__).resolve().parents[3]  # hub/dandihub/localarchive -> repo
        candidate = repo_root.parent / "shared" / "fixtures"
    if candidate is not None and (candidate / "api" / "dandisets").is_dir():
        return candidate
    return None


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _records(folder: Path) -> list[dict]:
    for name in ("draft.assets.json", "draft.assets.json.gz"):
        path = folder / name
        if path.is_file():
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                return json.load(f)
    return []


def import_fixtures(shared_fixtures_dir: str | Path, archive_dir: str | Path) -> dict[str, int]:
    """Write the shared fixtures' Dandisets into ``archive_dir`` (created if needed).

    Returns counts: ``dandisets``, ``blobs`` (assets given real bytes), ``zarrs``
    (listings). Existing files in ``archive_dir`` are replaced; ``archive.json``
    is left alone (accounts are not the fixtures' business).
    """
    shared = Path(shared_fixtures_dir)
    source = shared / "api" / "dandisets"
    if not source.is_dir():
        raise ArchiveFolderError(f"{shared} has no api/dandisets/: not the shared fixtures folder")
    archive = Path(archive_dir)
    (archive / "dandisets").mkdir(parents=True, exist_ok=True)

    blobs_by_sha: dict[str, list[str]] = {}
    zarr_ids: set[str] = set()
    dandisets = 0
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        target = archive / "dandisets" / folder.name
        target.mkdir(exist_ok=True)
        for path in folder.iterdir():
            if path.name.endswith(_RECORD_SUFFIXES):
                shutil.copyfile(path, target / path.name)
        dandisets += 1
        for record in _records(folder):
            sha = (record.get("metadata") or {}).get("digest", {}).get("dandi:sha2-256")
            if record.get("blob") and sha:
                blobs_by_sha.setdefault(sha, []).append(record["blob"])
            if record.get("zarr"):
                zarr_ids.add(record["zarr"])

    blobs = 0
    nwb = shared / "nwb"
    if nwb.is_dir():
        (archive / "blobs").mkdir(exist_ok=True)
        for path in sorted(nwb.glob("*.nwb")):
            for blob_id in blobs_by_sha.get(_sha256(path), []):
                link = archive / "blobs" / blob_id
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(path.resolve())
                blobs += 1

    zarrs = 0
    for zarr_id in sorted(zarr_ids):
        listing = shared / "api" / "zarr" / zarr_id / "files.tsv"
        if listing.is_file():
            (archive / "zarr").mkdir(exist_ok=True)
            shutil.copyfile(listing, archive / "zarr" / f"{zarr_id}.files.tsv")
            zarrs += 1
    log.info("Imported %d Dandisets (%d blobs with content, %d zarr listings) into %s",
             dandisets, blobs, zarrs, archive)
    return {"dandisets": dandisets, "blobs": blobs, "zarrs": zarrs}
