"""Hub load: simulated users against one real hub (JupyterHub, configurable-http-proxy,
sqlite, the APIKey authenticator checking every key with a local archive).

    python benchmarks/hub_load.py                 # ramp to 1 000 users
    python benchmarks/hub_load.py --users 50      # a quick check

Each user: signs in with the login form (the authenticator asks the archive), asks for a
server (REST API, as the home page's button; 429s from the spawn limit are retried
after Retry-After), polls the hub API until it is ready, makes requests through the
proxy, has the server report activity to the hub, and at the end stops it. Users arrive
with at most --concurrency in their sign-in/spawn phase; servers stay up until all have
started, so "active users" rises to --users.

Lightweight (said in the output too): the single-user servers are tests/lightserver.py
(stdlib asyncio, ~10 MB) started by the real LocalSpawner instead of JupyterLab; they do
not check auth. Hub, proxy, database, authenticator and spawner are the real ones.

Writes benchmarks/results/hub_load.json and hub_load.png (latency against active users).
All traffic stays on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LIGHT = REPO / "tests" / "lightserver.py"
LIGHTWEIGHT = ("single-user servers: tests/lightserver.py (stdlib asyncio HTTP, no JupyterLab, "
               "no auth check) started by the real LocalSpawner; hub, proxy, sqlite database, "
               "APIKey authenticator (against the local archive) and spawner are real")


class Recorder:
    """Latency samples (seconds) with the number of active servers when each was taken."""

    def __init__(self):
        self.samples: dict[str, list[tuple[float, int]]] = {}
        self.errors: dict[str, int] = {}
        self.retried_429 = 0
        self.active = 0

    def add(self, metric: str, seconds: float) -> None:
        self.samples.setdefault(metric, []).append((seconds, self.active))

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def percentiles(values) -> dict:
    if not len(values):
        return {"n": 0}
    a = np.asarray(values) * 1000
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1),
            "max_ms": round(float(a.max()), 1)}


def free_port() -> int:
    from dandihub.cli import free_port as free

    return free()


def start_archive(folder: Path, users: dict[str, str]) -> tuple[subprocess.Popen, str]:
    folder.mkdir(parents=True)
    (folder / "archive.json").write_text(json.dumps({
        "name": "load", "users": [
            {"username": n, "first_name": n, "last_name": "Load", "email": f"{n}@example.org",
             "status": "APPROVED", "api_key": k} for n, k in users.items()]}))
    log = open(folder.parent / "archive.log", "w")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen([sys.executable, "-m", "dandihub.cli", "archive", "serve",
                             str(folder)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = (folder.parent / "archive.log").read_text()
        if m := re.search(r"DANDI local archive API: (\S+)", text):
            return proc, m.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"the local archive exited:\n{text}")
        time.sleep(0.2)
    raise SystemExit("the local archive did not start in 60 s")


def start_hub(data: Path, archive_url: str) -> tuple[subprocess.Popen, str]:
    from dandihub.cli import crypt_key, find_proxy
    from dandihub.config import Settings

    data.mkdir(parents=True)
    port = free_port()
    settings = Settings(archive_url=archive_url, data_dir=str(data), port=port,
                        hub_port=free_port(), proxy_api_port=free_port(),
                        proxy_command=[find_proxy()], cull_enabled=False, usage_service=False,
                        shared_account_users=0,  # 1 000 simulated people, one account
                        log_level="WARN")
    settings.to_file(data / "settings.json")
    (data / "jupyterhub_config.py").write_text(
        "from dandihub.config import load_config\n"
        f"c.merge(load_config({str(data / 'settings.json')!r}))\n"
        "# lightweight single-user servers (see benchmarks/hub_load.py)\n"
        f"c.Spawner.cmd = [{sys.executable!r}, {str(LIGHT)!r}]\n"
        "c.Spawner.args = []\n"
        "c.Spawner.default_url = ''\n"
        "c.LocalSpawner.enforce_limits = False\n"
        "c.Spawner.start_timeout = 120\n"
        "c.Spawner.http_timeout = 60\n"
        "c.JupyterHub.active_server_limit = 0\n"
    )
    env = {**os.environ, "JUPYTERHUB_CRYPT_KEY": crypt_key(data)}
    log = open(data / "hub.log", "w")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f",
                             str(data / "jupyterhub_config.py")], cwd=data, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"JupyterHub exited:\n{(data / 'hub.log').read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}hub/api/", timeout=2).status_code == 200:
                return proc, url
        time.sleep(0.5)
    raise SystemExit("JupyterHub did not answer in 90 s")


class Monitor(threading.Thread):
    """Hub (and proxy) CPU % and memory every second."""

    def __init__(self, hub_pid: int, rec: Recorder):
        super().__init__(daemon=True)
        self.hub = psutil.Process(hub_pid)
        self.rec = rec
        self.rows: list[dict] = []
        self.stop = threading.Event()

    def proxy(self):
        for child in self.hub.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "configurable-http-proxy" in " ".join(child.cmdline()):
                    return child
        for p in psutil.process_iter(["cmdline"]):  # started in its own session
            if "configurable-http-proxy" in " ".join(p.info["cmdline"] or []) and \
                    str(self.hub.cwd()) in " ".join(p.info["cmdline"] or []):
                return p
        return None

    def run(self):
        proxy = self.proxy()
        self.hub.cpu_percent()
        if proxy:
            proxy.cpu_percent()
        started = time.monotonic()
        while not self.stop.wait(1.0):
            with contextlib.suppress(psutil.Error):
                row = {"t": round(time.monotonic() - started, 1), "active": self.rec.active,
                       "hub_cpu": self.hub.cpu_percent(),
                       "hub_rss_mb": round(self.hub.memory_info().rss / 1e6, 1)}
                if proxy:
                    row["proxy_cpu"] = proxy.cpu_percent()
                    row["proxy_rss_mb"] = round(proxy.memory_info().rss / 1e6, 1)
                row["machine_mem_used_gb"] = round(psutil.virtual_memory().used / 1e9, 2)
                self.rows.append(row)


async def timed(rec: Recorder, metric: str, coro):
    t = time.perf_counter()
    result = await coro
    rec.add(metric, time.perf_counter() - t)
    return result


async def user_session(name: str, key: str, url: str, rec: Recorder, gate: asyncio.Semaphore,
                       all_started: asyncio.Event, requests: int) -> bool:
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async with gate:
            # 1. sign in (the authenticator asks the archive about the key)
            t = time.perf_counter()
            page = await client.get("hub/login")
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
            action = re.search(r'<form action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
            answer = await client.post(action, data={"_xsrf": xsrf, "api_key": key})
            if answer.status_code != 302:
                rec.error(f"login {answer.status_code}")
                return False
            rec.add("login", time.perf_counter() - t)
            headers = {"X-XSRFToken": client.cookies.get("_xsrf", path="/hub/") or xsrf}
            # 2. spawn, retrying the spawn limit's 429s
            t = time.perf_counter()
            for _attempt in range(60):
                answer = await client.post(f"hub/api/users/{name}/server",
                                           json={"profile": "tiny"}, headers=headers)
                if answer.status_code != 429:
                    break
                rec.retried_429 += 1
                await asyncio.sleep(min(float(answer.headers.get("Retry-After", 1) or 1), 5))
            if answer.status_code not in (201, 202):
                rec.error(f"spawn {answer.status_code}")
                return False
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                model = await timed(rec, "hub_api", client.get(f"hub/api/users/{name}",
                                                               headers=headers))
                if model.status_code != 200:
                    rec.error(f"hub api {model.status_code}")
                elif (model.json().get("servers") or {}).get("", {}).get("ready"):
                    break
                await asyncio.sleep(0.5)
            else:
                rec.error("spawn timeout")
                return False
            rec.add("spawn_to_ready", time.perf_counter() - t)
            rec.active += 1
        # 3. through the proxy, and an activity report
        for _ in range(requests):
            answer = await timed(rec, "proxied_request", client.get(f"user/{name}/api/status"))
            if answer.status_code != 200:
                rec.error(f"proxied {answer.status_code}")
        answer = await client.get(f"user/{name}/activity")
        if answer.status_code == 200 and answer.json()["hub_status"] == 200:
            rec.add("activity_report", answer.json()["seconds"])
        else:
            rec.error(f"activity {answer.status_code}")
        # 4. stay up while the others arrive, using the server now and then
        while not all_started.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(all_started.wait(), 5 + secrets.randbelow(5))
            if not all_started.is_set():
                answer = await timed(rec, "proxied_request", client.get(f"user/{name}/"))
                if answer.status_code != 200:
                    rec.error(f"proxied {answer.status_code}")
                await timed(rec, "hub_api", client.get("hub/api/user", headers=headers))
        # 5. stop
        async with gate:
            t = time.perf_counter()
            answer = await client.delete(f"hub/api/users/{name}/server", headers=headers)
            if answer.status_code not in (202, 204):
                rec.error(f"stop {answer.status_code}")
            deadline = time.monotonic() + 120
            while answer.status_code == 202 and time.monotonic() < deadline:
                model = await client.get(f"hub/api/users/{name}", headers=headers)
                if not (model.json().get("servers") or {}).get(""):
                    break
                await asyncio.sleep(0.5)
            rec.add("stop", time.perf_counter() - t)
            rec.active -= 1
        return True


async def drive(url: str, users: dict[str, str], rec: Recorder, concurrency: int,
                requests: int, arrival: float) -> dict:
    gate = asyncio.Semaphore(concurrency)
    all_started = asyncio.Event()
    started = time.monotonic()
    tasks = []
    for name, key in users.items():
        tasks.append(asyncio.create_task(
            user_session(name, key, url, rec, gate, all_started, requests)))
        await asyncio.sleep(arrival)
    peak = 0
    while not all_started.is_set():
        peak = max(peak, rec.active)
        done = sum(t.done() for t in tasks)
        if rec.active + done >= len(tasks) or time.monotonic() - started > 3600:
            all_started.set()
        await asyncio.sleep(0.5)
    ramp = time.monotonic() - started
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            rec.error(f"exception {type(r).__name__}: {str(r)[:80]}")
    return {"ramp_seconds": round(ramp, 1), "total_seconds": round(time.monotonic() - started, 1),
            "peak_active": peak, "users_completed": sum(r is True for r in results)}


def plot(rec: Recorder, monitor_rows: list[dict], path: Path, n_users: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    step = max(1, n_users // 10)
    for metric in ("login", "spawn_to_ready", "proxied_request", "hub_api"):
        pts = rec.samples.get(metric, [])
        if not pts:
            continue
        buckets: dict[int, list[float]] = {}
        for sec, active in pts:
            buckets.setdefault(active // step * step, []).append(sec * 1000)
        xs = sorted(buckets)
        ax.plot(xs, [np.percentile(buckets[x], 50) for x in xs], "-o", ms=3,
                label=f"{metric} p50")
        ax.plot(xs, [np.percentile(buckets[x], 95) for x in xs], "--", alpha=0.6,
                label=f"{metric} p95")
    ax.set_yscale("log")
    ax.set_xlabel("active users (running servers)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("DANDI Hub load: latency against active users")
    ax.legend(fontsize=7)
    ts = [r["t"] for r in monitor_rows]
    ax2.plot(ts, [r["hub_cpu"] for r in monitor_rows], label="hub CPU %")
    ax2.plot(ts, [r.get("proxy_cpu", 0) for r in monitor_rows], label="proxy CPU %")
    ax2.set_xlabel("seconds")
    ax2.set_ylabel("CPU %")
    ax3 = ax2.twinx()
    ax3.plot(ts, [r["active"] for r in monitor_rows], "k:", label="active users")
    ax3.set_ylabel("active users")
    ax2.legend(loc="upper left", fontsize=7)
    ax2.set_title("hub and proxy CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20,
                        help="users in their sign-in/spawn phase at once")
    parser.add_argument("--requests", type=int, default=5, help="proxied requests per user")
    parser.add_argument("--arrival", type=float, default=0.05, help="seconds between arrivals")
    parser.add_argument("--out", type=Path, default=RESULTS / "hub_load.json")
    args = parser.parse_args(argv)

    users = {f"load{i:04d}": secrets.token_hex(20) for i in range(args.users)}
    rec = Recorder()
    with tempfile.TemporaryDirectory(prefix="hub-load-") as tmp:
        archive, archive_url = start_archive(Path(tmp) / "archive", users)
        hub = None
        try:
            hub, url = start_hub(Path(tmp) / "hub", archive_url)
            monitor = Monitor(hub.pid, rec)
            monitor.start()
            run = asyncio.run(drive(url, users, rec, args.concurrency, args.requests,
                                    args.arrival))
            monitor.stop.set()
            monitor.join(5)
            hub_log_errors = sum(1 for line in (Path(tmp) / "hub" / "hub.log").read_text(
                errors="replace").splitlines() if " E " in line[:40] or "[E " in line)
        finally:
            for proc in (hub, archive):
                if proc and proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
            # servers are started in their own sessions: stop any left (ours: JUPYTERHUB_USER)
            for p in psutil.process_iter(["cmdline", "environ"]):
                with contextlib.suppress(psutil.Error):
                    if str(LIGHT) in " ".join(p.info["cmdline"] or []) and \
                            (p.info["environ"] or {}).get("JUPYTERHUB_USER") in users:
                        p.terminate()

    rows = monitor.rows
    result = {
        "what": "simulated users against one embedded DANDI Hub",
        "lightweight": LIGHTWEIGHT,
        "machine": {"cpus": os.cpu_count(),
                    "memory_gb": round(psutil.virtual_memory().total / 1e9, 1)},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "run": run,
        "latency": {m: percentiles([s for s, _ in pts]) for m, pts in rec.samples.items()},
        "hub": {"cpu_mean_pct": round(float(np.mean([r["hub_cpu"] for r in rows])), 1),
                "cpu_max_pct": max(r["hub_cpu"] for r in rows),
                "rss_max_mb": max(r["hub_rss_mb"] for r in rows),
                "proxy_cpu_max_pct": max((r.get("proxy_cpu", 0) for r in rows), default=0),
                "proxy_rss_max_mb": max((r.get("proxy_rss_mb", 0) for r in rows), default=0),
                "error_lines_in_hub_log": hub_log_errors},
        "errors": rec.errors,
        "retried_429": rec.retried_429,
        "monitor": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(rec, rows, args.out.with_suffix(".png"), args.users)
    print(f"\nDANDI Hub load: {args.users} users, {LIGHTWEIGHT}")
    print(f"ramp {run['ramp_seconds']} s, total {run['total_seconds']} s, peak active "
          f"{run['peak_active']}, completed {run['users_completed']}/{args.users}")
    print(f"{'metric':<18}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for metric, p in result["latency"].items():
        if p["n"]:
            print(f"{metric:<18}{p['n']:>6}{p['p50_ms']:>10}{p['p95_ms']:>10}{p['p99_ms']:>10}"
                  f"{p['max_ms']:>10}")
    print(f"hub CPU mean {result['hub']['cpu_mean_pct']}% max {result['hub']['cpu_max_pct']}%, "
          f"hub RSS max {result['hub']['rss_max_mb']} MB; proxy CPU max "
          f"{result['hub']['proxy_cpu_max_pct']}%, RSS max {result['hub']['proxy_rss_max_mb']} MB")
    print(f"errors {rec.errors or 'none'}; 429s retried {rec.retried_429}")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0 if not rec.errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
