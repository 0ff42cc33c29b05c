"""dandilab.widgets in JupyterLab, in Chromium, in the embedded hub with the demo archive:
notebooks that open the demo ecephys and ophys assets (and real fixture files) show the
explorer, its canvases are drawn, and dragging the plot pans it.

Uses the full demo (384 channels, .cache/demo-hub) when `dandihub up --demo` has built it,
else (or with DANDILAB_WIDGETS_SMALL_DEMO=1) builds the small demo in a temporary folder.
Screenshots: artifacts/widgets-*.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import textwrap

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .browser import browser_page, sign_in
from .hubutil import RunningHub
from .paths import ARTIFACTS, DEMO_HUB_DATA, SHARED

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.slow, pytest.mark.timeout(1500)]

USER = "demo"


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    built = (DEMO_HUB_DATA / "demo-archive" / "dandisets" / "900001" / "draft.assets.json").exists()
    if built and not os.environ.get("DANDILAB_WIDGETS_SMALL_DEMO"):
        hub = RunningHub(DEMO_HUB_DATA, "--demo", start_timeout=1200)
    else:
        hub = RunningHub(tmp_path_factory.mktemp("widgets-hub"), "--demo", "--demo-profile",
                         "small", start_timeout=600)
    with hub as running:
        running.key = re.search(r"'demo'.*\n\s+([0-9a-f]{40})", running.log).group(1)
        yield running


def notebook(*cells: str) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "metadata": {}, "source": textwrap.dedent(c).strip(),
                   "outputs": [], "execution_count": None, "id": f"c{i}"}
                  for i, c in enumerate(cells)]}


def put_notebook(page, hub_url: str, name: str, nb: dict) -> None:
    status = page.evaluate("""async ([url, body]) => {
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
        const r = await fetch(url, {method: "PUT", headers: {"Content-Type": "application/json",
                                    "X-XSRFToken": decodeURIComponent(xsrf)},
                                    body: JSON.stringify({type: "notebook", content: body})});
        return r.status;
    }""", [f"{hub_url}user/{USER}/api/contents/{name}", nb])
    assert status in (200, 201), status


def accept_kernel_dialog(page) -> None:
    """JupyterLab asks which kernel to start when a notebook's last session is gone (a
    notebook of a previous run): the default, Python 3, is the one."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=3000)
    except Exception:  # noqa: BLE001 - no dialog: nothing to accept
        return
    dialog.locator("button", has_text="Select").click()
    dialog.wait_for(state="detached", timeout=30_000)


def open_and_run(page, hub_url: str, name: str, cells: int) -> None:
    page.goto(f"{hub_url}user/{USER}/lab/tree/{name}?reset")  # only this notebook open
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    state = f"""() => {{
        const p = [...document.querySelectorAll(".jp-Notebook .jp-InputPrompt")].map(
            e => e.textContent);
        if (p.length >= {cells} && /\\d/.test(p[{cells - 1}])) return "done";
        return p.some(t => t.includes("*")) ? "running" : "idle";
    }}"""
    try:
        # "Run All Cells" given while the kernel is still connecting may run only some
        # cells, or none: while nothing runs and the last cell has not run, ask again
        for _attempt in range(5):
            accept_kernel_dialog(page)
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            page.wait_for_timeout(3000)
            page.wait_for_function(f"""() => ({state})() !== "running" """, timeout=240_000)
            if page.evaluate(state) == "done":
                return
        raise AssertionError(f"the cells of {name} did not all run")
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"widgets-failed-{name}.png"))
        raise


def canvas_ink(page, selector: str, index: int = 0) -> float:
    """The fraction of the canvas' pixels that something was drawn on."""
    return page.evaluate("""([sel, i]) => {
        const c = document.querySelectorAll(sel)[i];
        if (!c || !c.width) return 0;
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let k = 3; k < d.length; k += 4) if (d[k] > 0) ink++;
        return ink / (c.width * c.height);
    }""", [selector, index])


def wait_drawn(page, nth: int = 0, timeout: float = 120_000):
    figure = page.locator(".dandilab-figure").nth(nth)
    figure.wait_for(timeout=timeout)
    page.wait_for_function("""i => {
        const f = document.querySelectorAll(".dandilab-figure")[i];
        return f && (Number(f.dataset.layers || 0) > 0 || !!f.dataset.message);
    }""", arg=nth, timeout=timeout)
    return figure


def wait_complete(page, nth: int = 0, timeout: float = 120_000) -> None:
    """Until figure ``nth`` is drawn in full (no "loading k of n chunk rows" on it)."""
    page.wait_for_function("""i => {
        const f = document.querySelectorAll(".dandilab-figure")[i];
        return f && Number(f.dataset.layers || 0) > 0 && !f.dataset.loading;
    }""", arg=nth, timeout=timeout)


def first_asset(kind: str) -> str:
    return f"""
        from dandilab.archive import Archive
        from dandilab.stream import open_nwb
        ds = Archive().dandiset("{ {"ecephys": "900001", "ophys": "900002"}[kind] }", "draft")
        path = sorted(a.path for a in ds.assets() if a.path.endswith("_{kind}.nwb"))[0]
        nwb = open_nwb(ds.asset(path))
        print(path)
    """


def test_ecephys_explorer_draws_and_pans(demo_hub, artifacts):
    with browser_page(viewport=(1500, 1500)) as page:
        sign_in(page, demo_hub.url, demo_hub.key)
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=180_000)
        put_notebook(page, demo_hub.url, "widgets-ecephys.ipynb",
                     notebook(first_asset("ecephys"), "nwb"))
        open_and_run(page, demo_hub.url, "widgets-ecephys.ipynb", 2)
        figure = wait_drawn(page)
        # open_nwb's result displays as the explorer (no dandilab.widgets import in the
        # notebook), drawn in full once every chunk row is read
        assert page.locator(".dandilab-explorer .dandilab-tree").count() == 1
        wait_complete(page)
        status = page.locator(".dandilab-view .dandilab-message").first.inner_text()
        assert "channels" in status and "min/max" in status, status
        ink = canvas_ink(page, ".dandilab-figure canvas")
        assert ink > 0.05, ink  # traces, not an empty frame
        before = json.loads(figure.get_attribute("data-x-range"))
        draws = int(figure.get_attribute("data-draws"))
        box = page.locator(".dandilab-figure canvas").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        page.wait_for_function("""([x0, n]) => {
            const f = document.querySelector(".dandilab-figure");
            return Number(f.dataset.draws) > n && JSON.parse(f.dataset.xRange)[0] > x0 + 1e-6;
        }""", arg=[before[0], draws], timeout=60_000)
        wait_complete(page)
        after = json.loads(figure.get_attribute("data-x-range"))
        assert after[0] > before[0] and after[1] - after[0] == pytest.approx(before[1] - before[0])
        # and the ▶ button pans too
        page.locator(".dandilab-view button:has-text('▶')").nth(0).click()
        page.wait_for_function("""x0 => JSON.parse(document.querySelector(".dandilab-figure")
                                      .dataset.xRange)[0] > x0 + 1e-6""", arg=after[0],
                               timeout=60_000)
        render_ms = float(figure.get_attribute("data-render-ms"))
        assert render_ms < 2000, render_ms
        wait_complete(page)
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "widgets-ecephys.png"), full_page=True)
        # a 10 s window (4-5 chunk rows) is drawn as its rows arrive: every label seen on
        # the way says how many rows are in, and the last drawing has none
        page.evaluate("""() => {
            const f = document.querySelector(".dandilab-figure");
            window.__loading = [];
            new MutationObserver(() => window.__loading.push(f.dataset.loading || ""))
                .observe(f, {attributes: true, attributeFilter: ["data-draws"]});
        }""")
        length = page.locator(".dandilab-view input[type='number']").nth(0)
        length.fill("10")
        length.press("Enter")
        with contextlib.suppress(PlaywrightTimeout):  # local bytes may come too fast to see
            page.wait_for_function("""() => !!document.querySelector(".dandilab-figure")
                                       .dataset.loading""", timeout=10_000, polling=20)
            page.screenshot(path=str(artifacts / "widgets-ecephys-loading.png"), full_page=True)
        # 10 s, or the whole recording when it is shorter (the small demo's is 2 s)
        page.wait_for_function("""() => {
            const r = JSON.parse(document.querySelector(".dandilab-figure").dataset.xRange);
            const box = document.querySelectorAll(".dandilab-view input[type='number']")[0];
            return r[1] - r[0] > Math.min(9.9, Number(box.max || 1e9) * 0.99); }""",
                               timeout=120_000)
        wait_complete(page)
        seen = page.evaluate("() => window.__loading")
        assert seen and seen[-1] == "", seen
        label = re.compile(r"loading \d+ of \d+ chunk rows…( \(\d+ from the overview\))?")
        assert all(label.fullmatch(t) for t in seen if t), seen
        print("loading labels seen:", seen)


def test_ophys_explorer_frames_and_rois(demo_hub, artifacts):
    with browser_page(viewport=(1500, 2200)) as page:
        sign_in(page, demo_hub.url, demo_hub.key)
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=180_000)
        put_notebook(page, demo_hub.url, "widgets-ophys.ipynb", notebook(
            first_asset("ophys"),
            "nwb",
            # a container of an open_nwb file displays as the explorer opened at it
            'nwb.processing["ophys"]["ImageSegmentation"]["PlaneSegmentation"]'))
        open_and_run(page, demo_hub.url, "widgets-ophys.ipynb", 3)
        wait_drawn(page, 0)
        assert canvas_ink(page, ".dandilab-figure canvas", 0) > 0.2  # a frame fills its area
        # the segmentation: masks over the mean image (figure 1), its ROI trace (figure 2)
        wait_drawn(page, 1)
        wait_drawn(page, 2)
        trace = page.locator(".dandilab-figure").nth(2)
        first_title = trace.get_attribute("data-draws")
        roi = page.locator(".dandilab-view input[type='number']").last
        roi.fill("2")
        roi.press("Enter")
        page.wait_for_function("""n => Number(document.querySelectorAll(".dandilab-figure")[2]
                                   .dataset.draws) > n""", arg=int(first_title), timeout=60_000)
        assert canvas_ink(page, ".dandilab-figure canvas", 2) > 0.005
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "widgets-ophys.png"), full_page=True)


def test_every_view_renders_on_demo_and_real_files(demo_hub, artifacts):
    fixtures = SHARED / "fixtures" / "nwb"
    real = (f"""
        real = NWBHDF5IO("{fixtures / '000006_sub-anm369963_ses-20170228.nwb'}", "r").read()
        rois = NWBHDF5IO("{fixtures / 'roiextractors_ophys_segmentation_nwb_test.nwb'}", "r").read()
        show = [view_for(real.units, group_by="trials.type"), view_for(real.trials),
                view_for(rois.processing["ophys"]["ImageSegmentation"]["PlaneSegmentation"])]
        """ if fixtures.is_dir() else "show = []")
    with browser_page(viewport=(1500, 2600)) as page:
        sign_in(page, demo_hub.url, demo_hub.key)
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=180_000)
        put_notebook(page, demo_hub.url, "widgets-views.ipynb", notebook(
            """
            import warnings; warnings.simplefilter("ignore")
            import ipywidgets as W
            from pynwb import NWBHDF5IO
            from dandilab.archive import Archive
            from dandilab.stream import open_nwb
            from dandilab.widgets import view_for
            b = Archive().dandiset("900003", "draft")
            beh = open_nwb(b.asset(sorted(a.path for a in b.assets())[0]))
            e = Archive().dandiset("900001", "draft")
            eph = open_nwb(e.asset(sorted(a.path for a in e.assets() if a.path.endswith(".nwb"))[0]))
            """,
            real,
            """
            views = [view_for(beh.processing["behavior"]["Position"]["SpatialSeriesPosition"]),
                     view_for(eph.units)] + show
            W.VBox(views)
            """))
        open_and_run(page, demo_hub.url, "widgets-views.ipynb", 3)
        expected = 2 + (3 if fixtures.is_dir() else 0)
        page.wait_for_function(f"""() => document.querySelectorAll(".dandilab-view").length
                                         >= {expected}""", timeout=120_000)
        n = page.locator(".dandilab-figure").count()
        for k in range(n):
            wait_drawn(page, k)
        inks = [canvas_ink(page, ".dandilab-figure canvas", k) for k in range(n)]
        assert sum(ink > 0.002 for ink in inks) >= n - 1, inks  # every plot has something
        if fixtures.is_dir():
            assert page.locator(".dandilab-table").count() >= 1  # the real trials table
        assert page.locator(".dandilab-error").count() == 0
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "widgets-views.png"), full_page=True)
        if fixtures.is_dir():  # the real units split by trials.type: PSTH and trial raster
            page.locator(".dandilab-view").nth(2).screenshot(
                path=str(artifacts / "widgets-units-split.png"))


CLIPPED = """() => {
    // every control of the explorer: a button whose text does not fit, a labelled control
    // narrower than its label (+ room for a value), a slider track shorter than 100 px
    const bad = [];
    for (const root of document.querySelectorAll(".dandilab-explorer")) {
    for (const b of root.querySelectorAll("button")) {
        if (!b.offsetParent) continue;
        if (b.scrollWidth > b.clientWidth + 1) bad.push("button " + b.textContent);
    }
    for (const w of root.querySelectorAll(".widget-inline-hbox")) {
        if (!w.offsetParent) continue;
        const label = w.querySelector(".widget-label");
        const lw = label && label.textContent ? label.scrollWidth : 0;
        if (w.getBoundingClientRect().width < lw + 40) bad.push("control " + label.textContent);
        const track = w.querySelector(".slider-container, .noUi-target");
        if (track && track.getBoundingClientRect().width < 100)
            bad.push("slider " + (label ? label.textContent : ""));
    }
    if (root.scrollWidth > root.clientWidth + 2) bad.push("explorer overflows");
    }
    return bad;
}"""


def set_theme(page, name: str) -> None:
    """JupyterLab's own menu: Settings > Theme > ``name``."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    light = "false" if "Dark" in name else "true"
    page.wait_for_function(f"""() => document.body.dataset.jpThemeLight === "{light}" """,
                           timeout=60_000)


def test_ecephys_readable_pages_channels_fits_600px_and_dark_theme(demo_hub, artifacts):
    """The ecephys view opens on a readable group of channels with buttons to page through
    them; at a 600 px notebook (the DANDI panel beside it) no control is clipped; in
    JupyterLab's dark theme the canvas ink is light."""
    with browser_page(viewport=(1400, 1400)) as page:
        sign_in(page, demo_hub.url, demo_hub.key)
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=180_000)
        put_notebook(page, demo_hub.url, "widgets-readable.ipynb",
                     notebook(first_asset("ecephys"), "nwb", "nwb.units"))
        open_and_run(page, demo_hub.url, "widgets-readable.ipynb", 3)
        figure = wait_drawn(page)
        wait_complete(page)
        status = page.locator(".dandilab-view .dandilab-message").first.inner_text()
        shown, total = map(int, re.search(r"(\d+) of (\d+) channels", status).groups())
        assert shown == min(32, total), status
        for label in ("▲ channels", "channels ▼"):  # the way through the other channels
            assert page.locator(".dandilab-view button", has_text=label).count() == 1
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "widgets-ecephys-readable.png"), full_page=True)
        channels = page.locator(".dandilab-view input[type='text']").first
        before = channels.input_value()
        if total > shown:
            draws = int(figure.get_attribute("data-draws"))
            page.locator(".dandilab-view button", has_text="channels ▼").first.click()
            page.wait_for_function("""n => Number(document.querySelector(".dandilab-figure")
                                       .dataset.draws) > n""", arg=draws, timeout=60_000)
            page.wait_for_function("""v => document.querySelector(
                ".dandilab-view input[type='text']").value !== v""", arg=before, timeout=30_000)
            wait_complete(page)

        # 600 px of notebook: shrink the window by what the notebook has beyond 600 px
        width = page.evaluate("""() => document.querySelector(".jp-NotebookPanel")
                                       .getBoundingClientRect().width""")
        page.set_viewport_size({"width": int(1400 - (width - 600)), "height": 1400})
        page.wait_for_function("""() => Math.abs(document.querySelector(".jp-NotebookPanel")
                                  .getBoundingClientRect().width - 600) < 4""", timeout=30_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts / "widgets-explorer-600px.png"), full_page=True)
        assert page.locator(".dandilab-explorer").count() == 2  # the recording and the units
        assert page.evaluate(CLIPPED) == []
        page.locator(".dandilab-explorer").nth(1).screenshot(
            path=str(artifacts / "widgets-units-600px.png"))

        page.set_viewport_size({"width": 1400, "height": 1400})
        light_ink = figure.get_attribute("data-ink")
        try:
            set_theme(page, "JupyterLab Dark")
            page.wait_for_function("""i => document.querySelector(".dandilab-figure")
                                       .dataset.ink !== i""", arg=light_ink, timeout=30_000)
            ink = figure.get_attribute("data-ink")
            rgb = [float(v) for v in re.findall(r"[\d.]+", ink)[:3]] if "rgb" in ink else \
                [int(ink.lstrip("#")[k:k + 2], 16) for k in (0, 2, 4)]
            assert min(rgb) > 150, ink  # light text on the dark background
            # the axis labels really are drawn in it: bright pixels on the canvas
            bright = page.evaluate("""() => {
                const c = document.querySelector(".dandilab-figure canvas");
                const d = c.getContext("2d").getImageData(0, 0, 60, c.height).data;
                let n = 0;
                for (let k = 0; k < d.length; k += 4)
                    if (d[k + 3] > 200 && d[k] > 180 && d[k + 1] > 180 && d[k + 2] > 180) n++;
                return n;
            }""")
            assert bright > 50, bright
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / "widgets-dark-theme.png"), full_page=True)
        finally:  # the theme is a user setting: the other tests see the light one
            set_theme(page, "JupyterLab Light")


def test_session_fields_read_as_a_person_would(demo_hub, artifacts):
    """The session's fields: dates, experimenters, keywords as values, never Python reprs
    (``datetime.datetime(...)``, ``('Demo, Ada',)``) or "dataset 5 object"."""
    with browser_page(viewport=(1400, 1200)) as page:
        sign_in(page, demo_hub.url, demo_hub.key)
        page.wait_for_url(f"**/user/{USER}/lab**", timeout=180_000)
        put_notebook(page, demo_hub.url, "widgets-fields.ipynb", notebook(
            first_asset("ecephys"),
            "from dandilab.widgets.explorer import FieldsView\nFieldsView(nwb)"))
        open_and_run(page, demo_hub.url, "widgets-fields.ipynb", 2)
        fields = page.locator(".dandilab-fields").first
        fields.wait_for(timeout=60_000)
        text = fields.inner_text()
        for repr_ in ("datetime.datetime", "('", "dataset ", "{}"):
            assert repr_ not in text, (repr_, text)
        assert "Demo, Ada" in text
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "widgets-session-fields.png"), full_page=True)
