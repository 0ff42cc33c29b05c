"""The images (images/), checked without docker, which cannot run here.

- The Dockerfiles are linted by hadolint (pinned, tests/pinned_tools.py; images/.hadolint.yaml
  lists the rules we do not follow and why), and checked for what matters to the chart: pinned
  bases (never :latest), the hub image on the Zero to JupyterHub version of Chart.yaml, and
  the last USER not root.
- The user image's Python layer is images/user/requirements.txt, locked with hashes for every
  package (`make lock`). `test_the_locked_environment_installs_and_works` installs exactly that
  lock into a fresh venv (`pip install --require-hashes`), runs `pip check`, imports the DANDI
  toolset and dandilab against it, and runs the dandi CLI. It takes about 4 minutes (189
  packages, ~800 MB), so it runs only with DANDIHUB_TEST_IMAGES=1: `make test-images`, which
  CI runs after `make test`.

Not checked here: the base images' own packages (conda's, R, Julia, CUDA), the apt layer, and
that the extension builds in the node stage; those need a docker build.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .paths import REPO
from .pinned_tools import HADOLINT, ToolUnavailable

IMAGES = REPO / "images"
DOCKERFILES = [IMAGES / "hub" / "Dockerfile", IMAGES / "user" / "Dockerfile",
               IMAGES / "user" / "Dockerfile.gpu"]
LOCK = IMAGES / "user" / "requirements.txt"
NOT_ROOT = {"1000", "${NB_UID}", "$NB_UID", "jovyan", "${NB_USER}"}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def locked() -> dict[str, tuple[str, Requirement, list[str]]]:
    """name -> (version, requirement with its marker, hashes) of the lock."""
    text = re.sub(r"\\\n\s*", " ", LOCK.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *hashes = line.split(" --hash=")
        requirement = Requirement(spec.strip())
        (version,) = [s.version for s in requirement.specifier if s.operator == "=="]
        name = canonicalize_name(requirement.name)
        pins.setdefault(name, []).append((version, requirement, hashes))
    # a package may be pinned twice under exclusive markers; keep the one for this Python
    result = {}
    for name, options in pins.items():
        fitting = [o for o in options if not o[1].marker or o[1].marker.evaluate()]
        result[name] = (fitting or options)[0]
    return result


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(IMAGES)))
def test_dockerfile_lints_clean(dockerfile):
    try:
        hadolint = HADOLINT.path()
    except ToolUnavailable as e:
        pytest.skip(f"no hadolint: {e}")
    result = subprocess.run(
        [str(hadolint), "--config", str(IMAGES / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(IMAGES)))
def test_dockerfile_pins_its_bases_and_ends_as_the_notebook_user(dockerfile):
    steps = instructions(dockerfile)
    stages = {}
    for word, args in steps:
        if word == "FROM":
            image, *alias = args.split(" AS ") if " AS " in args else args.split(" as ")
            image = image.strip()
            assert re.search(r":[\w][\w.-]*$|@sha256:[0-9a-f]{64}$", image), f"{image} has no tag"
            assert not image.endswith(":latest"), image
            if alias:
                stages[alias[0].strip()] = image
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] in NOT_ROOT, f"{dockerfile.name} ends as USER {users[-1:]}"
    # pip runs with hashes or constraints, never unpinned from the index
    for word, args in steps:
        if word == "RUN" and "pip install" in args:
            for command in re.split(r"&&|;", args):
                if "pip install" in command and "build==" not in command:
                    assert re.search(r"--require-hashes|--constraint|--no-deps", command), command


def test_the_hub_image_is_the_chart_s_zero_to_jupyterhub():
    chart = yaml.safe_load((REPO / "helm" / "dandihub" / "Chart.yaml").read_text())
    version = next(d["version"] for d in chart["dependencies"] if d["name"] == "jupyterhub")
    bases = [a for w, a in instructions(IMAGES / "hub" / "Dockerfile") if w == "FROM"]
    assert bases == [f"quay.io/jupyterhub/k8s-hub:{version}"]
    values = yaml.safe_load((REPO / "helm" / "dandihub" / "values.yaml").read_text())
    assert values["jupyterhub"]["hub"]["image"]["tag"] == chart["appVersion"]
    assert values["jupyterhub"]["singleuser"]["image"]["tag"] == chart["appVersion"]


def test_the_lock_pins_every_package_with_hashes_and_satisfies_dandilab():
    pins = locked()
    assert len(pins) > 50
    for name, (version, requirement, hashes) in pins.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h.strip()) for h in hashes), name
    # what requirements.in asks for, at its versions
    for line in (IMAGES / "user" / "requirements.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            wanted = Requirement(line)
            name = canonicalize_name(wanted.name)
            assert name in pins, f"{wanted.name} is in requirements.in but not locked: make lock"
            assert wanted.specifier.contains(pins[name][0], prereleases=True), (name, pins[name][0])
    # dandilab (installed --no-deps in the image) finds all it needs in the lock
    project = tomllib.loads((REPO / "extension" / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        need = Requirement(line)
        name = canonicalize_name(need.name)
        assert name in pins, f"dandilab needs {line}, which images/user/requirements.in lacks"
        assert need.specifier.contains(pins[name][0], prereleases=True), (line, pins[name][0])


# --- the environment itself (make test-images) --------------------------------------------

SMOKE = """
import importlib, sys
modules = ["dandi", "dandi.dandiapi", "pynwb", "hdmf", "h5py", "remfile", "zarr", "fsspec",
           "s3fs", "numpy", "dask.array", "distributed", "dask_gateway", "ipywidgets",
           "jupyterlab", "jupyter_server", "jupyter_server_proxy", "jupyter_remote_desktop_proxy",
           "dandilab", "dandilab.stream", "dandilab.arrays", "dandilab.cluster",
           "dandilab.archive", "dandilab.server"]
for m in modules:
    importlib.import_module(m)
import dask.array as da, numpy as np
assert int(da.ones((100, 100), chunks=10).sum().compute()) == 10000
print("imported", len(modules), "modules with Python", sys.version.split()[0])
"""


PIP = "26.3"


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(os.environ.get("DANDIHUB_TEST_IMAGES") != "1",
                    reason="installs the user image's locked environment (~4 min): make test-images")
def test_the_locked_environment_installs_and_works(tmp_path):
    # A venv per lock, kept in .cache between runs (CI starts without it).
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    venv = REPO / ".cache" / "image-env" / digest
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        # the pip a venv comes with (23.2) takes dandischema's pydantic[email] for an unpinned
        # requirement in --require-hashes mode; the image's pip is newer
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", f"pip=={PIP}"], check=True, timeout=300)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--require-hashes", "-r", str(LOCK)],
            capture_output=True, text=True, check=False, timeout=1200,
        )
        assert install.returncode == 0, install.stderr[-4000:]
        (venv / ".installed").touch()
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True,
                           check=False, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO / "extension"), "HOME": str(tmp_path)}
    smoke = subprocess.run([str(python), "-c", SMOKE], capture_output=True, text=True,
                           check=False, timeout=300, env=env, cwd=tmp_path)
    assert smoke.returncode == 0, smoke.stderr[-4000:]
    cli = subprocess.run([str(venv / "bin" / "dandi"), "--version"], capture_output=True,
                         text=True, check=False, timeout=120, env=env)
    assert cli.returncode == 0 and cli.stdout.strip(), cli.stderr
