"""Embargo, end to end in the local archive: every API route of an embargoed Dandiset
(``EMBARGOED``, owned by alice; see localarchive_fixtures.py) answers anonymous and
non-owner callers as dandi-archive does, its owner (API key or OAuth bearer token) and
admins get the data, embargoed bytes come only through short-lived presigned S3 URLs,
and the S3 store takes no writes and serves no embargoed key to anyone else.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import httpx
import pytest

from .localarchive_fixtures import (
    EMBARGOED,
    EMBARGOED_BLOB,
    EMBARGOED_BYTES,
    EMBARGOED_ZARR,
    SYNTHETIC,
    SYNTHETIC_ASSETS,
    USERS,
    ZARR_KEYS,
)

ALICE = {"Authorization": f"token {USERS['alice'][1]}"}
PAT = {"Authorization": f"token {USERS['pat'][1]}"}  # signed in, owns nothing
ROOT = {"Authorization": f"token {USERS['root'][1]}"}  # an archive admin
NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}
BLOB_KEY = f"blobs/{EMBARGOED_BLOB.blob[:3]}/{EMBARGOED_BLOB.blob[3:6]}/{EMBARGOED_BLOB.blob}"
ZARR_PREFIX = f"zarr/{EMBARGOED_ZARR.zarr}/"
ZARR_CHUNK = "0/0.0"
VERSION = f"dandisets/{EMBARGOED}/versions/draft"
ASSET_BLOB = f"{VERSION}/assets/{EMBARGOED_BLOB.asset_id}"
ZARR_FILES = f"zarr/{EMBARGOED_ZARR.zarr}/files/"

# Every route that can reveal the embargoed Dandiset, its assets or their bytes.
ROUTES = [
    f"dandisets/{EMBARGOED}/",
    f"dandisets/{EMBARGOED}/versions/",
    f"{VERSION}/",
    f"{VERSION}/info/",
    f"{VERSION}/assets/",
    f"{VERSION}/assets/?metadata=1",
    f"{VERSION}/assets/paths/",
    f"{VERSION}/assets/paths/?path_prefix=sub-secret",
    f"{ASSET_BLOB}/",
    f"{ASSET_BLOB}/info/",
    f"{ASSET_BLOB}/download/",
    f"{VERSION}/assets/{EMBARGOED_ZARR.asset_id}/",
    f"assets/{EMBARGOED_BLOB.asset_id}/",
    f"assets/{EMBARGOED_BLOB.asset_id}/info/",
    f"assets/{EMBARGOED_BLOB.asset_id}/download/",
    f"assets/{EMBARGOED_ZARR.asset_id}/",
    f"zarr/{EMBARGOED_ZARR.zarr}/",
    ZARR_FILES,
    f"{ZARR_FILES}?prefix=0/",
    f"{ZARR_FILES}?prefix={ZARR_CHUNK}&download=true",
]


@pytest.fixture(scope="module")
def api(local_archive):
    with httpx.Client(base_url=local_archive.api_url + "/", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def bearer(local_archive):
    """An OAuth access token of alice's, as /oauth/token/ would have issued it."""
    from dandihub.localarchive.oauth import AccessToken

    provider = local_archive.app.state.oauth
    token = "embargo-test-" + "b" * 29
    with provider.lock:
        provider.tokens[token] = AccessToken("alice", "test-client", time.time() + 600, "c0de")
    return {"Authorization": f"Bearer {token}"}


def s3_error(response) -> tuple[int, str]:
    """The status and S3 error code (``<Error><Code>``) of a refused S3 request."""
    return response.status_code, ET.fromstring(response.content).findtext("Code")


def anonymous_s3(local_archive, method: str, raw_path: str) -> tuple[int, bytes]:
    """A request sent with the path exactly as given (httpx would normalise '..')."""
    parts = urlsplit(local_archive.s3_endpoint_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, raw_path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


# --- the API -----------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_anonymous_callers_are_not_authenticated(api, route, method):
    answer = api.request(method, route)
    assert answer.status_code == 401, (route, answer.status_code, answer.text[:300])
    if method == "GET":
        assert answer.json() == NOT_AUTHENTICATED
    assert "location" not in answer.headers


@pytest.mark.parametrize("route", ROUTES)
def test_non_owners_have_no_permission(api, route):
    answer = api.get(route, headers=PAT)
    assert answer.status_code == 403, (route, answer.status_code, answer.text[:300])
    assert answer.json() == NO_PERMISSION and "location" not in answer.headers


def test_an_invalid_key_is_refused_as_the_archive_does(api):
    answer = api.get(ZARR_FILES, headers={"Authorization": "token not-a-key"})
    assert answer.status_code == 401 and answer.json() == {"detail": "Invalid token."}


def test_listings_and_search_do_not_show_it(api):
    for who in ({}, PAT):
        listed = api.get("dandisets/", params={"page_size": 1000}, headers=who).json()
        assert EMBARGOED not in [d["identifier"] for d in listed["results"]]
        assert api.get("dandisets/", params={"search": "mantis shrimp"},
                       headers=who).json()["count"] == 0
    mine = api.get("dandisets/", params={"search": "mantis shrimp"}, headers=ALICE).json()
    assert [d["identifier"] for d in mine["results"]] == [EMBARGOED]


@pytest.mark.parametrize("who", ["alice", "bearer", "root"])
def test_owners_and_admins_get_every_route(api, request, who):
    headers = {"alice": ALICE, "root": ROOT}.get(who) or request.getfixturevalue("bearer")
    for route in ROUTES:
        answer = api.get(route, headers=headers)
        assert answer.status_code in (200, 302), (who, route, answer.status_code, answer.text)
    assets = api.get(f"{VERSION}/assets/", headers=headers).json()["results"]
    assert sorted(a["path"] for a in assets) == sorted([EMBARGOED_BLOB.path, EMBARGOED_ZARR.path])
    keys = [f["Key"] for f in api.get(ZARR_FILES, headers=headers).json()["results"]]
    assert keys == sorted(ZARR_KEYS)
    assert api.get(f"zarr/{EMBARGOED_ZARR.zarr}/", headers=headers).json()["dandiset"] == EMBARGOED


# --- embargoed bytes: presigned URLs only ---------------------------------------------


def test_owner_download_is_a_presigned_url_that_reads_the_bytes(api, local_archive):
    for route in (f"{ASSET_BLOB}/download/", f"assets/{EMBARGOED_BLOB.asset_id}/download/"):
        answer = api.get(route, headers=ALICE)
        assert answer.status_code == 302
        location = answer.headers["location"]
        assert location.startswith(f"{local_archive.s3_url}/{BLOB_KEY}?")
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in location
        assert "X-Amz-Expires=3600" in location and "X-Amz-Signature=" in location
        assert USERS["alice"][1] not in location  # the API key never goes into a URL
        assert httpx.get(location, timeout=30).content == EMBARGOED_BYTES
        part = httpx.get(location, headers={"Range": "bytes=256-511"}, timeout=30)
        assert part.status_code == 206 and part.content == EMBARGOED_BYTES[256:512]
    head = api.head(f"assets/{EMBARGOED_BLOB.asset_id}/download/", headers=ALICE)
    assert head.status_code == 302  # a URL presigned for HEAD: the signature covers the method
    probe = httpx.head(head.headers["location"], timeout=30)
    assert probe.status_code == 200 and int(probe.headers["content-length"]) == len(EMBARGOED_BYTES)


def test_owner_zarr_downloads_are_presigned(api):
    answer = api.get(ZARR_FILES, params={"prefix": ZARR_CHUNK, "download": "true"}, headers=ALICE)
    assert answer.status_code == 302 and "X-Amz-Signature=" in answer.headers["location"]
    assert httpx.get(answer.headers["location"], timeout=30).content == ZARR_KEYS[ZARR_CHUNK]
    head = api.head(ZARR_FILES, params={"prefix": ZARR_CHUNK}, headers=ALICE)
    assert head.status_code == 302
    assert httpx.head(head.headers["location"], timeout=30).status_code == 200


def test_the_dandi_client_downloads_embargoed_data_for_its_owner(local_archive, tmp_path):
    from dandi.dandiapi import DandiAPIClient

    with DandiAPIClient(api_url=local_archive.api_url, token=USERS["alice"][1]) as client:
        asset = client.get_dandiset(EMBARGOED, "draft").get_asset_by_path(EMBARGOED_BLOB.path)
        target = tmp_path / "secret.nwb"
        asset.download(target)
    assert target.read_bytes() == EMBARGOED_BYTES


def test_presigned_urls_expire(local_archive):
    url = local_archive.blobstore.presigned_url(BLOB_KEY, expires=2)
    assert httpx.get(url, timeout=10).content == EMBARGOED_BYTES
    time.sleep(3)
    assert s3_error(httpx.get(url, timeout=10)) == (403, "AccessDenied")
    assert b"Request has expired" in httpx.get(url, timeout=10).content


def test_tampered_presigned_urls_are_refused(local_archive):
    url = local_archive.blobstore.presigned_url(BLOB_KEY)
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    forged = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert s3_error(httpx.get(forged, timeout=10)) == (403, "SignatureDoesNotMatch")
    # a signature for one key does not open another, nor extend its own life
    other = url.replace(BLOB_KEY, f"{ZARR_PREFIX}{ZARR_CHUNK}")
    assert s3_error(httpx.get(other, timeout=10)) == (403, "SignatureDoesNotMatch")
    longer = url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200")
    assert s3_error(httpx.get(longer, timeout=10)) == (403, "SignatureDoesNotMatch")
    # nor does it sign a write
    put = httpx.put(url, content=b"overwritten", timeout=10)
    assert s3_error(put) == (403, "SignatureDoesNotMatch")
    assert httpx.get(url, timeout=10).content == EMBARGOED_BYTES


# --- the S3 store on its own --------------------------------------------------------


@pytest.mark.parametrize("key", [BLOB_KEY, f"{ZARR_PREFIX}{ZARR_CHUNK}", f"{ZARR_PREFIX}.zattrs",
                                 f"{ZARR_PREFIX}missing"])
def test_anonymous_s3_reads_of_embargoed_keys_are_refused(local_archive, key):
    url = f"{local_archive.s3_url}/{key}"
    assert s3_error(httpx.get(url, timeout=10)) == (403, "AccessDenied")
    assert s3_error(httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=10)) == (
        403, "AccessDenied")
    assert httpx.head(url, timeout=10).status_code == 403


@pytest.mark.parametrize("path", [
    "/{bucket}/blobs/../" + BLOB_KEY,
    "/{bucket}/blobs/abc/../../" + BLOB_KEY,
    "/{bucket}/zarr//" + EMBARGOED_ZARR.zarr + "/" + ZARR_CHUNK,
    "/{bucket}/zarr/./" + EMBARGOED_ZARR.zarr + "/" + ZARR_CHUNK,
    "/{bucket}/zarr%2F" + EMBARGOED_ZARR.zarr + "%2F" + ZARR_CHUNK.replace("/", "%2F"),
    "/{bucket}/" + BLOB_KEY.replace("blobs", "%62lobs"),
])
def test_embargoed_keys_cannot_be_reached_by_another_spelling(local_archive, path):
    status, body = anonymous_s3(local_archive, "GET", path.format(bucket=local_archive.bucket))
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert EMBARGOED_BYTES[:64] not in body


def test_anonymous_listing_is_refused_and_names_no_embargoed_key(local_archive):
    for params in ({}, {"list-type": "2"}, {"list-type": "2", "prefix": "zarr/"},
                   {"prefix": "blobs/", "delimiter": "/"}):
        answer = httpx.get(local_archive.s3_url, params=params, timeout=10)
        assert s3_error(answer) == (403, "AccessDenied")
        assert EMBARGOED_ZARR.zarr.encode() not in answer.content
        assert EMBARGOED_BLOB.blob.encode() not in answer.content
    assert s3_error(httpx.get(local_archive.s3_endpoint_url + "/", timeout=10)) == (
        403, "AccessDenied")  # ListBuckets
    # the archive itself (signed) still lists everything
    listed = local_archive.blobstore.client().list_objects_v2(
        Bucket=local_archive.bucket, Prefix=ZARR_PREFIX)
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
        ZARR_PREFIX + k for k in ZARR_KEYS)


@pytest.fixture
def canary(local_archive):
    """A public object written by the archive's own credentials, to attack."""
    client = local_archive.blobstore.client()
    key = "blobs/can/ary/canary-0000"
    client.put_object(Bucket=local_archive.bucket, Key=key, Body=b"the original bytes")
    yield key, f"{local_archive.s3_url}/{key}"
    client.delete_object(Bucket=local_archive.bucket, Key=key)


WRITES = [
    ("PUT", "", b"overwritten"),
    ("PUT", "?acl", b""),
    ("PUT", "?tagging", b"<Tagging><TagSet/></Tagging>"),
    ("DELETE", "", b""),
    ("POST", "?uploads", b""),
    ("PUT", "?partNumber=1&uploadId=x", b"part"),
    ("POST", "?uploadId=x", b"<CompleteMultipartUpload/>"),
]


@pytest.mark.parametrize(("method", "query", "body"), WRITES)
def test_anonymous_writes_are_refused_and_change_nothing(local_archive, canary, method, query,
                                                         body):
    _, url = canary
    answer = httpx.request(method, url + query, content=body, timeout=10)
    assert s3_error(answer) == (403, "AccessDenied")
    assert httpx.get(url, timeout=10).content == b"the original bytes"


@pytest.mark.parametrize(("method", "query"), [
    ("PUT", "?policy"), ("PUT", "?acl"), ("PUT", "?cors"), ("PUT", "?website"),
    ("DELETE", ""), ("POST", "?delete"), ("PUT", ""),
])
def test_anonymous_bucket_changes_are_refused(local_archive, canary, method, query):
    answer = httpx.request(method, local_archive.s3_url + query, content=b"<x/>", timeout=10)
    assert s3_error(answer) == (403, "AccessDenied")
    assert httpx.get(canary[1], timeout=10).content == b"the original bytes"


def test_other_methods_are_not_allowed(local_archive, canary):
    answer = httpx.request("PATCH", canary[1], content=b"x", timeout=10)
    assert s3_error(answer) == (405, "MethodNotAllowed")


def test_writes_signed_with_other_credentials_are_refused(local_archive, canary):
    """s3rver's well-known key, and the archive's key id with a guessed secret."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    key, url = canary
    access_key = local_archive.blobstore.access_key_id
    for key_id, secret, code in [("S3RVER", "S3RVER", "InvalidAccessKeyId"),
                                 (access_key, "guessed", "SignatureDoesNotMatch")]:
        forger = boto3.client(
            "s3", endpoint_url=local_archive.s3_endpoint_url, region_name="us-east-1",
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            config=Config(signature_version="s3v4", retries={"max_attempts": 1}))
        for call in (
            lambda f: f.put_object(Bucket=local_archive.bucket, Key=key, Body=b"evil"),
            lambda f: f.delete_object(Bucket=local_archive.bucket, Key=key),
            lambda f: f.create_multipart_upload(Bucket=local_archive.bucket, Key=key),
            lambda f: f.get_object(Bucket=local_archive.bucket, Key=BLOB_KEY),
        ):
            with pytest.raises(ClientError) as refused:
                call(forger)
            error = refused.value.response
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
            assert error["Error"]["Code"] == code
    assert httpx.get(url, timeout=10).content == b"the original bytes"


def test_public_objects_stay_anonymously_readable(local_archive, api):
    """Plain GET/HEAD with Range on an OPEN asset's redirect: no signature, as today."""
    asset = SYNTHETIC_ASSETS[0]
    answer = api.get(f"dandisets/{SYNTHETIC}/versions/draft/assets/{asset.asset_id}/download/")
    location = answer.headers["location"]
    assert answer.status_code == 302 and "X-Amz-" not in location
    head = httpx.head(location, timeout=10)
    assert head.status_code == 200 and head.headers["accept-ranges"] == "bytes"
    whole = httpx.get(location, timeout=30).content
    part = httpx.get(location, headers={"Range": "bytes=100-1123"}, timeout=10)
    assert part.status_code == 206 and part.content == whole[100:1124]
    digest = api.get(f"assets/{asset.asset_id}/").json()["digest"]["dandi:sha2-256"]
    assert hashlib.sha256(whole).hexdigest() == digest
    zarr = SYNTHETIC_ASSETS[3].zarr
    assert httpx.get(f"{local_archive.s3_url}/zarr/{zarr}/0/.zarray",
                     timeout=10).content == ZARR_KEYS["0/.zarray"]


def test_the_store_secret_is_in_no_command_line_environment_or_file(local_archive):
    """Other local users can read a process's command line (and root its environment):
    the secret goes to the S3 store on its stdin only, and never to its folder."""
    import psutil

    secret = local_archive.blobstore._credentials["aws_secret_access_key"]
    child = psutil.Process(local_archive.blobstore._server.pid)
    assert "s3front.js" in " ".join(child.cmdline())
    assert secret not in " ".join(child.cmdline())
    assert all(secret not in value for value in child.environ().values())
    store_dir = local_archive.blobstore.data_dir
    for path in store_dir.rglob("*.json"):
        assert secret not in path.read_text(errors="replace"), path


def _remote(local_archive, token, url=None):
    import dandilab
    from dandilab.remote import RemoteFile
    from dandilab.stream import _signer, resolve

    archive = dandilab.Archive(local_archive.api_url, token=token)
    source = resolve(archive.dandiset(EMBARGOED, "draft").asset(EMBARGOED_BLOB.path))
    return RemoteFile(url or source.url, name=source.name, size=source.size, cache=False,
                      signer=_signer(source), retries=0)


def test_dandilab_streams_embargoed_bytes_for_their_owner(local_archive):
    """The S3 URL refuses them; the archive's download URL, with the owner's key, signs one;
    a signed URL that expired is signed again; the key never goes to S3 (which would refuse
    a request carrying it)."""
    remote = _remote(local_archive, USERS["alice"][1])
    assert remote.read_range(0, len(EMBARGOED_BYTES)) == EMBARGOED_BYTES
    assert "X-Amz-Signature=" in remote.url  # now reading from the presigned URL
    expired = local_archive.blobstore.presigned_url(BLOB_KEY, expires=1)
    time.sleep(2)
    again = _remote(local_archive, USERS["alice"][1], url=expired)
    assert again.read_range(0, len(EMBARGOED_BYTES)) == EMBARGOED_BYTES
    assert "X-Amz-Signature=" in again.url and again.url != expired


def test_without_a_key_embargoed_bytes_are_refused_and_no_signature_is_shown(local_archive):
    from dandilab.remote import RemoteFile, RemoteReadError

    expired = local_archive.blobstore.presigned_url(BLOB_KEY, expires=1)
    time.sleep(2)
    for url in (expired.split("?")[0], expired):
        with pytest.raises(RemoteReadError, match=r"HTTP 403") as e:
            RemoteFile(url, name="secret.nwb", cache=False, retries=0)
        assert "Signature" not in str(e.value) and "Credential" not in str(e.value)
