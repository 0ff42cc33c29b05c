"""Playwright on the system Chromium (never a browser downloaded by playwright)."""

from __future__ import annotations

import contextlib
import shutil

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Chromium is not installed (apt-get install chromium; `make test` does it)")
    return path


@contextlib.contextmanager
def browser_page(viewport=(1400, 900)):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def sign_in(page, hub_url: str, api_key: str) -> None:
    """Sign in through the hub's login page as a person would."""
    page.goto(f"{hub_url}hub/login")
    page.fill("#api_key_input", api_key)
    page.click("#login_submit")
