"""End-to-end: the real Flask server, serving the real build (webapp-frontend/dist/) at "/" and the
API at "/api", driven in headless Chromium (Debian's /usr/bin/chromium; downloaded browser builds
cannot work here).

Fixtures that the repository's conftest provides (``app_page``, the start page in Chromium, is
this folder's):

* ``live_server_url`` -- base URL of a running server, e.g. ``"http://127.0.0.1:5123"``;
* ``face_photo_path`` -- a real photo (path or str) with at least one clear face.

Writes a full-page screenshot of the results page to ``test-results/e2e-result.png`` at the
repository root.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import CARD_PHOTOS, MATCH_TIMEOUT_MS, RESULTS, wait_for_images
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SCREENSHOT = RESULTS / "e2e-result.png"


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

    wait_for_images(page, CARD_PHOTOS)
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
