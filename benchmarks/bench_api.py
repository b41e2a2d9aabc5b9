"""Load-test the web API: the real ``lookalike serve`` (gunicorn) under concurrent clients.

Starts the server on 127.0.0.1 with a free port, waits for ``/api/health``, then:

1. warm-up: a few matches (not counted);
2. one client alone: ``--single`` sequential matches (p50 = latency without queueing);
3. ``--clients`` concurrent clients × ``--requests`` matches each (stopped at ``--max-seconds``).

Every request posts the same ~1-megapixel "selfie": a real face photo upscaled and cropped to
1152×864 in memory (JPEG q90). Reports latency percentiles, throughput, errors by status and the
server's memory (RSS of gunicorn's worker, sampled every 0.5 s): after warm-up, peak, and at the
end. The default index is the demo index; without it, the tests' index (data/sample or LFW) is
built once into data/cache.

    .venv/bin/python benchmarks/bench_api.py [--clients 8] [--requests 200] [--single 30]
        [--threads 4] [--serialize] [--max-seconds 300] [--json bench-results/api.json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from lookalike import config

sys.path.insert(0, str(config.REPO_ROOT / "webapp-backend" / "tests"))
from live_server import ensure_test_index, start_live_server, stop_live_server  # noqa: E402

SELFIE_SIZE = (1152, 864)  # ~1 MP, a phone's front camera at a modest setting
WARM_UP_REQUESTS = 3


def selfie_bytes(photo: Path | None) -> bytes:
    """A ~1 MP JPEG of a real face: the photo scaled to cover SELFIE_SIZE, centre-cropped."""
    candidates = [photo] if photo else []
    candidates += [
        config.REPO_ROOT / "tests" / "assets" / "face.jpg",
        config.shared_data_dir() / "face_recognition_examples" / "biden" / "knn_train_biden2.jpg",
        *sorted((config.sample_dir() / "imdb_crop").glob("*/*.jpg"))[:1],
    ]
    source = next((path for path in candidates if path and path.is_file()), None)
    if source is None:
        raise SystemExit("no face photo found: pass --photo PATH")
    with Image.open(source) as image:
        image = image.convert("RGB")
    width, height = SELFIE_SIZE
    scale = max(width / image.width, height / image.height)
    big = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    left, top = (big.width - width) // 2, (big.height - height) // 2
    buffer = io.BytesIO()
    big.crop((left, top, left + width, top + height)).save(buffer, "JPEG", quality=90)
    print(f"selfie: {source} → {width}×{height} JPEG, {len(buffer.getvalue()) / 1e3:.0f} kB")
    return buffer.getvalue()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="selfie.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_match(url: str, body: bytes, content_type: str) -> tuple[str, float]:
    """One POST /api/match: (status, seconds). Network failures count as their exception name."""
    request = urllib.request.Request(
        f"{url}/api/match", data=body, headers={"Content-Type": content_type}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            reply.read()
            status = str(reply.status)
    except urllib.error.HTTPError as error:
        error.read()
        status = str(error.code)
    except (urllib.error.URLError, OSError) as error:
        status = type(error).__name__
    return status, time.perf_counter() - started


class RssSampler(threading.Thread):
    """Samples the RSS (MB) of the server's processes every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.master = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (time, worker MB, total MB)
        self.stopped = threading.Event()

    def measure(self) -> tuple[float, float]:
        try:
            workers = self.master.children(recursive=True)
            worker = sum(process.memory_info().rss for process in workers)
            total = worker + self.master.memory_info().rss
        except psutil.Error:
            return float("nan"), float("nan")
        return worker / 1e6, total / 1e6

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.samples.append((time.monotonic(), *self.measure()))


def percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "p99": round(float(np.percentile(ms, 99)), 1),
        "max": round(float(ms.max()), 1),
        "mean": round(float(ms.mean()), 1),
    }


def run_clients(
    url: str, body: bytes, content_type: str, clients: int, requests: int, deadline: float
) -> tuple[list[tuple[str, float]], float]:
    """``clients`` threads posting ``requests`` matches each (until ``deadline``)."""
    results: list[tuple[str, float]] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests):
            if time.monotonic() >= deadline:
                return
            outcome = post_match(url, body, content_type)
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 130)  # + one request's timeout
    return results, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="matches per client")
    parser.add_argument("--single", type=int, default=30, help="matches by one client alone")
    parser.add_argument("--threads", type=int, default=4, help="server threads (lookalike serve)")
    parser.add_argument(
        "--serialize", action="store_true", help="server runs one match at a time (a lock)"
    )
    parser.add_argument("--max-seconds", type=float, default=300.0, help="concurrent phase cap")
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--photo", type=Path, default=None, help="face photo to upscale")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()

    index_dir, model_path = args.index, args.model
    if index_dir is None:
        index_dir, model_path = ensure_test_index(config.cache_dir() / "web-test-index")
    body, content_type = multipart(selfie_bytes(args.photo))
    env = {"LOOKALIKE_WEB_SERIALIZE_MATCHING": "true"} if args.serialize else {}

    print(f"starting lookalike serve --threads {args.threads} on index {index_dir} …")
    started = time.perf_counter()
    url, process = start_live_server(
        index_dir, model_path=model_path, threads=args.threads, env=env
    )
    print(f"ready at {url} after {time.perf_counter() - started:.1f} s")
    sampler = RssSampler(process.pid)
    try:
        for _ in range(WARM_UP_REQUESTS):
            status, _seconds = post_match(url, body, content_type)
            if status != "200":
                raise SystemExit(f"warm-up request failed with {status}")
        rss_after_warm_up = sampler.measure()
        sampler.start()

        single = [post_match(url, body, content_type) for _ in range(args.single)]
        concurrent_started = time.monotonic()
        deadline = concurrent_started + args.max_seconds
        results, wall = run_clients(url, body, content_type, args.clients, args.requests, deadline)
        rss_end = sampler.measure()
    finally:
        sampler.stopped.set()
        exit_status = stop_live_server(process)

    ok = [seconds for status, seconds in results if status == "200"]
    peak = max((sample[1] for sample in sampler.samples), default=float("nan"))
    # Worker RSS at the end of each quarter of the concurrent phase: flat means no leak.
    quarters = []
    for quarter in range(1, 5):
        until = concurrent_started + wall * quarter / 4
        seen = [sample[1] for sample in sampler.samples if sample[0] <= until]
        quarters.append(round(seen[-1], 1) if seen else None)
    report = {
        "server": {"threads": args.threads, "serialized": args.serialize, "url": url},
        "selfie_bytes": len(body),
        "single_client": {
            "requests": len(single),
            "errors": sum(status != "200" for status, _ in single),
            **percentiles([s for status, s in single if status == "200"]),
        },
        "concurrent": {
            "clients": args.clients,
            "requests": len(results),
            "planned": args.clients * args.requests,
            "wall_s": round(wall, 1),
            "throughput_rps": round(len(ok) / wall, 2) if wall else None,
            "status_counts": dict(Counter(status for status, _ in results)),
            **percentiles(ok),
        },
        "rss_mb": {
            "worker_after_warm_up": round(rss_after_warm_up[0], 1),
            "worker_peak": round(peak, 1),
            "worker_end": round(rss_end[0], 1),
            "total_end": round(rss_end[1], 1),
            "samples": len(sampler.samples),
            "worker_by_quarter_of_concurrent_phase": quarters,
        },
        "server_exit_status": exit_status,
        "cpus": psutil.cpu_count(),
        "load_average_1m": round(psutil.getloadavg()[0], 2),
    }
    single_p50 = report["single_client"].get("p50")
    concurrent = report["concurrent"]
    print(
        f"single client: p50 {single_p50} ms over {len(single)} requests\n"
        f"{args.clients} clients: {len(results)}/{concurrent['planned']} requests in "
        f"{wall:.1f} s → {concurrent['throughput_rps']} req/s; p50 {concurrent.get('p50')} ms, "
        f"p95 {concurrent.get('p95')} ms, p99 {concurrent.get('p99')} ms; "
        f"statuses {concurrent['status_counts']}\n"
        f"worker RSS: {report['rss_mb']['worker_after_warm_up']} MB after warm-up, "
        f"{report['rss_mb']['worker_peak']} MB peak, {report['rss_mb']['worker_end']} MB at "
        f"the end; by quarter of the concurrent phase: {quarters} MB"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
