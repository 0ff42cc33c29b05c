"""Where the tests find things."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ARTIFACTS = REPO / "artifacts"
# `dandihub up --demo` data of the tests, kept between runs: the demo build takes minutes.
DEMO_HUB_DATA = REPO / ".cache" / "demo-hub"
