"""End-to-end: the webcam in Debian's Chromium, against the real server.

Chromium's fake camera plays a short Y4M video made at test time from a real face photo
(``--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE``); the permission
prompt is answered by ``--use-fake-ui-for-media-stream`` (allow) or ``--deny-permission-prompts``
(block). Without a fake device, this machine has no camera at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_helpers import (
    MATCH_TIMEOUT_MS,
    RESULTS,
    axe_report,
    launch_chromium,
    run_axe,
    watch_errors,
    write_y4m,
)
from playwright.sync_api import Page, Playwright, expect

pytestmark = pytest.mark.browser

ALLOW = "--use-fake-ui-for-media-stream"
DENY = "--deny-permission-prompts"
FAKE_DEVICE = "--use-fake-device-for-media-stream"


@pytest.fixture(scope="module")
def camera_video(face_photo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(face_photo_path, tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture
def camera_page(playwright: Playwright, live_server_url: str) -> Iterator[Callable[..., Page]]:
    """``open(*chromium_args)``: the app's camera screen in a Chromium of its own, started with
    those flags; closed after the test, which fails on any uncaught JS error."""
    opened: list[tuple[Page, list[str]]] = []

    def open_camera(*chromium_args: str) -> Page:
        browser = launch_chromium(playwright, chromium_args)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        opened.append((page, watch_errors(page)))
        page.goto(live_server_url.rstrip("/") + "/")
        page.get_by_role("button", name="Use your camera").click()
        expect(page.get_by_role("heading", name="Take a selfie")).to_be_visible()
        return page

    yield open_camera
    for page, errors in opened:
        page.context.browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def fake_camera(camera_video: Path) -> list[str]:
    """Chromium flags for a fake camera that plays the face photo's video."""
    return [FAKE_DEVICE, f"--use-file-for-fake-video-capture={camera_video}"]


def test_fake_camera_capture_finds_matches(
    camera_page: Callable[..., Page], fake_camera: list[str]
) -> None:
    page = camera_page(ALLOW, *fake_camera)
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
    expect(cards.first.get_by_test_id("match-score")).to_have_text(re.compile(r"^\d{1,3} / 100$"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "e2e-camera-result.png"), full_page=True)


def test_camera_permission_denied_says_how_to_allow_it(
    camera_page: Callable[..., Page], fake_camera: list[str]
) -> None:
    page = camera_page(DENY, *fake_camera)
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^Camera access was blocked\."), timeout=20_000)
    expect(alert).to_contain_text("allow the camera for this site")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    expect(page.get_by_role("button", name="Back to upload")).to_be_visible()
    violations = run_axe(page, "camera-denied")
    assert violations == [], axe_report(violations)


def test_no_camera_says_so_and_offers_the_upload(camera_page: Callable[..., Page]) -> None:
    page = camera_page(ALLOW)
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
