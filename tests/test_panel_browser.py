"""The DANDI panel in Chromium, on the embedded demo hub, as a new user meets it: sign in,
search "anterior lateral motor cortex", open 000006, pick its published version, browse to
an NWB file, "Open in notebook" and run the cell (the NWBFile shows as the NWB explorer,
open_nwb's default display), then "Download to
home" and see the file in the file browser. Screenshots go to artifacts/panel-*.png."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from .browser import browser_page, sign_in
from .hubutil import RunningHub

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.slow, pytest.mark.timeout(900)]

DANDISET = "000006"
VERSION = "0.220126.1855"
FOLDER = "sub-anm369963"
FILE = "sub-anm369963_ses-20170228.nwb"  # one of the two 000006 files whose bytes the demo holds


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory, shared_fixtures):
    """`dandihub up --demo --demo-profile small`: the generated Dandisets with small files,
    and the real ones from ../shared/fixtures (000006 among them)."""
    with RunningHub(
        tmp_path_factory.mktemp("panel-hub"), "--demo", "--demo-profile", "small",
        start_timeout=600,
    ) as running:
        yield running


def demo_key(hub: RunningHub) -> str:
    return re.search(r"'demo'.*\n\s+([0-9a-f]{40})", hub.log).group(1)


def shot(page, part, artifacts: Path, name: str) -> None:
    """A screenshot of the whole window, with ``part`` of the panel in view, as artifacts/NAME."""
    part.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / name))


def open_panel(page, panel) -> None:
    """Show the DANDI panel: its sidebar tab toggles it, so click only when hidden."""
    page.locator('.jp-SideBar [data-id="dandi-panel"]').wait_for()
    if not panel.is_visible():
        page.locator('.jp-SideBar [data-id="dandi-panel"]').click()
    panel.wait_for(state="visible")


def widen_sidebar(page, width: int = 560) -> None:
    """Drag the left sidebar's edge, as a person would, so the panel shows whole names."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(width, y, steps=8)
    page.mouse.up()


@contextlib.contextmanager
def evidence(page, hub: RunningHub, artifacts: Path):
    """On failure, leave a screenshot and the end of the hub's log."""
    try:
        yield
    except BaseException:
        page.screenshot(path=str(artifacts / "panel-failure.png"))
        print("--- hub.log (end) ---\n" + hub.log[-6000:])
        raise


def test_find_open_run_and_download_from_the_panel(demo_hub, artifacts):
    with browser_page(viewport=(1500, 950)) as page, evidence(page, demo_hub, artifacts):
        sign_in(page, demo_hub.url, demo_key(demo_hub))
        page.wait_for_url("**/user/demo/lab**", timeout=180_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=180_000)

        # The status bar says which DANDI account the server uses.
        status = page.locator(".jp-DandiStatus")
        status.wait_for()
        page.wait_for_function(
            "() => document.querySelector('.jp-DandiStatus').textContent !== 'DANDI: ?'"
        )
        assert status.inner_text() == "DANDI: demo"

        # Open the panel (unless the layout has it open already) and search.
        panel = page.locator("#dandi-panel")
        open_panel(page, panel)
        widen_sidebar(page)
        search = panel.locator(".jp-DandiPanel-search")
        search.fill("anterior lateral motor cortex")
        results = panel.locator(".jp-DandiPanel-result")
        page.wait_for_function(
            """() => {
                const rows = document.querySelectorAll('#dandi-panel .jp-DandiPanel-result');
                return rows.length === 1 && rows[0].dataset.identifier === '000006';
            }""",
            timeout=30_000,
        )
        result = results.first
        assert "Mouse anterior lateral motor cortex (ALM)" in result.inner_text()
        assert "published" in result.inner_text()
        assert panel.locator(".jp-DandiPanel-searchView > .jp-DandiPanel-status").inner_text() == "1 Dandiset"
        shot(page, result, artifacts, "panel-search.png")

        # The Dandiset, at its published version.
        result.click()
        title = panel.locator(".jp-DandiPanel-dandisetTitle")
        title.wait_for()
        page.wait_for_function(
            "() => document.querySelector('#dandi-panel .jp-DandiPanel-dandisetTitle')"
            ".textContent.startsWith('Mouse anterior')"
        )
        panel.locator(".jp-DandiPanel-version").select_option(VERSION)
        doi = panel.locator(".jp-DandiPanel-doi")
        doi.wait_for(timeout=30_000)
        assert doi.inner_text() == f"10.48324/dandi.{DANDISET}/{VERSION}"
        details = panel.locator(".jp-DandiPanel-details").inner_text()
        assert "Svoboda, Karel" in details and "CC-BY-4.0" in details
        folder = panel.locator(f'.jp-DandiPanel-entry[data-path="{FOLDER}"]')
        folder.wait_for(timeout=30_000)
        shot(page, title, artifacts, "panel-dandiset.png")

        # Into the subject's folder, with the keyboard, and select the NWB file.
        folder.focus()
        page.keyboard.press("Enter")
        entry = panel.locator(f'.jp-DandiPanel-entry[data-path="{FOLDER}/{FILE}"]')
        entry.wait_for(timeout=30_000)
        assert "NWB" in entry.inner_text()
        entry.click()
        card = panel.locator(".jp-DandiPanel-asset")
        card.wait_for()
        assert FILE in card.inner_text()
        shot(page, card, artifacts, "panel-assets.png")

        # Open in notebook: a new notebook (none is open) with the cell, pinned to the version.
        card.locator(".jp-DandiPanel-action-open").click()
        cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first
        cell.wait_for(timeout=120_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .cm-content')]"
            ".some(e => e.textContent.includes('dandilab.open_nwb'))",
            timeout=60_000,
        )
        source = cell.locator(".cm-content").inner_text()
        assert f'dandilab.open_nwb("DANDI:{DANDISET}/{VERSION}/{FOLDER}/{FILE}")' in source
        # Run it once the kernel is up.
        page.wait_for_function(
            "() => /\\| Idle/.test(document.querySelector('.jp-StatusBar-Widget')?.textContent ?? '')"
            " || /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent ?? '')",
            timeout=180_000,
        )
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        # what open_nwb returns displays as the explorer: its tree and a drawn figure
        page.wait_for_function(
            "() => { const o = document.querySelector('.jp-NotebookPanel .jp-CodeCell .jp-OutputArea');"
            " return o && (o.querySelector('.dandilab-explorer .dandilab-figure canvas')"
            " || /Error/.test(o.textContent)); }",
            timeout=300_000,
        )
        output = cell.locator(".jp-OutputArea")
        assert "Error" not in output.inner_text(), output.inner_text()
        assert output.locator(".dandilab-explorer .dandilab-tree").count() == 1
        tree = " ".join(output.locator(".dandilab-explorer .dandilab-tree option").all_text_contents())
        assert "session" in tree and "units" in tree, tree
        page.wait_for_function(
            "() => { const f = document.querySelector('.jp-NotebookPanel .jp-OutputArea .dandilab-figure');"
            " return f && Number(f.dataset.layers || 0) > 0 && !f.dataset.loading; }",
            timeout=120_000,
        )
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "panel-open-notebook.png"))

        # Explore: a cell with the NWB explorer widget, in the same notebook.
        card.locator(".jp-DandiPanel-action-explore").click()
        explore = page.locator(
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell",
            has=page.locator(".cm-content", has_text="NWBExplorer"),
        )
        explore.wait_for(timeout=30_000)
        assert "dandilab.widgets.NWBExplorer(nwb)" in explore.locator(".cm-content").inner_text()
        assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").count() == 2
        explore.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        explore.locator(".jp-OutputArea-output").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1000)
        assert "Error" not in explore.locator(".jp-OutputArea").inner_text()
        page.screenshot(path=str(artifacts / "panel-explore.png"))

        # Download to home: progress in the panel, then the file in the file browser.
        open_panel(page, panel)
        card.locator(".jp-DandiPanel-action-download").click()
        row = panel.locator(".jp-DandiPanel-download").first
        row.wait_for(timeout=30_000)
        page.wait_for_function(
            "() => /Done:|fail|refused/i.test("
            "document.querySelector('#dandi-panel .jp-DandiPanel-download').textContent)",
            timeout=120_000,
        )
        assert "Done:" in row.inner_text(), row.inner_text()
        assert f"dandi/{DANDISET}/{VERSION}/{FOLDER}/{FILE}" in row.inner_text()
        shot(page, row, artifacts, "panel-download.png")
        row.locator(".jp-DandiPanel-show").click()
        listing = page.locator(f'.jp-DirListing-item[title*="{FILE}"]')
        listing.wait_for(timeout=30_000)
        assert listing.is_visible()
        downloaded = demo_hub.data_dir / "homes" / "demo" / "dandi" / DANDISET / VERSION / FOLDER
        assert (downloaded / FILE).stat().st_size == 276632
        page.screenshot(path=str(artifacts / "panel-download-filebrowser.png"))
        assert demo_key(demo_hub) not in page.content()
