"""Helpers shared by the browser tests (and ``scripts/screenshots.py``): starting Debian's
Chromium, watching a page for JavaScript errors, waiting for its images to load, axe-core,
a fake camera video. The fixtures built on them are in ``conftest.py``.

Not a test module (pytest collects ``test_*.py`` only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import Browser, Page, Playwright

FRONTEND = Path(__file__).resolve().parents[1]
REPO_ROOT = FRONTEND.parent
RESULTS = REPO_ROOT / "test-results"
AXE_SCRIPT = FRONTEND / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The first match may load the model on the server: give it time on a slow CPU.
MATCH_TIMEOUT_MS = 120_000
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, heading order, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def launch_chromium(playwright: Playwright, extra_args: Sequence[str] = ()) -> Browser:
    """Debian's Chromium, headless, with ``CHROMIUM_ARGS`` and then ``extra_args``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


def watch_errors(page: Page) -> list[str]:
    """The page's uncaught JavaScript errors from now on (the list fills as they happen)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


CARD_PHOTOS = '[data-testid="match-card"] img'  # the celebrity photos, from /api/photos/<id>
EXPLANATION_CHIPS = '[data-testid="explanation"] img'  # "why this match": the two aligned faces


def wait_for_images(page: Page, selector: str, timeout_ms: float = 30_000) -> None:
    """Until every image that ``selector`` finds has loaded."""
    page.wait_for_function(
        """(selector) => [...document.querySelectorAll(selector)]
                   .every((img) => img.complete && img.naturalWidth > 0)""",
        arg=selector,
        timeout=timeout_ms,
    )


def run_axe(page: Page, name: str) -> list[dict]:
    """Run axe-core on the page as it is now; write its results to test-results/axe-NAME.json and
    return the violations (each with its rule id, impact and the failing elements). The file also
    lists what axe could not decide alone ("incomplete", e.g. contrast over a photo)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    results = page.evaluate(
        """async (tags) => {
            const r = await window.axe.run(document, {runOnly: {type: 'tag', values: tags}});
            const slim = (items) => items.map((item) => ({
                id: item.id, impact: item.impact, help: item.help,
                nodes: item.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
            }));
            return {violations: slim(r.violations), passes: r.passes.length,
                    incomplete: slim(r.incomplete)};
        }""",
        AXE_TAGS,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"axe-{name}.json").write_text(json.dumps(results, indent=1))
    return results["violations"]


def axe_report(violations: list[dict]) -> str:
    return "\n".join(
        f"{item['id']} ({item['impact']}): {item['help']} at "
        + ", ".join(str(node["target"]) for node in item["nodes"])
        for item in violations
    )


def write_y4m(
    photo: Path, out: Path, *, width: int = 640, height: int = 480, frames: int = 10
) -> Path:
    """A short Y4M video (YUV 4:2:0) of a still photo, letterboxed on grey: Chromium's fake camera
    plays it in a loop (``--use-file-for-fake-video-capture``)."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {photo}")
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(
        image,
        (round(image.shape[1] * scale), round(image.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
    )
    frame = np.full((height, width, 3), 128, np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    planes = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()  # Y, then U, then V
    header = f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode("ascii")
    out.write_bytes(header + b"".join(b"FRAME\n" + planes for _ in range(frames)))
    return out
