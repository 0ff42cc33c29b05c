"""``dandihub``: run DANDI Hub on one machine.

    dandihub up [--demo | --archive URL] [--port 8000] [--data-dir DIR] [--isolate]
    dandihub archive serve DIR [--port N] [--s3-port N]
    dandihub archive demo DIR          build the demo archive folder (cached)
    dandihub usage [HOMES] [--hub-api URL --token T] [--delete]   usage and retention report
    dandihub notebooks run [NAME ...] [--archive URL | --demo]   run figure notebooks, check figures
    dandihub notebooks link REPO_URL PATH --hub URL               an "Open in DANDI Hub" link
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import platformdirs

from . import isolation
from .archive import PUBLIC_API_URL
from .config import Settings
from .nodetools import find_node_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_proxy() -> str:
    try:
        return find_node_tool("configurable-http-proxy")
    except FileNotFoundError as e:
        raise SystemExit(str(e)) from None


def crypt_key(data_dir: Path) -> str:
    """The key that encrypts auth_state (API keys): kept in DATA_DIR, made once, private."""
    path = data_dir / "jupyterhub_crypt_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def prepare_demo_archive(archive_dir: Path, profile: str = "full") -> dict[str, str]:
    """Build (once) the demo archive folder; returns the demo accounts' API keys.

    ``profile="small"`` makes the same Dandisets with small files (seconds, for tests).
    """
    from .localarchive.accounts import ensure_accounts
    from .localarchive.demo import build_demo_dandisets
    from .localarchive.fixtures import find_shared_fixtures, import_fixtures

    archive_dir.mkdir(parents=True, exist_ok=True)
    fixtures = find_shared_fixtures()
    if fixtures is not None:
        import_fixtures(fixtures, archive_dir)
    else:
        print("Real DANDI records not found (../shared/fixtures): the demo has generated data only")
    build_demo_dandisets(archive_dir, profile=profile, progress=True)
    return ensure_accounts(archive_dir)


def read_settings(path: str) -> dict:
    """Settings fields from a JSON or YAML file (YAML reads JSON too)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{path} must hold a mapping of DANDI Hub settings")
    return data


def wait_for_hub(url: str, proc: subprocess.Popen, timeout: float = 90,
                 hub_url: str | None = None) -> None:
    # Ask the hub itself first: the proxy answers 404 (an error line in its log) until
    # the hub has told it its routes.
    deadline = time.monotonic() + timeout
    for base in ([hub_url] if hub_url else []) + [url]:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"JupyterHub exited with code {proc.returncode}; see its log above.")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}hub/api/", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"JupyterHub did not answer at {base} within {timeout:.0f} s.")
            time.sleep(0.5)


def stop_stale_proxy(data_dir: Path) -> None:
    """Stop the proxy a crashed earlier run left behind (its pid file is in DATA_DIR).

    JupyterHub tries this itself but gives up after 3 s, and then does not start; a pid
    file naming some other, unrelated process is only removed.
    """
    import psutil

    pid_file = data_dir / "proxy.pid"
    try:
        proxy = psutil.Process(int(pid_file.read_text().strip()))
        if "configurable-http-proxy" in " ".join(proxy.cmdline()):
            print(f"Stopping the proxy (pid {proxy.pid}) an earlier run left behind", flush=True)
            proxy.terminate()
            try:
                proxy.wait(10)
            except psutil.TimeoutExpired:
                proxy.kill()
    except (FileNotFoundError, ValueError, psutil.Error):
        pass
    pid_file.unlink(missing_ok=True)


def stop_process_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the hub (it stops its proxy, services and users' servers), then kill what is
    left: its process group, and any descendant that started a session of its own (users'
    servers do), so that nothing outlives `dandihub up`."""
    import psutil

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=10)


def up(args) -> int:
    # Ctrl-C stops the platform even when started where SIGINT is ignored (nohup, `&` in a
    # script); the processes started below then get the default handling too, so the
    # hub's services and users' servers stop when the hub asks them to.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.umask(0o077)  # what the hub writes (database, logs, keys) is the hub's alone
    data_dir = Path(args.data_dir or platformdirs.user_data_dir("dandihub")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        keys = {}
        if args.demo:
            from .localarchive.server import LocalArchive

            print("Preparing the demo archive (the first time takes a few minutes)...", flush=True)
            keys = prepare_demo_archive(data_dir / "demo-archive", profile=args.demo_profile)
            archive = stack.enter_context(
                LocalArchive(data_dir / "demo-archive", port=args.archive_port)
            )
            archive_url = archive.api_url
        else:
            archive_url = args.archive or PUBLIC_API_URL
        settings = Settings(
            archive_url=archive_url,
            data_dir=str(data_dir),
            ip=args.ip,
            port=args.port,
            hub_port=(hub_port := free_port()),
            proxy_api_port=free_port(),
            # Until the hub adds its routes, the proxy sends everything to the hub rather
            # than answering 404 (an error line in its log at every start).
            proxy_command=[find_proxy(), f"--default-target=http://127.0.0.1:{hub_port}"],
            admin_users=["admin"] if args.demo else [],
            log_level=args.log_level,
        )
        if args.isolate:
            settings.isolation = "unix"
        if args.settings:  # a deployment's choices (authenticator, archives, ...) over these
            settings = Settings.from_dict({**asdict(settings), **read_settings(args.settings)})
        check_isolation(settings, data_dir)
        settings.to_file(data_dir / "settings.json")
        config_file = data_dir / "jupyterhub_config.py"
        config_file.write_text(
            "# Written by `dandihub up`; the same function configures the Helm chart's hub.\n"
            "from dandihub.config import load_config\n\n"
            f"c.merge(load_config({str(data_dir / 'settings.json')!r}))\n"
        )
        stop_stale_proxy(data_dir)
        env = {**os.environ, "JUPYTERHUB_CRYPT_KEY": crypt_key(data_dir)}
        isolation.secure_data_dir(data_dir, settings.isolation)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config_file)],
            cwd=data_dir,
            env=env,
            start_new_session=True,  # one process group: Ctrl-C stops the hub and its children
        )
        stack.callback(stop_process_group, proc)
        stop = {"signal": None}

        def on_signal(signum, frame):
            stop["signal"] = signum
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        try:
            # Compares with 0.0.0.0 to print a reachable URL; binds nothing (bandit B104).
            url = f"http://{'127.0.0.1' if args.ip in ('0.0.0.0', '') else args.ip}:{args.port}/"  # nosec B104
            wait_for_hub(url, proc, hub_url=f"http://127.0.0.1:{settings.hub_port}/")
            archives = ", ".join(a["api_url"] for a in settings.archive_entries())
            print_welcome(url, archives, keys, settings.authenticator)
            print(isolation_summary(settings), flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            print("\nStopping DANDI Hub...", flush=True)
            return 0
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave processes behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


def check_isolation(settings: Settings, data_dir: Path) -> None:
    """Refuse to serve several people, or the network, from one system account."""
    if settings.isolation == "unix":
        try:
            isolation.check_can_isolate(data_dir, settings.user_python)
        except isolation.IsolationError as e:
            raise SystemExit(f"Cannot isolate users: {e}") from None
        return
    if not isolation.is_loopback(settings.ip):
        raise SystemExit(
            f"Refusing --ip {settings.ip}: without --isolate every user's server runs as this "
            "system account, so anyone who signs in could read the others' DANDI keys and "
            "tokens. To serve a network, run `sudo dandihub up --isolate --ip ...` (each user "
            "gets a Unix account of their own), or use the Helm chart on Kubernetes.")


def isolation_summary(settings: Settings) -> str:
    if settings.isolation == "unix":
        return ("  Users:    isolated: each runs as a Unix account of their own (dandi-<name>),"
                " home 0700.")
    who = pwd.getpwuid(os.geteuid()).pw_name
    limit = settings.shared_account_users
    people = "one person" if limit == 1 else (f"{limit} people" if limit else "anyone")
    return (f"  Users:    NOT isolated: every server runs as '{who}', so this hub serves "
            f"{people}. To share it: sudo dandihub up --isolate")


def print_welcome(url: str, archive_url: str, keys: dict[str, str],
                  authenticator: str = "apikey") -> None:
    lines = [
        "",
        "DANDI Hub is running.",
        f"  Open:     {url}",
        f"  Archive:  {archive_url}",
    ]
    if keys:
        lines += [
            "  Sign in with the API key of the demo account 'demo' (a local demo archive account):",
            f"            {keys['demo']}",
            "  In a terminal there, try:  dandi ls -r $DANDI_API_URL/dandisets/900001/",
            "  The demo archive's other accounts (to see how the hub treats each):",
            *(f"            {name:<9} {key}" for name, key in sorted(keys.items()) if name != "demo"),
        ]
    elif authenticator != "apikey":
        service = "GitHub" if authenticator == "github" else "DANDI"
        lines += [f"  Sign in with your {service} account (one the archive approved)."]
    else:
        lines += ["  Sign in with your DANDI API key (from the archive's web site, menu under your name)."]
    lines += ["  Stop with Ctrl-C.", ""]
    print("\n".join(lines), flush=True)


def archive_serve(args) -> int:
    from .localarchive.server import serve

    serve(Path(args.dir), port=args.port, s3_port=args.s3_port)
    return 0


def archive_demo(args) -> int:
    keys = prepare_demo_archive(Path(args.dir), profile=args.profile)
    print(f"Demo archive ready in {args.dir}; accounts: {', '.join(sorted(keys))}")
    return 0


def parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    p = argparse.ArgumentParser(prog="dandihub", description="DANDI Hub on one machine.")
    p.add_argument("--version", action="version", version=f"dandihub {version('dandihub')}")
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("up", help="run the hub (JupyterHub + proxy + JupyterLab) on this machine")
    source = u.add_mutually_exclusive_group()
    source.add_argument("--demo", action="store_true", help="start a local demo archive too")
    source.add_argument("--archive", metavar="URL", help=f"archive API root (default {PUBLIC_API_URL})")
    u.add_argument("--port", type=int, default=8000, help="port of the hub (default 8000)")
    u.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1;"
                   " other addresses need --isolate)")
    u.add_argument("--isolate", action="store_true",
                   help="give each user a Unix account of their own (dandi-<name>, made on "
                   "first sign-in; needs root). Without it every server runs as this account "
                   "and the hub serves one person.")
    u.add_argument("--archive-port", type=int, default=0, help="port of the demo archive (default: free)")
    u.add_argument("--data-dir", help="where the database, homes and demo data live "
                   f"(default {platformdirs.user_data_dir('dandihub')})")
    u.add_argument("--log-level", default="INFO")
    u.add_argument("--settings", metavar="FILE", help="JSON/YAML file of Settings fields "
                   "(dandihub.config) overriding the ones above, e.g. authenticator, archives")
    u.add_argument("--demo-profile", choices=["full", "small"], default="full",
                   help="size of the generated demo files (small: for quick tests)")
    u.set_defaults(func=up)

    a = sub.add_parser("archive", help="the local DANDI-compatible archive")
    asub = a.add_subparsers(dest="archive_command", required=True)
    s = asub.add_parser("serve", help="serve an archive folder over the DANDI REST API")
    s.add_argument("dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--s3-port", type=int, default=0)
    s.set_defaults(func=archive_serve)
    d = asub.add_parser("demo", help="build the demo archive folder (cached)")
    d.add_argument("dir")
    d.add_argument("--profile", choices=["full", "small"], default="full")
    d.set_defaults(func=archive_demo)

    from . import usage

    us = sub.add_parser("usage", help="who uses the hub, home sizes, homes past the retention "
                        "policy (lists only; --delete to reset)")
    usage.add_report_arguments(us)
    us.set_defaults(func=usage.report_command)

    from . import notebooks

    nb = sub.add_parser("notebooks", help="run the figure notebooks and check their figures; "
                        "share a notebook with an \"Open in DANDI Hub\" link")
    notebooks.add_arguments(nb)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
