"""Keep a server that is working alive: report running work to the hub as activity.

A jupyter_server extension of its own (``dandilab.activity``, enabled by
``jupyter-config/server-config/dandilab-activity.json``). JupyterHub's idle culler stops
servers whose last activity is older than its timeout, and JupyterHub only hears of browser
traffic; a `dandi download` in a terminal or a long cell run with the tab closed looked idle
and was killed. Every ``interval`` seconds this extension looks for running work and, when
there is some, posts "active now" to ``$JUPYTERHUB_ACTIVITY_URL``
(``$JUPYTERHUB_API_URL/users/$JUPYTERHUB_USER/activity``) with the server's token, as
jupyterhub-singleuser does for browser activity.

Running work is, at the time of a check:

1. a kernel whose execution state is busy (a cell is running, even ``time.sleep``); or
2. a kernel process that used at least ``kernel_min_cpu_seconds`` of CPU since the previous
   check (threads computing after the cell returned); or
3. a user process that made progress since the previous check: it used at least
   ``min_cpu_seconds`` of CPU or read/wrote at least ``min_io_bytes`` (through read/write
   calls: files, pipes, terminals; a download writes what it receives). User processes are
   the descendants of kernels and terminal shells, and the processes of this OS user that
   carry this server's ``JUPYTERHUB_SERVICE_PREFIX`` in their environment (jobs detached with
   ``nohup ... &`` whose terminal has closed). The terminal shells themselves, the server
   and its helpers (language servers) are not user work.

So a terminal with only a shell, an editor waiting for keys, or a stalled ``sleep`` is idle
and gets culled, while a transfer, a computation or a busy cell keeps the server.
A cell waiting on ``input()`` is busy too; bound such cases with the culler's max age.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "dandilab.activity"}]


def _load_jupyter_server_extension(serverapp) -> None:
    reporter = ActivityReporter(parent=serverapp, serverapp=serverapp)
    serverapp.web_app.settings["dandilab_activity"] = reporter
    reporter.start()


load_jupyter_server_extension = _load_jupyter_server_extension


@dataclass
class _Seen:
    created: float
    cpu: float
    io: int


class ActivityReporter(LoggingConfigurable):
    """Checks for running work every `interval` seconds and reports it to the hub."""

    interval = Float(
        config=True,
        help="Seconds between checks (default: $DANDILAB_ACTIVITY_INTERVAL, else 120). "
        "Keep it well below the culler's timeout.",
    )
    min_cpu_seconds = Float(
        0.05, config=True, help="CPU seconds per interval that make a user process working."
    )
    min_io_bytes = Int(
        4096, config=True, help="Bytes read+written per interval that make a process working."
    )
    kernel_min_cpu_seconds = Float(
        1.0, config=True, help="CPU seconds per interval that make an idle kernel working."
    )
    activity_url = Unicode(config=True, help="The hub's activity endpoint for this user.")
    server_name = Unicode(os.environ.get("JUPYTERHUB_SERVER_NAME", ""), config=True)

    @default("interval")
    def _default_interval(self):
        try:
            return float(os.environ.get("DANDILAB_ACTIVITY_INTERVAL", "") or 120)
        except ValueError:
            return 120.0

    @default("activity_url")
    def _default_activity_url(self):
        if os.environ.get("JUPYTERHUB_ACTIVITY_URL"):
            return os.environ["JUPYTERHUB_ACTIVITY_URL"]
        api, user = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_USER")
        return f"{api.rstrip('/')}/users/{user}/activity" if api and user else ""

    def __init__(self, serverapp=None, **kwargs):
        super().__init__(**kwargs)
        self.serverapp = serverapp
        self._seen: dict[int, _Seen] = {}
        self._last_check = time.time()
        self._last_reasons: list[str] = []
        self._callback: PeriodicCallback | None = None
        self.reports = 0  # successful reports, for tests and debugging

    def start(self) -> None:
        if not (self.activity_url and os.environ.get("JUPYTERHUB_API_TOKEN")):
            self.log.info("dandilab.activity: not running under JupyterHub; nothing to report to")
            return
        self.log.info(
            "dandilab.activity: reporting running work to the hub every %g s", self.interval
        )
        self.find_work()  # baseline of the processes that exist now
        self._callback = PeriodicCallback(self.check, self.interval * 1000)
        self._callback.start()

    def stop(self) -> None:
        if self._callback:
            self._callback.stop()

    async def check(self) -> None:
        try:
            reasons = self.find_work()
        except Exception:  # never let a check take the server down
            self.log.exception("dandilab.activity: could not look for running work")
            return
        if reasons and not self._last_reasons:
            self.log.info("dandilab.activity: running work keeps this server active: %s",
                          "; ".join(reasons[:5]))
        elif not reasons and self._last_reasons:
            self.log.info("dandilab.activity: no running work any more")
        self._last_reasons = reasons
        if reasons:
            await self.report()

    # --- what counts as work ----------------------------------------------------------

    def find_work(self) -> list[str]:
        """Why this server is working right now (empty: it is not)."""
        now = time.time()
        reasons = []
        kernels = self._kernels()
        for kernel_id, (state, _) in kernels.items():
            if state == "busy":
                reasons.append(f"kernel {kernel_id[:8]} is busy")
        kernel_pids = {pid: kid for kid, (_, pid) in kernels.items() if pid}
        shell_pids = self._terminal_pids()
        candidates = self._user_processes(set(kernel_pids), shell_pids)
        seen: dict[int, _Seen] = {}
        for proc in candidates + [p for p in map(_process, kernel_pids) if p]:
            try:
                with proc.oneshot():
                    created = proc.create_time()
                    times = proc.cpu_times()
                    cpu = times.user + times.system + times.children_user + times.children_system
                    io = _io_total(proc)
                    name = proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            seen[proc.pid] = current = _Seen(created, cpu, io)
            before = self._seen.get(proc.pid)
            if before is None or before.created != created:
                if created < self._last_check:
                    continue  # existed before, first look: only a baseline
                before = _Seen(created, 0.0, 0)
            d_cpu, d_io = current.cpu - before.cpu, current.io - before.io
            if proc.pid in kernel_pids:
                if d_cpu >= self.kernel_min_cpu_seconds:
                    reasons.append(f"kernel {kernel_pids[proc.pid][:8]} computes ({d_cpu:.1f} s CPU)")
            elif d_cpu >= self.min_cpu_seconds or d_io >= self.min_io_bytes:
                reasons.append(f"process {proc.pid} ({name}) is working "
                               f"({d_cpu:.2f} s CPU, {d_io} bytes I/O)")
        self._seen = seen
        self._last_check = now
        return reasons

    def _kernels(self) -> dict[str, tuple[str, int | None]]:
        """kernel id -> (execution state, pid of its process when local)."""
        km = getattr(self.serverapp, "kernel_manager", None)
        found = {}
        for kernel_id in list(km.list_kernel_ids()) if km else []:
            try:
                kernel = km.get_kernel(kernel_id)
            except KeyError:
                continue
            pid = getattr(getattr(kernel, "provisioner", None), "pid", None)
            found[kernel_id] = (getattr(kernel, "execution_state", None), pid)
        return found

    def _terminal_pids(self) -> set[int]:
        settings = getattr(getattr(self.serverapp, "web_app", None), "settings", {})
        manager = settings.get("terminal_manager")
        pids = set()
        for terminal in list(getattr(manager, "terminals", {}).values()):
            pid = getattr(getattr(terminal, "ptyproc", None), "pid", None)
            if pid:
                pids.add(pid)
        return pids

    def _user_processes(self, kernel_pids: set[int], shell_pids: set[int]) -> list[psutil.Process]:
        me = psutil.Process()
        roots = kernel_pids | shell_pids
        helpers: set[int] = {me.pid}  # the server and what it runs for itself
        with _quiet():
            for child in me.children():
                if child.pid not in roots:
                    helpers.add(child.pid)
                    helpers |= {p.pid for p in _descendants(child)}
        users: dict[int, psutil.Process] = {}
        for pid in roots:
            root = _process(pid)
            if root:
                users.update({p.pid: p for p in _descendants(root)})
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        if prefix:
            uid = os.getuid()
            for proc in psutil.process_iter(["uids"]):
                if proc.pid in users or proc.pid in roots or proc.pid in helpers:
                    continue
                uids = proc.info.get("uids")
                if not uids or uids.real != uid:
                    continue
                with _quiet():
                    if proc.environ().get("JUPYTERHUB_SERVICE_PREFIX") == prefix:
                        users[proc.pid] = proc
        for pid in roots | helpers:
            users.pop(pid, None)
        return list(users.values())

    # --- telling the hub ---------------------------------------------------------------

    async def report(self) -> bool:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        body = {"servers": {self.server_name: {"last_activity": now}}, "last_activity": now}
        request = HTTPRequest(
            self.activity_url,
            method="POST",
            headers={
                "Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}",
                "Content-Type": "application/json",
            },
            body=json.dumps(body),
            request_timeout=20,
            ssl_options=_hub_ssl_context(),
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError) as e:
            self.log.warning("dandilab.activity: could not report activity to the hub: %s", e)
            return False
        self.reports += 1
        self.log.debug("dandilab.activity: reported activity at %s", now)
        return True


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def _io_total(proc: psutil.Process) -> int:
    try:
        io = proc.io_counters()
    except (psutil.AccessDenied, AttributeError, NotImplementedError):
        return 0
    # read_chars/write_chars (Linux) count every read/write call, not only disk blocks.
    return getattr(io, "read_chars", io.read_bytes) + getattr(io, "write_chars", io.write_bytes)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(
            kind, (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)
        )


def _hub_ssl_context() -> ssl.SSLContext | None:
    """The client certificate JupyterHub gives servers when internal_ssl is on."""
    keyfile, certfile = os.environ.get("JUPYTERHUB_SSL_KEYFILE"), os.environ.get("JUPYTERHUB_SSL_CERTFILE")
    if not (keyfile and certfile):
        return None
    context = ssl.create_default_context(cafile=os.environ.get("JUPYTERHUB_SSL_CLIENT_CA"))
    context.load_cert_chain(certfile, keyfile)
    return context
