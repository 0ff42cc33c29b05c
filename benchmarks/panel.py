"""How fast the DANDI panel's server side answers: search, and opening Dandiset 000026
(57 717 paths) at its top folder, through the dandilab handlers (issue 6).

    python benchmarks/panel.py [--repeat 20] [--latency-ms 0]

Runs the local archive over the real records of ../shared/fixtures (imported into a
temporary folder) and `jupyter server` with the dandilab extension pointed at it, then
times HTTP requests to the handlers as the panel makes them (the browser's side is not
included). "cold" is the first request after start (for 000026's folders the archive
then loads its listing); the median and p95 are of ``--repeat`` further requests.
"open 000026" is the four requests the panel sends at once when a Dandiset is chosen
(Dandiset, versions, version metadata, top folder), timed until the last answers.
``--latency-ms`` delays every archive answer (a delaying proxy in front of the archive),
to see what a distant archive costs. Results: a table on stdout and
benchmarks/results/panel.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "panel.json"
TOKEN = "benchmark-token"

REQUESTS = {
    "search 'anterior lateral motor cortex'": "dandisets?search="
    + quote("anterior lateral motor cortex") + "&page=1&page_size=20",
    "search '' (first page of all)": "dandisets?page=1&page_size=20",
    "000026 Dandiset record": "dandisets/000026",
    "000026 version metadata": "dandisets/000026/versions/draft",
    "000026 top folder (paths)": "dandisets/000026/versions/draft/paths?page=1&page_size=200",
    "000026 a subject folder (paths)": "dandisets/000026/versions/draft/paths?"
    "path_prefix=sub-I38%2F&page=1&page_size=200",
}
OPEN_000026 = [
    "dandisets/000026",
    "dandisets/000026/versions?page_size=100",
    "dandisets/000026/versions/draft",
    "dandisets/000026/versions/draft/paths?page=1&page_size=200",
]


def delaying_proxy(target: str, delay: float) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP proxy to ``target`` that waits ``delay`` s before each answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            request = urllib.request.Request(target + self.path, headers=dict(self.headers))
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status, headers, body = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as error:
                status, headers, body = error.code, error.headers, error.read()
            self.send_response(status)
            for name in ("Content-Type", "Location"):
                if headers.get(name):
                    self.send_header(name, headers[name])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def get(url: str, token: str | None = TOKEN) -> float:
    """Seconds for one GET (with the Jupyter server's token); fails loudly on an error."""
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status}")
    return time.perf_counter() - start


def start_server(folder: Path, archive_url: str) -> tuple[subprocess.Popen, str]:
    from dandihub.cli import free_port

    port = free_port()
    config = folder / "jupyter_server_config.json"
    config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"dandilab": True}}}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DANDI_")},
        "DANDI_API_URL": archive_url,
        "JUPYTER_CONFIG_DIR": str(folder / "config"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "PYTHONPATH": str(REPO / "extension"),
    }
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
        "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", "--allow-root",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={folder}",
        f"--config={config}", "--log-level=WARN",
    ]  # fmt: skip
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get(url + "api/status")
            return process, url
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"jupyter server did not start: {(folder / 'server.log').read_text()}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()

    from dandihub.localarchive.fixtures import find_shared_fixtures, import_fixtures
    from dandihub.localarchive.server import LocalArchive

    shared = find_shared_fixtures()
    if shared is None:
        print("../shared/fixtures is absent: 000026 is one of its real Dandisets", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="panel-bench-") as tmp:
        folder = Path(tmp)
        import_fixtures(shared, folder / "archive")
        with LocalArchive(folder / "archive") as archive:
            archive_url = archive.api_url
            proxy = None
            if args.latency_ms:
                proxy, base = delaying_proxy(archive_url.removesuffix("/api"), args.latency_ms / 1000)
                archive_url = base + "/api"
            (folder / "home").mkdir()
            process, server = start_server(folder / "home", archive_url)
            try:
                api = server + "dandi/api/"
                get(api + "info")  # the extension's first request: imports, HTTP client
                cold = {name: get(api + path) for name, path in REQUESTS.items()}
                for name, path in REQUESTS.items():
                    times = [get(api + path) for _ in range(args.repeat)]
                    rows.append({
                        "request": name, "path": path, "cold_ms": cold[name] * 1000,
                        "median_ms": statistics.median(times) * 1000,
                        "p95_ms": percentile(times, 0.95) * 1000, "n": args.repeat,
                    })
                with ThreadPoolExecutor(len(OPEN_000026)) as pool:
                    times = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        list(pool.map(lambda p: get(api + p), OPEN_000026))
                        times.append(time.perf_counter() - start)
                rows.append({
                    "request": "open 000026 (4 requests at once)", "path": " + ".join(OPEN_000026),
                    "cold_ms": None, "median_ms": statistics.median(times) * 1000,
                    "p95_ms": percentile(times, 0.95) * 1000, "n": args.repeat,
                })
                # The archive alone, for the handlers' share of the time.
                paths = f"{archive_url}/dandisets/000026/versions/draft/assets/paths/"
                direct = [get(paths + "?page=1&page_size=200", None) for _ in range(args.repeat)]
                rows.append({
                    "request": "000026 top folder, archive directly", "path": "(no handler)",
                    "cold_ms": None, "median_ms": statistics.median(direct) * 1000,
                    "p95_ms": percentile(direct, 0.95) * 1000, "n": args.repeat,
                })
            finally:
                process.terminate()
                process.wait(15)
                if proxy is not None:
                    proxy.shutdown()

    print(f"\nDANDI panel, server side (added archive latency: {args.latency_ms:g} ms;"
          f" {os.cpu_count()} CPUs)\n")
    print(f"{'request':42} {'cold ms':>9} {'median ms':>10} {'p95 ms':>8} {'n':>4}")
    for row in rows:
        cold = f"{row['cold_ms']:.1f}" if row["cold_ms"] is not None else "-"
        print(f"{row['request']:42} {cold:>9} {row['median_ms']:>10.1f} "
              f"{row['p95_ms']:>8.1f} {row['n']:>4}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[f"latency_{args.latency_ms:g}ms"] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "rows": rows,
    }
    RESULTS.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
