"""Settings -> JupyterHub traitlets config: the one place that configures a DANDI hub.

Embedded mode (`dandihub up`) and the Helm chart both describe a hub as `Settings` and
load it with::

    from dandihub.config import load_config
    c.merge(load_config("/path/to/settings.json"))   # in jupyterhub_config.py

Each field of `Settings` carries its description, where it is set and its JSON schema;
``make schema`` (``python -m dandihub.config schema helm/dandihub/values.schema.json``)
writes the chart's schema from them.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from traitlets.config import Config

from . import isolation
from .archive import ARCHIVE_SCHEMA, PUBLIC_API_URL, parse_archives
from .profiles import (
    DEFAULT_IMAGES,
    DEFAULT_PROFILES,
    IMAGE_SCHEMA,
    PROFILE_SCHEMA,
    ProfileError,
    kubespawner_profile_list,
    load_profiles,
)
from .spawner import pre_spawn_hook

AUTHENTICATORS = {
    "apikey": "dandihub.auth.APIKeyAuthenticator",
    "dandi-oauth": "dandihub.auth.DandiOAuthenticator",
    "github": "dandihub.auth.DandiGitHubOAuthenticator",
}
SPAWNERS = {
    "local": "dandihub.spawner.LocalSpawner",
    "kubernetes": "dandihub.spawner.PodSpawner",
}


class SettingsError(ValueError):
    """The settings do not describe a hub we can run."""


# Where a setting is decided (Settings field metadata "scope"): by a deployer in the chart's
# values (and so in values.schema.json), by the chart itself, or in embedded mode only.
VALUES, CHART, EMBEDDED = "values", "chart", "embedded"
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
URL_PATTERN = "^https?://"


def about(description: str, *, scope: str = VALUES, schema: dict | None = None,
          required: bool = False) -> dict:
    """A Settings field's metadata: its help text, where it is set, and its JSON schema beyond
    the type (pattern, enum, minimum, items), all read by `values_schema`."""
    return {"description": description, "scope": scope, "schema": schema or {},
            "required": required}


def setting(description: str, default, **kwargs):
    """A Settings field with an immutable default, described once (`about`)."""
    return field(default=default, metadata=about(description, **kwargs))


@dataclass
class Settings:
    """What a deployer decides about a DANDI hub. Every field has a working default."""

    archive_url: str = setting(
        "The archive servers talk to (DANDI_API_URL) unless the user signed in through one of "
        "archives; with authenticator apikey, the archive that checks keys.",
        PUBLIC_API_URL, schema={"pattern": URL_PATTERN}, required=True)
    authenticator: str = setting(
        "apikey: people paste their DANDI API key. dandi-oauth: sign in on the archive (needs "
        "client_id and its secret per archive). github: GitHub sign-in, then the archive's "
        "approval (needs github_client_id, its secret and a service_token per archive).",
        "apikey", schema={"enum": sorted(AUTHENTICATORS)}, required=True)
    spawner: str = setting(
        "local: each server a local process (embedded mode); kubernetes: a pod (the chart).",
        "local", scope=CHART, schema={"enum": sorted(SPAWNERS)})
    data_dir: str = setting("Folder of the hub's database, secrets and homes (embedded mode).",
                            ".", scope=CHART)
    ip: str = setting("Address the proxy listens on.", "127.0.0.1", scope=EMBEDDED)
    port: int = setting("Port the proxy listens on.", 8000, scope=EMBEDDED)
    base_url: str = setting("Path prefix of the hub's URLs.", "/", scope=CHART)
    hub_port: int = setting("Port of the hub's own API, on 127.0.0.1.", 8081, scope=EMBEDDED)
    proxy_api_port: int = setting("Port of the proxy's REST API, on 127.0.0.1.", 8001,
                                  scope=EMBEDDED)
    proxy_command: list[str] = field(
        default_factory=lambda: ["configurable-http-proxy"],
        metadata=about("Command starting configurable-http-proxy.", scope=EMBEDDED))
    admin_users: list[str] = field(default_factory=list,
                                   metadata=about("Hub admins (archive usernames)."))
    # Archive admins become hub admins only when this is set: a hub admin can act as any
    # user (and so read their DANDI keys). Default: admin_users alone.
    archive_admins_are_hub_admins: bool = setting(
        "Make the archive's admins hub admins when they sign in (default false: a hub admin "
        "can act as any user and read their DANDI key; list hub admins in admin_users).",
        False)
    isolation: str = setting(
        "Embedded mode: none runs every server as the hub's own account, so it serves "
        "shared_account_users people at most; unix gives each user a Unix account of their "
        "own (root needed).",
        "none", scope=EMBEDDED, schema={"enum": ["none", "unix"]})
    shared_account_users: int = setting(
        "How many people a hub without isolation accepts (0: no limit -- each can read the "
        "others' keys).", 1, scope=EMBEDDED, schema={"minimum": 0})
    user_python: str = setting(
        "The interpreter of users' servers (embedded mode); empty: the hub's own. With "
        "isolation unix every account must be able to run it.", "", scope=EMBEDDED)
    # Each entry: dandihub.archive.Archive (client_* is the hub's OAuth application on that
    # archive, service_token an approved account's key for GitHub checks).
    archives: list[dict] = field(default_factory=list, metadata=about(
        "Archives people may sign in with (dandi-oauth, github); empty: archive_url alone, "
        "named DANDI.", schema={"items": ARCHIVE_SCHEMA}))
    oauth_callback_url: str = setting(
        "The OAuth callback URL registered with the provider; empty: derived from each "
        "request.", "")
    github_url: str = setting("GitHub (or GitHub Enterprise) for authenticator github.",
                              "https://github.com", schema={"pattern": URL_PATTERN})
    github_api: str = setting("GitHub's REST API; empty: the one of github_url.", "")
    github_client_id: str = setting(
        "The hub's GitHub OAuth app (secret in dandihub.secrets.github_client_secret).", "")
    github_client_secret: str = setting(
        "The GitHub OAuth app's secret (never in the chart's values: dandihub.secrets).", "",
        scope=EMBEDDED)
    github_client_secret_file: str = setting(
        "A file holding github_client_secret (the chart mounts dandihub-secrets).", "",
        scope=CHART)
    start_timeout: int = setting("Seconds a server may take to start (image pulls included).",
                                 120, schema={"minimum": 30})
    log_level: str = setting("The hub's log level.", "INFO", schema={"enum": LOG_LEVELS})
    # Restarting the hub leaves users' servers (and the proxy) running; the restarted hub
    # finds them in its database. Always so on Kubernetes; embedded mode stops servers with
    # the hub unless this is set (a laptop's Ctrl-C should leave nothing behind).
    keep_servers_on_restart: bool = setting(
        "Leave users' servers and the proxy running when the hub restarts (always so on "
        "Kubernetes).", False, scope=EMBEDDED)
    # Profiles, one list for both spawners (format: dandihub.profiles).
    profiles: list[dict] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_PROFILES),
        metadata=about("Server sizes users pick from (one list for both spawners; see "
                       "hub/dandihub/profiles.py).",
                       schema={"minItems": 1, "items": PROFILE_SCHEMA}, required=True))
    images: list[dict] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_IMAGES),
        metadata=about("User images the profiles refer to.",
                       schema={"minItems": 1, "items": IMAGE_SCHEMA}, required=True))
    # Kubernetes pods (spawner "kubernetes"). Home: one PVC per user, or, with home_claim,
    # a folder home_subpath of one ReadWriteMany claim (NFS, EFS, ...).
    home_claim: str = setting(
        "An existing ReadWriteMany claim holding every home under home_subpath; empty: one "
        "PVC per user.", "")
    home_subpath: str = setting(
        "Each user's folder inside home_claim; {username} is replaced.", "homes/{username}",
        schema={"pattern": "\\{username\\}"})
    home_capacity: str = setting(
        "Size of each user's PVC (without home_claim).", "10Gi",
        schema={"pattern": "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"})
    home_storage_class: str = setting(
        "StorageClass of the users' PVCs; empty: the cluster's default.", "")
    shared_data_claim: str = setting(
        "An existing claim mounted read-only at shared_data_mount (the chart's sharedData).",
        "", scope=CHART)
    shared_data_mount: str = setting(
        "Where the shared data appears, read-only, in every server.", "/home/jovyan/shared",
        schema={"pattern": "^/"})
    # Dask Gateway for users' servers ("" = none).
    dask_gateway_address: str = setting("Dask Gateway's address for users' servers; empty: none.",
                                        "", scope=CHART)
    dask_gateway_proxy_address: str = setting("Dask Gateway's scheduler proxy address.", "",
                                              scope=CHART)
    dask_gateway_public_address: str = setting("Dask Gateway's address for browsers (dashboards).",
                                               "", scope=CHART)
    # Culling: jupyterhub-idle-culler stops servers idle for cull_timeout seconds; running
    # work (busy kernels, working processes) counts as activity, checked every activity_interval.
    cull_enabled: bool = setting(
        "Stop servers idle for cull_timeout (running work counts as activity).", True)
    cull_timeout: int = setting("Seconds without activity before a server is stopped.", 3600,
                                schema={"minimum": 60})
    cull_every: int = setting("Seconds between the culler's checks.", 300,
                              schema={"minimum": 10})
    cull_max_age: int = setting(
        "Stop servers older than this many seconds even if active; 0: never.", 0,
        schema={"minimum": 0})
    activity_interval: int = setting(
        "Seconds between a server's reports of running work; at most half of cull_timeout.",
        120, schema={"minimum": 10})
    # Usage report: the admin page /services/usage/ and `dandihub usage`.
    usage_service: bool = setting(
        "The admin page /services/usage/ (users, activity, retention status).", True)
    usage_port: int = setting("Port of the usage service; 0: a free port when the hub starts.",
                              0, scope=CHART)
    usage_url: str = setting(
        "How the proxy reaches the usage service; empty: http://127.0.0.1:usage_port.", "",
        scope=CHART)
    homes_root: str = setting(
        "Folder holding one home per user; empty: DATA_DIR/homes (embedded).", "", scope=CHART)
    retention_warn_days: int = setting(
        "Days without activity after which a home is flagged for a warning.", 30,
        schema={"minimum": 1})
    retention_reset_days: int = setting(
        "Days without activity after which a home may be reset (retentionReport.delete).", 45,
        schema={"minimum": 2})
    cache_dirs: list[str] = field(
        default_factory=lambda: [".cache", "nwb-cache"],
        metadata=about("Cache folders inside a home, reported separately."))

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
        """Write the settings, readable by this account only (they may hold client secrets)."""
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self), indent=2) + "\n")

    def validate(self) -> None:
        if self.authenticator not in AUTHENTICATORS:
            raise SettingsError(
                f"authenticator '{self.authenticator}' is not one of {sorted(AUTHENTICATORS)}"
            )
        if self.spawner not in SPAWNERS:
            raise SettingsError(f"spawner '{self.spawner}' is not one of {sorted(SPAWNERS)}")
        if self.isolation not in ("none", "unix"):
            raise SettingsError(
                f"isolation '{self.isolation}' is not one of 'none' (one system account for "
                "every server) or 'unix' (a Unix account per user)")
        if self.shared_account_users < 0:
            raise SettingsError("shared_account_users must be 0 (no limit) or more")
        if not self.archive_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"archive_url '{self.archive_url}' must be the archive's API root, "
                f"like {PUBLIC_API_URL}"
            )
        try:
            load_profiles(self.profiles, self.images)
        except ProfileError as e:
            raise SettingsError(str(e)) from None
        self.validate_sign_in()
        if self.cull_enabled and not (0 < 2 * self.activity_interval <= self.cull_timeout):
            raise SettingsError(
                f"activity_interval ({self.activity_interval} s) must be positive and at most "
                f"half of cull_timeout ({self.cull_timeout} s), or running work gets culled"
            )
        if not 0 < self.retention_warn_days < self.retention_reset_days:
            raise SettingsError("retention_warn_days must be positive and below retention_reset_days")

    def validate_sign_in(self) -> None:
        try:
            archives = parse_archives(self.archive_entries(), read_secrets=False)
        except ValueError as e:
            raise SettingsError(str(e)) from None
        secret = ("", "_file", "_env")
        for archive, entry in zip(archives, self.archive_entries(), strict=True):
            if self.authenticator == "dandi-oauth" and not archive.client_id:
                raise SettingsError(
                    f"Archive '{archive.name}' needs client_id (and client_secret or "
                    "client_secret_file): register the hub as an OAuth application of the archive"
                )
            if self.authenticator == "github" and not any(
                entry.get(f"service_token{s}") for s in secret
            ):
                raise SettingsError(
                    f"Archive '{archive.name}' needs service_token (or service_token_file): the "
                    "API key of an approved account, to look people up"
                )
        if self.authenticator == "github" and not self.github_client_id:
            raise SettingsError("authenticator 'github' needs github_client_id and its secret")

    def archive_entries(self) -> list[dict]:
        return self.archives or [{"name": "DANDI", "api_url": self.archive_url}]


_JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "list[str]": "array",
               "list[dict]": "array"}


def setting_schema(f) -> dict:
    """The JSON schema of one Settings field, from its annotation and metadata."""
    extra = f.metadata["schema"]
    schema = {} if "enum" in extra else {"type": _JSON_TYPES[f.type]}
    if f.type == "list[str]":
        schema["items"] = {"type": "string"}
    return {**schema, **extra, "description": f.metadata["description"]}


def values_schema(current: dict) -> dict:
    """The chart's values.schema.json ``current`` with its ``dandihub`` section's Settings keys
    generated from `Settings`; the chart's own keys (camelCase) and rules stay as they are."""
    schema = copy.deepcopy(current)
    section = schema["properties"]["dandihub"]
    names = {f.name for f in fields(Settings)}
    deployer = [f for f in fields(Settings) if f.metadata["scope"] == VALUES]
    chart_own = {k: v for k, v in section["properties"].items() if k not in names}
    section["properties"] = {f.name: setting_schema(f) for f in deployer} | chart_own
    section["required"] = [f.name for f in deployer if f.metadata["required"]] + [
        k for k in section.get("required", []) if k not in names]
    return schema


def schema_text(path: str | Path) -> str:
    """What `python -m dandihub.config schema PATH` writes to the schema file at PATH."""
    return json.dumps(values_schema(json.loads(Path(path).read_text())), indent=2) + "\n"


def build_config(settings: Settings) -> Config:
    """The JupyterHub configuration of a hub described by ``settings``."""
    settings.validate()
    data = Path(settings.data_dir).resolve()
    c = Config()
    base = "/" + settings.base_url.strip("/") + "/" if settings.base_url.strip("/") else "/"
    c.JupyterHub.log_level = settings.log_level
    if settings.keep_servers_on_restart or settings.spawner == "kubernetes":
        c.JupyterHub.cleanup_servers = False  # (as Zero to JupyterHub runs its hub)
        c.JupyterHub.cleanup_proxy = False
    if settings.spawner == "local":
        # Embedded mode runs the proxy and keeps the database itself. On Kubernetes the Helm
        # chart (Zero to JupyterHub) owns addresses, proxy, database and secrets, and this
        # configuration is merged into its own.
        c.JupyterHub.bind_url = f"http://{settings.ip}:{settings.port}{base}"
        c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{settings.hub_port}"
        c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
        c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
        c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
        c.ConfigurableHTTPProxy.command = list(settings.proxy_command)
        c.ConfigurableHTTPProxy.pid_file = str(data / "proxy.pid")
    else:
        c.JupyterHub.base_url = base

    # DANDI-branded pages: ours first, JupyterHub's own as "templates/..." for them to extend.
    c.JupyterHub.template_paths = [str(Path(__file__).parent / "templates")]

    c.JupyterHub.authenticator_class = AUTHENTICATORS[settings.authenticator]
    c.Authenticator.admin_users = set(settings.admin_users)
    c.Authenticator.archive_admins_are_hub_admins = settings.archive_admins_are_hub_admins
    if settings.authenticator == "apikey":
        c.APIKeyAuthenticator.archive_url = settings.archive_url
    if settings.oauth_callback_url:
        c.OAuthenticator.oauth_callback_url = settings.oauth_callback_url
    if settings.authenticator == "dandi-oauth":
        c.DandiOAuthenticator.archives = settings.archive_entries()
    if settings.authenticator == "github":
        g = c.DandiGitHubOAuthenticator
        g.archives = settings.archive_entries()
        g.github_url = settings.github_url.rstrip("/")
        if settings.github_api:
            g.github_api = settings.github_api.rstrip("/")
        g.client_id = settings.github_client_id
        secret = settings.github_client_secret
        if not secret and settings.github_client_secret_file:
            secret = Path(settings.github_client_secret_file).read_text().strip()
        g.client_secret = secret

    c.JupyterHub.spawner_class = SPAWNERS[settings.spawner]
    c.Spawner.default_url = "/lab"
    environment = {
        "DANDI_API_URL": settings.archive_url,
        # dandilab.activity: how often the server reports running work to the hub
        "DANDILAB_ACTIVITY_INTERVAL": str(settings.activity_interval),
        **dask_gateway_environment(settings),
    }
    c.Spawner.pre_spawn_hook = pre_spawn_hook
    if settings.spawner == "kubernetes":
        # Zero to JupyterHub sets these on KubeSpawner (singleuser.extraEnv, startTimeout),
        # which wins over Spawner: add to its environment, and set the timeouts there.
        c.KubeSpawner.environment.update(environment)
        c.KubeSpawner.start_timeout = settings.start_timeout
        c.KubeSpawner.http_timeout = settings.start_timeout
    else:
        c.Spawner.environment = environment
        c.Spawner.start_timeout = settings.start_timeout
        c.Spawner.http_timeout = settings.start_timeout
    if settings.spawner == "local":
        homes = str(data / "homes" / "{username}")
        c.LocalSpawner.home_dir_template = homes
        if settings.isolation == "unix":
            c.LocalSpawner.system_users = True
            c.Authenticator.post_auth_hook = isolation.account_hook(homes)
        elif settings.shared_account_users:
            c.Authenticator.post_auth_hook = isolation.one_person_hook(
                settings.shared_account_users)
        # The hub's own Python: embedded mode installs hub and user side together.
        c.Spawner.cmd = [settings.user_python or sys.executable, "-m", "jupyterhub.singleuser"]
        c.LocalSpawner.profiles = copy.deepcopy(settings.profiles)
        c.LocalSpawner.images = copy.deepcopy(settings.images)
    if settings.spawner == "kubernetes":
        configure_pods(c, settings)

    services, roles = [], []
    if settings.cull_enabled:
        services.append({
            "name": "idle-culler",
            "command": [
                sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={settings.cull_timeout}",
                f"--cull-every={settings.cull_every}",
                f"--max-age={settings.cull_max_age}",
            ],
        })
        roles.append({
            "name": "idle-culler",
            "description": "Stop servers idle for longer than the timeout",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        })
    if settings.usage_service:
        homes = settings.homes_root or (str(data / "homes") if settings.spawner == "local" else "")
        port = settings.usage_port or _free_port()
        command = [
            sys.executable, "-m", "dandihub.usage", "serve",
            f"--warn-days={settings.retention_warn_days}",
            f"--reset-days={settings.retention_reset_days}",
            *(f"--cache-dir={d}" for d in settings.cache_dirs),
            f"--port={port}",
            # Behind a cluster Service (usage_url) the proxy comes from another pod.
            # All interfaces only in a pod (behind its cluster Service), hence the nosec.
            f"--ip={'0.0.0.0' if settings.usage_url else '127.0.0.1'}",  # nosec B104
        ]
        if homes:
            command.append(f"--homes={homes}")
        services.append({
            "name": "usage",
            "display": True,
            "oauth_no_confirm": True,
            "url": settings.usage_url or f"http://127.0.0.1:{port}",
            "command": command,
        })
        roles.append({
            "name": "usage-report",
            "description": "Read users, their activity and servers for the usage report",
            "scopes": ["list:users", "read:users", "read:servers"],
            "services": ["usage"],
        })
    # Only admins hold access:services!service=usage, so only they see the page.
    # Added to, not replacing, the services and roles already configured (the Helm chart
    # registers the Dask Gateway and the retention report through Zero to JupyterHub).
    c.JupyterHub.services.extend(services)
    c.JupyterHub.load_roles.extend(roles)
    return c


def dask_gateway_environment(settings: Settings) -> dict[str, str]:
    """What dask-gateway's client reads to find the gateway and log in with the hub's token."""
    if not settings.dask_gateway_address:
        return {}
    env = {
        "DASK_GATEWAY__ADDRESS": settings.dask_gateway_address,
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }
    if settings.dask_gateway_proxy_address:
        env["DASK_GATEWAY__PROXY_ADDRESS"] = settings.dask_gateway_proxy_address
    if settings.dask_gateway_public_address:
        env["DASK_GATEWAY__PUBLIC_ADDRESS"] = settings.dask_gateway_public_address
    return env


def configure_pods(c: Config, settings: Settings) -> None:
    """KubeSpawner settings of a DANDI user pod: unprivileged, sized by its profile."""
    k = c.KubeSpawner
    k.profile_list = kubespawner_profile_list(load_profiles(settings.profiles, settings.images))
    k.cmd = ["jupyterhub-singleuser"]
    k.uid, k.gid, k.fs_gid = 1000, 100, 100
    k.privileged = False
    k.allow_privilege_escalation = False
    unprivileged = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    k.pod_security_context = dict(unprivileged)
    k.container_security_context = {
        **unprivileged,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    k.automount_service_account_token = False  # user code has no business with the API
    k.image_pull_policy = "IfNotPresent"
    p = c.PodSpawner
    p.home_claim = settings.home_claim
    p.home_subpath = settings.home_subpath
    if not settings.home_claim:
        k.storage_pvc_ensure = True
        k.storage_capacity = settings.home_capacity
        k.storage_access_modes = ["ReadWriteOnce"]
        if settings.home_storage_class:
            k.storage_class = settings.home_storage_class
    p.shared_data_claim = settings.shared_data_claim
    p.shared_data_mount = settings.shared_data_mount


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_config(path: str | Path) -> Config:
    """The configuration for the settings file at ``path`` (JSON or YAML)."""
    return build_config(Settings.from_file(path))


def main(argv: list[str] | None = None) -> int:
    """``python -m dandihub.config schema PATH``: regenerate the chart's values.schema.json."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dandihub.config")
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="rewrite the Settings part of values.schema.json")
    schema.add_argument("path", help="helm/dandihub/values.schema.json")
    args = parser.parse_args(argv)
    Path(args.path).write_text(schema_text(args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
