"""Node programs the embedded platform runs (installed by `make` into node_modules/.bin)."""

from __future__ import annotations

import shutil
from pathlib import Path

INSTALL_HINT = {
    "configurable-http-proxy": "npm install -g configurable-http-proxy",
    "s3rver": "npm install -g s3rver@3.7.1",
}


def find_node_tool(name: str) -> str:
    """The path of ``name``: on PATH, or in a node_modules/.bin above the cwd or this package."""
    found = shutil.which(name)
    if found:
        return found
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "node_modules" / ".bin" / name
            if candidate.exists():
                return str(candidate)
    raise FileNotFoundError(
        f"{name} is not installed. Install it with `{INSTALL_HINT.get(name, 'npm install ' + name)}`"
        " (or run `make demo` in the repository, which installs it locally)."
    )
