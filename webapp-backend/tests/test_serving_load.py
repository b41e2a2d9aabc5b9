"""The real ``lookalike serve`` under concurrent clients, over HTTP on 127.0.0.1.

- photos sent together get exactly the answers they get alone (batching changes nothing);
- slow uploads hold no model thread: other clients are answered while they trickle in;
- with a tiny queue, a burst gets only 200s and 503s with ``Retry-After`` (never a timeout or
  another 5xx), and the server is healthy afterwards.

Speed is measured by ``benchmarks/bench_api.py``, never asserted here.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import start_live_server, stop_live_server
from PIL import Image

from lookalike import config
from lookalike.fixtures import multipart_upload

TIMEOUT_S = 120  # far above any answer: a hang fails the test instead of passing slowly


def post_match(url: str, data: bytes) -> tuple[int, dict, dict[str, str]]:
    """(status, JSON body, headers) of one POST /api/match."""
    body, content_type = multipart_upload(data)
    request = urllib.request.Request(
        f"{url}/api/match", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as reply:
            return reply.status, json.load(reply), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), dict(error.headers)


def health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/health", timeout=TIMEOUT_S) as reply:
        return json.load(reply)


def all_at_once(url: str, photos: list[bytes]) -> list[tuple[int, dict, dict[str, str]]]:
    """Post every photo from its own thread, released together."""
    results: list = [None] * len(photos)
    start = threading.Barrier(len(photos))

    def client(position: int) -> None:
        start.wait()
        results[position] = post_match(url, photos[position])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(photos))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S + 10)
    assert all(result is not None for result in results)
    return results


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(face_photo: tuple[Path, str], group_photo: Path) -> dict[str, bytes]:
    """Real photos of different sizes and face counts."""
    assets = config.REPO_ROOT / "tests" / "assets"
    with Image.open(assets / "face.jpg") as face:
        face = face.convert("RGB")
    chosen = {
        "indexed": face_photo[0].read_bytes(),
        "group": group_photo.read_bytes(),
        "portrait": (assets / "face.jpg").read_bytes(),
        "selfie-1mp": jpeg(face.resize((face.width * 864 // face.height, 864))),
        "small": jpeg(face.resize((face.width // 2, face.height // 2))),
    }
    for path in sorted((config.sample_dir() / "imdb_crop").glob("*/*.jpg"))[:3]:
        chosen[path.stem] = path.read_bytes()
    return chosen


@pytest.fixture(scope="module")
def served(test_index: tuple[Path, Path | None]) -> Iterator[str]:
    """``lookalike serve`` as it ships (batching on, default queue and threads)."""
    index_dir, model_path = test_index
    url, process = start_live_server(index_dir, model_path=model_path, threads=None)
    try:
        yield url
    finally:
        stop_live_server(process)


def assert_same_answer(alone: dict, together: dict, name: str) -> None:
    assert together["image"] == alone["image"], name
    assert together["faces_total"] == alone["faces_total"], name
    assert len(together["faces"]) == len(alone["faces"]), name
    for mine, theirs in zip(together["faces"], alone["faces"], strict=True):
        assert mine["box"] == theirs["box"], name
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-5), name
        assert [(m["celebrity_id"], m["photo_id"]) for m in mine["matches"]] == [
            (m["celebrity_id"], m["photo_id"]) for m in theirs["matches"]
        ], name
        for a, b in zip(mine["matches"], theirs["matches"], strict=True):
            assert a["similarity"] == pytest.approx(b["similarity"], abs=1e-5), name
            assert a["score"] == pytest.approx(b["score"], abs=1e-5), name


def test_photos_sent_together_get_the_answers_they_get_alone(
    served: str, photos: dict[str, bytes]
) -> None:
    alone = {}
    for name, data in photos.items():
        status, body, _headers = post_match(served, data)
        assert status == 200, (name, body)
        alone[name] = body
    assert sum(len(body["faces"]) for body in alone.values()) > len(photos)  # the group's two

    names = [*photos, *photos]  # every photo twice, all at once
    answers = all_at_once(served, [photos[name] for name in names])
    for name, (status, body, _headers) in zip(names, answers, strict=True):
        assert status == 200, (name, body)
        assert_same_answer(alone[name], body, name)
        assert body["timings_ms"]["queue"] >= 0
    serving = health(served)["serving"]
    assert serving["largest_batch"] >= 2  # they really were batched together
    assert serving["refused"] == {"queue_full": 0, "deadline": 0}


def start_slow_upload(url: str, data: bytes) -> tuple[socket.socket, bytes]:
    """Send the request head and the first half of its body; return the socket and the rest."""
    body, content_type = multipart_upload(data)
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S)
    head = (
        f"POST /api/match HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    half = len(body) // 2
    sock.sendall(head.encode() + body[:half])
    return sock, body[half:]


def finish_slow_upload(sock: socket.socket, rest: bytes) -> tuple[int, dict]:
    with sock:
        sock.sendall(rest)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


def test_slow_uploads_do_not_hold_up_other_clients(served: str, photos: dict[str, bytes]) -> None:
    # More half-sent uploads than the server had threads before batching (4): each holds only
    # the HTTP thread reading it; the models keep answering everyone else.
    slow = [start_slow_upload(served, photos["selfie-1mp"]) for _ in range(6)]
    try:
        for name in ("indexed", "group"):
            status, body, _headers = post_match(served, photos[name])
            assert status == 200, body
        for sock, _rest in slow:  # the slow ones are still waiting for their last bytes
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
            sock.setblocking(True)
    finally:
        finished = [finish_slow_upload(sock, rest) for sock, rest in slow]
    for status, body in finished:
        assert status == 200, body
        assert body["faces"]


def test_a_burst_beyond_a_tiny_queue_gets_200s_and_503s_with_retry_after(
    test_index: tuple[Path, Path | None], photos: dict[str, bytes]
) -> None:
    index_dir, model_path = test_index
    tiny = ["--queue-size", "1", "--batch-size", "1", "--deadline", "0.05"]
    url, process = start_live_server(
        index_dir, model_path=model_path, threads=None, extra_args=tiny
    )
    try:
        burst = all_at_once(url, [photos["selfie-1mp"]] * 24)
        statuses = [status for status, _body, _headers in burst]
        assert set(statuses) <= {200, 503}, statuses
        assert 200 in statuses and 503 in statuses, statuses
        for status, body, headers in burst:
            if status == 503:
                assert int(headers["Retry-After"]) >= 1
                assert body["error"]["code"] == "busy"
                assert body["error"]["message"]
            else:
                assert body["faces"]
        after = health(url)
        assert after["status"] == "ok"
        refused = after["serving"]["refused"]
        assert refused["queue_full"] + refused["deadline"] == statuses.count(503)
        status, body, _headers = post_match(url, photos["indexed"])  # healthy: answers again
        assert status == 200 and body["faces"]
    finally:
        exit_status = stop_live_server(process)
    assert exit_status == 0, "\n".join(process.log_tail)
