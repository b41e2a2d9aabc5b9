"""End-to-end: the webcam in Debian's Chromium, against the real server.

Chromium's fake camera plays a short Y4M video made at test time from a real face photo
(``--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE``); the permission
prompt is answered by ``--use-fake-ui-for-media-stream`` (allow) or ``--deny-permission-prompts``
(block). Without a fake device, this machine has no camera at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    MATCH_TIMEOUT_MS,
    RESULTS,
    axe_report,
    run_axe,
    write_y4m,
)
from playwright.sync_api import Page, Playwright, expect, sync_playwright

pytestmark = pytest.mark.browser

ALLOW = "--use-fake-ui-for-media-stream"
DENY = "--deny-permission-prompts"
FAKE_DEVICE = "--use-fake-device-for-media-stream"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def camera_video(face_photo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(face_photo_path, tmp_path_factory.mktemp("camera") / "face.y4m")


def open_camera(playwright: Playwright, live_server_url: str, extra_args: list[str]) -> Page:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + extra_args)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server_url.rstrip("/") + "/")
    page.get_by_role("button", name="Use your camera").click()
    expect(page.get_by_role("heading", name="Take a selfie")).to_be_visible()
    page.errors = errors  # type: ignore[attr-defined]
    return page


def close(page: Page) -> None:
    browser = page.context.browser
    errors = page.errors  # type: ignore[attr-defined]
    if browser is not None:
        browser.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_fake_camera_capture_finds_matches(
    playwright: Playwright, live_server_url: str, camera_video: Path
) -> None:
    page = open_camera(
        playwright,
        live_server_url,
        [ALLOW, FAKE_DEVICE, f"--use-file-for-fake-video-capture={camera_video}"],
    )
    try:
        video = page.get_by_label("Live camera preview")
        expect(video).to_be_visible(timeout=20_000)
        page.wait_for_function(
            "() => document.querySelector('video').videoWidth === 640", timeout=20_000
        )
        violations = run_axe(page, "camera-live")
        assert violations == [], axe_report(violations)

        page.get_by_role("button", name="Capture").click()
        expect(page.get_by_role("img", name="Your selfie, just taken")).to_be_visible()
        page.get_by_role("button", name="Use this photo").click()

        cards = page.get_by_test_id("match-card")
        expect(cards.first).to_be_visible(timeout=MATCH_TIMEOUT_MS)
        expect(cards.first.get_by_test_id("match-score")).to_have_text(
            re.compile(r"^\d{1,3} / 100$")
        )
        RESULTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(RESULTS / "e2e-camera-result.png"), full_page=True)
    finally:
        close(page)


def test_camera_permission_denied_says_how_to_allow_it(
    playwright: Playwright, live_server_url: str, camera_video: Path
) -> None:
    page = open_camera(
        playwright,
        live_server_url,
        [DENY, FAKE_DEVICE, f"--use-file-for-fake-video-capture={camera_video}"],
    )
    try:
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(re.compile(r"^Camera access was blocked\."), timeout=20_000)
        expect(alert).to_contain_text("allow the camera for this site")
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        expect(page.get_by_role("button", name="Back to upload")).to_be_visible()
        violations = run_axe(page, "camera-denied")
        assert violations == [], axe_report(violations)
    finally:
        close(page)


def test_no_camera_says_so_and_offers_the_upload(playwright: Playwright, live_server_url: str):
    page = open_camera(playwright, live_server_url, [ALLOW])
    try:
        cameras = page.evaluate(
            """async () => (await navigator.mediaDevices.enumerateDevices())
                   .filter((device) => device.kind === 'videoinput').length"""
        )
        if cameras:
            pytest.skip("this machine has a real camera")
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(
            re.compile(r"^We couldn't find a camera on this device\."), timeout=20_000
        )
        expect(page.get_by_role("button", name="Try again")).to_have_count(0)
        page.get_by_role("button", name="Back to upload").click()
        expect(page.get_by_label("Photo to upload")).to_be_attached()
    finally:
        close(page)
