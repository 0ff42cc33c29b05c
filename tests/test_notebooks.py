"""The figure notebooks run against the demo archive and draw their reference figures.

Each notebook is executed with papermill (``dandihub notebooks run``'s own function) on a
local archive served from the demo folder, with a cold dandilab cache; its figures are
compared with ``notebooks/figures/``. Executed notebooks, figures and diff images go to
``artifacts/notebooks/``; run times are printed at the end of the session and written to
``artifacts/notebooks/run-times.json``.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import pytest
from dandihub import notebooks

from .paths import ARTIFACTS, DEMO_HUB_DATA, REPO

pytestmark = pytest.mark.timeout(900)

NOTEBOOKS = notebooks.find_notebooks(folder=REPO / "notebooks")
# Figures drawn from the whole archive's contents (the nine real Dandisets' records are
# there only when the demo folder was built next to ../shared/fixtures).
NEEDS_REAL_RECORDS = {"01-explore-archive"}
OUT = ARTIFACTS / "notebooks"


@pytest.fixture(scope="module")
def demo_archive(request, tmp_path_factory):
    from dandihub.cli import prepare_demo_archive
    from dandihub.localarchive.server import LocalArchive

    folder = DEMO_HUB_DATA / "demo-archive"
    prepare_demo_archive(folder)  # cached: seconds when built, minutes the first time
    cache = tmp_path_factory.mktemp("dandilab-cache")
    saved = os.environ.get("DANDILAB_CACHE_DIR")
    os.environ["DANDILAB_CACHE_DIR"] = str(cache)  # the kernels inherit it: cold reads
    times: dict[str, float] = {}
    try:
        with LocalArchive(folder) as archive:
            archive.run_times = times
            yield archive
    finally:
        if saved is None:
            os.environ.pop("DANDILAB_CACHE_DIR", None)
        else:
            os.environ["DANDILAB_CACHE_DIR"] = saved
        if times:
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "run-times.json").write_text(json.dumps(times, indent=1))
            lines = [f"  {name}: {seconds:.1f} s" for name, seconds in times.items()]
            lines.append(f"  total: {sum(times.values()):.1f} s")
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                print("\nfigure notebooks, run times (papermill, cold cache):", *lines, sep="\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_draws_its_reference_figures(path, demo_archive):
    has_real_records = demo_archive.store.dandiset("000006") is not None
    compare = has_real_records or path.stem not in NEEDS_REAL_RECORDS
    run = notebooks.run_notebook(
        path, OUT, archive_url=demo_archive.api_url,
        references=REPO / "notebooks" / "figures" if compare else None,
        diff_dir=OUT / "diffs",
    )
    demo_archive.run_times[run.name] = round(run.seconds, 1)
    print(notebooks.summary(run))
    assert run.error is None, run.error
    if run.skipped:
        pytest.skip(f"{run.name}: {run.skipped}")
    provenance = run.report["provenance"]
    assert provenance["packages"]["pynwb"] and provenance["archive"] == demo_archive.api_url
    for asset in provenance.get("assets", []):
        assert asset["asset_id"] and asset["digest"], asset
    assert run.figures, f"{run.name} saved no figure"
    if not compare:
        pytest.skip(f"{run.name} ran; its figure shows the whole archive, which lacks the real "
                    "Dandisets' records here (../shared/fixtures absent at build)")
    assert run.checks and run.ok, notebooks.summary(run)


def _figure(path, shift: float = 0.0, noise: int = 0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    t = np.linspace(0, 1, 200)
    ax.plot(t, np.sin(2 * np.pi * (t + shift) * 3), color="k")
    ax.set_title("a figure")
    fig.savefig(path)
    plt.close(fig)
    if noise:  # what another renderer's anti-aliasing looks like: small, everywhere
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        jitter = np.random.default_rng(0).integers(-noise, noise + 1, pixels.shape)
        Image.fromarray(np.clip(pixels + jitter, 0, 255).astype(np.uint8)).save(path)
    return path


def test_changed_figure_fails_with_a_diff_image(tmp_path):
    diffs = ARTIFACTS / "notebooks" / "diffs-selftest"
    reference = _figure(tmp_path / "reference.png")
    same = notebooks.compare_figure(_figure(tmp_path / "same.png"), reference, diffs)
    assert same.ok and same.mean_diff == 0
    jittered = notebooks.compare_figure(_figure(tmp_path / "jittered.png", noise=3), reference, diffs)
    assert jittered.ok, jittered.message
    changed = notebooks.compare_figure(_figure(tmp_path / "changed.png", shift=0.05), reference, diffs)
    assert not changed.ok, changed.message
    assert changed.diff_image and changed.diff_image.exists()
    assert changed.diff_image.parent == diffs
    missing = notebooks.compare_figure(reference, tmp_path / "absent.png", diffs)
    assert not missing.ok and "no reference" in missing.message


def test_open_in_hub_link(capsys):
    link = notebooks.open_link("https://github.com/dandi/example-notebooks.git",
                               "000006/figure.ipynb", "https://hub.dandiarchive.org/",
                               branch="master")
    assert link == ("https://hub.dandiarchive.org/hub/user-redirect/git-pull?"
                    "repo=https%3A%2F%2Fgithub.com%2Fdandi%2Fexample-notebooks.git"
                    "&branch=master&urlpath=lab%2Ftree%2Fexample-notebooks%2F000006%2Ffigure.ipynb")
    from dandihub.cli import main

    assert main(["notebooks", "link", "https://github.com/me/my-figures",
                 "notebooks/01-explore-archive.ipynb", "--hub", "http://127.0.0.1:8000"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == ("http://127.0.0.1:8000/hub/user-redirect/git-pull?"
                       "repo=https%3A%2F%2Fgithub.com%2Fme%2Fmy-figures"
                       "&urlpath=lab%2Ftree%2Fmy-figures%2Fnotebooks%2F01-explore-archive.ipynb")
    with pytest.raises(ValueError, match="public git repository"):
        notebooks.open_link("git@github.com:me/repo.git", "a.ipynb", "https://hub.example.org")


def test_notebooks_are_parameterised_and_stored_without_outputs():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: one cell tagged 'parameters'"
        for name in ("archive_url", "figure_dir", "dandiset_id", "version"):
            assert f"{name} =" in tagged[0].source, f"{path.name} lacks parameter {name}"
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        assert any((REPO / "notebooks" / "figures").glob(f"{path.stem}*.png")), path.name
