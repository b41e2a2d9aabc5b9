"""How fast bad input is turned away: oversized photos refused from their header, and a stalled
download server given up on after the configured timeout.

The tests check that these refusals happen for the right reason (no pixel decoded; the socket
timeout fired); this script measures how long they take. Photos (``lookalike.fixtures``):

  header-only 20000×20000   a ~100-byte PNG whose header claims 400 MP (a decompression bomb)
  real 7000×7000            a complete, valid 49 MP PNG of zeros (~50 KB), over a 40 MP limit
  decoded 2000×1500         a 3 MP PNG that is decoded, for scale

Downloads: ``download_file`` against a server on 127.0.0.1 that sends nothing ("headers") or
1,000 bytes and then nothing ("body"), with ``--timeout`` seconds; the figure is the time until
``DownloadError``.

    python benchmarks/bench_refusals.py [--repeat 20] [--timeout 0.3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lookalike.download import DownloadError, download_file
from lookalike.fixtures import png_header_only, png_of_zeros
from lookalike.images import ImageError, load_image


def _median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _refused(data: bytes, max_pixels: int):
    def attempt() -> None:
        try:
            load_image(data, max_pixels=max_pixels)
        except ImageError as error:
            if error.code != "too_large":
                raise
        else:
            raise SystemExit("the oversized photo was decoded")

    return attempt


class _Stalling(BaseHTTPRequestHandler):
    release = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/body"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\0" * 1000)
            self.wfile.flush()
        self.release.wait(60)


def stalled_download_s(stall: str, timeout: float, repeat: int) -> float:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{stall}.tar"
    times = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for attempt in range(repeat):
                started = time.perf_counter()
                try:
                    target = Path(folder) / f"{attempt}.tar"
                    download_file(url, target, progress=False, timeout=timeout)
                except DownloadError:
                    times.append(time.perf_counter() - started)
                else:
                    raise SystemExit("a stalled download completed")
    finally:
        _Stalling.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
        _Stalling.release.clear()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="photo refusals per figure")
    parser.add_argument("--timeout", type=float, default=0.3, help="download timeout, seconds")
    parser.add_argument("--download-repeat", type=int, default=3)
    args = parser.parse_args()

    bomb, real = png_header_only(20_000, 20_000), png_of_zeros(7_000, 7_000)
    small = png_of_zeros(2_000, 1_500)
    print(f"median of {args.repeat} runs, milliseconds:")
    rows = [
        ("refuse header-only 20000×20000 PNG", _refused(bomb, 40_000_000)),
        ("refuse it, Pillow's own bomb limit", _refused(bomb, 10**12)),
        ("refuse real 7000×7000 PNG (40 MP limit)", _refused(real, 40_000_000)),
        ("decode a 2000×1500 PNG, for scale", lambda: load_image(small)),
    ]
    for label, action in rows:
        print(f"  {label:<42} {_median_ms(action, args.repeat):8.2f} ms")
    print(f"stalled download, timeout {args.timeout:g} s (median of {args.download_repeat}):")
    for stall in ("headers", "body"):
        seconds = stalled_download_s(stall, args.timeout, args.download_repeat)
        print(f"  no data after the {stall:<8} DownloadError after {seconds:6.2f} s")


if __name__ == "__main__":
    main()
