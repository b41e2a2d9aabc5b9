"""Development only: serve webapp-frontend/dist/ with a MOCK of the backend's /api (docs/api.md).

Lets the frontend be built, clicked through and screenshotted without the real Flask server.
Faces are found with OpenCV's Haar cascade (not the real model) and the "matches" are made up,
deterministically, from a handful of LFW people when ../shared/data/lfw-dev exists (otherwise
from drawn placeholder portraits). Needs Pillow and opencv-python-headless (both in the repo's
.venv):

    ../.venv/bin/python scripts/mock_api.py --port 8765 [--delay 1.5]

Not part of the product, and not used by the real end-to-end test. Its answers follow the real
contract (lookalike_web.contract; webapp-backend/tests/test_contract.py checks them).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import mimetypes
import os
import random
import sys
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

FRONTEND = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(FRONTEND.parent / "webapp-backend"))
from lookalike_web.contract import MAX_UPLOAD_BYTES  # noqa: E402 (the real server's limit)

DIST = FRONTEND / "dist"
LFW = Path(os.environ.get("LOOKALIKE_SHARED_DATA", FRONTEND.parent.parent / "shared" / "data"))
LFW = LFW / "lfw-dev"
GALLERY_SIZE = 60

NAMES = [
    "Ava Sterling",
    "Noah Whitfield",
    "Mila Laurent",
    "Leo Marchetti",
    "Ines Navarro",
    "Theo Castellan",
    "Nora Lindqvist",
    "Felix Ashdown",
    "Zara Okafor",
    "Hugo Bellamy",
]


def build_gallery() -> list[dict]:
    """[{celebrity_id, name, gender, age, photo_year, source}] — LFW people or made-up names."""
    people = sorted(p for p in LFW.iterdir() if p.is_dir())[:GALLERY_SIZE] if LFW.is_dir() else []
    rng = random.Random(7)
    gallery = []
    for index, entry in enumerate(people or NAMES):
        name = entry.name.replace("_", " ") if isinstance(entry, Path) else entry
        source = next(iter(sorted(entry.glob("*.jpg"))), None) if isinstance(entry, Path) else None
        age = rng.choice([None, rng.randint(22, 70)]) if index % 4 else rng.randint(22, 70)
        gallery.append(
            {
                "celebrity_id": name.lower().replace(" ", "-"),
                "name": name,
                "gender": ["male", "female", None][index % 3] if index % 7 else None,
                "age": age,
                "photo_year": None if age is None else rng.randint(1995, 2015),
                "source": source,
            }
        )
    return gallery


GALLERY = build_gallery()
HUES = [(109, 93, 252), (255, 93, 143), (166, 93, 245), (46, 170, 140), (240, 150, 50)]


def thumbnail(photo_id: int) -> bytes:
    """A ~160×160 face JPEG: the centre of an LFW photo, or a drawn placeholder portrait."""
    person = GALLERY[photo_id]
    if person["source"] is not None:
        image = Image.open(person["source"]).convert("RGB").crop((62, 62, 188, 188))
    else:
        image = Image.new("RGB", (160, 160), HUES[photo_id % len(HUES)])
        draw = ImageDraw.Draw(image)
        draw.ellipse((45, 28, 115, 108), fill=(245, 225, 210))
        draw.ellipse((20, 110, 140, 220), fill=(245, 225, 210))
    out = io.BytesIO()
    image.resize((160, 160)).save(out, "JPEG", quality=88)
    return out.getvalue()


_CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def detect(image: Image.Image) -> list[list[int]]:
    """Face boxes [x, y, w, h] in the image's pixels, largest first."""
    scale = min(1.0, 900 / max(image.size))
    small = ImageOps.grayscale(image).resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    )
    found = _CASCADE.detectMultiScale(np.asarray(small), 1.1, 6, minSize=(36, 36))
    boxes = [[round(v / scale) for v in box] for box in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


def matches_for(seed: bytes, top_k: int, gender: str | None) -> list[dict]:
    rng = random.Random(hashlib.sha256(seed).digest())
    pool = [(i, p) for i, p in enumerate(GALLERY) if gender is None or p["gender"] == gender]
    picked = rng.sample(pool, min(top_k, len(pool)))
    score = rng.uniform(84, 95)
    out = []
    for photo_id, person in picked:
        similarity = 0.25 + score / 250 + rng.uniform(-0.01, 0.01)
        out.append(
            {
                "celebrity_id": person["celebrity_id"],
                "name": person["name"],
                "similarity": round(similarity, 3),
                "score": round(score, 1),
                "photo_id": photo_id,
                "photo_url": f"/api/photos/{photo_id}",
                "age": person["age"],
                "photo_year": person["photo_year"],
                "gender": person["gender"],
            }
        )
        score -= rng.uniform(2, 9)
    return out


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def health() -> dict:
    """GET /api/health in the contract's shape (``HealthResponse``), for the mock gallery."""
    people = len(GALLERY)
    return {
        "status": "ok",
        "version": "mock",
        "model": "mock",
        "model_title": "Mock API (made-up matches)",
        "model_license": {"name": "none", "commercial_use": True, "summary": "No model."},
        "detector": "haar",
        "index": {"photos": people, "celebrities": people, "demo": False},
        "serving": None,
    }


def match(content_type: str, body: bytes) -> dict:
    started = time.perf_counter()
    if len(body) > MAX_UPLOAD_BYTES:
        message = (
            f"This photo is larger than {MAX_UPLOAD_BYTES // 2**20} MB. Please send a smaller one."
        )
        raise ApiProblem(413, "too_large", message)
    fields = parse_form(content_type, body)
    if "image" not in fields:
        raise ApiProblem(400, "missing_image", "No photo was sent. Please choose a photo.")
    data = fields["image"][1]
    if not data:
        raise ApiProblem(400, "empty_file", "The file you sent is empty.")
    try:
        top_k = int(fields.get("top_k", (None, b"5"))[1] or 5)
    except ValueError:
        top_k = 0
    if not 1 <= top_k <= 20:
        raise ApiProblem(400, "bad_parameter", "top_k must be a whole number from 1 to 20.")
    gender = fields.get("gender", (None, b""))[1].decode() or None
    if gender not in (None, "female", "male"):
        raise ApiProblem(400, "bad_parameter", "gender must be 'female' or 'male'.")
    try:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ApiProblem(
            415,
            "not_an_image",
            "This file is not an image we can read. Please upload a photo "
            "(JPEG, PNG, WebP, GIF, BMP or TIFF).",
        ) from error
    decoded = time.perf_counter()
    boxes = detect(image)
    detected = time.perf_counter()
    if not boxes:
        raise ApiProblem(
            422,
            "no_face",
            "We couldn't find a face in this photo. Try one with a clear, front-facing, "
            "well-lit face.",
        )
    faces = [
        {
            "box": box,
            "confidence": 0.99,
            "matches": matches_for(data + bytes(str(box), "ascii"), top_k, gender),
        }
        for box in boxes[:20]
    ]
    return {
        "image": {"width": image.width, "height": image.height},
        "faces": faces,
        "faces_total": len(boxes),
        "timings_ms": _timings(started, decoded, detected),
    }


def _timings(started: float, decoded: float, detected: float) -> dict[str, float]:
    """The contract's stages; the mock only decodes and detects (the rest is made up: 0 ms)."""
    total = round((time.perf_counter() - started) * 1000.0, 1)
    stages = {"decode": (decoded - started) * 1000.0, "detect": (detected - decoded) * 1000.0}
    stages |= {"align": 0.0, "embed": 0.0, "search": 0.0}
    return {stage: round(ms, 1) for stage, ms in stages.items()} | {
        "total": total,
        "request": total,
    }


class Handler(BaseHTTPRequestHandler):
    delay = 0.0

    def log_message(self, format, *args):  # noqa: A002 - quiet by default
        if os.environ.get("MOCK_VERBOSE"):
            super().log_message(format, *args)

    def send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_bytes(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/api/health":
            self.send_json(200, health())
        elif path.startswith("/api/photos/"):
            try:
                self.send_bytes("image/jpeg", thumbnail(int(path.rsplit("/", 1)[1])))
            except (ValueError, IndexError):
                self.send_json(404, {"error": {"code": "not_found", "message": "No such photo."}})
        elif path.startswith("/api/"):
            self.send_json(404, {"error": {"code": "not_found", "message": "Not found."}})
        else:
            self.serve_static(path)

    def do_POST(self):  # noqa: N802
        if self.path.split("?", 1)[0] != "/api/match":
            self.send_json(404, {"error": {"code": "not_found", "message": "Not found."}})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.delay)
        try:
            self.send_json(200, match(self.headers.get("Content-Type", ""), body))
        except ApiProblem as problem:
            error = {"code": problem.code, "message": problem.message}
            self.send_json(problem.status, {"error": error})

    def serve_static(self, path: str) -> None:
        target = (DIST / path.lstrip("/")).resolve()
        if not target.is_file() or DIST.resolve() not in target.parents:
            target = DIST / "index.html"  # the single-page app answers every other path
        if not target.is_file():
            self.send_json(404, {"error": {"code": "not_found", "message": "Run npm run build."}})
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self.send_bytes(kind, target.read_bytes())


def start(port: int = 0, delay: float = 0.0) -> ThreadingHTTPServer:
    """Start in a background thread; the caller reads server.server_address and calls shutdown()."""
    handler = type("MockHandler", (Handler,), {"delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    args = parser.parse_args()
    server = start(args.port, args.delay)
    print(f"mock API + dist/ on http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
