"""Who uses the hub, what their homes hold, and whose home is past the retention policy.

DANDI's policy: a home whose user has not been active on the hub for 30 days gets a warning,
for 45 days a reset (the folder is deleted; the next server starts with an empty home).
Activity is the hub's ``last_activity`` of the user: it moves on every sign-in, every page
and every report of a running server (``dandilab.activity``).

Two ways in, one report:

- ``dandihub usage [HOMES]`` (also ``python -m dandihub.usage report``): prints the report,
  or JSON with ``--json``. It lists only; ``--delete`` also deletes the homes past the reset
  threshold whose user has no running server, and logs each. On Kubernetes it runs as a
  CronJob with the homes volume mounted at HOMES and a hub API token.
- ``python -m dandihub.usage serve``: the hub service page ``/services/usage/`` for admins
  (only they hold ``access:services!service=usage``), and ``/services/usage/api/report``.

HOMES holds one folder per user, named by the username (embedded mode: DATA_DIR/homes) or by
KubeSpawner's safe slug of it (``homes/{username}`` on a shared volume).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import os
import shutil
import stat
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from .profiles import format_bytes

log = logging.getLogger("dandihub.usage")

DEFAULT_CACHE_DIRS = [".cache", "nwb-cache"]


@dataclass
class Row:
    """One user (or one home folder nobody on the hub owns)."""

    user: str
    status: str  # ok | warn | reset | running | no hub user | unknown
    last_activity: str | None = None
    days_inactive: float | None = None
    server_running: bool = False
    known_to_hub: bool = True
    home: str | None = None
    home_bytes: int | None = None
    cache_bytes: int | None = None


@dataclass
class Report:
    generated: str
    as_of: str
    warn_days: int
    reset_days: int
    homes_root: str | None
    hub: bool  # whether activity came from the hub
    rows: list[Row] = field(default_factory=list)

    def past(self, status: str) -> list[Row]:
        return [r for r in self.rows if r.status == status]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def to_text(self) -> str:
        head = ("user", "status", "last activity", "days", "home", "cache")
        lines = [head]
        for r in self.rows:
            lines.append((
                r.user,
                r.status,
                (r.last_activity or "-")[:16].replace("T", " "),
                "-" if r.days_inactive is None else f"{r.days_inactive:.0f}",
                _size(r.home_bytes),
                _size(r.cache_bytes),
            ))
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        table = "\n".join(
            "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines
        )
        summary = (
            f"As of {self.as_of[:10]}: {len(self.past('warn'))} past {self.warn_days} days "
            f"(warn), {len(self.past('reset'))} past {self.reset_days} days (reset)."
        )
        if not self.hub:
            summary += " No hub API: activity unknown."
        if self.homes_root is None:
            summary += " No homes folder: sizes unknown."
        return f"{table}\n\n{summary}"


def _size(n: int | None) -> str:
    return "-" if n is None else format_bytes(n)


def folder_size(path: Path) -> int:
    """Bytes on disk under ``path``: symlinks not followed, hard links counted once."""
    total, seen = 0, set()
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def home_names(username: str) -> list[str]:
    """Folder names a home of ``username`` may have (raw, or KubeSpawner's safe slug)."""
    names = [username]
    try:
        from kubespawner.slugs import safe_slug

        names += [safe_slug(username, max_length=48), safe_slug(username)]
    except ImportError:
        pass
    return list(dict.fromkeys(names))


async def hub_users(api_url: str, token: str, page_size: int = 200) -> list[dict]:
    """Every user of the hub, with ``last_activity`` and ``servers`` (paginated API)."""
    users: list[dict] = []
    headers = {
        "Authorization": f"token {token}",
        "Accept": "application/jupyterhub-pagination+json",
    }
    async with httpx.AsyncClient(timeout=30) as client:
        offset = 0
        while True:
            response = await client.get(
                f"{api_url.rstrip('/')}/users",
                params={"offset": offset, "limit": page_size, "include_stopped_servers": "1"},
                headers=headers,
            )
            if response.status_code in (401, 403):
                raise PermissionError(
                    f"The hub at {api_url} refused the token (HTTP {response.status_code}); it "
                    "needs the scopes list:users, read:users and read:servers."
                )
            response.raise_for_status()
            data = response.json()
            if isinstance(data, list):  # a hub without pagination
                return data
            users += data["items"]
            following = (data.get("_pagination") or {}).get("next")
            if not following:
                return users
            offset = following["offset"]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_report(
    users: list[dict] | None,
    homes_root: str | Path | None,
    *,
    warn_days: int = 30,
    reset_days: int = 45,
    cache_dirs: list[str] = DEFAULT_CACHE_DIRS,
    as_of: datetime | None = None,
    sizes: dict[str, tuple[int, int]] | None = None,
) -> Report:
    """The report for the hub's ``users`` (None: unknown) and the homes under ``homes_root``.

    ``sizes`` (folder path -> (home bytes, cache bytes)) reuses sizes measured earlier.
    """
    now = datetime.now(UTC)
    as_of = as_of or now
    root = Path(homes_root) if homes_root else None
    folders = {p.name: p for p in root.iterdir() if p.is_dir() and not p.is_symlink()} if (
        root and root.is_dir()) else {}
    report = Report(
        generated=now.isoformat(), as_of=as_of.isoformat(), warn_days=warn_days,
        reset_days=reset_days, homes_root=str(root) if root else None, hub=users is not None,
    )
    claimed: set[str] = set()
    for user in users or []:
        name = user["name"]
        row = Row(user=name, status="unknown")
        servers = user.get("servers") or {}
        row.server_running = any(s.get("ready") or s.get("pending") for s in servers.values())
        last = _parse_time(user.get("last_activity")) or _parse_time(user.get("created"))
        if last:
            row.last_activity = last.isoformat()
            row.days_inactive = round((as_of - last) / timedelta(days=1), 1)
        if row.server_running:
            row.status = "running"
        elif row.days_inactive is not None:
            row.status = (
                "reset" if row.days_inactive >= reset_days
                else "warn" if row.days_inactive >= warn_days
                else "ok"
            )
        for candidate in home_names(name):
            if candidate in folders and candidate not in claimed:
                row.home = str(folders[candidate])
                claimed.add(candidate)
                break
        report.rows.append(row)
    for name, folder in sorted(folders.items()):
        if name not in claimed:
            report.rows.append(Row(user=name, status="no hub user" if users is not None
                                   else "unknown", known_to_hub=False, home=str(folder)))
    for row in report.rows:
        if row.home:
            if sizes is not None and row.home in sizes:
                row.home_bytes, row.cache_bytes = sizes[row.home]
            else:
                row.home_bytes, row.cache_bytes = measure_home(Path(row.home), cache_dirs)
    order = {"reset": 0, "warn": 1, "unknown": 2, "no hub user": 3, "ok": 4, "running": 5}
    report.rows.sort(key=lambda r: (order.get(r.status, 9), -(r.days_inactive or 0), r.user))
    return report


def measure_home(home: Path, cache_dirs: list[str]) -> tuple[int, int]:
    cache = sum(folder_size(home / d) for d in cache_dirs if (home / d).is_dir())
    return folder_size(home), cache


def delete_past_reset(report: Report) -> list[Row]:
    """Delete the homes of users past the reset threshold; never of a running server,
    never a folder no hub user owns, never outside the homes folder. Logs each."""
    root = Path(report.homes_root).resolve() if report.homes_root else None
    deleted = []
    for row in report.past("reset"):
        if not (row.home and row.known_to_hub and not row.server_running and root):
            continue
        home = Path(row.home)
        if home.is_symlink() or home.resolve().parent != root:
            log.warning("Not deleting %s: not a folder directly in %s", home, root)
            continue
        log.warning(
            "Deleting the home of %s (inactive %.0f days, %s): %s",
            row.user, row.days_inactive or 0, _size(row.home_bytes), home,
        )
        shutil.rmtree(home)
        deleted.append(row)
    return deleted


# --- the command line --------------------------------------------------------------------


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("homes", nargs="?", help="folder with one home folder per user")
    p.add_argument("--hub-api", default=os.environ.get("JUPYTERHUB_API_URL"),
                   help="the hub's API, e.g. http://127.0.0.1:8000/hub/api "
                   "(default $JUPYTERHUB_API_URL)")
    p.add_argument("--token", default=os.environ.get("JUPYTERHUB_API_TOKEN"),
                   help="an API token with list:users, read:users, read:servers (an admin's, "
                   "from /hub/token; default $JUPYTERHUB_API_TOKEN)")
    p.add_argument("--warn-days", type=int, default=30)
    p.add_argument("--reset-days", type=int, default=45)
    p.add_argument("--cache-dir", action="append", dest="cache_dirs", metavar="DIR",
                   help=f"cache folder inside a home (repeatable; default {DEFAULT_CACHE_DIRS})")
    p.add_argument("--as-of", metavar="DATE",
                   help="evaluate the thresholds at this date (preview; ISO, e.g. 2025-01-31)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--delete", action="store_true",
                   help="delete the homes of users past --reset-days (no running server)")


def report_command(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.warn_days >= args.reset_days:
        raise SystemExit("--warn-days must be below --reset-days")
    if args.delete and args.as_of:
        raise SystemExit("--delete acts on today's report only; drop --as-of")
    users = None
    if args.hub_api and args.token:
        try:
            users = asyncio.run(hub_users(args.hub_api, args.token))
        except (httpx.HTTPError, PermissionError) as e:
            raise SystemExit(f"Could not read the hub's users at {args.hub_api}: {e}") from None
    elif args.delete:
        raise SystemExit("--delete needs the hub's activity: give --hub-api and --token")
    else:
        log.warning("No --hub-api/--token: the report has no activity, only sizes")
    if args.homes and not Path(args.homes).is_dir():
        raise SystemExit(f"{args.homes} is not a folder")
    as_of = _parse_time(args.as_of + ("T00:00:00" if len(args.as_of) == 10 else "")) if args.as_of else None
    report = build_report(
        users, args.homes, warn_days=args.warn_days, reset_days=args.reset_days,
        cache_dirs=args.cache_dirs or DEFAULT_CACHE_DIRS, as_of=as_of,
    )
    print(report.to_json() if args.json else report.to_text())
    if args.delete:
        deleted = delete_past_reset(report)
        log.warning("Deleted %d home(s) past %d days", len(deleted), args.reset_days)
    return 0


# --- the hub service -----------------------------------------------------------------------


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DANDI Hub usage</title>
<link rel="stylesheet" href="{hub}static/css/style.min.css">
<style>
td.n, th.n {{ text-align: right; }} tr.reset td {{ background: #fde2e1; }}
tr.warn td {{ background: #fff4ce; }}
</style></head><body>
<nav class="navbar navbar-expand-sm bg-body-tertiary mb-4"><div class="container-fluid">
<a class="navbar-brand" href="{hub}home">DANDI Hub</a>
<ul class="navbar-nav me-auto mb-0">
<li class="nav-item"><a id="back-to-hub" class="nav-link" href="{hub}home">&larr; Back to the hub</a></li>
<li class="nav-item"><a class="nav-link" href="{hub}admin">Admin</a></li>
</ul></div></nav>
<div class="container">
<h1>Usage</h1>
<p>{summary}</p>
<p>Homes are kept while their user is active; after {warn} days without activity the user
is warned, after {reset} days the home is reset. This page only lists;
deleting takes <code>dandihub usage --delete</code>. <a href="api/report">JSON</a></p>
<table class="table table-sm"><thead><tr><th>User</th><th>Status</th><th>Last activity</th>
<th class="n">Days</th><th class="n">Home</th><th class="n">Cache</th></tr></thead><tbody>
{rows}
</tbody></table>
<p><small>Generated {generated}; sizes measured at most every {ttl} s.</small></p>
</div>
</body></html>
"""


class ReportSource:
    """The report for the service: users live from the hub, sizes cached for ``size_ttl``."""

    def __init__(self, homes, warn_days, reset_days, cache_dirs, size_ttl):
        self.homes, self.warn_days, self.reset_days = homes, warn_days, reset_days
        self.cache_dirs, self.size_ttl = cache_dirs, size_ttl
        self._sizes: dict[str, tuple[int, int]] | None = None
        self._measured = 0.0
        self._lock = asyncio.Lock()

    async def report(self) -> Report:
        users = await hub_users(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
        async with self._lock:
            stale = time.monotonic() - self._measured > self.size_ttl
            sizes = None if stale else self._sizes
            report = await asyncio.to_thread(
                build_report, users, self.homes, warn_days=self.warn_days,
                reset_days=self.reset_days, cache_dirs=self.cache_dirs, sizes=sizes,
            )
            if stale:
                self._sizes = {r.home: (r.home_bytes, r.cache_bytes) for r in report.rows if r.home}
                self._measured = time.monotonic()
        return report


def render_page(report: Report, ttl: int, hub_prefix: str = "/hub/") -> str:
    """The page; ``hub_prefix`` is where the hub answers (its CSS and home are there)."""
    rows = []
    for r in report.rows:
        cells = [
            html.escape(r.user), html.escape(r.status),
            html.escape((r.last_activity or "-")[:16].replace("T", " ")),
            "-" if r.days_inactive is None else f"{r.days_inactive:.0f}",
            _size(r.home_bytes), _size(r.cache_bytes),
        ]
        tds = "".join(
            f'<td class="n">{c}</td>' if i >= 3 else f"<td>{c}</td>" for i, c in enumerate(cells)
        )
        rows.append(f'<tr class="{html.escape(r.status)}" data-user="{html.escape(r.user)}">{tds}</tr>')
    return PAGE.format(
        summary=html.escape(report.to_text().rsplit("\n\n", 1)[-1]),
        warn=report.warn_days, reset=report.reset_days, rows="\n".join(rows),
        generated=html.escape(report.generated[:19].replace("T", " ")), ttl=ttl,
        hub=html.escape(hub_prefix),
    )


def serve_command(args) -> int:
    from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
    from jupyterhub.utils import url_path_join
    from tornado import web
    from tornado.ioloop import IOLoop

    logging.basicConfig(level=logging.INFO, format="[usage %(levelname)s] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the hub logs its requests already
    source = ReportSource(args.homes, args.warn_days, args.reset_days,
                          args.cache_dirs or DEFAULT_CACHE_DIRS, args.size_ttl)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/usage/")
    # The same origin as the hub (behind its proxy): link its CSS and pages by path.
    hub_prefix = url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "hub/")

    class PageHandler(HubOAuthenticated, web.RequestHandler):
        @web.authenticated
        async def get(self):
            report = await source.report()
            self.finish(render_page(report, args.size_ttl, hub_prefix))

    class JSONHandler(HubOAuthenticated, web.RequestHandler):
        @web.authenticated
        async def get(self):
            report = await source.report()
            self.set_header("Content-Type", "application/json")
            self.finish(report.to_json())

    app = web.Application(
        [
            (prefix, PageHandler),
            (url_path_join(prefix, "api/report"), JSONHandler),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
    )
    app.listen(args.port, args.ip)
    log.info("Usage report for admins at %s (homes: %s)", prefix, args.homes or "none")
    try:
        IOLoop.current().start()
    except KeyboardInterrupt:  # the hub stops its services with SIGINT
        pass
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dandihub.usage", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="print the report (and --delete)")
    add_report_arguments(r)
    r.set_defaults(func=report_command)
    s = sub.add_parser("serve", help="the hub service page (run by the hub)")
    s.add_argument("--homes", help="folder with one home folder per user")
    s.add_argument("--warn-days", type=int, default=30)
    s.add_argument("--reset-days", type=int, default=45)
    s.add_argument("--cache-dir", action="append", dest="cache_dirs", metavar="DIR")
    s.add_argument("--size-ttl", type=int, default=3600, help="seconds between size measurements")
    s.add_argument("--ip", default="127.0.0.1")
    s.add_argument("--port", type=int, default=10101)
    s.set_defaults(func=serve_command)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
