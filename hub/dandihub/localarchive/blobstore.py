"""The S3-compatible blob store behind the local archive.

s3rver (an S3 API server from npm, file-backed) runs in a child process behind an access
check (``s3front.js``, shipped in this package); a bucket laid out like the public
archive's (``blobs/abc/def/<uuid>``, ``zarr/<uuid>/<key>``) is filled from the archive
folder with boto3 (multipart, parallel). Clients read public objects exactly as they read
the public bucket: unsigned HTTP GETs/HEADs with ``Range`` headers, or s3fs/remfile with
anonymous access. Everything else needs an AWS Signature Version 4 made with credentials
only this process knows (random at every start, handed to the child on its stdin):
writes, multipart uploads, ACL/policy/tagging, bucket listing (it would name embargoed
keys), and reads of embargoed keys, which the API hands out as short-lived presigned URLs.

Why s3rver and not moto's server (measured here, 1 GiB object, localhost): moto reads
the whole object for every GET, so a 100-byte range read took 0.8-1.06 s; s3rver
streams the range from its file in 3-15 ms. s3rver also keeps its objects on disk, so
the demo's GBs are uploaded once, not at every start (1 GiB: 22 s, once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from ..nodetools import find_node_tool
from .store import ArchiveStore, blob_key, zarr_key

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "dandiarchive"
_REGION = "us-east-1"
#: how long a presigned URL works by default (the archive's storage presigns for an hour)
PRESIGN_EXPIRY = 3600
_FRONT = Path(__file__).with_name("s3front.js")
_PART_SIZE = 64 * 1024 * 1024
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class UploadReport:
    """What ``BlobStore.upload_archive`` put in the bucket, and how long it took."""

    objects: int
    bytes: int
    seconds: float
    skipped: int = 0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else float("inf")


def _s3rver_package() -> Path:
    """The s3rver npm package's folder (the front script loads it as a library)."""
    tool = Path(os.path.realpath(find_node_tool("s3rver")))  # .../s3rver/bin/s3rver.js
    package = tool.parent.parent
    if not (package / "package.json").is_file():
        raise FileNotFoundError(
            f"s3rver's package folder was not found next to {tool}: reinstall it"
            " (`npm ci` in the repository, or `npm install -g s3rver@3.7.1`)."
        )
    return package


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise FileNotFoundError("node is not installed: the local archive's S3 store needs it"
                                " (install Node.js 18 or newer).")
    return node


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BlobStore:
    """An s3rver S3 server on 127.0.0.1 with one bucket, anonymously readable but for
    the ``embargoed`` keys (and prefixes, ending in '/'), and writable only by ``client()``.

    Objects live in ``data_dir`` and survive restarts. Use ``start()``/``stop()`` or a
    ``with`` block. ``port=0`` picks a free port.
    """

    def __init__(
        self,
        data_dir: str | Path,
        bucket: str = DEFAULT_BUCKET,
        port: int = 0,
        host: str = "127.0.0.1",
        embargoed: Iterable[str] = (),
    ):
        if len(bucket) < 3:
            raise ValueError(f"S3 bucket names need at least 3 characters, got {bucket!r}")
        self.data_dir = Path(data_dir)
        self.bucket = bucket
        self.host = host
        self.embargoed = sorted(set(embargoed))
        self._requested_port = port
        self._server: subprocess.Popen | None = None
        self._port: int | None = None
        self._credentials: dict[str, str] = {}
        self._presigner = None

    # --- life cycle -------------------------------------------------------

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self._requested_port or _free_port(self.host)
        # Known to this process and the child only, new at every start: a URL presigned
        # before a restart stops working, as an expired one does.
        self._credentials = {
            "aws_access_key_id": "DANDIHUB" + secrets.token_hex(6).upper(),
            "aws_secret_access_key": secrets.token_urlsafe(30),
        }
        self._presigner = None
        config = {
            "directory": str(self.data_dir), "address": self.host, "port": port,
            "bucket": self.bucket, "accessKeyId": self._credentials["aws_access_key_id"],
            "secretAccessKey": self._credentials["aws_secret_access_key"],
            "embargoed": self.embargoed,
        }
        self._server = subprocess.Popen(
            [_node(), str(_FRONT), str(_s3rver_package())], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        # on stdin, not argv or the environment: other local users can read those
        self._server.stdin.write(json.dumps(config).encode())
        self._server.stdin.close()
        self._port = port
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self._server.poll() is not None:
                error = self._server.stderr.read().decode(errors="replace")
                self._server = None
                raise RuntimeError(f"The S3 server (s3rver) did not start on port {port}: {error}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The S3 server (s3rver) did not answer on port {port}")
            time.sleep(0.05)
        log.info("S3 blob store at %s (data in %s)", self.bucket_url, self.data_dir)
        return self

    def _answers(self) -> bool:
        try:
            self.client().head_bucket(Bucket=self.bucket)
        except Exception:  # noqa: BLE001 - not up yet: connection refused, or bucket not configured yet
            return False
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses --------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The S3 API endpoint (for boto3/s3fs ``endpoint_url``)."""
        if self._port is None:
            raise RuntimeError("The blob store is not started")
        return f"http://{self.host}:{self._port}"

    @property
    def bucket_url(self) -> str:
        """Path-style URL of the bucket; object URLs are ``{bucket_url}/{key}``."""
        return f"{self.endpoint_url}/{self.bucket}"

    @property
    def access_key_id(self) -> str:
        """The id (not the secret) of the credentials this run's store accepts."""
        return self._credentials.get("aws_access_key_id", "")

    def object_url(self, key: str) -> str:
        return f"{self.bucket_url}/{quote(key, safe='/')}"

    def client(self):
        """A boto3 S3 client for this server, signed with its secret credentials."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=_REGION,
            config=Config(retries={"max_attempts": 3}, max_pool_connections=16,
                          connect_timeout=2, read_timeout=60, signature_version="s3v4",
                          s3={"addressing_style": "path"}),
            **self._credentials,
        )

    def presigned_url(self, key: str, expires: int = PRESIGN_EXPIRY, method: str = "GET") -> str:
        """A URL that reads ``key`` (GET, or HEAD) for ``expires`` seconds: SigV4 query form."""
        if self._presigner is None:  # one client: making one costs ~30 ms
            self._presigner = self.client()
        operation = {"GET": "get_object", "HEAD": "head_object"}[method]
        return self._presigner.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires,
        )

    # --- content ----------------------------------------------------------

    def upload_file(self, path: str | Path, key: str, client=None) -> int:
        """Upload one file (multipart above 64 MB); returns its size.

        ``client`` (thread-safe, unlike creating one) is shared by parallel uploads.
        """
        config = TransferConfig(
            multipart_threshold=_PART_SIZE, multipart_chunksize=_PART_SIZE,
            max_concurrency=4, use_threads=True,
        )
        (client or self.client()).upload_file(str(path), self.bucket, key, Config=config)
        return Path(path).stat().st_size

    def _has(self, client, key: str, size: int) -> bool:
        with contextlib.suppress(ClientError):
            return client.head_object(Bucket=self.bucket, Key=key)["ContentLength"] == size
        return False

    def upload_archive(self, store: ArchiveStore, workers: int = 4) -> UploadReport:
        """Upload every blob and zarr key that the archive folder holds content for.

        Objects already in the store with the same size are kept (content is immutable:
        blob and zarr ids name their bytes).
        """
        jobs: list[tuple[Path, str]] = [(p, blob_key(b)) for b, p in store.blob_files()]
        for zarr_id in store.zarr_ids_with_content():
            folder = store.zarr_folder(zarr_id)
            assert folder is not None
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                jobs.append((path, zarr_key(zarr_id, path.relative_to(folder).as_posix())))
        start = time.monotonic()
        total = skipped = 0
        if jobs:
            client = self.client()

            def upload(job):
                path, key = job
                if self._has(client, key, path.stat().st_size):
                    return None
                return self.upload_file(path, key, client=client)

            with ThreadPoolExecutor(max_workers=workers) as pool:
                for size in pool.map(upload, jobs):
                    if size is None:
                        skipped += 1
                    else:
                        total += size
        report = UploadReport(len(jobs) - skipped, total, time.monotonic() - start, skipped)
        log.info(
            "Uploaded %d objects (%.1f MB) to %s in %.1f s",
            report.objects, report.bytes / 1e6, self.bucket_url, report.seconds,
        )
        return report
