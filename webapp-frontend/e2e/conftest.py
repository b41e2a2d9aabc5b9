"""Fixtures of the browser tests: one Playwright and one Chromium for the whole session, and
the app's start page in a fresh context (``live_server_url`` and ``face_photo_path`` come from
the repository's ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_helpers import launch_chromium, watch_errors
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium with the usual settings; tests that need other flags launch their own."""
    launched = launch_chromium(playwright)
    yield launched
    launched.close()


@pytest.fixture
def app_page(browser: Browser, live_server_url: str) -> Iterator[Page]:
    """The app's start page in a fresh browser context; fails the test on any uncaught JS error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(live_server_url.rstrip("/") + "/")
    expect(page.get_by_role("heading", name="Which celebrity do you look like?")).to_be_visible()
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
