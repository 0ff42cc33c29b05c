"""Run a local archive: the S3 blob store, then the API, on 127.0.0.1.

    with LocalArchive("ARCHIVE") as archive:
        DandiAPIClient(api_url=archive.api_url)    # the official client, unchanged

``serve()`` is what ``dandihub archive serve DIR`` runs: it blocks until
SIGINT/SIGTERM.

uvicorn runs in a thread of the calling process rather than a subprocess: it
starts in a fraction of a second, it shares the already-loaded store (no second
load of a 57 000-asset listing), and its errors reach the caller. The S3 server
(s3rver) is a child process started and stopped with it. A caller that needs the API isolated from its own GIL
(e.g. a load benchmark) can run ``serve()`` in a child process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Self

import uvicorn

from .app import create_app
from .blobstore import DEFAULT_BUCKET, PRESIGN_EXPIRY, BlobStore, UploadReport
from .store import ArchiveStore

log = logging.getLogger(__name__)

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class LocalArchive:
    """A read-only DANDI archive served from ``folder`` (layout: ``dandihub.localarchive``).

    ``port``/``s3_port`` 0 pick free ports. After ``start()``: ``api_url``
    (``http://127.0.0.1:PORT/api``), ``s3_url`` (the bucket's URL), ``bucket``,
    ``s3_endpoint_url`` (for boto3/s3fs), ``store`` and ``upload`` (what the
    blob store upload cost). Embargoed content is read through URLs the API presigns
    for ``presign_expiry`` seconds; the S3 store refuses it to anyone else.
    """

    def __init__(
        self,
        folder: str | Path,
        port: int = 0,
        s3_port: int = 0,
        bucket: str = DEFAULT_BUCKET,
        host: str = "127.0.0.1",
        s3_dir: str | Path | None = None,
        presign_expiry: int = PRESIGN_EXPIRY,
    ) -> None:
        self.folder = Path(folder)
        self.host = host
        self._port = port
        self.presign_expiry = presign_expiry
        # The S3 server's own files (it keeps objects across restarts); beside the content.
        s3_dir = Path(s3_dir) if s3_dir else self.folder / ".s3store"
        self.blobstore = BlobStore(s3_dir, bucket=bucket, port=s3_port, host=host)
        self.store: ArchiveStore | None = None
        self.upload: UploadReport | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._api_url: str | None = None
        self.app = None  # the FastAPI app, once started

    # --- addresses --------------------------------------------------------

    @property
    def api_url(self) -> str:
        if self._api_url is None:
            raise RuntimeError("The local archive is not started")
        return self._api_url

    @property
    def s3_url(self) -> str:
        return self.blobstore.bucket_url

    @property
    def s3_endpoint_url(self) -> str:
        return self.blobstore.endpoint_url

    @property
    def bucket(self) -> str:
        return self.blobstore.bucket

    # --- life cycle -------------------------------------------------------

    def start(self) -> Self:
        """Load the folder, start and fill the blob store, then serve the API."""
        self.store = ArchiveStore(self.folder)
        sock = _bind(self.host, self._port)
        try:
            # the store refuses these to anonymous readers from its first request on
            self.blobstore.embargoed = self.store.embargo.s3_keys()
            self.blobstore.start()
            self.upload = self.blobstore.upload_archive(self.store)
            port = sock.getsockname()[1]
            self._api_url = f"http://{self.host}:{port}/api"
            app = self.app = create_app(self.store, self._api_url, self.s3_url,
                                        presign=self._presign)
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(
                target=self._server.run, kwargs={"sockets": [sock]},
                name=f"localarchive-api-{port}", daemon=True,
            )
            self._thread.start()
            deadline = time.monotonic() + _START_TIMEOUT
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"The archive API did not start on {self._api_url}")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            sock.close()
            raise
        log.info("Local archive %s: API %s, S3 %s", self.folder, self.api_url, self.s3_url)
        return self

    def _presign(self, key: str, method: str) -> str:
        return self.blobstore.presigned_url(key, self.presign_expiry, method)

    def stop(self) -> None:
        """Stop the API, then the blob store; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                log.warning("The archive API thread did not stop within %s s", _STOP_TIMEOUT)
        self._server = self._thread = None
        self.blobstore.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    """Bind first so that the API URL (port 0 = any free one) is known before the app."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise RuntimeError(f"Cannot serve the archive API on {host}:{port}: {e}") from e
    return sock


def serve(folder: str | Path, port: int = 0, s3_port: int = 0, bucket: str = DEFAULT_BUCKET) -> None:
    """Serve ``folder`` until SIGINT or SIGTERM; prints the API URL once it answers."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with LocalArchive(folder, port=port, s3_port=s3_port, bucket=bucket) as archive:
            upload = archive.upload
            print(f"DANDI local archive API: {archive.api_url}", flush=True)
            print(f"S3 bucket: {archive.s3_url}", flush=True)
            if upload is not None and upload.objects:
                print(f"({upload.objects} objects, {upload.bytes / 1e6:.1f} MB uploaded"
                      f" in {upload.seconds:.1f} s)", flush=True)
            while not stop.wait(0.5):
                pass
            print("Stopping the local archive...", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """``dandihub archive serve DIR [--port N] [--s3-port N] [--bucket NAME]``."""
    parser = argparse.ArgumentParser(
        prog="dandihub archive serve",
        description="Serve an archive folder as a read-only DANDI API with an S3 blob store.",
    )
    parser.add_argument("folder", type=Path, help="the archive folder (see dandihub.localarchive)")
    parser.add_argument("--port", type=int, default=0, help="API port (default: any free port)")
    parser.add_argument("--s3-port", type=int, default=0, help="S3 port (default: any free port)")
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help="S3 bucket name")
    args = parser.parse_args(argv)
    if not ((args.folder / "dandisets").is_dir() or (args.folder / "archive.json").is_file()):
        parser.error(f"{args.folder} is not an archive folder: it has neither dandisets/"
                     " nor archive.json")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve(args.folder, port=args.port, s3_port=args.s3_port, bucket=args.bucket)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
