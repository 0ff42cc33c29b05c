"""An HTTP reverse proxy that makes localhost look like a network.

The kernel here has no netem qdisc, so latency, bandwidth and faults are added
in user space: every request waits one round-trip time before it is forwarded,
every response body goes through one shared bandwidth cap (a FIFO pipe, like a
single link), and a configurable fraction of requests fail (500/503, a
connection reset halfway through the body, or a stall). Requests and body bytes
are counted, so benchmarks and tests can say what each reader fetched.

    with NetProxy("http://127.0.0.1:9000", rtt=0.02, bandwidth=100e6) as proxy:
        url = f"{proxy.url}/bucket/key"        # same path, proxied
        ...
        proxy.stats                             # {"requests": .., "bytes": ..}
        proxy.faults = {"503": 0.2, "reset": 0.1}

``origin`` serves some paths from local files instead of the upstream (GET with
``Range``, HEAD; the given ETag): moto's server copies a whole object for every
range request, which on a GB-sized blob costs more than the network being modelled.
``GET /__netproxy__/stats`` and ``POST /__netproxy__/reset`` let another process
read the counters; ``python -m dandihub.localarchive.netproxy UPSTREAM`` runs one.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Self

import aiohttp
from aiohttp import web

__all__ = ["NetProxy", "Stats"]

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
}
FAULT_KINDS = ("500", "503", "reset", "stall")


@dataclass
class Stats:
    requests: int = 0
    bytes: int = 0
    faults: int = 0

    def as_dict(self) -> dict:
        return {"requests": self.requests, "bytes": self.bytes, "faults": self.faults}


class NetProxy:
    """Reverse proxy to ``upstream`` on 127.0.0.1 with added RTT, a bandwidth cap and faults.

    ``rtt`` seconds per request (default 20 ms), ``bandwidth`` bytes/s shared by all
    connections (default 100 MB/s, ``None`` for no cap), ``faults`` maps a kind in
    ``FAULT_KINDS`` to the fraction of requests that get it, ``stall`` is how long a
    stalled request hangs before it is answered normally. All can be changed while
    the proxy runs. ``seed`` makes the fault sequence reproducible.
    """

    def __init__(self, upstream: str, *, rtt: float = 0.020, bandwidth: float | None = 100e6,
                 faults: dict[str, float] | None = None, stall: float = 30.0,
                 port: int = 0, seed: int = 0, chunk: int = 64 * 1024,
                 origin: dict[str, tuple[str, str]] | None = None):
        self.upstream = upstream.rstrip("/")
        self.rtt = rtt
        self.bandwidth = bandwidth
        self.faults = dict(faults or {})
        self.stall = stall
        self.port = port
        self.chunk = chunk
        self.origin = dict(origin or {})  # URL path -> (local file, ETag)
        self._rng = random.Random(seed)
        self._stats = Stats()
        self._lock = threading.Lock()
        self._link_free_at = 0.0  # when the shared link finishes sending what is queued
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # -- public -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats(self) -> dict:
        with self._lock:
            return self._stats.as_dict()

    def reset_stats(self) -> dict:
        """Zero the counters and return what they were."""
        with self._lock:
            old, self._stats = self._stats.as_dict(), Stats()
        return old

    def start(self, timeout: float = 10.0) -> NetProxy:
        self._thread = threading.Thread(target=self._run, name="netproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"proxy to {self.upstream} did not start within {timeout} s")
        if self._error:
            raise RuntimeError(f"proxy to {self.upstream} failed to start: {self._error}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - reported to start(), which raises it
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as self._session:
            app = web.Application(client_max_size=1024**3)
            app.router.add_get("/__netproxy__/stats", self._stats_route)
            app.router.add_post("/__netproxy__/reset", self._reset_route)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def _pick_fault(self) -> str | None:
        x = self._rng.random()
        for kind in FAULT_KINDS:
            p = self.faults.get(kind, 0.0)
            if x < p:
                return kind
            x -= p
        return None

    async def _send(self, n: int) -> None:
        """Wait until ``n`` bytes have gone through the shared link."""
        if not self.bandwidth:
            return
        now = time.monotonic()
        with self._lock:
            start = max(now, self._link_free_at)
            self._link_free_at = start + n / self.bandwidth
            done = self._link_free_at
        if done > now:
            await asyncio.sleep(done - now)

    async def _stats_route(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    async def _reset_route(self, request: web.Request) -> web.Response:
        return web.json_response(self.reset_stats())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._proxy(request)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            # the client went away mid-body (readers abort read-ahead they no longer need)
            raise asyncio.CancelledError from None

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._stats.requests += 1
            fault = self._pick_fault()
            if fault:
                self._stats.faults += 1
        if self.rtt:
            await asyncio.sleep(self.rtt)
        if fault in ("500", "503"):
            return web.Response(status=int(fault), text=f"netproxy: injected {fault}\n")
        if fault == "stall":
            await asyncio.sleep(self.stall)
        if request.path in self.origin:
            return await self._serve_file(request, *self.origin[request.path], fault)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read() if request.can_read_body else None
        url = self.upstream + request.rel_url.raw_path_qs
        async with self._session.request(request.method, url, headers=headers, data=body,
                                         allow_redirects=False) as up:
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP_BY_HOP}
            response = web.StreamResponse(status=up.status, headers=out_headers)
            if up.content_length is not None:
                response.content_length = up.content_length
            await response.prepare(request)
            sent = 0
            half = (up.content_length or 0) // 2
            async for data in up.content.iter_chunked(self.chunk):
                if fault == "reset" and sent + len(data) > half:
                    request.transport.abort()  # the client sees a reset with a partial body
                    raise asyncio.CancelledError
                await self._send(len(data))
                await response.write(data)
                sent += len(data)
                with self._lock:
                    self._stats.bytes += len(data)
            if fault == "reset":  # empty body: reset before anything is sent
                request.transport.abort()
                raise asyncio.CancelledError
            await response.write_eof()
            return response

    async def _serve_file(self, request: web.Request, path: str, etag: str,
                          fault: str | None) -> web.StreamResponse:
        """What S3 answers for an object: HEAD, GET, GET with one byte range."""
        size = os.path.getsize(path)
        start, stop, status = 0, size, 200
        spec = request.headers.get("Range", "")
        if spec.startswith("bytes=") and "," not in spec:
            first, _, last = spec[6:].partition("-")
            if first:
                start = int(first)
                stop = min(size, int(last) + 1) if last else size
            elif last:
                start = max(0, size - int(last))
            if start >= size:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
        headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = stop - start
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        with open(path, "rb") as f:  # noqa: ASYNC230 - a local test file, read in 1 MB steps
            pos, half = start, start + (stop - start) // 2
            while pos < stop:
                n = min(self.chunk, stop - pos)
                if fault == "reset" and pos + n > half:
                    request.transport.abort()
                    raise asyncio.CancelledError
                data = os.pread(f.fileno(), n, pos)
                await self._send(len(data))
                await response.write(data)
                pos += len(data)
                with self._lock:
                    self._stats.bytes += len(data)
        await response.write_eof()
        return response


def spawn(upstream: str, *, rtt: float, bandwidth: float, origin: dict | None = None):
    """Run a proxy in a child process (its work then does not hold the caller's GIL).

    Returns ``(process, url)``; read counters at ``url/__netproxy__/stats``.
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    cmd = [sys.executable, "-m", "dandihub.localarchive.netproxy", upstream,
           "--rtt", str(rtt), "--bandwidth", str(bandwidth), "--origin", json.dumps(origin or {})]
    hub = str(Path(__file__).resolve().parents[2])  # importable even from a source tree
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [hub, os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        process.kill()
        raise RuntimeError(f"the network proxy did not start ({' '.join(cmd)})")
    return process, url


def main(argv: list[str] | None = None) -> int:
    """Run a proxy until interrupted; prints its URL on the first line of stdout."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream")
    parser.add_argument("--rtt", type=float, default=0.020, help="seconds per request")
    parser.add_argument("--bandwidth", type=float, default=100e6, help="bytes/s, 0: no cap")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--origin", default="{}",
                        help='JSON {"/bucket/key": ["local file", "etag"]} served from disk')
    args = parser.parse_args(argv)
    proxy = NetProxy(args.upstream, rtt=args.rtt, bandwidth=args.bandwidth or None,
                     port=args.port, origin=json.loads(args.origin)).start()
    print(proxy.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
