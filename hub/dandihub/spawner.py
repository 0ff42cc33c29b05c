"""What every user's server gets, whichever spawner starts it.

`pre_spawn_hook` gives the server its DANDI identity: ``DANDI_API_URL``, the user's
``DANDI_API_KEY`` (from the encrypted auth_state) and git's author. Sizes come from
`dandihub.profiles`, one list for both spawners:

- `LocalSpawner` (embedded mode): a local process, limited to its profile's memory and CPU
  by a cgroup when the hub may create one, else by per-process limits (and says which);
- `PodSpawner` (Kubernetes): KubeSpawner's pod plus the key in a Secret, a memory-backed
  ``/dev/shm`` sized by the profile, a persistent home (a PVC per user, or a sub-folder of
  one shared volume) and the shared data mounted read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import sys
import time
from functools import partial
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner, set_user_setuid
from jupyterhub.traitlets import ByteSpecification
from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client.models import V1ObjectMeta, V1Secret
from kubespawner import KubeSpawner
from kubespawner.objects import make_owner_reference
from tornado import web
from traitlets import Bool, Dict, List, Unicode, default

from . import isolation
from . import profiles as _profiles
from .authstate import DandiAuthState

KEY_ENV = "DANDI_API_KEY"
HOME_INIT = "home-folder"  # the init container making the home's folder on home_claim


async def pre_spawn_hook(spawner) -> None:
    """Put the user's archive, API key and git identity into the server's environment."""
    state = DandiAuthState.from_dict(await spawner.user.get_auth_state())
    archive_url = state.api_url or spawner.environment.get("DANDI_API_URL")
    if archive_url:
        spawner.environment["DANDI_API_URL"] = archive_url
    if state.api_key:
        spawner.environment[KEY_ENV] = state.api_key
    else:
        spawner.log.warning(
            "No DANDI API key in the auth state of %s (GitHub sign-in, or an account "
            "made by an admin): the server starts without one; public data still reads, "
            "and the user can set DANDI_API_KEY themselves for embargoed data",
            spawner.user.name,
        )
    name = state.user.display_name if state.user else ""
    name = name or spawner.user.name
    spawner.environment["GIT_AUTHOR_NAME"] = spawner.environment["GIT_COMMITTER_NAME"] = name
    if state.user and state.user.email:
        email = state.user.email
        spawner.environment["GIT_AUTHOR_EMAIL"] = spawner.environment["GIT_COMMITTER_EMAIL"] = email


# --- embedded mode: a local process ---------------------------------------------------


def _has_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not rule profiles out


class Cgroup:
    """A cgroup (v2, or v1 memory + cpu hierarchies) under the hub's own, for one server.

    Created under the hub's cgroup so the machine's (or container's) own limits still hold.
    Needs write access to the cgroup filesystem: root, or a delegated subtree.
    """

    PERIOD_US = 100_000

    def __init__(self, dirs: dict[str, Path], version: int):
        self.dirs = dirs  # controller ("memory", "cpu", or "unified") -> folder
        self.version = version

    @classmethod
    def create(cls, name: str) -> Cgroup:
        """Make (or reuse) the cgroup ``<hub's cgroup>/<name>``; OSError when not possible."""
        mounts, own = _cgroup_mounts(), _own_cgroups()
        unified = mounts.get("unified")
        controllers = set()
        if unified and "" in own:
            with contextlib.suppress(OSError):
                controllers = set((unified[0] / "cgroup.controllers").read_text().split())
        if {"memory", "cpu"} <= controllers:  # cgroup v2 (not the empty one of hybrid hosts)
            folder = _under(unified, own[""])
            for part in name.split("/"):
                # v2 lets a cgroup's children have controllers only while it holds no process.
                (folder / "cgroup.subtree_control").write_text("+memory +cpu")
                folder = folder / part
                folder.mkdir(exist_ok=True)
            return cls({"unified": folder}, 2)
        dirs = {}
        for controller in ("memory", "cpu"):
            if controller not in mounts or controller not in own:
                raise OSError(f"no cgroup v2 with memory and cpu, nor a v1 '{controller}' hierarchy")
            target = _under(mounts[controller], own[controller]) / name
            target.mkdir(parents=True, exist_ok=True)
            dirs[controller] = target
        return cls(dirs, 1)

    @property
    def path(self) -> str:
        return ", ".join(str(d) for d in self.dirs.values())

    def limit(self, mem_limit: int, cpu_limit: float, mem_guarantee: int, cpu_guarantee: float):
        quota = max(1000, int(cpu_limit * self.PERIOD_US))
        if self.version == 2:
            d = self.dirs["unified"]
            (d / "memory.max").write_text(str(mem_limit))
            with contextlib.suppress(OSError):
                (d / "memory.swap.max").write_text("0")
            if mem_guarantee:
                (d / "memory.low").write_text(str(mem_guarantee))
            (d / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
            if cpu_guarantee:
                (d / "cpu.weight").write_text(str(max(1, min(10000, int(100 * cpu_guarantee)))))
            return
        m, c = self.dirs["memory"], self.dirs["cpu"]
        (m / "memory.limit_in_bytes").write_text(str(mem_limit))
        with contextlib.suppress(OSError):  # absent without swap accounting
            (m / "memory.memsw.limit_in_bytes").write_text(str(mem_limit))
        (c / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
        (c / "cpu.cfs_quota_us").write_text(str(quota))
        if cpu_guarantee:
            (c / "cpu.shares").write_text(str(max(2, int(1024 * cpu_guarantee))))

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> set[int]:
        found = set()
        for f in self.procs_files():
            with contextlib.suppress(OSError):
                found |= {int(p) for p in Path(f).read_text().split()}
        return found

    def limits_text(self) -> str:
        if self.version == 2:
            d = self.dirs["unified"]
            return f"memory.max={(d / 'memory.max').read_text().strip()} cpu.max={(d / 'cpu.max').read_text().strip()}"
        m, c = self.dirs["memory"], self.dirs["cpu"]
        return (
            f"memory.limit_in_bytes={(m / 'memory.limit_in_bytes').read_text().strip()} "
            f"cpu.cfs_quota_us={(c / 'cpu.cfs_quota_us').read_text().strip()}"
        )

    async def remove(self, grace: float = 5.0) -> None:
        """Kill what is left in it (the server is gone: its jobs go too, as with a pod), rmdir."""
        deadline = time.monotonic() + grace
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.1)
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                d.rmdir()
                d.parent.rmdir()  # the hub's folder, once its last server is gone


def _cgroup_mounts() -> dict[str, tuple[Path, str]]:
    """controller -> (mount point, root within the hierarchy); "unified" for cgroup v2."""
    mounts: dict[str, tuple[Path, str]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            if tail[0] == "cgroup2":
                mounts.setdefault("unified", (Path(fields[4]), fields[3]))
            elif tail[0] == "cgroup":
                for option in tail[2].split(","):
                    mounts.setdefault(option, (Path(fields[4]), fields[3]))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path ("" for cgroup v2)."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                own[controller] = path
    return own


def _under(mount: tuple[Path, str], path: str) -> Path:
    """The folder of cgroup ``path`` in a hierarchy mounted at ``mount`` (point, root)."""
    point, root = mount
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return point / path.lstrip("/")


class LocalSpawner(SimpleLocalProcessSpawner):
    """Embedded mode: each user's JupyterLab is a local process with its own home folder.

    With `system_users` each server runs as its user's own Unix account (``dandi-<name>``,
    made on first sign-in, home 0700; `dandihub.isolation`), never as root. Without it every
    server runs as the hub's system account: no isolation, for one person only.
    Offers the configured profiles this machine can guarantee (a form when there is more
    than one), and holds the server to its profile's memory and CPU limits: with a cgroup
    when the hub may create one (root, or a delegated cgroup), else with a per-process
    memory limit (RLIMIT_DATA) and CPU affinity to whole CPUs. The log says which.
    """

    home_dir_template = Unicode(
        os.path.join(os.getcwd(), "homes", "{username}"),
        config=True,
        help="Home folder of each user; {username} is replaced by the hub's username.",
    )
    profiles = List(
        Dict(),
        default_value=_profiles.DEFAULT_PROFILES,
        config=True,
        help="The profiles (dandihub.profiles format); only those this machine can guarantee "
        "are offered.",
    )
    images = List(
        Dict(),
        default_value=_profiles.DEFAULT_IMAGES,
        config=True,
        help="The images the profiles refer to (unused locally, checked for consistency).",
    )
    enforce_limits = Bool(
        True, config=True, help="Apply the profile's memory and CPU limits to the server."
    )
    cgroup_name = Unicode(
        "dandihub",
        config=True,
        help="Folder, under the hub's own cgroup, that holds one cgroup per user server.",
    )

    system_users = Bool(
        False,
        config=True,
        help="Run each user's server as a Unix account of their own (dandi-<name>, created "
        "when missing; needs a hub running as root). False: as the hub's own account, which "
        "isolates nobody.",
    )

    _profile: _profiles.Profile | None = None
    _cgroup: Cgroup | None = None
    limits_report = ""  # how the limits were applied, for the log and tests

    @default("default_url")
    def _default_url(self):
        return "/lab"

    @default("args")
    def _default_args(self):
        # Without accounts of their own, a hub run as root (containers, CI) runs the one
        # person's server as root, which jupyter_server refuses unless told; with
        # system_users servers never run as root.
        if os.geteuid() == 0 and not self.system_users:
            return ["--ServerApp.allow_root=True"]
        return []

    @property
    def system_user(self) -> str:
        return isolation.system_username(self.user.name)

    def user_env(self, env):
        env = super().user_env(env)
        if self.system_users:
            env["USER"] = env["LOGNAME"] = self.system_user
        # The environment's own tools (dandi, jupyter, ...) in terminals and subprocesses,
        # however the hub itself was started.
        tools = os.path.dirname(self.cmd[0] if self.cmd else sys.executable)
        if tools not in env.get("PATH", "").split(os.pathsep):
            env["PATH"] = os.pathsep.join(filter(None, [tools, env.get("PATH")]))
        return env

    def offered_profiles(self) -> list[_profiles.Profile]:
        """The profiles this user may pick that this machine can give what they guarantee."""
        loaded = _profiles.load_profiles(self.profiles, self.images)
        mine = _profiles.visible(loaded, self.user)
        cpus, memory, gpu = os.cpu_count() or 1, _total_memory(), _has_gpu()
        fitting = [p for p in mine if _profiles.fits_machine(p, cpus, memory, gpu)]
        if mine and not fitting:
            smallest = min(mine, key=lambda p: (p.mem_guarantee, p.cpu_guarantee))
            self.log.warning(
                "No profile's guarantee fits this machine (%d CPUs, %s); offering %s anyway",
                cpus, _profiles.format_bytes(memory), smallest.slug,
            )
            fitting = [smallest]
        return fitting

    @default("options_form")
    def _default_options_form(self):
        def form(spawner):
            offered = spawner.offered_profiles()
            if len(offered) < 2:
                return ""  # nothing to choose: spawn right away
            return _profiles.options_form(offered, (spawner.user_options or {}).get("profile"))

        return form

    @default("options_from_form")
    def _default_options_from_form(self):
        def from_form(formdata):
            return {"profile": (formdata.get("profile") or [""])[0]}

        return from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        def apply(spawner, user_options):
            try:
                spawner.apply_profile((user_options or {}).get("profile"))
            except _profiles.ProfileError as e:
                raise web.HTTPError(400, str(e)) from None  # the spawn page shows the reason

        return apply

    def apply_profile(self, slug: str | None) -> _profiles.Profile:
        """Size this server by the profile ``slug`` (or the default); refuses others'."""
        offered = self.offered_profiles()
        if slug and slug not in {p.slug for p in offered}:
            mine = _profiles.visible(
                _profiles.load_profiles(self.profiles, self.images), self.user
            )
            if any(p.slug == slug for p in mine):
                raise _profiles.ProfileError(
                    f"Profile '{slug}' needs more than this machine can guarantee; choose one "
                    f"of {', '.join(p.slug for p in offered)}"
                )
        profile = _profiles.choose(offered, self.user, slug)
        self._profile = profile
        self.mem_limit, self.mem_guarantee = profile.mem_limit, profile.mem_guarantee
        self.cpu_limit, self.cpu_guarantee = profile.cpu_limit, profile.cpu_guarantee
        return profile

    def make_preexec_fn(self, name):
        if self.system_users:
            # JupyterHub's own: groups, gid, uid of the account, then its home
            chdir_home = set_user_setuid(self.system_user, chdir=True)
        else:
            chdir_home = super().make_preexec_fn(name)
        procs_files = self._cgroup.procs_files() if self._cgroup else []
        fallback = self._fallback_limits if (self.enforce_limits and not self._cgroup) else None

        def preexec():
            pid = str(os.getpid())
            for procs in procs_files:  # before exec: every later child inherits the cgroup
                with contextlib.suppress(OSError), open(procs, "w") as f:
                    f.write(pid)
            if fallback:
                with contextlib.suppress(OSError, ValueError):
                    fallback()
            chdir_home()  # last: it may give up root

        return preexec

    def _fallback_limits(self) -> None:
        # Runs in the child: memory per process (each kernel separately), CPUs by affinity.
        resource.setrlimit(resource.RLIMIT_DATA, (self.mem_limit, self.mem_limit))
        if hasattr(os, "sched_setaffinity"):
            allowed = sorted(os.sched_getaffinity(0))
            n = min(len(allowed), _profiles.cpus_for(self.cpu_limit))
            start = sum(map(ord, self.user.name)) % len(allowed)  # spread users over CPUs
            os.sched_setaffinity(0, {allowed[(start + i) % len(allowed)] for i in range(n)})

    async def start(self):
        if self._profile is None:  # JupyterHub < 5.3 has no apply_user_options
            self.apply_profile((self.user_options or {}).get("profile"))
        profile = self._profile
        self._prepare_home()
        self._cgroup = None
        reason = "disabled (enforce_limits = False)"
        if self.enforce_limits:
            try:
                cgroup = Cgroup.create(f"{self.cgroup_name}/{self._cgroup_leaf()}")
                cgroup.limit(self.mem_limit, self.cpu_limit, self.mem_guarantee, self.cpu_guarantee)
                self._cgroup = cgroup
            except OSError as e:
                reason = f"no cgroup ({e.strerror or e}); "
        result = await super().start()
        size = f"memory {_profiles.format_bytes(self.mem_limit)}, CPU {self.cpu_limit:g}"
        if self._cgroup:
            if self.proc.pid in self._cgroup.pids():
                self.limits_report = f"cgroup v{self._cgroup.version} {self._cgroup.path}"
                self.log.info(
                    "Server of %s (profile %s): %s enforced by %s (%s)",
                    self.user.name, profile.slug, size, self.limits_report,
                    self._cgroup.limits_text(),
                )
            else:
                self.limits_report = "none: the process did not join its cgroup"
                self.log.warning(
                    "Server of %s (profile %s): %s NOT enforced: it did not join %s",
                    self.user.name, profile.slug, size, self._cgroup.path,
                )
        elif self.enforce_limits:
            cpus = _profiles.cpus_for(self.cpu_limit)
            cpu = (f"CPU to {cpus} whole CPU(s) by affinity" if hasattr(os, "sched_setaffinity")
                   else "CPU not at all (no CPU affinity on this system)")
            self.limits_report = f"per-process RLIMIT_DATA; {cpu}"
            self.log.warning(
                "Server of %s (profile %s): %s only approximated: %smemory is limited per "
                "process (each kernel separately, RLIMIT_DATA), %s. Run the hub as root or in "
                "a delegated cgroup for exact limits.",
                self.user.name, profile.slug, size, reason, cpu,
            )
        else:
            self.limits_report = "none"
            self.log.info("Server of %s: limits %s", self.user.name, reason)
        return result

    def _prepare_home(self) -> None:
        """The user's home, private to them (and their account, made when missing)."""
        if self.system_users:
            try:
                isolation.ensure_system_user(self.user.name, self.home_dir)
            except isolation.IsolationError as e:
                self.log.error("Cannot start %s's server: %s", self.user.name, e)
                raise web.HTTPError(500, str(e)) from None
            return
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)

    def _cgroup_leaf(self) -> str:
        # per hub process: two hubs on one machine may have users of the same name
        leaf = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.user.name)
        return f"hub-{os.getpid()}/{leaf}-{self.name}" if self.name else f"hub-{os.getpid()}/{leaf}"

    async def stop(self, now=False):
        await super().stop(now=now)
        if self._cgroup:
            await self._cgroup.remove()
            self._cgroup = None

    def get_state(self):
        state = super().get_state()
        if self._cgroup:
            state["cgroup"] = {"dirs": {k: str(v) for k, v in self._cgroup.dirs.items()},
                               "version": self._cgroup.version}
        return state

    def load_state(self, state):
        super().load_state(state)
        if "cgroup" in state:
            saved = state["cgroup"]
            self._cgroup = Cgroup({k: Path(v) for k, v in saved["dirs"].items()}, saved["version"])

    def clear_state(self):
        super().clear_state()
        self._profile = None


# --- Kubernetes: a pod ----------------------------------------------------------------


class PodSpawner(KubeSpawner):
    """KubeSpawner with DANDI's pod: credentials in a Secret, /dev/shm, home and shared data.

    Configure it as ``c.KubeSpawner.*`` (this is a subclass); profiles come from
    ``profile_list`` (`dandihub.profiles.kubespawner_profile_list`), whose overrides also
    set `shm_size`.
    """

    # Why a Secret: a pod's plain env is readable by anyone who may `get pods` in the
    # namespace (dashboards, monitoring, `kubectl describe`) and lands unencrypted in etcd
    # with the pod spec; a Secret is governed by its own RBAC and by etcd encryption at rest.
    # KubeSpawner 7 has no per-user Secret for env, so PodSpawner creates one per pod, owned
    # by the pod (garbage-collected with it). Inside the container the variables are the same.
    secret_env = List(
        Unicode(),
        default_value=[KEY_ENV, "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"],
        config=True,
        help="Environment variables passed through a per-pod Secret (secretKeyRef) instead "
        "of the pod spec. Empty: all plain env.",
    )
    shm_size = ByteSpecification(
        None,
        allow_none=True,
        config=True,
        help="Size of the memory-backed /dev/shm (Dask, PyTorch); None: half of mem_limit.",
    )
    home_mount_path = Unicode("/home/jovyan", config=True, help="Where the home is mounted.")
    home_claim = Unicode(
        "",
        config=True,
        help="An existing ReadWriteMany claim (e.g. NFS) holding every home under home_subpath. "
        "Empty: one PVC per user (KubeSpawner's storage_pvc_ensure / pvc_name_template).",
    )
    home_subpath = Unicode(
        "homes/{username}",
        config=True,
        help="Each user's folder inside home_claim. An init container running as the user "
        "creates it, so the claim's parent folder must be writable by uid/gid of the pods.",
    )
    shared_data_claim = Unicode(
        "", config=True, help="An existing claim with shared data, mounted read-only."
    )
    shared_data_mount = Unicode(
        "/home/jovyan/shared", config=True, help="Where the shared data appears."
    )

    _secret_values: dict[str, str] | None = None

    @default("after_pod_created_hook")
    def _default_after_pod_created_hook(self):
        async def hook(spawner, pod):
            await spawner.create_env_secret(pod)

        return hook

    @property
    def env_secret_name(self) -> str:
        return f"{self.pod_name}-env"

    def get_env(self):
        env = super().get_env()
        self._secret_values = {}
        for name in self.secret_env:
            value = env.get(name)
            if isinstance(value, str) and value:
                self._secret_values[name] = value
                env[name] = {"valueFrom": {"secretKeyRef": {
                    "name": self.env_secret_name, "key": name, "optional": False}}}
        return env

    def get_env_secret_manifest(self, owner_reference) -> V1Secret:
        """The Secret holding this pod's credentials, owned by (deleted with) the pod."""
        # KubeSpawner 7.1 labels its own objects with no public builder for others' labels.
        labels = self._build_common_labels(self._expand_all(self.extra_labels))
        return V1Secret(
            api_version="v1",
            kind="Secret",
            type="Opaque",
            metadata=V1ObjectMeta(
                name=self.env_secret_name, labels=labels, owner_references=[owner_reference]
            ),
            string_data=dict(self._secret_values or {}),
        )

    async def create_env_secret(self, pod: dict) -> None:
        """Create the credentials' Secret right after the pod, owned by it (the kubelet does
        not start the container before the Secret exists)."""
        if not self._secret_values:
            return
        owner = make_owner_reference(self.pod_name, pod["metadata"]["uid"])
        manifest = self.get_env_secret_manifest(owner)
        name = manifest.metadata.name
        # KubeSpawner 7.1 creates only its own kinds publicly; these private helpers are its
        # replace-then-create with retries, which its ssl Secret uses too.
        await exponential_backoff(
            partial(self._ensure_not_exists, "secret", name), f"Failed to delete secret {name}"
        )
        await exponential_backoff(
            partial(self._make_create_resource_request, "secret", manifest),
            f"Failed to create secret {name}",
        )

    def dandi_volumes(self) -> tuple[list[dict], list[dict], list[dict]]:
        """Our volumes, their mounts and init containers, in KubeSpawner's form for its
        ``volumes``/``volume_mounts``/``init_containers`` (which expand ``{username}``)."""
        shm = self.shm_size or (self.mem_limit // 2 if self.mem_limit else None)
        volumes = [{"name": "dev-shm",
                    "emptyDir": {"medium": "Memory", **({"sizeLimit": str(shm)} if shm else {})}}]
        # A mount point in the pod, not a temporary file of ours (bandit B108).
        mounts = [{"name": "dev-shm", "mountPath": "/dev/shm"}]  # nosec B108
        inits = []
        if self.home_claim:
            volumes.append({"name": "home",
                            "persistentVolumeClaim": {"claimName": self.home_claim}})
            mounts.append({"name": "home", "mountPath": self.home_mount_path,
                           "subPath": self.home_subpath})
            # The kubelet would create a missing subPath as root; the user creates it instead
            # (securityContext: the server container's, set once the pod is made).
            inits.append({
                "name": HOME_INIT,
                "image": self.image,
                "imagePullPolicy": self.image_pull_policy,
                "command": ["mkdir", "-p", f"/mnt/home-volume/{self.home_subpath}"],
                "volumeMounts": [{"name": "home", "mountPath": "/mnt/home-volume"}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}},
            })
        elif self.storage_pvc_ensure:
            volumes.append({"name": "home", "persistentVolumeClaim": {"claimName": self.pvc_name}})
            mounts.append({"name": "home", "mountPath": self.home_mount_path})
        if self.shared_data_claim:
            volumes.append({"name": "shared-data", "persistentVolumeClaim": {
                "claimName": self.shared_data_claim, "readOnly": True}})
            mounts.append({"name": "shared-data", "mountPath": self.shared_data_mount,
                           "readOnly": True})
        return volumes, mounts, inits

    async def get_pod_manifest(self):
        configured = self.volumes, self.volume_mounts, self.init_containers
        volumes, mounts, inits = self.dandi_volumes()
        # Added for this pod only: the deployer's (Zero to JupyterHub's) lists stay as set.
        self.volumes = [*_in_order(configured[0]), *volumes]
        self.volume_mounts = [*_in_order(configured[1]), *mounts]
        self.init_containers = [*inits, *_in_order(configured[2])]
        try:
            pod = await super().get_pod_manifest()
        finally:
            self.volumes, self.volume_mounts, self.init_containers = configured
        for init in pod.spec.init_containers or []:
            if init.name == HOME_INIT:
                init.security_context = pod.spec.containers[0].security_context
        return pod


def _in_order(value: list | dict) -> list:
    """A KubeSpawner list-or-dict traitlet as the list it means (a dict: values by key)."""
    return [value[k] for k in sorted(value)] if isinstance(value, dict) else list(value)
