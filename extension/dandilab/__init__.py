"""dandilab: DANDI in JupyterLab.

The side panel (a prebuilt JupyterLab extension), its REST API (a
jupyter_server extension, :mod:`dandilab.server`), and a library for finding
Dandisets and streaming their assets lazily.

Importing ``dandilab`` stays cheap: the library's names are imported on first
use (see ``_LAZY``), so the server extension does not pull in pynwb or dask.
"""

from __future__ import annotations

import importlib
from typing import Any

try:
    from ._version import __version__
except ImportError:  # a source tree that was never built: the hatch version hook writes _version.py
    __version__ = "0.0.0+unknown"

# Public name -> submodule that defines it, imported on first attribute access.
# A module that adds public names lists them here and in __all__,
# e.g. "Archive": "archive".
_LAZY: dict[str, str] = {
    "Archive": "archive",
    "Dandiset": "archive",
    "Asset": "archive",
    "NotFound": "archive",
    "ArchiveUnavailable": "archive",
    "open_nwb": "stream",
    "open_zarr": "stream",
    "open_hdf5": "stream",
    "NWBError": "stream",
    "download": "downloads",
    "DownloadError": "downloads",
    "to_dask": "arrays",
    "compute": "arrays",
    "show_progress": "arrays",
    "cluster": "cluster",
    "map": "mapping",
    "table": "mapping",
    "MapResult": "mapping",
    "RemoteReadError": "remote",
    "cache_dir": "cache",
    "clear_cache": "cache",
    "NWBExplorer": "widgets",
    "DandisetBrowser": "widgets",
    "view_for": "widgets",
}

__all__ = ["__version__", *_LAZY]  # noqa: PLE0604 - _LAZY's keys are the names


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt frontend extension."""
    return [{"src": "labextension", "dest": "dandilab"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The jupyter_server extension this package provides (this module)."""
    return [{"module": "dandilab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the DANDI panel's REST API under ``{base_url}dandi/api/``."""
    from .server import setup_handlers

    setup_handlers(server_app.web_app)
    server_app.log.info(
        "dandilab: registered the DANDI panel API at %sdandi/api/", server_app.base_url
    )


# The name the classic notebook server and older jupyter_server look for.
load_jupyter_server_extension = _load_jupyter_server_extension
