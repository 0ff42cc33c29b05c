"""The local archive against real processes: the S3 server (s3rver) and uvicorn, read with
the official ``dandi`` client, httpx, remfile/h5py/pynwb.

Tests on the real Dandisets (``real_dandisets``) skip when ../shared/fixtures is absent;
the others use the synthetic Dandiset the fixtures write (see localarchive_fixtures.py).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from .localarchive_fixtures import (
    EMBARGOED,
    SYNTHETIC,
    SYNTHETIC_ASSETS,
    SYNTHETIC_NAME,
    SYNTHETIC_PUBLISHED,
    USERS,
    ZARR_KEYS,
)

ALICE_KEY = USERS["alice"][1]
PAT_KEY = USERS["pat"][1]
NWB_PATH = SYNTHETIC_ASSETS[0].path
ODD_PATH = SYNTHETIC_ASSETS[1].path  # '#', spaces and unicode
README = SYNTHETIC_ASSETS[2]
ZARR = SYNTHETIC_ASSETS[3]


@pytest.fixture(scope="module")
def http(local_archive):
    with httpx.Client(base_url=local_archive.api_url + "/", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def client(local_archive):
    from dandi.dandiapi import DandiAPIClient

    with DandiAPIClient(api_url=local_archive.api_url) as c:
        yield c


def get(http: httpx.Client, path: str, **kwargs) -> httpx.Response:
    return http.get(path.lstrip("/"), **kwargs)


# --- the client and the service description ------------------------------------


def test_info_describes_the_local_services(http, local_archive):
    info = get(http, "info/").json()
    assert info["services"]["api"]["url"] == local_archive.api_url
    assert info["services"]["s3"]["url"] == local_archive.s3_url
    assert info["cli-minimal-version"] and info["cli-bad-versions"] == []
    assert info["schema_version"] in info["allowed_schema_versions"]


def test_dandi_client_lists_dandisets(client, local_archive):
    identifiers = [d.identifier for d in client.get_dandisets()]
    assert SYNTHETIC in identifiers
    if local_archive.store.dandiset("000006") is not None:
        assert {"000004", "000006", "000008", "000009", "000026", "000167", "000243",
                "000250", "000292"} <= set(identifiers)
    assert identifiers == sorted(identifiers)  # created order = id order here


def test_get_dandiset_and_versions(client):
    dandiset = client.get_dandiset(SYNTHETIC)
    assert dandiset.version_id == SYNTHETIC_PUBLISHED  # most recent published by default
    assert dandiset.contact_person == "Tester, Ada"
    assert dandiset.draft_version.status.value == "Valid"
    assert dandiset.most_recent_published_version.status.value == "Published"
    assert [str(v) for v in dandiset.get_versions()] == ["draft", SYNTHETIC_PUBLISHED]
    assert dandiset.version.asset_count == len(SYNTHETIC_ASSETS)
    metadata = dandiset.get_raw_metadata()
    assert metadata["name"] == SYNTHETIC_NAME and metadata["version"] == SYNTHETIC_PUBLISHED
    draft = client.get_dandiset(SYNTHETIC, "draft")
    assert draft.get_raw_metadata()["id"] == f"DANDI:{SYNTHETIC}/draft"
    info = draft.get_version("draft")
    assert info.asset_validation_errors == [] and info.name == SYNTHETIC_NAME


def test_dandiset_search_filters_and_ordering(http, local_archive):
    found = get(http, "dandisets/", params={"search": "squirrelfish voltage"}).json()
    assert [d["identifier"] for d in found["results"]] == [SYNTHETIC]
    assert found["results"][0]["draft_version"]["name"] == SYNTHETIC_NAME
    assert "dandiset" not in found["results"][0]["draft_version"]  # list shape, like the archive
    assert get(http, "dandisets/", params={"search": "no-such-word-anywhere"}).json()["count"] == 0
    ordered = get(http, "dandisets/", params={"ordering": "-id"}).json()["results"]
    ids = [d["identifier"] for d in ordered]
    assert ids == sorted(ids, reverse=True)
    published_only = get(http, "dandisets/", params={"draft": "false"}).json()["results"]
    assert all(d["most_recent_published_version"] for d in published_only)
    mine = get(http, "dandisets/", params={"user": "me"},
               headers={"Authorization": f"token {ALICE_KEY}"}).json()["results"]
    assert [d["identifier"] for d in mine] == [SYNTHETIC, EMBARGOED]  # hers, embargoed too
    if local_archive.store.dandiset("000250") is not None:
        drosophila = get(http, "dandisets/", params={"search": "drosophila"}).json()["results"]
        assert "000250" in [d["identifier"] for d in drosophila]


# --- pagination ------------------------------------------------------------------


def test_pagination_follows_the_archive(http):
    url = f"dandisets/{SYNTHETIC}/versions/draft/assets/"
    page1 = get(http, url, params={"page_size": 2}).json()
    assert page1["count"] == len(SYNTHETIC_ASSETS) and page1["previous"] is None
    assert "page=2" in page1["next"] and "page_size=2" in page1["next"]
    page2 = httpx.get(page1["next"], timeout=30).json()
    assert page2["count"] is None  # lazy pagination: count on the first page only
    assert page2["next"] is None and page2["previous"] is not None
    paths = [a["path"] for a in page1["results"] + page2["results"]]
    assert sorted(paths) == sorted(a.path for a in SYNTHETIC_ASSETS)
    beyond = get(http, url, params={"page": 9}).json()
    assert beyond["results"] == [] and beyond["count"] is None
    for bad in ("0", "-1", "x"):
        r = get(http, url, params={"page": bad})
        assert r.status_code == 404 and r.json() == {"detail": "Invalid page."}
    # page_size: invalid values fall back to the default, like DRF
    assert len(get(http, url, params={"page_size": "zero"}).json()["results"]) == 4
    # the Dandiset listing counts on every page and has no pages past the end, as the archive
    total = get(http, "dandisets/", params={"page_size": 1}).json()["count"]
    if total > 1:
        assert get(http, "dandisets/", params={"page_size": 1, "page": 2}).json()["count"] == total
    past = get(http, "dandisets/", params={"page_size": 1, "page": total + 1})
    assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}


def test_page_size_is_clamped_to_1000(real_dandisets, http):
    r = get(http, "dandisets/000008/versions/draft/assets/", params={"page_size": 5000}).json()
    assert r["count"] == 1328 and len(r["results"]) == 1000 and "page=2" in r["next"]


def test_pages_through_000008(real_dandisets, client, http):
    assets = list(client.get_dandiset("000008", "draft").get_assets())
    assert len(assets) == 1328
    assert len({a.identifier for a in assets}) == 1328
    # and by hand, following `next` with metadata
    seen, url, pages = [], "dandisets/000008/versions/draft/assets/?metadata=1&order=path", 0
    while url and pages < 20:
        body = (httpx.get(url, timeout=30) if url.startswith("http") else get(http, url)).json()
        seen += [a["path"] for a in body["results"]]
        url, pages = body["next"], pages + 1
    assert len(seen) == 1328 and seen == sorted(seen) and len(set(seen)) == 1328


# --- assets -------------------------------------------------------------------


def test_get_asset_by_path_with_hash_space_unicode(client):
    draft = client.get_dandiset(SYNTHETIC, "draft")
    asset = draft.get_asset_by_path(ODD_PATH)
    assert asset.identifier == SYNTHETIC_ASSETS[1].asset_id
    assert asset.get_raw_metadata()["path"] == ODD_PATH
    glob = [a.path for a in draft.get_assets_by_glob("*säule*")]
    assert glob == [ODD_PATH]
    assert [a.path for a in draft.get_assets_with_path_prefix("sub-02 #2/")] == [ODD_PATH]


def test_get_asset_by_path_000250(real_dandisets, client):
    dandiset = client.get_dandiset("000250", "draft")
    asset = dandiset.get_asset_by_path("sub-CS-fly#-1/sub-CS-fly#-1_behavior.nwb")
    assert asset.path == "sub-CS-fly#-1/sub-CS-fly#-1_behavior.nwb"
    assert client.get_asset(asset.identifier).path == asset.path


def test_asset_views_and_url_rewriting(http, local_archive):
    a = SYNTHETIC_ASSETS[0]
    base = f"dandisets/{SYNTHETIC}/versions/draft/assets/{a.asset_id}/"
    metadata = get(http, base).json()
    assert metadata["contentUrl"] == [
        f"{local_archive.api_url}/assets/{a.asset_id}/download/",
        f"{local_archive.s3_url}/blobs/{a.blob[:3]}/{a.blob[3:6]}/{a.blob}",
    ]
    info = get(http, base + "info/").json()
    assert {k: info[k] for k in ("asset_id", "blob", "zarr", "path")} == {
        "asset_id": a.asset_id, "blob": a.blob, "zarr": None, "path": a.path}
    assert get(http, f"assets/{a.asset_id}/info/").json() == info
    listing = get(http, f"dandisets/{SYNTHETIC}/versions/draft/assets/?metadata=1").text
    assert "api.dandiarchive.org" not in listing and "s3.amazonaws.com" not in listing


def test_download_redirects_to_real_bytes(client, local_archive):
    asset = client.get_dandiset(SYNTHETIC, "draft").get_asset_by_path(NWB_PATH)
    r = httpx.get(asset.download_url, follow_redirects=True, timeout=60)
    assert r.status_code == 200 and r.history[0].status_code == 302
    assert hashlib.sha256(r.content).hexdigest() == asset.get_raw_digest("dandi:sha2-256")
    head = httpx.head(asset.base_download_url, timeout=30)
    assert head.status_code == 302 and head.headers["location"].startswith(local_archive.s3_url)


def test_download_000006_real_files(real_dandisets, client):
    dandiset = client.get_dandiset("000006", "draft")
    checked = 0
    for asset in dandiset.get_assets():
        if real_dandisets.store.blob_file(asset.blob) is None:
            continue
        r = httpx.get(asset.download_url, follow_redirects=True, timeout=120)
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == asset.get_raw_digest("dandi:sha2-256")
        checked += 1
    assert checked == 2  # the two byte-identical NWB files in fixtures/nwb


def test_metadata_only_blob_download_is_a_clear_404(http):
    r = get(http, f"assets/{README.asset_id}/download/", follow_redirects=False)
    assert r.status_code == 404
    assert "not held by this local archive" in r.json()["detail"]


def test_unsigned_range_read_from_s3(client):
    asset = client.get_dandiset(SYNTHETIC, "draft").get_asset_by_path(NWB_PATH)
    s3_url = asset.get_content_url(regex="/blobs/")
    full = httpx.get(s3_url, timeout=30).content
    r = httpx.get(s3_url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-199/{len(full)}"
    assert r.content == full[100:200]


def test_pynwb_streams_a_blob_with_remfile(client):
    import h5py
    import remfile
    from pynwb import NWBHDF5IO

    asset = client.get_dandiset(SYNTHETIC, "draft").get_asset_by_path(ODD_PATH)
    url = asset.get_content_url(regex="/blobs/")
    with h5py.File(remfile.File(url), "r") as f, NWBHDF5IO(file=f, load_namespaces=True) as io:
        nwb = io.read()
        voltage = nwb.acquisition["voltage"]
        assert voltage.data.shape == (2000, 4)
        assert voltage.data[1000, 2] == (4000 + 2) % 1000
        assert nwb.subject.subject_id == "01"


# --- folder browsing ------------------------------------------------------------


def test_paths_browsing_synthetic(http, local_archive):
    url = f"dandisets/{SYNTHETIC}/versions/draft/assets/paths/"
    root = get(http, url).json()
    by_path = {p["path"]: p for p in root["results"]}
    assert list(by_path) == sorted(by_path) == ["README.md", "sub-01", "sub-02 #2"]
    assert by_path["sub-01"]["asset"] is None and by_path["sub-01"]["aggregate_files"] == 2
    assert by_path["README.md"]["asset"]["asset_id"] == README.asset_id
    assert by_path["README.md"]["asset"]["url"].startswith(local_archive.s3_url)
    inner = get(http, url, params={"path_prefix": "sub-02 #2/"}).json()["results"]
    assert [p["path"] for p in inner] == [ODD_PATH]
    assert inner[0]["aggregate_files"] == 1 and inner[0]["aggregate_size"] > 0
    missing = get(http, url, params={"path_prefix": "no/such/folder"})
    assert missing.status_code == 404 and missing.json() == {"detail": "Specified path not found."}


def test_paths_browsing_000026_top_level(real_dandisets, http):
    url = "dandisets/000026/versions/draft/assets/paths/"
    start = time.monotonic()
    body = get(http, url, params={"page_size": 1000}).json()
    assert time.monotonic() - start < 10
    results = body["results"]
    assert body["count"] == len(results) == 25
    folders = {p["path"]: p for p in results if p["asset"] is None}
    assert {"derivatives", "sub-I38", "sub-I48"} <= set(folders)
    assert folders["sub-I38"]["aggregate_files"] == 20213
    assert sum(p["aggregate_files"] for p in results) == 57717  # every path but dandiset.yaml
    child = get(http, url, params={"path_prefix": "sub-I45"}).json()
    assert child["count"] > 0 and all(p["path"].startswith("sub-I45/") for p in child["results"])


# --- zarr -----------------------------------------------------------------------


def test_zarr_with_content(http, client):
    listing = get(http, f"zarr/{ZARR.zarr}/files/").json()
    assert [f["Key"] for f in listing["results"]] == sorted(ZARR_KEYS)
    assert listing["next"] is None
    page = get(http, f"zarr/{ZARR.zarr}/files/", params={"limit": 1}).json()
    assert len(page["results"]) == 1 and "after=" in page["next"]
    r = httpx.get(f"{http.base_url}zarr/{ZARR.zarr}/files/",
                  params={"prefix": "0/.zarray", "download": "true"},
                  follow_redirects=True, timeout=30)
    assert r.status_code == 200 and r.content == ZARR_KEYS["0/.zarray"]
    asset = client.get_dandiset(SYNTHETIC, "draft").get_asset_by_path(ZARR.path)
    assert sorted(str(e) for e in asset.iterfiles()) == sorted(ZARR_KEYS)
    info = get(http, f"zarr/{ZARR.zarr}/").json()
    assert info["file_count"] == len(ZARR_KEYS) and info["dandiset"] == SYNTHETIC


def test_zarr_listing_only_000243(real_dandisets, client, http):
    asset = client.get_dandiset("000243", "draft").get_asset_by_path(
        "sub-S01/anat/sub-S01_T2w.ome.zarr")
    entries = list(asset.iterfiles())
    assert len(entries) == 1325
    assert sum(e.size for e in entries) == 3024625521
    r = get(http, f"zarr/{asset.zarr}/files/", params={"prefix": ".zattrs", "download": "true"})
    assert r.status_code == 404 and "not held" in r.json()["detail"]


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "dandisets/123456/",
    "dandisets/abc/",
    f"dandisets/{SYNTHETIC}/versions/0.999999.9999/",
    f"dandisets/{SYNTHETIC}/versions/draft/assets/{uuid.uuid4()}/",
    f"dandisets/{SYNTHETIC}/versions/draft/assets/{uuid.uuid4()}/download/",
    f"assets/{uuid.uuid4()}/",
    f"assets/{uuid.uuid4()}/info/",
    f"zarr/{uuid.uuid4()}/",
    "no/such/route/",
])
def test_unknown_things_are_json_404s(http, path):
    r = get(http, path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"detail": "Not found."}


def test_encoded_paths_in_routes(http):
    # an asset looked up by an id containing URL-encoded characters is simply not found
    r = get(http, f"assets/{quote('a#b c', safe='')}/")
    assert r.status_code == 404 and r.json() == {"detail": "Not found."}


# --- users ----------------------------------------------------------------------


def test_users_me(http):
    me = get(http, "users/me/", headers={"Authorization": f"token {ALICE_KEY}"}).json()
    assert me["username"] == "alice" and me["status"] == "APPROVED" and me["admin"] is False
    assert me["name"] == "Alice Example"
    bad = get(http, "users/me/", headers={"Authorization": "token not-a-key"})
    assert bad.status_code == 401 and bad.json() == {"detail": "Invalid token."}
    anonymous = get(http, "users/me/")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    pending = get(http, "users/me/", headers={"Authorization": f"token {PAT_KEY}"}).json()
    assert pending["status"] == "PENDING"


def test_users_search_and_token(http, local_archive):
    from dandi.dandiapi import DandiAPIClient

    alice = {"Authorization": f"token {ALICE_KEY}"}
    found = get(http, "users/search/", params={"username": "ro"}, headers=alice).json()
    assert [u["username"] for u in found] == ["root"]
    assert get(http, "users/search/", params={"username": "pa"}, headers=alice).json() == []
    assert get(http, "users/search/", params={"username": "x"}).status_code == 401
    assert get(http, "auth/token/", headers=alice).json() == ALICE_KEY
    pending = get(http, "auth/token/", headers={"Authorization": f"token {PAT_KEY}"})
    assert pending.status_code == 403
    DandiAPIClient(api_url=local_archive.api_url, token=ALICE_KEY)  # checks auth/token


# --- the store on its own ---------------------------------------------------------


def test_store_loads_000026_quickly(real_dandisets):
    from dandihub.localarchive.store import ArchiveStore

    store = ArchiveStore(real_dandisets.folder)
    start = time.monotonic()
    assets = store.dandiset("000026").draft.assets
    elapsed = time.monotonic() - start
    assert len(assets) == 57717
    assert elapsed < 3, f"loading 000026's listing took {elapsed:.2f} s"
    zarrs = [a for a in assets.assets if a.zarr]
    assert len(zarrs) == 567


def test_stable_uuid_is_uuid5():
    from dandihub.localarchive import store

    for name in ("asset:000026/README", "blob:ü #"):
        assert store.stable_uuid(name) == str(uuid.uuid5(store._SYNTHETIC_NS, name))
