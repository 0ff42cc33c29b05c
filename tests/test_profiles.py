"""Profiles: one list in the settings, checked, offered per group, and enforced on a local
process (embedded mode) by a real cgroup or, without one, by per-process limits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import pytest
from dandihub.config import Settings, SettingsError, build_config
from dandihub.profiles import GPU_RESOURCE, kubespawner_profile, load_profiles
from dandihub.spawner import Cgroup, LocalSpawner
from tornado.web import HTTPError

MiB = 1 << 20

SMALL = {"slug": "small", "display_name": "Small", "cpu_guarantee": 0.1, "cpu_limit": 0.5,
         "mem_guarantee": "64M", "mem_limit": "200M", "description": "Quick looks"}
MEDIUM = {"slug": "medium", "display_name": "Medium", "cpu_guarantee": 1, "cpu_limit": 2,
          "mem_guarantee": "128M", "mem_limit": "1G"}
HUGE = {"slug": "huge", "display_name": "Huge", "cpu_guarantee": 1000, "cpu_limit": 1000,
        "mem_guarantee": "1T", "mem_limit": "1T"}
LAB = {**MEDIUM, "slug": "lab", "display_name": "Lab only", "groups": ["lab"]}


def user(name="ann", groups=(), admin=False):
    return SimpleNamespace(name=name, admin=admin, url=f"/user/{name}/",
                           groups=[SimpleNamespace(name=g) for g in groups])


def local_spawner(profiles, **kwargs) -> LocalSpawner:
    config = build_config(Settings(profiles=profiles))
    return LocalSpawner(config=config, user=kwargs.pop("user", user()), **kwargs)


def test_the_default_profiles_are_dandis_sizes():
    profiles = {p.slug: p for p in load_profiles(Settings().profiles, Settings().images)}
    assert list(profiles) == ["tiny", "base", "medium", "large", "gpu"]
    tiny = profiles["tiny"]
    assert (tiny.cpu_guarantee, tiny.cpu_limit) == (0.25, 2)
    assert (tiny.mem_guarantee, tiny.mem_limit) == (512 * MiB, 2048 * MiB)
    assert tiny.default and tiny.summary == "0.25-2 CPU, 512 MiB-2 GiB memory"
    gpu = profiles["gpu"]
    assert gpu.gpus == 1 and [i.slug for i in gpu.images] == ["gpu"]
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in gpu.tolerations
    rendered = kubespawner_profile(gpu)
    assert rendered["kubespawner_override"]["extra_resource_limits"] == {GPU_RESOURCE: "1"}
    assert list(rendered["profile_options"]["image"]["choices"]) == ["gpu"]


def test_profiles_come_from_a_yaml_settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(
        "images:\n"
        "  - {slug: standard, display_name: Standard, image: dandihub-user:2}\n"
        "  - {slug: matlab, display_name: MATLAB, image: dandihub-matlab:2}\n"
        "profiles:\n"
        "  - {slug: small, display_name: Small, cpu_guarantee: 0.1, cpu_limit: 0.5,\n"
        "     mem_guarantee: 64Mi, mem_limit: 200Mi, images: [standard, matlab]}\n"
    )
    settings = Settings.from_file(path)
    (small,) = load_profiles(settings.profiles, settings.images)
    assert small.mem_limit == 200 * MiB and small.shm_size == 100 * MiB
    assert [i.image for i in small.images] == ["dandihub-user:2", "dandihub-matlab:2"]
    assert build_config(settings).LocalSpawner.profiles == settings.profiles


@pytest.mark.parametrize("profile, message", [
    ({**SMALL, "images": ["nope"]}, "lists image(s) nope"),
    ({**SMALL, "cpu_guarantee": 3}, "guarantee is larger than its limit"),
    ({**SMALL, "mem_limit": "lots"}, "is not a size"),
    ({**SMALL, "cpus": 2}, "Unknown profile field(s) cpus"),
    ({**SMALL, "slug": "Small One"}, "lowercase letters"),
    ({"slug": "x", "display_name": "X"}, "Incomplete profile"),
])
def test_the_settings_refuse_profiles_that_cannot_work(profile, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_dict({"profiles": [profile]})


def test_the_settings_refuse_duplicate_slugs_and_two_defaults():
    with pytest.raises(SettingsError, match="unique"):
        Settings.from_dict({"profiles": [SMALL, SMALL]})
    with pytest.raises(SettingsError, match="one profile can be the default"):
        Settings.from_dict({"profiles": [{**SMALL, "default": True}, {**MEDIUM, "default": True}]})


def test_embedded_mode_offers_the_profiles_this_machine_can_guarantee():
    spawner = local_spawner([SMALL, MEDIUM, HUGE, LAB])
    assert [p.slug for p in spawner.offered_profiles()] == ["small", "medium"]
    form = asyncio.run(spawner.get_options_form())
    assert 'value="small" checked' in form and 'value="medium"' in form
    assert "huge" not in form and "Lab only" not in form
    assert "0.1-0.5 CPU, 64 MiB-200 MiB memory" in form
    assert spawner.options_from_form({"profile": ["medium"]}) == {"profile": "medium"}
    # a member of the lab group sees its profile too
    assert "lab" in asyncio.run(local_spawner([SMALL, LAB], user=user(groups=["lab"]))
                                .get_options_form())


def test_one_profile_means_no_form():
    # DANDI's defaults on a small machine: only Tiny's guarantee fits, so spawning is direct
    spawner = local_spawner([SMALL, HUGE])
    assert asyncio.run(spawner.get_options_form()) == ""


def test_the_chosen_profile_sizes_the_server_and_others_are_refused():
    spawner = local_spawner([SMALL, MEDIUM, HUGE, LAB])
    asyncio.run(spawner._run_apply_user_options({"profile": "medium"}))
    assert (spawner.mem_limit, spawner.cpu_limit) == (1 << 30, 2)
    assert (spawner.mem_guarantee, spawner.cpu_guarantee) == (128 * MiB, 1)
    spawner.apply_profile(None)
    assert spawner.mem_limit == 200 * MiB  # the default: the first one offered
    with pytest.raises(ValueError, match="needs more than this machine can guarantee"):
        spawner.apply_profile("huge")
    with pytest.raises(ValueError, match="'lab' is not available to ann"):
        spawner.apply_profile("lab")
    with pytest.raises(HTTPError, match="not available to ann") as refused:  # the hub's hook
        asyncio.run(spawner._run_apply_user_options({"profile": "lab"}))
    assert refused.value.status_code == 400


def _allocating(mb: int) -> list[str]:
    # touch every page, so the memory is really used
    code = (f"b = bytearray({mb} * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
            "print('allocated')")
    return [sys.executable, "-c", code]


def _cpu_seconds_in(seconds: float, preexec) -> float:
    code = (f"import time, os\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
            "t = os.times(); print(t.user + t.system)")
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=preexec, capture_output=True,
                         text=True, timeout=60, check=True)
    return float(out.stdout)


@pytest.fixture
def cgroup():
    try:
        group = Cgroup.create(f"dandihub-test/{uuid.uuid4().hex[:8]}")
    except OSError as e:
        pytest.skip(f"cgroups are not writable here ({e}); the fallback test covers this case")
    yield group
    asyncio.run(group.remove())
    for folder in group.dirs.values():
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # dandihub-test, when no other test uses it


def test_a_cgroup_holds_the_server_to_its_profile(cgroup, tmp_path):
    spawner = local_spawner([SMALL])
    spawner.home_dir_template = str(tmp_path / "{username}")
    spawner.apply_profile("small")
    cgroup.limit(spawner.mem_limit, spawner.cpu_limit, spawner.mem_guarantee, spawner.cpu_guarantee)
    spawner._cgroup = cgroup
    preexec = spawner.make_preexec_fn("ann")

    within = subprocess.run(_allocating(100), preexec_fn=preexec, capture_output=True, timeout=60,
                            check=False)
    assert within.returncode == 0 and b"allocated" in within.stdout
    beyond = subprocess.run(_allocating(400), preexec_fn=preexec, capture_output=True, timeout=60,
                            check=False)
    assert beyond.returncode == -9, beyond  # the kernel's OOM killer, as in a pod
    started = time.monotonic()
    cpu = _cpu_seconds_in(2.0, preexec)
    assert cpu <= 0.5 * (time.monotonic() - started) + 0.3  # cpu_limit 0.5

    # the processes a server leaves behind go with it
    orphan = subprocess.Popen(["sleep", "300"], preexec_fn=preexec)  # noqa: PLW1509 (as the hub)
    assert orphan.pid in cgroup.pids()
    asyncio.run(cgroup.remove())
    assert orphan.wait(10) == -9
    assert not any(d.exists() for d in cgroup.dirs.values())


def test_without_cgroups_the_limits_are_per_process_and_by_affinity(tmp_path):
    spawner = local_spawner([SMALL])
    spawner.home_dir_template = str(tmp_path / "{username}")
    spawner.apply_profile("small")
    assert spawner._cgroup is None
    preexec = spawner.make_preexec_fn("ann")  # no cgroup: RLIMIT_DATA and CPU affinity
    within = subprocess.run(_allocating(50), preexec_fn=preexec, capture_output=True, timeout=60,
                            check=False)
    assert within.returncode == 0
    beyond = subprocess.run(_allocating(400), preexec_fn=preexec, capture_output=True, timeout=60,
                            check=False)
    assert beyond.returncode == 1 and b"MemoryError" in beyond.stderr
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        code = "import os; print(len(os.sched_getaffinity(0)))"
        out = subprocess.run([sys.executable, "-c", code], preexec_fn=preexec,
                             capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.strip() == "1"  # cpu_limit 0.5 -> one whole CPU
