"""Chromium signs in to the embedded hub and sees JupyterLab with the DANDI panel."""

from __future__ import annotations

import pytest

from .browser import browser_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.timeout(400)]


def test_sign_in_and_see_the_dandi_panel(hub, archive, artifacts):
    with browser_page() as page:
        sign_in(page, hub.url, archive.keys["admin"])
        # The hub starts the server and lands in JupyterLab.
        page.wait_for_url("**/user/admin/lab**", timeout=120_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
        tab = page.locator('.jp-SideBar [data-id="dandi-panel"]')
        tab.wait_for()
        tab.click()
        panel = page.locator("#dandi-panel")
        panel.wait_for(state="visible")
        assert panel.locator(".jp-DandiPanel-search").is_visible()
        page.screenshot(path=str(artifacts / "hub-lab-dandi-panel.png"))
        assert archive.keys["admin"] not in page.content()


def test_browser_sees_the_refusal_for_a_pending_account(hub, archive, artifacts):
    with browser_page() as page:
        sign_in(page, hub.url, archive.keys["pending"])
        error = page.locator(".login_error")
        error.wait_for()
        assert "pending approval" in error.inner_text()
        page.screenshot(path=str(artifacts / "hub-refused-pending.png"))
