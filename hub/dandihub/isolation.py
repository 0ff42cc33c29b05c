"""How users of a hub on one machine are kept apart.

Two modes (`Settings.isolation`, `dandihub up [--isolate]`):

- ``"none"``: every user's server runs as the hub's own system account. Each could read the
  others' DANDI keys and hub tokens (``/proc/PID/environ``, their homes), so such a hub
  serves one person (`one_person_hook`) on the loopback interface only.
- ``"unix"``: as The Littlest JupyterHub does, each hub user gets a Unix account of their own
  (``dandi-<name>``), made on first sign-in with a home only they can open (0700); their
  server runs as that account, never as root. Needs the hub to run as root. The hub's
  secrets (crypt key, cookie secret, database, settings) stay readable by root only.

On Kubernetes each user is a pod of its own (``"pods"``).
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tornado import web

MODES = ("none", "unix", "pods")
PREFIX = "dandi-"
# The comment (GECOS) of the accounts the hub made: an account of that name without it
# belongs to someone else, and the hub never runs a server as it.
MARK = "DANDI Hub user"
_MAX_NAME = 32  # useradd's limit
_SECRET_FILES = ("settings.json", "jupyterhub_crypt_key", "jupyterhub_cookie_secret",
                 "jupyterhub.sqlite", "jupyterhub_config.py")


class IsolationError(RuntimeError):
    """The machine cannot give users accounts of their own; says why and what to do."""


def system_username(hub_name: str) -> str:
    """``dandi-<name>``, a valid Unix name; names changed to fit carry a hash of the original
    so that two hub users never share an account."""
    safe = re.sub(r"[^a-z0-9_-]", "-", hub_name.lower())
    name = PREFIX + safe
    if safe != hub_name or len(name) > _MAX_NAME:
        digest = hashlib.sha256(hub_name.encode()).hexdigest()[:6]
        name = f"{name[:_MAX_NAME - 7]}-{digest}"
    return name


def ensure_system_user(hub_name: str, home: str | Path) -> pwd.struct_passwd:
    """The Unix account of ``hub_name`` (made when missing) with its private home ``home``."""
    name = system_username(hub_name)
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        run = subprocess.run(
            [useradd, "--home-dir", str(home), "--no-create-home", "--shell", "/bin/bash",
             "--user-group", "--comment", f"{MARK} {hub_name}", name],
            capture_output=True, text=True, timeout=60, check=False)
        if run.returncode not in (0, 9):  # 9: made meanwhile by a concurrent sign-in
            raise IsolationError(
                f"Could not create the Unix account {name} for {hub_name}: "
                f"{run.stderr.strip() or run.returncode}") from None
        account = pwd.getpwnam(name)
    if not account.pw_gecos.startswith(MARK):
        raise IsolationError(
            f"The Unix account {name} exists but was not made by DANDI Hub; the hub will not "
            f"run {hub_name}'s server as it. Rename that account, or remove it.")
    if account.pw_uid == 0 or account.pw_gid == 0:
        raise IsolationError(f"The Unix account {name} has root's uid or gid; refusing it.")
    home = Path(home)
    if account.pw_dir != str(home):  # the hub's data folder moved
        usermod = shutil.which("usermod") or "/usr/sbin/usermod"
        subprocess.run([usermod, "--home", str(home), name],
                       capture_output=True, timeout=60, check=True)
        account = pwd.getpwnam(name)
    home.mkdir(parents=True, exist_ok=True)
    info = home.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise IsolationError(f"{home} (home of {hub_name}) is not a folder; refusing it.")
    if info.st_uid != account.pw_uid:
        os.chown(home, account.pw_uid, account.pw_gid)
    home.chmod(0o700)
    return account


def check_can_isolate(data_dir: Path, python: str = "") -> None:
    """Raise IsolationError unless this process can run servers as other accounts, with
    ``python`` (default: this one) as their interpreter."""
    python = python or sys.executable
    if os.geteuid() != 0:
        raise IsolationError(
            "Giving each user a Unix account of their own needs root (to create the accounts "
            "and start servers as them): run `sudo dandihub up --isolate ...`.")
    if not (shutil.which("useradd") or Path("/usr/sbin/useradd").exists()):
        raise IsolationError("useradd is not installed (Debian/Ubuntu: apt-get install passwd).")
    for folder in [data_dir, *data_dir.parents]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            raise IsolationError(
                f"Users' accounts cannot reach their homes under {data_dir / 'homes'}: "
                f"{folder} is closed to other accounts (mode "
                f"{stat.S_IMODE(folder.stat().st_mode):o}). Choose a --data-dir whose parent "
                "folders others may enter (e.g. /srv/dandihub), or `chmod o+x` them.")
    try:
        probe = subprocess.run(
            [python, "-c", "import jupyterhub.singleuser, dandilab"],
            preexec_fn=_as_nobody, capture_output=True, text=True, timeout=120, check=False)
        error = (probe.stderr.strip().splitlines() or ["?"])[-1] if probe.returncode else ""
    except OSError as e:
        error = str(e)
    if error:
        raise IsolationError(
            f"Other accounts cannot run the Python environment of the servers ({python}): "
            f"{error}. Install DANDI Hub where every account can read it (not under /root or "
            "a private home), or set user_python to an interpreter they can run.")


def _as_nobody() -> None:
    nobody = pwd.getpwnam("nobody")
    with contextlib.suppress(KeyError):
        os.setgroups([grp.getgrnam("nogroup").gr_gid])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


def secure_data_dir(data_dir: Path, mode: str) -> None:
    """Make the hub's secrets readable by the hub's account only.

    With per-user accounts the data folder and ``homes/`` may be entered by others (each
    user reaches their own home, and lists nobody's); the hub's own files are private.
    Only what the hub keeps there is changed: a data folder may hold other things.
    """
    closed = 0o066 if mode == "unix" else 0o077  # others may only enter (x), or nothing
    for folder in (data_dir, data_dir / "homes"):
        folder.mkdir(exist_ok=True)
        folder.chmod(stat.S_IMODE(folder.stat().st_mode) & ~closed | (0o711 if mode == "unix" else 0o700))
    for name in (*_SECRET_FILES, "demo-archive", "proxy.pid"):
        entry = data_dir / name
        if entry.exists() and not entry.is_symlink():
            entry.chmod(0o700 if entry.is_dir() else 0o600)


def account_hook(home_template: str):
    """A post_auth_hook making the Unix account (and private home) of whoever signs in."""

    async def hook(authenticator, handler, authentication):
        if authentication:
            name = authenticator.normalize_username(authentication["name"])
            try:
                ensure_system_user(name, home_template.format(username=name))
            except IsolationError as e:
                authenticator.log.error("Sign-in of %s: %s", name, e)
                raise web.HTTPError(500, f"{e} Tell the hub's operator.") from None
        return authentication

    return hook


def is_loopback(ip: str) -> bool:
    import ipaddress

    if ip in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def one_person_hook(limit: int):
    """A post_auth_hook refusing a sign-in that would make more than ``limit`` people on a
    hub whose servers share one system account (isolation "none")."""

    async def hook(authenticator, handler, authentication):
        if not authentication or limit <= 0:
            return authentication
        from jupyterhub import orm

        name = authenticator.normalize_username(authentication["name"])
        # People who signed in have an auth_state; admin_users the hub made at start do not.
        others = sorted(
            u.name for u in handler.db.query(orm.User)
            if u.name != name and u.encrypted_auth_state is not None)
        if len(others) >= limit:
            authenticator.log.warning(
                "Refused %s: this hub (isolation none) serves %d person(s) and %s uses it",
                name, limit, ", ".join(others))
            raise web.HTTPError(
                403,
                f"This hub runs every user's server under one system account, so it serves "
                f"only {others[0] if limit == 1 else ', '.join(others)}: others could read "
                "their DANDI key. To share a hub, its operator starts it with "
                "`sudo dandihub up --isolate` (each user then gets a Unix account of their own).")
        return authentication

    return hook
