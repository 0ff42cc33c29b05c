"""What every user's server gets, whichever spawner starts it.

`pre_spawn_hook` gives the server its DANDI identity: ``DANDI_API_URL`` and the user's
``DANDI_API_KEY`` (from the encrypted auth_state, so it lives only in the hub's database
and the server's own environment). `LocalSpawner` is the embedded mode's process spawner.
"""

from __future__ import annotations

import os

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from .auth import AUTH_STATE_ARCHIVE, AUTH_STATE_KEY


async def pre_spawn_hook(spawner) -> None:
    """Put the user's archive and API key into the server's environment."""
    auth_state = await spawner.user.get_auth_state() or {}
    archive_url = auth_state.get(AUTH_STATE_ARCHIVE) or spawner.environment.get("DANDI_API_URL")
    if archive_url:
        spawner.environment["DANDI_API_URL"] = archive_url
    key = auth_state.get(AUTH_STATE_KEY)
    if key:
        spawner.environment["DANDI_API_KEY"] = key
    else:
        spawner.log.warning(
            "No DANDI API key in the auth state of %s: the server starts without one "
            "(the user can sign out and in again to provide it)",
            spawner.user.name,
        )


class LocalSpawner(SimpleLocalProcessSpawner):
    """Embedded mode: each user's JupyterLab is a local process with its own home folder.

    Not isolation (all servers run as the hub's system user); use KubeSpawner for that.
    """

    home_dir_template = Unicode(
        os.path.join(os.getcwd(), "homes", "{username}"),
        config=True,
        help="Home folder of each user; {username} is replaced by the hub's username.",
    )

    @default("default_url")
    def _default_url(self):
        return "/lab"

    @default("args")
    def _default_args(self):
        # jupyter_server refuses to run as root unless told; containers and CI run as root.
        return ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
