"""A neuroscientist's first hour, in Chromium on the embedded demo hub (issue 16, items 5, 7
and 10): DANDI-branded sign-in, spawn and error pages whose key help reaches a page that
lists the demo accounts; JupyterLab's own icons in the panel's tree; a sentence instead of
"TypeError: Failed to fetch"; a word when Download is pressed again; the usage page styled
like the hub with a way back. Screenshots go to artifacts/first-hour-*.png."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .browser import browser_page, sign_in
from .hubutil import RunningHub

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.slow, pytest.mark.timeout(900)]

DANDISET = "900001"
FOLDER = "sub-mouse001"


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    """`dandihub up --demo --demo-profile small`: the generated Dandisets, small files.
    Two people sign in (demo, then admin for the usage page): allowed on one system account
    here, as in conftest's hub; tests/test_isolation.py tests the one-person rule."""
    with RunningHub(
        tmp_path_factory.mktemp("first-hour-hub"), "--demo", "--demo-profile", "small",
        settings={"shared_account_users": 0}, start_timeout=600,
    ) as running:
        yield running


def key_of(hub: RunningHub, account: str) -> str:
    """An account's key as `dandihub up --demo` prints it."""
    if account == "demo":
        return re.search(r"'demo'.*\n\s+([0-9a-f]{40})", hub.log).group(1)
    return re.search(rf"^\s+{account}\s+([0-9a-f]{{40}})$", hub.log, re.MULTILINE).group(1)


@contextlib.contextmanager
def evidence(page, hub: RunningHub, artifacts: Path, name: str):
    """On failure, leave a screenshot and the end of the hub's log."""
    try:
        yield
    except BaseException:
        page.screenshot(path=str(artifacts / f"first-hour-{name}-failure.png"))
        print("--- hub.log (end) ---\n" + hub.log[-6000:])
        raise


def hosts_referenced(page) -> set[str]:
    """Every host the page loads or links to (src and href of all elements)."""
    urls = page.eval_on_selector_all(
        "[src], [href]", "els => els.map(e => e.src || e.href).filter(Boolean)"
    )
    return {urlsplit(u).netloc for u in urls if urlsplit(u).scheme in ("http", "https")}


def test_dandi_login_and_its_key_help_page(demo_hub, artifacts):
    archive = re.search(r"Archive:\s+(http://\S+)/api", demo_hub.log).group(1)
    with browser_page() as page, evidence(page, demo_hub, artifacts, "login"):
        page.goto(f"{demo_hub.url}hub/login")
        assert page.title() == "DANDI Hub"
        brand = page.locator("#dandi-logo")
        assert brand.locator("svg").is_visible()
        assert "DANDI Hub" in brand.inner_text()
        assert page.locator('img[alt="JupyterHub logo"]').count() == 0
        assert "Sign in with your DANDI account" in page.locator("#login-main").inner_text()
        # Nothing from elsewhere: only the hub and the archive's help page.
        assert hosts_referenced(page) <= {urlsplit(demo_hub.url).netloc, urlsplit(archive).netloc}
        page.screenshot(path=str(artifacts / "first-hour-login.png"))

        # The help link reaches a page that says how to get a key and lists the accounts.
        with page.context.expect_page() as opened:
            page.click("#dandi-key-help")
        help_page = opened.value
        help_page.wait_for_load_state()
        assert help_page.url.rstrip("/") == archive
        assert help_page.locator("h1").inner_text() == "How to get your DANDI API key"
        body = help_page.locator("body").inner_text()
        assert "Not found" not in body
        assert "dandihub up --demo" in body
        rows = help_page.locator("#accounts tbody tr").all_inner_texts()
        assert [r.split("\t")[0] for r in rows] == ["admin", "demo", "pending", "rejected"]
        assert "pending approval" in rows[2]
        for account in ("demo", "admin", "pending", "rejected"):
            assert key_of(demo_hub, account) not in help_page.content()  # never a key
        help_page.screenshot(path=str(artifacts / "first-hour-key-help.png"))


def test_dandi_error_page(demo_hub, artifacts):
    with browser_page() as page, evidence(page, demo_hub, artifacts, "error"):
        answer = page.goto(f"{demo_hub.url}hub/no-such-page")
        assert answer.status == 404
        assert page.title() == "DANDI Hub"
        error = page.locator(".dandi-error")
        assert error.locator("h1").inner_text() == "404 : Not found"  # JupyterHub's own "CODE : REASON"
        assert "There is nothing at this address" in error.inner_text()
        assert "moons" not in error.inner_text()
        back = error.locator('a:has-text("Back to DANDI Hub")')
        assert back.get_attribute("href") == "/hub/home"
        assert page.locator("#dandi-logo svg").is_visible()
        page.screenshot(path=str(artifacts / "first-hour-error-404.png"))


def signed_in(response) -> bool:
    """The answer to the login form (the cookie is set; the browser goes on to spawn)."""
    return "/hub/login" in response.url and response.request.method == "POST"


def open_panel(page):
    panel = page.locator("#dandi-panel")
    page.locator('.jp-SideBar [data-id="dandi-panel"]').wait_for()
    if not panel.is_visible():
        page.locator('.jp-SideBar [data-id="dandi-panel"]').click()
    panel.wait_for(state="visible")
    return panel


def test_spawn_page_then_the_panel_first_hour(demo_hub, artifacts):
    with browser_page() as page, evidence(page, demo_hub, artifacts, "panel"):
        sign_in(page, demo_hub.url, key_of(demo_hub, "demo"))
        # The DANDI spawn page while the server starts (JupyterHub goes there at once).
        page.wait_for_url("**/hub/spawn-pending/demo**", timeout=60_000)
        page.locator("h1", has_text="Starting your DANDI Hub server").wait_for(timeout=10_000)
        assert page.title() == "DANDI Hub"
        assert "JupyterLab with the DANDI panel is starting for demo" in page.inner_text("body")
        page.screenshot(path=str(artifacts / "first-hour-spawn-pending.png"))
        page.wait_for_url("**/user/demo/lab**", timeout=180_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=180_000)

        # A Jupyter server that does not answer: a sentence that says what, and Retry.
        panel = open_panel(page)
        search = panel.locator(".jp-DandiPanel-search")
        page.route("**/user/demo/dandi/api/dandisets?**", lambda route: route.abort())
        search.fill("Neuropixels")
        error = panel.locator(".jp-DandiPanel-searchError")
        error.wait_for(state="visible", timeout=30_000)
        text = error.inner_text()
        assert "Failed to fetch" not in text and "TypeError" not in text, text
        assert "Your Jupyter server did not answer" in text
        assert "The Jupyter server cannot be reached" in text
        page.screenshot(path=str(artifacts / "first-hour-server-unreachable.png"))
        page.unroute("**/user/demo/dandi/api/dandisets?**")
        error.locator(".jp-DandiPanel-retry").click()
        result = panel.locator(f'.jp-DandiPanel-result[data-identifier="{DANDISET}"]')
        result.wait_for(timeout=30_000)
        assert error.is_hidden()

        # Folders and files carry JupyterLab's own icons (SVG), not a glyph the fonts lack.
        result.click()
        folder = panel.locator(f'.jp-DandiPanel-entry[data-path="{FOLDER}"]')
        folder.wait_for(timeout=30_000)
        icon = folder.locator(".jp-DandiPanel-entryIcon svg")
        assert icon.count() == 1
        box = icon.bounding_box()
        assert box and box["width"] >= 12 and box["height"] >= 12
        assert page.eval_on_selector(
            f'#dandi-panel .jp-DandiPanel-entry[data-path="{FOLDER}"] .jp-DandiPanel-entryIcon',
            "e => getComputedStyle(e, '::before').content",
        ) in ("none", "normal", "")
        folder.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "first-hour-panel-folder-icon.png"))
        folder.click()
        page.keyboard.press("Enter")
        nwb = panel.locator(f'.jp-DandiPanel-entry[data-path^="{FOLDER}/"][data-path$=".nwb"]').first
        nwb.wait_for(timeout=30_000)
        assert nwb.locator(".jp-DandiPanel-entryIcon svg").count() == 1
        page.screenshot(path=str(artifacts / "first-hour-panel-file-icon.png"))

        # Download, then Download again: the second press says it is under way or done.
        nwb.click()
        card = panel.locator(".jp-DandiPanel-asset")
        card.wait_for()
        card.locator(".jp-DandiPanel-action-download").click()
        row = panel.locator(".jp-DandiPanel-download").first
        row.wait_for(timeout=30_000)
        notice = panel.locator(".jp-DandiPanel-downloadNotice")
        card.locator(".jp-DandiPanel-action-download").click()
        notice.wait_for(state="visible", timeout=30_000)
        assert re.match(r"Already (downloading|downloaded)", notice.inner_text()), notice.inner_text()
        page.wait_for_function(
            "() => /Done:|fail|refused/i.test("
            "document.querySelector('#dandi-panel .jp-DandiPanel-download').textContent)",
            timeout=120_000,
        )
        assert "Done:" in row.inner_text(), row.inner_text()
        card.locator(".jp-DandiPanel-action-download").click()
        page.wait_for_function(
            "() => /^Already downloaded: .* in your home directory at ~\\/dandi\\//.test("
            "document.querySelector('#dandi-panel .jp-DandiPanel-downloadNotice').textContent)",
            timeout=30_000,
        )
        assert panel.locator(".jp-DandiPanel-download").count() == 1
        notice.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "first-hour-download-again.png"))

        # Not checked: the panel's place across a reload (IStateDB). It came back in some runs
        # and not in others (the search results instead): see the session notes.
        assert key_of(demo_hub, "demo") not in page.content()


def test_usage_page_looks_like_the_hub_and_leads_back(demo_hub, artifacts):
    with browser_page() as page, evidence(page, demo_hub, artifacts, "usage"):
        with page.expect_response(signed_in):
            sign_in(page, demo_hub.url, key_of(demo_hub, "admin"))
        # (goto may hand back no response when the OAuth hops end on the same URL: the page's
        # heading says it arrived)
        page.goto(f"{demo_hub.url}services/usage/")
        page.locator("h1", has_text="Usage").wait_for()
        # JupyterHub's own stylesheet, from the hub: the table is styled by it.
        sheets = page.eval_on_selector_all(
            'link[rel="stylesheet"]', "els => els.map(e => e.href)"
        )
        assert sheets == [f"{demo_hub.url}hub/static/css/style.min.css"]
        assert page.evaluate(
            "() => [...document.styleSheets].some(s => s.href && s.href.endsWith('style.min.css')"
            " && s.cssRules.length > 100)"
        )
        assert page.eval_on_selector("body", "e => getComputedStyle(e).fontFamily") != "serif"
        assert page.locator('tr[data-user="admin"]').count() == 1
        page.screenshot(path=str(artifacts / "first-hour-usage.png"))
        page.locator("#back-to-hub").click()
        page.wait_for_url(f"{demo_hub.url}hub/home", timeout=30_000)
        assert page.title() == "DANDI Hub"
