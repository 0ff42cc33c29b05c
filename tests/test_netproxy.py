"""The delaying, throttling, fault-injecting proxy (dandihub.localarchive.netproxy)."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dandihub.localarchive.netproxy import NetProxy

BODY = bytes(range(256)) * 4096  # 1 MiB


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("ETag", '"abc"')
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def get(url, headers=None, timeout=10):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                timeout=timeout) as r:
        return r.status, r.read(), r.headers


def test_forwards_and_counts(upstream):
    with NetProxy(upstream, rtt=0, bandwidth=None) as proxy:
        status, body, headers = get(f"{proxy.url}/any/path")
        assert (status, body, headers["ETag"]) == (200, BODY, '"abc"')
        # the last bytes are counted once sent, which may be just after the client has them
        deadline = time.monotonic() + 5
        while proxy.stats["bytes"] < len(BODY) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.stats == {"requests": 1, "bytes": len(BODY), "faults": 0}
        assert json.loads(get(f"{proxy.url}/__netproxy__/stats")[1])["bytes"] == len(BODY)
        assert proxy.reset_stats()["requests"] == 1 and proxy.stats["requests"] == 0


def test_round_trip_time_and_bandwidth(upstream):
    with NetProxy(upstream, rtt=0.1, bandwidth=10e6) as proxy:
        t = time.perf_counter()
        get(f"{proxy.url}/x")
        elapsed = time.perf_counter() - t
    # 0.1 s RTT + 1 MiB at 10 MB/s = 0.205 s at least
    assert elapsed >= 0.2


def test_bandwidth_is_shared_by_connections(upstream):
    with NetProxy(upstream, rtt=0, bandwidth=10e6) as proxy:
        t = time.perf_counter()
        threads = [threading.Thread(target=get, args=(f"{proxy.url}/x",)) for _ in range(3)]
        [th.start() for th in threads]
        [th.join(10) for th in threads]
        assert time.perf_counter() - t >= 0.3  # 3 MiB through one 10 MB/s link


@pytest.mark.parametrize("kind", ["500", "503"])
def test_injected_status(upstream, kind):
    with NetProxy(upstream, rtt=0, bandwidth=None, faults={kind: 1.0}) as proxy:
        with pytest.raises(urllib.error.HTTPError) as e:
            get(f"{proxy.url}/x")
        assert e.value.code == int(kind)
        assert proxy.stats["faults"] == 1


def test_injected_reset_truncates_the_body(upstream):
    with NetProxy(upstream, rtt=0, bandwidth=None, faults={"reset": 1.0}) as proxy, \
            pytest.raises((http.client.IncompleteRead, ConnectionError, urllib.error.URLError)):
        get(f"{proxy.url}/x")


def test_injected_stall(upstream):
    with NetProxy(upstream, rtt=0, bandwidth=None, faults={"stall": 1.0}, stall=5) as proxy, \
            pytest.raises((TimeoutError, urllib.error.URLError)):
        get(f"{proxy.url}/x", timeout=0.5)


def test_fault_fraction_is_reproducible(upstream):
    def run():
        with NetProxy(upstream, rtt=0, bandwidth=None, faults={"503": 0.3}, seed=7) as proxy:
            codes = []
            for _ in range(40):
                try:
                    codes.append(get(f"{proxy.url}/x")[0])
                except urllib.error.HTTPError as e:
                    codes.append(e.code)
            return codes

    first = run()
    assert first == run()
    assert 4 <= first.count(503) <= 20


def test_origin_serves_ranges_like_s3(tmp_path, upstream):
    blob = tmp_path / "blob"
    blob.write_bytes(BODY)
    with NetProxy(upstream, rtt=0, bandwidth=None,
                  origin={"/bucket/key": (str(blob), "e1")}) as proxy:
        status, body, headers = get(f"{proxy.url}/bucket/key", {"Range": "bytes=10-19"})
        assert (status, body) == (206, BODY[10:20])
        assert headers["Content-Range"] == f"bytes 10-19/{len(BODY)}"
        assert headers["ETag"] == '"e1"'
        status, body, _ = get(f"{proxy.url}/bucket/key", {"Range": "bytes=-5"})
        assert (status, body) == (206, BODY[-5:])
        assert get(f"{proxy.url}/bucket/key")[1] == BODY
