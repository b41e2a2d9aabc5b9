"""Development only: screenshots of every screen, rendered against scripts/mock_api.py.

    npm run build && ../.venv/bin/python scripts/screenshots.py [OUT_DIR]

Writes idle / progress / results (desktop and a 360 px phone) / no-face / not-an-image PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

SCRIPTS = Path(__file__).resolve().parent
sys.path[:0] = [str(SCRIPTS), str(SCRIPTS.parent / "e2e")]
import mock_api  # noqa: E402
from browser_helpers import launch_chromium  # noqa: E402 (the browser tests' Chromium)

SHARED = mock_api.LFW.parent
GROUP = SHARED / "face_recognition_examples" / "_multi_face_unlabelled" / "obama_and_biden.jpg"


def shoot(page, path: Path, full_page: bool = True) -> None:
    """Screenshot, and complain when the page is wider than the window (horizontal scrolling)."""
    page.screenshot(path=path, full_page=full_page)
    width = page.evaluate("document.documentElement.scrollWidth")
    window = page.viewport_size["width"]
    if width > window:
        print(f"WARNING {path.name}: page is {width}px wide in a {window}px window")


def first_image(path: Path) -> Path:
    return path if path.is_file() else sorted(path.glob("*.jp*g"))[0]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lookalike-shots")
    out.mkdir(parents=True, exist_ok=True)
    server = mock_api.start(0, delay=0.6)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with sync_playwright() as p:
        browser = launch_chromium(p)
        views = {"desktop": (1280, 900, "light"), "phone": (360, 760, "light")}
        views["dark"] = (1280, 900, "dark")
        for name, (width, height, scheme) in views.items():
            page = browser.new_page(
                viewport={"width": width, "height": height}, color_scheme=scheme
            )
            page.on("pageerror", lambda error: print("PAGE ERROR", error))
            page.goto(url)
            page.get_by_test_id("gallery-size").filter(has_text="celebrities").wait_for()
            shoot(page, out / f"idle-{name}.png")

            page.get_by_test_id("file-input").set_input_files(str(first_image(GROUP)))
            page.get_by_role("progressbar").wait_for()
            shoot(page, out / f"progress-{name}.png", full_page=False)
            page.get_by_test_id("match-card").first.wait_for()
            page.wait_for_timeout(600)
            shoot(page, out / f"results-{name}.png")
            tabs = page.get_by_role("tab")
            if tabs.count() > 1:
                tabs.nth(1).click()
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(500)
                shoot(page, out / f"results-face-switch-{name}.png")

            page.get_by_role("button", name="Try another photo").click()
            blank = out / "blank.png"
            from PIL import Image

            Image.new("RGB", (400, 300), (200, 210, 220)).save(blank)
            page.get_by_test_id("file-input").set_input_files(str(blank))
            page.get_by_test_id("error-message").wait_for()
            shoot(page, out / f"no-face-{name}.png")

            fake = out / "not-a-photo.jpg"
            fake.write_text("hello, I am text")
            page.get_by_role("button", name="Try another photo").click()
            page.get_by_test_id("file-input").set_input_files(str(fake))
            page.get_by_test_id("error-message").wait_for()
            shoot(page, out / f"not-an-image-{name}.png")
            page.close()
        browser.close()
    server.shutdown()
    print("screenshots in", out)


if __name__ == "__main__":
    main()
