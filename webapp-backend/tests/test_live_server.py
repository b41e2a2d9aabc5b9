"""``lookalike serve`` as a real process (gunicorn) on 127.0.0.1, called over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from live_server import start_live_server, stop_live_server

from lookalike.fixtures import multipart_upload


def test_served_over_http(
    test_index: tuple[Path, Path | None], face_photo: tuple[Path, str]
) -> None:
    index_dir, model_path = test_index
    url, process = start_live_server(index_dir, model_path=model_path, threads=2)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/api/health", timeout=30) as reply:
            assert json.load(reply)["status"] == "ok"

        path, celebrity_id = face_photo
        body, content_type = multipart_upload(path.read_bytes(), path.name)
        request = urllib.request.Request(
            f"{url}/api/match", data=body, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            result = json.load(reply)
        best = result["faces"][0]["matches"][0]
        assert best["celebrity_id"] == celebrity_id

        with urllib.request.urlopen(f"{url}{best['photo_url']}", timeout=30) as reply:
            assert reply.headers["Content-Type"] == "image/jpeg"
            assert reply.read(2) == b"\xff\xd8"

        try:
            urllib.request.urlopen(f"{url}/api/nope", timeout=30)
            raise AssertionError("expected a 404")
        except urllib.error.HTTPError as error:
            assert error.code == 404
            assert json.load(error)["error"]["code"] == "not_found"
    finally:
        status = stop_live_server(process)
    assert status == 0, "\n".join(process.log_tail)
    log = "\n".join(process.log_tail)
    assert "Booting worker" in log and "gthread" in log
