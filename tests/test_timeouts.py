"""Never silently stuck: an archive that stops answering gets a clear error in a stated time.

dandi's client sends its requests with no time limit and retries them; every dandilab call to
the archive gives up after DANDILAB_ARCHIVE_TIMEOUT seconds, naming the archive and the
setting. Faults are injected by a real proxy that stalls every request (its counters show
that the stalls happened) and by a server that accepts connections and never answers.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from dandihub.localarchive.netproxy import NetProxy

from .localarchive_fixtures import SYNTHETIC, SYNTHETIC_ASSETS

LIMIT = 2.0


@pytest.fixture
def short_limit(monkeypatch):
    import dandilab.archive

    monkeypatch.setattr(dandilab.archive, "ARCHIVE_TIMEOUT", LIMIT)
    return LIMIT


@pytest.fixture
def silent_server():
    """Accepts connections, reads, never answers: an archive that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api", held
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _expect_unavailable(fn, url: str, what: str):
    import dandilab

    started = time.monotonic()
    with pytest.raises(dandilab.ArchiveUnavailable) as e:
        fn()
    took = time.monotonic() - started
    message = str(e.value)
    assert f"The DANDI archive at {url} did not answer {what} within {LIMIT:g} s" in message
    assert "DANDILAB_ARCHIVE_TIMEOUT" in message
    assert LIMIT - 0.1 <= took < LIMIT + 1.5, took


def test_an_archive_that_never_answers_is_given_up_on_in_time(short_limit, silent_server):
    import dandilab

    url, held = silent_server
    _expect_unavailable(lambda: dandilab.Archive(url), url, "for its server info (/info/)")
    assert held, "the archive was never even called"


def test_an_archive_that_stalls_after_answering_is_given_up_on_in_time(
        short_limit, local_archive):
    import dandilab

    with NetProxy(local_archive.api_url.removesuffix("/api"), rtt=0, bandwidth=None,
                  stall=30) as proxy:
        url = f"{proxy.url}/api"
        archive = dandilab.Archive(url)  # answers
        dandiset = archive.dandiset(SYNTHETIC, "draft")
        proxy.faults = {"stall": 1.0}
        _expect_unavailable(lambda: archive.dandiset(SYNTHETIC, "draft"), url,
                            f"for Dandiset {SYNTHETIC}")
        _expect_unavailable(lambda: dandiset.asset(SYNTHETIC_ASSETS[0].path), url,
                            f"for asset {SYNTHETIC_ASSETS[0].path!r} of {dandiset}")
        _expect_unavailable(lambda: next(dandiset.assets()), url, f"for the assets of {dandiset}")
        assert proxy.stats["faults"] >= 3, proxy.stats
        proxy.faults = {}
        assert archive.dandiset(SYNTHETIC, "draft").identifier == SYNTHETIC  # and back
