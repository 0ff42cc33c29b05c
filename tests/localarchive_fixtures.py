"""Fixtures for the local archive's tests (imported by conftest.py).

``local_archive`` is one running ``LocalArchive`` for the session over a folder
holding a small Dandiset that these fixtures write themselves (``SYNTHETIC``:
a real pynwb file, a path with '#', a space and unicode, a metadata-only blob,
a zarr with content, a published version), an embargoed Dandiset owned by alice
(``EMBARGOED``: a blob and a zarr with content) plus, when ../shared/fixtures is
there, the nine real Dandisets imported from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SYNTHETIC = "000999"
SYNTHETIC_PUBLISHED = "0.240102.1200"
SYNTHETIC_NAME = "Local archive test Dandiset: a tiny ecephys session"
USERS = {
    # username: (status, api_key, admin)
    "alice": ("APPROVED", "a11ce0000000000000000000000000000000a11c", False),
    "pat": ("PENDING", "9a70000000000000000000000000000000009a7", False),
    "root": ("APPROVED", "7007000000000000000000000000000000007007", True),
}
PUBLIC_API = "https://api.dandiarchive.org/api"
PUBLIC_S3 = "https://dandiarchive.s3.amazonaws.com"
CREATED = "2024-01-02T10:00:00+00:00"


@dataclass(frozen=True)
class SyntheticAsset:
    asset_id: str
    path: str
    blob: str | None = None
    zarr: str | None = None
    content: Path | None = None  # None: metadata-only


def _digest(path: Path) -> dict:
    data = path.read_bytes()
    md5_of_parts = hashlib.md5(hashlib.md5(data).digest()).hexdigest()
    return {
        "dandi:sha2-256": hashlib.sha256(data).hexdigest(),
        "dandi:dandi-etag": f"{md5_of_parts}-1",  # one part, as dandi computes it
    }


def write_tiny_nwb(path: Path) -> None:
    """A small but real NWB file: one TimeSeries of 2 000 x 4 int16 samples, chunked."""
    from datetime import UTC, datetime

    import numpy as np
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    nwb = NWBFile(
        session_description="local archive test session",
        identifier="localarchive-test-0001",
        session_start_time=datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
        subject=Subject(subject_id="01", species="Mus musculus", sex="U", age="P90D"),
    )
    data = (np.arange(8000, dtype=np.int16) % 1000).reshape(2000, 4)
    nwb.add_acquisition(TimeSeries(
        name="voltage", data=H5DataIO(data, chunks=(500, 4)), unit="uV", rate=1000.0,
    ))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def _asset_record(asset: SyntheticAsset, size: int, digest: dict, fmt: str) -> dict:
    content_s3 = (f"{PUBLIC_S3}/zarr/{asset.zarr}/" if asset.zarr
                  else f"{PUBLIC_S3}/blobs/{asset.blob[:3]}/{asset.blob[3:6]}/{asset.blob}")
    return {
        "asset_id": asset.asset_id, "blob": asset.blob, "zarr": asset.zarr,
        "path": asset.path, "size": size, "created": CREATED, "modified": CREATED,
        "metadata": {
            "id": f"dandiasset:{asset.asset_id}", "identifier": asset.asset_id,
            "schemaKey": "Asset", "schemaVersion": "0.6.4", "path": asset.path,
            "contentSize": size, "encodingFormat": fmt, "digest": digest,
            "contentUrl": [f"{PUBLIC_API}/assets/{asset.asset_id}/download/", content_s3],
            "access": [{"schemaKey": "AccessRequirements", "status": "dandi:OpenAccess"}],
            "wasAttributedTo": [{
                "schemaKey": "Participant", "identifier": "01",
                "species": {"schemaKey": "SpeciesType", "name": "House mouse",
                            "identifier": "http://purl.obolibrary.org/obo/NCBITaxon_10090"},
            }],
        },
    }


def _dandiset_metadata(version: str) -> dict:
    md = {
        "@context": "https://raw.githubusercontent.com/dandi/schema/master/releases/0.6.4/context.json",
        "schemaKey": "Dandiset", "schemaVersion": "0.6.4",
        "id": f"DANDI:{SYNTHETIC}/{version}", "identifier": f"DANDI:{SYNTHETIC}",
        "version": version, "name": SYNTHETIC_NAME,
        "description": "Written by the local archive's tests: squirrelfish voltage traces.",
        "keywords": ["local-archive-test", "ecephys"],
        "contributor": [{"schemaKey": "Person", "name": "Tester, Ada",
                         "roleName": ["dcite:Author", "dcite:ContactPerson"]}],
        "license": ["spdx:CC-BY-4.0"],
        "dateCreated": CREATED,
        "url": f"https://dandiarchive.org/dandiset/{SYNTHETIC}/{version}",
        "manifestLocation": [f"{PUBLIC_API}/dandisets/{SYNTHETIC}/versions/{version}/assets/"],
    }
    if version != "draft":
        md["datePublished"] = "2024-01-02T12:00:00+00:00"
        md["doi"] = f"10.48324/dandi.{SYNTHETIC}/{version}"
    return md


SYNTHETIC_ASSETS = [
    SyntheticAsset("0a000000-0000-4000-8000-000000000001", "sub-01/sub-01_ses-1_ecephys.nwb",
                   blob="b1000000-0000-4000-8000-000000000001"),
    SyntheticAsset("0a000000-0000-4000-8000-000000000002",
                   "sub-02 #2/sub-02#2 säule_ecephys.nwb",
                   blob="b1000000-0000-4000-8000-000000000002"),
    SyntheticAsset("0a000000-0000-4000-8000-000000000003", "README.md",
                   blob="b1000000-0000-4000-8000-000000000003"),
    SyntheticAsset("0a000000-0000-4000-8000-000000000004", "sub-01/sub-01_image.zarr",
                   zarr="2a000000-0000-4000-8000-000000000004"),
]
# A small but valid OME-Zarr (v0.4 multiscales, zarr v2): one level, a 4 x 6 uint16
# image stored as four uncompressed 2 x 3 chunks holding 0..23.
ZARR_IMAGE = np.arange(24, dtype="<u2").reshape(4, 6)
ZARR_KEYS = {
    ".zgroup": b'{"zarr_format": 2}',
    ".zattrs": json.dumps({"multiscales": [{
        "version": "0.4", "name": "image", "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0]}]}],
        "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]}]}).encode(),
    "0/.zarray": json.dumps({"zarr_format": 2, "shape": [4, 6], "chunks": [2, 3],
                             "dtype": "<u2", "compressor": None, "fill_value": 0,
                             "order": "C", "filters": None}).encode(),
    **{f"0/{i}.{j}": ZARR_IMAGE[2 * i:2 * i + 2, 3 * j:3 * j + 3].tobytes()
       for i in range(2) for j in range(2)},
}


def write_synthetic_dandiset(archive: Path) -> dict[str, Path]:
    """Write ``SYNTHETIC`` into the archive folder; returns the content file of each path."""
    folder = archive / "dandisets" / SYNTHETIC
    folder.mkdir(parents=True, exist_ok=True)
    (archive / "blobs").mkdir(exist_ok=True)
    nwb = archive / "tiny.nwb"
    write_tiny_nwb(nwb)
    contents: dict[str, Path] = {}
    records = []
    for asset in SYNTHETIC_ASSETS:
        if asset.zarr:
            zfolder = archive / "zarr" / asset.zarr
            for key, data in ZARR_KEYS.items():
                (zfolder / key).parent.mkdir(parents=True, exist_ok=True)
                (zfolder / key).write_bytes(data)
            size = sum(len(d) for d in ZARR_KEYS.values())
            records.append(_asset_record(asset, size, {}, "application/x-zarr"))
            continue
        if asset.path.endswith(".nwb"):
            blob_file = archive / "blobs" / asset.blob
            if asset.path.startswith("sub-01/"):
                shutil.copyfile(nwb, blob_file)
            else:
                blob_file.symlink_to(nwb)  # blobs may be symlinks
            contents[asset.path] = blob_file
            records.append(_asset_record(asset, nwb.stat().st_size, _digest(nwb),
                                         "application/x-nwb"))
        else:  # metadata-only: no file under blobs/
            records.append(_asset_record(asset, 1234, {"dandi:sha2-256": "0" * 64},
                                         "text/markdown"))
    (folder / "draft.assets.json").write_text(json.dumps(records, indent=1))
    for version in ("draft", SYNTHETIC_PUBLISHED):
        (folder / f"{version}.metadata.json").write_text(json.dumps(_dandiset_metadata(version)))
    (folder / "dandiset.json").write_text(json.dumps({
        "identifier": SYNTHETIC, "created": CREATED, "modified": "2024-01-02T12:00:00+00:00",
        "contact_person": "Tester, Ada", "embargo_status": "OPEN", "owners": ["alice"],
    }))
    return contents


EMBARGOED = "000997"
EMBARGOED_CREATED = "2024-03-04T10:00:00+00:00"  # after SYNTHETIC: listings sort by creation
EMBARGOED_BLOB = SyntheticAsset("0e970000-0000-4000-8000-000000000001",
                                "sub-secret/sub-secret_ses-1_ecephys.nwb",
                                blob="b9970000-0000-4000-8000-000000000001")
EMBARGOED_ZARR = SyntheticAsset("0e970000-0000-4000-8000-000000000002",
                                "sub-secret/sub-secret_image.zarr",
                                zarr="29970000-0000-4000-8000-000000000002")
EMBARGOED_BYTES = bytes(range(256)) * 64  # 16 KiB that appear nowhere else


def write_embargoed_dandiset(archive: Path) -> None:
    """Write ``EMBARGOED`` (owned by alice): a blob and a zarr whose bytes are in the store."""
    folder = archive / "dandisets" / EMBARGOED
    folder.mkdir(parents=True, exist_ok=True)
    (archive / "blobs").mkdir(exist_ok=True)
    blob_file = archive / "blobs" / EMBARGOED_BLOB.blob
    blob_file.write_bytes(EMBARGOED_BYTES)
    zfolder = archive / "zarr" / EMBARGOED_ZARR.zarr
    for key, data in ZARR_KEYS.items():
        (zfolder / key).parent.mkdir(parents=True, exist_ok=True)
        (zfolder / key).write_bytes(data)
    embargoed_access = [{"schemaKey": "AccessRequirements", "status": "dandi:EmbargoedAccess"}]
    records = [
        _asset_record(EMBARGOED_BLOB, len(EMBARGOED_BYTES), _digest(blob_file),
                      "application/x-nwb"),
        _asset_record(EMBARGOED_ZARR, sum(len(d) for d in ZARR_KEYS.values()), {},
                      "application/x-zarr"),
    ]
    for record in records:
        record["created"] = record["modified"] = EMBARGOED_CREATED
        record["metadata"]["access"] = embargoed_access
    (folder / "draft.assets.json").write_text(json.dumps(records, indent=1))
    metadata = _dandiset_metadata("draft")
    metadata.update(
        id=f"DANDI:{EMBARGOED}/draft", identifier=f"DANDI:{EMBARGOED}",
        name="Embargoed test Dandiset", description="Only alice may see this: mantis shrimp.",
        url=f"https://dandiarchive.org/dandiset/{EMBARGOED}/draft", dateCreated=EMBARGOED_CREATED,
        access=embargoed_access,
        manifestLocation=[f"{PUBLIC_API}/dandisets/{EMBARGOED}/versions/draft/assets/"],
    )
    (folder / "draft.metadata.json").write_text(json.dumps(metadata))
    (folder / "dandiset.json").write_text(json.dumps({
        "identifier": EMBARGOED, "created": EMBARGOED_CREATED, "modified": EMBARGOED_CREATED,
        "contact_person": "Tester, Ada", "embargo_status": "EMBARGOED", "owners": ["alice"],
    }))


def write_users(archive: Path) -> None:
    users = [
        {"username": name, "first_name": name.title(), "last_name": "Example",
         "email": f"{name}@example.org", "status": status, "api_key": key, "admin": admin}
        for name, (status, key, admin) in USERS.items()
    ]
    (archive / "archive.json").write_text(json.dumps({"name": "test archive", "users": users}))


@pytest.fixture(scope="session")
def local_archive_dir(tmp_path_factory) -> Path:
    """An archive folder: the synthetic Dandiset, users, and the real fixtures when present."""
    from dandihub.localarchive.fixtures import find_shared_fixtures, import_fixtures

    folder = tmp_path_factory.mktemp("local-archive")
    shared = find_shared_fixtures()
    if shared is not None:
        import_fixtures(shared, folder)
    write_synthetic_dandiset(folder)
    write_embargoed_dandiset(folder)
    write_users(folder)
    return folder


@pytest.fixture(scope="session")
def local_archive(local_archive_dir):
    """The running archive: ``.api_url``, ``.s3_url``, ``.s3_endpoint_url``, ``.store``."""
    from dandihub.localarchive.server import LocalArchive

    with LocalArchive(local_archive_dir) as running:
        yield running


@pytest.fixture(scope="session")
def real_dandisets(local_archive):
    """Skip unless the real Dandisets from ../shared/fixtures are in the local archive."""
    if local_archive.store.dandiset("000006") is None:
        pytest.skip("../shared/fixtures is absent: the real Dandisets are not in the archive")
    return local_archive
