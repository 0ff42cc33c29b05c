"""Settings -> JupyterHub traitlets config: the one place that configures a DANDI hub.

Embedded mode (`dandihub up`) and the Helm chart both describe a hub as `Settings` and
load it with::

    from dandihub.config import load_config
    c.merge(load_config("/path/to/settings.json"))   # in jupyterhub_config.py
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from traitlets.config import Config

from .archive import PUBLIC_API_URL
from .spawner import pre_spawn_hook

AUTHENTICATORS = {
    "apikey": "dandihub.auth.APIKeyAuthenticator",
}
SPAWNERS = {
    "local": "dandihub.spawner.LocalSpawner",
}


class SettingsError(ValueError):
    """The settings do not describe a hub we can run."""


@dataclass
class Settings:
    """What a deployer decides about a DANDI hub. Every field has a working default."""

    archive_url: str = PUBLIC_API_URL
    authenticator: str = "apikey"
    spawner: str = "local"
    data_dir: str = "."
    ip: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "/"
    hub_port: int = 8081
    proxy_api_port: int = 8001
    proxy_command: list[str] = field(default_factory=lambda: ["configurable-http-proxy"])
    admin_users: list[str] = field(default_factory=list)
    start_timeout: int = 120
    log_level: str = "INFO"

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(
                f"Unknown DANDI Hub setting(s): {', '.join(unknown)}. "
                f"Known settings: {', '.join(sorted(known))}."
            )
        settings = cls(**data)
        settings.validate()
        return settings

    @classmethod
    def from_file(cls, path: str | Path) -> Settings:
        text = Path(path).read_text()
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        return cls.from_dict(data)

    def to_file(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    def validate(self) -> None:
        if self.authenticator not in AUTHENTICATORS:
            raise SettingsError(
                f"authenticator '{self.authenticator}' is not one of {sorted(AUTHENTICATORS)}"
            )
        if self.spawner not in SPAWNERS:
            raise SettingsError(f"spawner '{self.spawner}' is not one of {sorted(SPAWNERS)}")
        if not self.archive_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"archive_url '{self.archive_url}' must be the archive's API root, "
                f"like {PUBLIC_API_URL}"
            )


def build_config(settings: Settings) -> Config:
    """The JupyterHub configuration of a hub described by ``settings``."""
    settings.validate()
    data = Path(settings.data_dir).resolve()
    c = Config()
    base = "/" + settings.base_url.strip("/") + "/" if settings.base_url.strip("/") else "/"
    c.JupyterHub.bind_url = f"http://{settings.ip}:{settings.port}{base}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings.hub_port}"
    c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.log_level = settings.log_level
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.command = list(settings.proxy_command)
    c.ConfigurableHTTPProxy.pid_file = str(data / "proxy.pid")

    c.JupyterHub.authenticator_class = AUTHENTICATORS[settings.authenticator]
    c.Authenticator.admin_users = set(settings.admin_users)
    if settings.authenticator == "apikey":
        c.APIKeyAuthenticator.archive_url = settings.archive_url

    c.JupyterHub.spawner_class = SPAWNERS[settings.spawner]
    c.Spawner.default_url = "/lab"
    c.Spawner.environment = {"DANDI_API_URL": settings.archive_url}
    c.Spawner.pre_spawn_hook = pre_spawn_hook
    c.Spawner.start_timeout = settings.start_timeout
    c.Spawner.http_timeout = settings.start_timeout
    if settings.spawner == "local":
        c.LocalSpawner.home_dir_template = str(data / "homes" / "{username}")
        # The hub's own Python: embedded mode installs hub and user side together.
        c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    return c


def load_config(path: str | Path) -> Config:
    """The configuration for the settings file at ``path`` (JSON or YAML)."""
    return build_config(Settings.from_file(path))
