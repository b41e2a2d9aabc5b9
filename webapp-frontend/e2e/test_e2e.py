"""End-to-end: the real Flask server, serving the real build (webapp-frontend/dist/) at "/" and the
API at "/api", driven in headless Chromium (Debian's /usr/bin/chromium; downloaded browser builds
cannot work here).

Fixtures that the backend's conftest provides:

* ``live_server_url`` -- base URL of a running server, e.g. ``"http://127.0.0.1:5123"``;
* ``face_photo_path`` -- a real photo (path or str) with at least one clear face.

Writes a full-page screenshot of the results page to ``test-results/e2e-result.png`` at the
repository root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, MATCH_TIMEOUT_MS, RESULTS
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = pytest.mark.browser

SCREENSHOT = RESULTS / "e2e-result.png"


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def app_page(chromium_browser: Browser, live_server_url: str) -> Iterator[Page]:
    """The app's start page in a fresh browser context; fails the test on any uncaught JS error."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(live_server_url.rstrip("/") + "/")
    expect(page.get_by_role("heading", name="Which celebrity do you look like?")).to_be_visible()
    yield page
    context.close()
    assert page_errors == [], f"JavaScript errors on the page: {page_errors}"


def upload(page: Page, path: Path | str) -> None:
    page.get_by_label("Photo to upload").set_input_files(str(path))


def test_face_photo_shows_match_cards(app_page: Page, face_photo_path: Path | str) -> None:
    page = app_page
    expect(page.get_by_test_id("gallery-size")).to_have_text(
        re.compile(r"^Gallery: [\d,]+ photos? of [\d,]+ celebrit(y|ies)$")
    )

    upload(page, face_photo_path)

    cards = page.get_by_test_id("match-card")
    expect(cards.first).to_be_visible(timeout=MATCH_TIMEOUT_MS)
    assert cards.count() >= 1
    first = cards.first
    expect(first.get_by_test_id("match-name")).to_have_text(re.compile(r"\w"))
    expect(first.get_by_test_id("match-score")).to_have_text(re.compile(r"^\d{1,3} / 100$"))
    expect(page.get_by_role("heading", level=1, name="Your look-alikes")).to_be_visible()
    expect(page.get_by_test_id("result-photo")).to_be_visible()

    # The celebrity photos come from /api/photos/<id>: wait until the cards' images have loaded.
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="match-card"] img')]
                   .every((img) => img.complete && img.naturalWidth > 0)""",
        timeout=30_000,
    )
    celebrity_photo = first.get_by_role("img").first
    assert "/api/photos/" in (celebrity_photo.get_attribute("src") or "")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 0


def test_non_image_shows_the_servers_error_message(app_page: Page, tmp_path: Path) -> None:
    page = app_page
    # A text file with an image's name and type: the browser lets it through, the server must not.
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("This is plain text pretending to be a JPEG.\n")

    with page.expect_response(
        lambda response: response.url.endswith("/api/match"), timeout=MATCH_TIMEOUT_MS
    ) as answer:
        upload(page, fake)

    response = answer.value
    assert 400 <= response.status < 500, f"expected a client error, got {response.status}"
    message = response.json()["error"]["message"]
    assert message.strip()
    expect(page.get_by_test_id("error-message")).to_have_text(message.strip())
    expect(page.get_by_role("alert").first).to_be_visible()
    expect(page.get_by_role("button", name="Try another photo")).to_be_visible()
    expect(page.get_by_test_id("match-card")).to_have_count(0)
