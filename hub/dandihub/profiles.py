"""Profiles: the server sizes (and images) a user picks from, one definition for both spawners.

A deployer lists them in the settings (``profiles`` and ``images``, JSON or YAML); this module
turns that list into `Profile` objects, checks it, and renders it for each spawner:

- `kubespawner_profile_list` -> KubeSpawner's ``profile_list`` (a callable, so that profiles
  restricted to groups are neither shown to nor startable by other users);
- `options_form` -> the embedded mode's spawn form (`dandihub.spawner.LocalSpawner`), which
  applies the same CPU and memory limits to a local process.

Settings shape (sizes in KiB/MiB/GiB as K/M/G or Ki/Mi/Gi, both binary)::

    images:
      - {slug: standard, display_name: Standard, image: dandihub-user:latest}
      - {slug: gpu, display_name: "Standard + CUDA", image: dandihub-user-gpu:latest, gpu: true}
    profiles:
      - slug: tiny
        display_name: Tiny
        cpu_guarantee: 0.25
        cpu_limit: 2
        mem_guarantee: 0.5G
        mem_limit: 2G
        default: true
      - slug: gpu
        display_name: T4 GPU
        gpus: 1
        groups: [gpu-users]          # only members (and admins) see and start it
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        ...

A profile without ``images`` offers every image whose ``gpu`` matches whether it has GPUs.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

GPU_RESOURCE = "nvidia.com/gpu"
_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_BYTES = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}

DEFAULT_IMAGES = [
    {"slug": "standard", "display_name": "Standard (dandi, pynwb, Dask)",
     "image": "dandihub-user:latest"},
    {"slug": "gpu", "display_name": "Standard with CUDA", "image": "dandihub-user-gpu:latest",
     "gpu": True},
]
# DANDI's sizes. Node selectors are cluster-specific, so none by default.
DEFAULT_PROFILES = [
    {"slug": "tiny", "display_name": "Tiny", "default": True,
     "description": "Browsing Dandisets, small notebooks, quick looks.",
     "cpu_guarantee": 0.25, "cpu_limit": 2, "mem_guarantee": "0.5G", "mem_limit": "2G"},
    {"slug": "base", "display_name": "Base",
     "description": "Everyday analysis. May take a few minutes to start.",
     "cpu_guarantee": 6, "cpu_limit": 12, "mem_guarantee": "16G", "mem_limit": "32G"},
    {"slug": "medium", "display_name": "Medium",
     "description": "Larger datasets and local Dask clusters. May take a few minutes to start.",
     "cpu_guarantee": 12, "cpu_limit": 24, "mem_guarantee": "32G", "mem_limit": "64G"},
    {"slug": "large", "display_name": "Large",
     "description": "Whole-session processing. May take a few minutes to start.",
     "cpu_guarantee": 24, "cpu_limit": 48, "mem_guarantee": "64G", "mem_limit": "96G"},
    {"slug": "gpu", "display_name": "GPU (1 x T4)",
     "description": "Inference and GPU-accelerated analysis. May take a few minutes to start.",
     "cpu_guarantee": 6, "cpu_limit": 8, "mem_guarantee": "25G", "mem_limit": "31G", "gpus": 1,
     "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]},
]


# The size grammar of `parse_bytes` (_BYTES) as a case-sensitive JSON-schema pattern.
_BYTES_PATTERN = r"^\s*[0-9]*\.?[0-9]+\s*([KMGTkmgt]i?)?[Bb]?\s*$"


def _size(description: str) -> dict:
    return {"type": ["string", "number"], "pattern": _BYTES_PATTERN, "description": description}


# An image and a profile as the chart's values.schema.json describes them (dandihub.config
# writes them there); `load_profiles` checks the same and says why in its own words.
IMAGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["slug", "display_name", "image"],
    "description": "A user image a profile can run.",
    "properties": {
        "slug": {"type": "string", "description": "Identifier the profiles refer to.",
                 "pattern": _SLUG.pattern},
        "display_name": {"type": "string", "description": "Name on the spawn page."},
        "image": {"type": "string",
                  "description": "Image reference with a pinned tag (or digest), never :latest.",
                  "pattern": r"^[^\s]+(:[^\s:/]+|@sha256:[0-9a-f]{64})$",
                  "not": {"pattern": ":latest$"}},
        "gpu": {"type": "boolean", "description": "The image has CUDA; offered by profiles with gpus."},
    },
}
PROFILE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["slug", "display_name", "cpu_guarantee", "cpu_limit", "mem_guarantee",
                 "mem_limit"],
    "description": "A server size (dandihub.profiles.Profile): what is guaranteed, the ceiling, "
    "who may pick it.",
    "properties": {
        "slug": {"type": "string", "description": "Identifier: lowercase letters, digits and dashes.",
                 "pattern": _SLUG.pattern},
        "display_name": {"type": "string", "description": "Name on the spawn page."},
        "description": {"type": "string", "description": "One line on the spawn page."},
        "default": {"type": "boolean", "description": "Preselected (at most one profile)."},
        "cpu_guarantee": {"type": "number", "minimum": 0,
                          "description": "CPUs reserved for the server (the pod's request)."},
        "cpu_limit": {"type": "number", "exclusiveMinimum": 0,
                      "description": "CPUs the server may use at most."},
        "mem_guarantee": _size("Memory reserved, like 512M, 2G or 1.5Gi (binary units)."),
        "mem_limit": _size("Memory ceiling; the server is restarted above it."),
        "shm_size": _size("Size of the memory-backed /dev/shm (default: half of mem_limit)."),
        "gpus": {"type": "integer", "minimum": 0,
                 "description": "NVIDIA GPUs (nvidia.com/gpu) per server."},
        "images": {"type": "array", "items": {"type": "string"},
                   "description": "Slugs of the images the user may pick for this profile "
                   "(default: every image whose gpu matches)."},
        "groups": {"type": "array", "items": {"type": "string"},
                   "description": "Only members of these hub groups (and admins) see and start "
                   "this profile."},
        "node_selector": {"type": "object", "additionalProperties": {"type": "string"},
                          "description": "Node labels the pod must run on."},
        "tolerations": {"type": "array", "items": {"type": "object"},
                        "description": "Added to the user pods' tolerations (e.g. for GPU nodes)."},
    },
}


class ProfileError(ValueError):
    """The profiles in the settings cannot be offered as written."""


def parse_bytes(value: str | float, what: str) -> int:
    """``"0.5G"`` -> 536870912 (binary units, as JupyterHub's ``mem_limit``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _BYTES.match(str(value))
    if not match:
        raise ProfileError(f"{what} '{value}' is not a size like 512M, 2G or 1.5Gi")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "")[:1].upper()])


def format_bytes(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:g} {unit}iB"
    return f"{n} B"


@dataclass(frozen=True)
class Image:
    """A user image a profile can run (Kubernetes only; embedded mode runs the local Python)."""

    slug: str
    display_name: str
    image: str
    gpu: bool = False


@dataclass(frozen=True)
class Profile:
    """A server size: what is guaranteed, what is the ceiling, who may pick it."""

    slug: str
    display_name: str
    cpu_guarantee: float
    cpu_limit: float
    mem_guarantee: int
    mem_limit: int
    description: str = ""
    gpus: int = 0
    images: tuple[Image, ...] = ()
    groups: frozenset[str] = frozenset()
    node_selector: dict = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    shm_size: int = 0
    default: bool = False

    @property
    def summary(self) -> str:
        """``0.25-2 CPU, 512 MiB-2 GiB memory, 1 GPU`` (guarantee-limit)."""
        parts = [
            f"{self.cpu_guarantee:g}-{self.cpu_limit:g} CPU",
            f"{format_bytes(self.mem_guarantee)}-{format_bytes(self.mem_limit)} memory",
        ]
        if self.gpus:
            parts.append(f"{self.gpus} GPU")
        return ", ".join(parts)

    def allows(self, user) -> bool:
        """Whether ``user`` (a JupyterHub User: ``.admin``, ``.groups``) may use this profile."""
        if not self.groups or getattr(user, "admin", False):
            return True
        return bool(self.groups & {g.name for g in getattr(user, "groups", [])})


def load_profiles(profiles: list[dict], images: list[dict]) -> list[Profile]:
    """Check the settings' ``profiles`` and ``images`` and make `Profile` objects of them."""
    by_slug: dict[str, Image] = {}
    for item in images:
        image = _make(Image, item, "image")
        if image.slug in by_slug:
            raise ProfileError(f"Two images have the slug '{image.slug}'")
        by_slug[image.slug] = image
    loaded: list[Profile] = []
    for item in profiles:
        item = dict(item)
        where = f"profile '{item.get('slug', item.get('display_name', '?'))}'"
        for key in ("mem_guarantee", "mem_limit", "shm_size"):
            if key in item:
                item[key] = parse_bytes(item[key], f"{where}: {key}")
        gpus = int(item.get("gpus", 0))
        wanted = item.pop("images", None)
        if wanted is None:
            chosen = tuple(i for i in by_slug.values() if i.gpu == bool(gpus))
        else:
            unknown = [s for s in wanted if s not in by_slug]
            if unknown:
                raise ProfileError(
                    f"{where} lists image(s) {', '.join(unknown)}, which are not among the "
                    f"images ({', '.join(by_slug) or 'none'})"
                )
            chosen = tuple(by_slug[s] for s in wanted)
        if not chosen:
            raise ProfileError(f"{where} has no image to run (add one to images)")
        item["images"] = chosen
        item["groups"] = frozenset(item.get("groups", ()))
        item["tolerations"] = tuple(item.get("tolerations", ()))
        profile = _make(Profile, item, "profile")
        if profile.cpu_guarantee > profile.cpu_limit or profile.mem_guarantee > profile.mem_limit:
            raise ProfileError(f"{where}: a guarantee is larger than its limit")
        if profile.cpu_limit <= 0 or profile.mem_limit <= 0:
            raise ProfileError(f"{where}: cpu_limit and mem_limit must be positive")
        if not profile.shm_size:
            # Dask and PyTorch exchange data through /dev/shm; tmpfs pages count against the
            # memory limit, so half of it leaves room for the processes themselves.
            profile = _replace(profile, shm_size=profile.mem_limit // 2)
        loaded.append(profile)
    slugs = [p.slug for p in loaded]
    if len(set(slugs)) != len(slugs):
        raise ProfileError(f"Profile slugs must be unique: {', '.join(slugs)}")
    if sum(p.default for p in loaded) > 1:
        raise ProfileError("At most one profile can be the default")
    if not loaded:
        raise ProfileError("There must be at least one profile")
    return loaded


def _make(cls, item: dict, what: str):
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(item) - known)
    if unknown:
        raise ProfileError(
            f"Unknown {what} field(s) {', '.join(unknown)} in {item!r}; known: {', '.join(sorted(known))}"
        )
    try:
        obj = cls(**item)
    except TypeError as e:
        raise ProfileError(f"Incomplete {what} {item!r}: {e}") from None
    if not _SLUG.match(obj.slug):
        raise ProfileError(f"{what} slug '{obj.slug}' must be lowercase letters, digits and dashes")
    return obj


def _replace(profile: Profile, **changes) -> Profile:
    from dataclasses import replace

    return replace(profile, **changes)


def visible(profiles: list[Profile], user) -> list[Profile]:
    """The profiles ``user`` may pick, in the configured order."""
    return [p for p in profiles if p.allows(user)]


def default_profile(profiles: list[Profile]) -> Profile:
    return next((p for p in profiles if p.default), profiles[0])


def choose(profiles: list[Profile], user, slug: str | None) -> Profile:
    """The profile ``user`` asked for (``slug``) or the default; refuses what they may not use."""
    allowed = visible(profiles, user)
    if not allowed:
        raise ProfileError(f"No profile is available to {user.name}; ask an administrator")
    if not slug:
        return default_profile(allowed)
    for profile in allowed:
        if profile.slug == slug:
            return profile
    raise ProfileError(
        f"Profile '{slug}' is not available to {user.name}; choose one of "
        f"{', '.join(p.slug for p in allowed)}"
    )


# --- KubeSpawner -----------------------------------------------------------------------


class _AddTolerations:
    """A kubespawner_override value: the profile's tolerations added to the configured ones.

    A plain list would replace the tolerations set elsewhere (e.g. the chart's dedicated
    user-node toleration); KubeSpawner calls override values that are callables.
    """

    def __init__(self, tolerations: tuple[dict, ...]):
        self.tolerations = [dict(t) for t in tolerations]

    def __call__(self, spawner) -> list[dict]:
        base = spawner.tolerations
        base = list(base.values()) if isinstance(base, dict) else list(base or [])
        return base + [t for t in self.tolerations if t not in base]


def kubespawner_profile(profile: Profile) -> dict:
    """One entry of KubeSpawner's ``profile_list``."""
    override = {
        "cpu_guarantee": profile.cpu_guarantee,
        "cpu_limit": profile.cpu_limit,
        "mem_guarantee": profile.mem_guarantee,
        "mem_limit": profile.mem_limit,
        "shm_size": profile.shm_size,  # dandihub.spawner.PodSpawner's /dev/shm
    }
    if profile.gpus:
        # Extended resources need only the limit; Kubernetes sets the request equal to it.
        override["extra_resource_limits"] = {GPU_RESOURCE: str(profile.gpus)}
    if profile.node_selector:
        override["node_selector"] = dict(profile.node_selector)
    if profile.tolerations:
        override["tolerations"] = _AddTolerations(profile.tolerations)
    choices = {
        image.slug: {
            "display_name": image.display_name,
            "default": i == 0,
            "kubespawner_override": {"image": image.image},
        }
        for i, image in enumerate(profile.images)
    }
    entry = {
        "slug": profile.slug,
        "display_name": profile.display_name,
        "description": html.escape(
            f"{profile.description} ({profile.summary})" if profile.description else profile.summary
        ),
        "default": profile.default,
        "kubespawner_override": override,
        "profile_options": {"image": {"display_name": "Image", "choices": choices}},
    }
    return entry


def kubespawner_profile_list(profiles: list[Profile]):
    """KubeSpawner's ``profile_list``: a callable, so each user sees (and can start) only
    the profiles of their groups; KubeSpawner validates the chosen slug against it."""

    def profile_list(spawner) -> list[dict]:
        allowed = visible(profiles, spawner.user)
        if not allowed:
            spawner.log.warning("No profile is available to %s", spawner.user.name)
        if allowed and not any(p.default for p in allowed):
            allowed = [_replace(allowed[0], default=True), *allowed[1:]]
        return [kubespawner_profile(p) for p in allowed]

    return profile_list


# --- the embedded mode's form ----------------------------------------------------------


def fits_machine(profile: Profile, cpus: int, memory: int, has_gpu: bool) -> bool:
    """Whether this machine can give ``profile`` what it guarantees."""
    return (
        profile.cpu_guarantee <= cpus
        and profile.mem_guarantee <= memory
        and (has_gpu or not profile.gpus)
    )


def cpus_for(limit: float) -> int:
    """Whole CPUs that hold a fractional limit (for CPU affinity when quotas are unavailable)."""
    return max(1, math.ceil(limit))


def options_form(profiles: list[Profile], selected: str | None = None) -> str:
    """Radio buttons for ``profiles`` (JupyterHub wraps them in its spawn form)."""
    selected = selected or default_profile(profiles).slug
    rows = []
    for p in profiles:
        checked = " checked" if p.slug == selected else ""
        text = html.escape(p.description)
        rows.append(
            f'<label class="dandihub-profile" style="display:block;margin:0.5em 0">'
            f'<input type="radio" name="profile" value="{html.escape(p.slug)}"{checked}> '
            f"<strong>{html.escape(p.display_name)}</strong> "
            f"<span>({html.escape(p.summary)})</span>"
            + (f"<br><small>{text}</small>" if text else "")
            + "</label>"
        )
    return '<div class="dandihub-profiles">' + "\n".join(rows) + "</div>"
