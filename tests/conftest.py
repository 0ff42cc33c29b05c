"""Shared test fixtures. Real processes everywhere: an S3 API server (s3rver), the local archive,
JupyterHub with configurable-http-proxy, JupyterLab, Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .paths import ARTIFACTS, REPO, SHARED

# Node tools (configurable-http-proxy) installed by `make` live in node_modules/.bin.
os.environ["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures: real NWB files and real DANDI records (skip when absent)."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"{path} is absent: tests on real DANDI data need ../shared beside the repo")
    return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave screenshots and reports for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def archive(tmp_path_factory):
    """A running local archive with the demo accounts (no Dandisets): `.api_url`, `.keys`."""
    from dandihub.localarchive.accounts import ensure_accounts
    from dandihub.localarchive.server import LocalArchive

    folder = tmp_path_factory.mktemp("hub-archive")
    keys = ensure_accounts(folder)
    with LocalArchive(folder) as running:
        running.keys = keys
        yield running


@pytest.fixture(scope="session")
def hub(archive, tmp_path_factory):
    """`dandihub up --archive` against that archive: `.url`, `.log`."""
    from .hubutil import RunningHub

    # Several people sign in to it (admin among them): allowed on one system account for
    # these tests of sign-in and usage; tests/test_isolation.py tests the one-person rule.
    settings = {"shared_account_users": 0, "admin_users": ["admin"]}
    with RunningHub(tmp_path_factory.mktemp("hub-data"), "--archive", archive.api_url,
                    settings=settings) as running:
        yield running


# --- local archive fixtures ---
from .localarchive_fixtures import local_archive, local_archive_dir, real_dandisets  # noqa: F401

# --- end of local archive fixtures ---



@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    """A kubeconfig whose cluster does not exist: KubeSpawner only needs to load one."""
    import yaml
    from kubernetes_asyncio.config import kube_config

    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "nobody", "user": {"token": "unused"}}],
        "contexts": [{"name": "nowhere",
                      "context": {"cluster": "nowhere", "user": "nobody", "namespace": "dandihub"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads $KUBECONFIG once, on import
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    return path

# The suite's exit status, kept for pytest_unconfigure below.
_exit_status = {"code": None}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    """Leave without the interpreter's final clean-up once pytest has reported everything.

    After hundreds of tests the process holds h5py files, HDF5 read-ahead threads, Dask and
    uvicorn threads; tearing those down during interpreter finalisation has crashed the
    process (SIGSEGV) after the summary was printed, turning a green run red. The results
    are already written; the child processes were stopped by the fixtures.
    """
    if _exit_status["code"] is not None and os.environ.get("DANDIHUB_TEST_CLEAN_EXIT", "1") == "1":
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status["code"])
