"""End-to-end, beyond the match list: the result card (made in the browser, downloaded as a PNG),
"why this match" (the server's per-region explanation for a real photo), the demo-gallery note,
and axe-core accessibility checks of these parts. Real server, real build, Debian's Chromium.

Writes to test-results/: card.png (the downloaded card), card-phone.png (the card shown at a
phone's width), explanation-desktop.png and explanation-phone.png (the explained best match at
1280 and 390 px), explanation-runner-up-desktop.png (the second match explained) and axe-*.json
(axe-core's results).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser_helpers import (
    CARD_PHOTOS,
    EXPLANATION_CHIPS,
    MATCH_TIMEOUT_MS,
    RESULTS,
    axe_report,
    run_axe,
    wait_for_images,
    watch_errors,
)
from PIL import Image
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

CARD_SIZE = (1080, 1350)
REGION_LABELS = {"Eyes", "Eyebrows", "Nose", "Mouth", "Jaw and face shape"}


@pytest.fixture(scope="module")
def results_page(browser: Browser, live_server_url: str, face_photo_path: Path) -> Iterator[Page]:
    """The results page for the face photo, shared by this module's tests (one match request)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(live_server_url.rstrip("/") + "/")
    page.get_by_label("Photo to upload").set_input_files(str(face_photo_path))
    expect(page.get_by_test_id("match-card").first).to_be_visible(timeout=MATCH_TIMEOUT_MS)
    wait_for_images(page, CARD_PHOTOS)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_download_card_is_a_png_with_both_faces(results_page: Page) -> None:
    page = results_page
    first = page.get_by_test_id("match-card").first
    name = first.get_by_test_id("match-name").inner_text()
    score = first.get_by_test_id("match-score").inner_text()
    button = first.get_by_role("button", name=re.compile(r"^Download card"))
    expect(button).to_be_visible()

    with page.expect_download(timeout=30_000) as download_info:
        button.click()
    download = download_info.value
    assert download.suggested_filename.startswith("lookalike-")
    assert download.suggested_filename.endswith(".png")
    data = Path(download.path()).read_bytes()
    assert png_size(data) == CARD_SIZE
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "card.png").write_bytes(data)

    card = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(float)

    def detail(area: np.ndarray) -> float:
        """Mean difference between neighbouring pixels: high for a photo, ~0 for a gradient."""
        return float(np.abs(np.diff(area, axis=1)).mean() + np.abs(np.diff(area, axis=0)).mean())

    # The two photo squares (cardLayout: 460 px at y=230, x=60 and x=580) hold photos, unlike
    # the smooth background between the title and the photos, and not the same picture twice.
    you = card[240:680, 70:510]
    celebrity = card[240:680, 590:1030]
    background = card[175:220, 20:1060]
    assert detail(background) < 1.0
    for face in (you, celebrity):
        assert detail(face) > 3.0
    assert np.abs(you - celebrity).mean() > 10
    # Both name and score were on the page the card was made from.
    assert name.strip() and re.fullmatch(r"\d{1,3} / 100", score.strip())
    expect(page.get_by_role("status").filter(has_text="Card downloaded.")).to_have_count(1)

    # The card as a person sees it on a 390-px phone screen.
    phone = page.context.browser.new_page(viewport={"width": 390, "height": 600})
    phone.set_content(
        "<body style='margin:0;background:#222'>"
        f"<img src='data:image/png;base64,{__import__('base64').b64encode(data).decode()}' "
        "style='width:390px;display:block' alt='card'></body>"
    )
    phone.screenshot(path=str(RESULTS / "card-phone.png"), full_page=True)
    phone.close()


def test_why_this_match_lists_the_regions_for_a_real_photo(results_page: Page) -> None:
    page = results_page
    first = page.get_by_test_id("match-card").first
    button = first.get_by_role("button", name="Why this match?")
    with page.expect_response(lambda r: r.url.endswith("/api/explain"), timeout=60_000) as answer:
        button.click()
    response = answer.value
    assert response.status == 200, response.text()
    body = response.json()

    explanation = first.get_by_test_id("explanation")
    expect(explanation).to_be_visible()
    regions = first.get_by_test_id("explanation-region")
    expect(regions).to_have_count(5)
    labels = [item.locator(".why__region-name").inner_text() for item in regions.all()]
    assert set(labels) == REGION_LABELS
    # Shown in the server's order: most alike first.
    assert labels == [region["label"] for region in body["regions"]]
    expect(first.get_by_test_id("explanation-summary")).to_have_text(body["summary"])
    expect(explanation).to_contain_text("An approximation")
    expect(first.get_by_role("button", name="Hide why")).to_have_attribute("aria-expanded", "true")
    for side in ("you", "celebrity"):
        expect(first.get_by_test_id(f"heat-{side}").locator("polygon")).to_have_count(7)
    wait_for_images(page, EXPLANATION_CHIPS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    first.screenshot(path=str(RESULTS / "explanation-desktop.png"))

    violations = run_axe(page, "results-explained")
    assert violations == [], axe_report(violations)

    page.set_viewport_size({"width": 390, "height": 844})
    first.scroll_into_view_if_needed()
    first.screenshot(path=str(RESULTS / "explanation-phone.png"))
    violations = run_axe(page, "results-explained-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert violations == [], axe_report(violations)

    # Keyboard: the button is reachable and closes the panel again.
    button = first.get_by_role("button", name="Hide why")
    button.focus()
    page.keyboard.press("Enter")
    expect(first.get_by_test_id("explanation")).to_have_count(0)
    expect(first.get_by_role("button", name="Why this match?")).to_be_focused()

    # A real look-alike (another person): the runner-up's explanation, for the record.
    second = page.get_by_test_id("match-card").nth(1)
    second.get_by_role("button", name="Why this match?").click()
    expect(second.get_by_test_id("explanation-region")).to_have_count(5, timeout=60_000)
    wait_for_images(page, EXPLANATION_CHIPS)
    second.screenshot(path=str(RESULTS / "explanation-runner-up-desktop.png"))


def test_demo_gallery_note_and_start_page_accessibility(browser: Browser, live_server_url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server_url.rstrip("/") + "/")
    expect(page.get_by_test_id("gallery-size")).to_have_text(re.compile(r"^Gallery: "))
    health = page.request.get(live_server_url.rstrip("/") + "/api/health").json()
    note = page.get_by_test_id("demo-gallery-note")
    if not health["index"]["demo"]:
        expect(note).to_have_count(0)
    else:
        note.get_by_text("How to use the full IMDB gallery").click()
        expect(note).to_contain_text("make run INDEX=models/imdb-index")
        expect(note).to_contain_text("Full IMDB gallery")
    violations = run_axe(page, "start")
    page.close()
    assert violations == [], axe_report(violations)
