"""Load-test the web API: the real ``lookalike serve`` (gunicorn) under 1 to 100 concurrent clients.

Starts one or more servers on 127.0.0.1 (free ports), each from a named configuration:

- ``batched``: ``lookalike serve`` as it ships (batching across requests, bounded queue);
- ``unbatched``: ``--no-batching --threads 4``, the server before batching (one request per
  thread, each running the models alone);
- ``batched-2w``: ``--workers 2``, two processes each with its own models and queue;
- ``batched-2t``: ``--model-threads 2``, two threads taking batches off one queue;
- ``batched-b4``: ``--batch-size 4``.

Every client posts the same ~1-megapixel "selfie" (a real face photo upscaled and cropped to
1152×864 in memory, JPEG q90) to ``/api/match``, one request after the other; a client that is
answered 503 waits the ``Retry-After`` it was given before its next request, as the page does.
For each number of clients (``--levels``) every server gets ``--seconds`` of load, the servers
taking turns level by level (``--rounds R``: the whole sequence R times, pooled), so that they
share the machine's background load. Per level and
server: throughput (answers 200 per second), p50/p95/p99 of the 200s, every status seen, the
mean batch size (from ``/api/health``) and the workers' memory (peak RSS of each worker process,
and USS: what that process alone holds). The headline is throughput at 8 clients ÷ throughput of
one client, both from the same run.

``--slow-upload``: while 4 clients post normally, one more client sends its photo in small
pieces over ``--slow-seconds``; the 4 clients' p50 is compared with 4 clients alone.

``--soak-minutes M``: after the levels, M minutes of ``--soak-clients`` clients on the first
server: worker RSS at the end of each quarter, errors, throughput per quarter.

    .venv/bin/python benchmarks/bench_api.py [--servers batched,unbatched] [--levels 1,2,4,8]
        [--seconds 20] [--slow-upload] [--soak-minutes 30] [--json bench-results/api.json]
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from lookalike import config
from lookalike.fixtures import multipart_upload

sys.path.insert(0, str(config.REPO_ROOT / "webapp-backend" / "tests"))
from live_server import ensure_test_index, start_live_server, stop_live_server  # noqa: E402

SELFIE_SIZE = (1152, 864)  # ~1 MP, a phone's front camera at a modest setting
WARM_UP_REQUESTS = 3
REQUEST_TIMEOUT_S = 60.0
SERVERS = {
    "batched": {"args": [], "threads": None},
    "unbatched": {"args": ["--no-batching"], "threads": 4},
    "batched-2w": {"args": ["--workers", "2"], "threads": None},
    "batched-2t": {"args": ["--model-threads", "2"], "threads": None},
    "batched-b4": {"args": ["--batch-size", "4"], "threads": None},
}


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


def post_match(url: str, body: bytes, content_type: str) -> tuple[str, float, float]:
    """One POST /api/match: (status, seconds, Retry-After seconds or 0). Network failures count
    as their exception's name (``timeout`` for a timeout)."""
    request = urllib.request.Request(
        f"{url}/api/match", data=body, headers={"Content-Type": content_type}
    )
    started = time.perf_counter()
    retry_after = 0.0
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as reply:
            reply.read()
            status = str(reply.status)
    except urllib.error.HTTPError as error:
        error.read()
        status = str(error.code)
        retry_after = float(error.headers.get("Retry-After") or 0)
    except TimeoutError:
        status = "timeout"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None)
        status = "timeout" if isinstance(reason, TimeoutError) else type(error).__name__
    return status, time.perf_counter() - started, retry_after


def slow_post_match(url: str, body: bytes, content_type: str, seconds: float) -> tuple[str, float]:
    """POST /api/match sending the body in 40 pieces spread over ``seconds``: (status, s)."""
    parts = urllib.parse.urlsplit(url)
    started = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=REQUEST_TIMEOUT_S) as sock:
        head = (
            f"POST /api/match HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}"
            f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        pieces = 40
        step = -(-len(body) // pieces)
        for start in range(0, len(body), step):
            sock.sendall(body[start : start + step])
            time.sleep(seconds / pieces)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "no-reply"
    return status, time.perf_counter() - started


class Server:
    """One ``lookalike serve`` process of a named configuration, and its memory samples."""

    def __init__(self, name: str, index_dir: Path, model_path: Path | None) -> None:
        spec = SERVERS[name]
        self.name = name
        started = time.perf_counter()
        options = {"extra_args": spec["args"], "threads": spec["threads"]}
        self.url, self.process = start_live_server(index_dir, model_path=model_path, **options)
        self.start_s = time.perf_counter() - started
        self.master = psutil.Process(self.process.pid)

    def workers(self) -> list[psutil.Process]:
        # lookalike serve is gunicorn's master; its children are the worker processes.
        return [p for p in self.master.children(recursive=True) if p.is_running()]

    def memory(self) -> dict[str, list[float]]:
        """RSS and USS (MB) of each worker process."""
        rss, uss = [], []
        for worker in self.workers():
            try:
                info = worker.memory_full_info()
            except psutil.Error:
                continue
            rss.append(round(info.rss / 1e6, 1))
            uss.append(round(info.uss / 1e6, 1))
        return {"rss": rss, "uss": uss}

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker processes have used so far."""
        total = 0.0
        for worker in self.workers():
            try:
                times = worker.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    def serving(self) -> dict | None:
        with urllib.request.urlopen(f"{self.url}/api/health", timeout=30) as reply:
            return json.load(reply).get("serving")

    def stop(self) -> int:
        return stop_live_server(self.process)


class MemorySampler(threading.Thread):
    """Samples (time, total worker RSS MB) of a server every ``interval`` seconds."""

    def __init__(self, server: Server, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, float]] = []
        self.peak_per_worker: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            rss = self.server.memory()["rss"]
            if rss:
                self.samples.append((time.monotonic(), sum(rss)))
                if len(rss) == len(self.peak_per_worker) or not self.peak_per_worker:
                    self.peak_per_worker = [
                        max(a, b)
                        for a, b in zip(rss, self.peak_per_worker or [0.0] * len(rss), strict=True)
                    ]


def percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ms = np.asarray(seconds) * 1000.0
    return {
        name: round(float(np.percentile(ms, q)), 1)
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99))
    } | {"max": round(float(ms.max()), 1)}


def run_clients(
    url: str, body: bytes, content_type: str, clients: int, seconds: float
) -> tuple[list[tuple[str, float]], float]:
    """``clients`` threads posting matches one after the other for ``seconds``; a 503 makes a
    client wait its Retry-After (within the time left). Returns (outcomes, wall seconds)."""
    results: list[tuple[str, float]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            status, elapsed, retry_after = post_match(url, body, content_type)
            with lock:
                results.append((status, elapsed))
            if status == "503":
                time.sleep(max(0.0, min(retry_after, deadline - time.monotonic())))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT_S + 10)
    return results, time.perf_counter() - started


def measure_level(
    server: Server, body: bytes, content_type: str, clients: int, seconds: float
) -> dict:
    """One slot of ``clients`` clients on ``server``: the raw outcomes (see :func:`summarise`)."""
    before = server.serving()
    cpu_before = server.cpu_seconds()
    sampler = MemorySampler(server)
    sampler.start()
    try:
        results, wall = run_clients(server.url, body, content_type, clients, seconds)
    finally:
        sampler.stopped.set()
    cpu = server.cpu_seconds() - cpu_before
    after = server.serving()
    batches = photos = 0
    if before and after:  # one worker's view when there are several
        batches = after["batches"] - before["batches"]
        photos = after["photos"] - before["photos"]
    return {
        "results": results,
        "wall": wall,
        "cpu": cpu,
        "batches": batches,
        "photos": photos,
        "load": psutil.getloadavg()[0],
        "rss": sampler.peak_per_worker or server.memory()["rss"],
        "uss": server.memory()["uss"],
    }


def summarise(server: str, clients: int, slots: list[dict]) -> dict:
    """One table row from every slot of (server, clients): pooled answers, summed time."""
    results = [outcome for slot in slots for outcome in slot["results"]]
    wall = sum(slot["wall"] for slot in slots)
    cpu = sum(slot["cpu"] for slot in slots)
    ok = [elapsed for status, elapsed in results if status == "200"]
    batches = sum(slot["batches"] for slot in slots)
    rss = [max(values) for values in zip(*(slot["rss"] for slot in slots), strict=False)]
    row = {
        "server": server,
        "clients": clients,
        "slots": len(slots),
        "requests": len(results),
        "wall_s": round(wall, 1),
        "throughput_rps": round(len(ok) / wall, 2) if wall else None,
        "statuses": dict(Counter(status for status, _ in results)),
        **percentiles(ok),
        # The server's CPU time per answer: what batching saves, whatever else runs meanwhile.
        "server_cpu_ms_per_200": round(cpu * 1000.0 / len(ok), 1) if ok else None,
        "server_cores_used": round(cpu / wall, 2) if wall else None,
        "load_average_1m": round(float(np.mean([slot["load"] for slot in slots])), 2),
        "worker_rss_mb": rss,
        "worker_uss_mb": slots[-1]["uss"],
    }
    if batches:
        row["mean_batch"] = round(sum(slot["photos"] for slot in slots) / batches, 2)
    return row


def print_row(row: dict, label: str = "") -> None:
    print(
        f"  {label}{row['server']:>11} {row['clients']:>3} clients: "
        f"{row['throughput_rps']:>6} req/s  "
        f"p50 {row.get('p50', '-'):>7} p95 {row.get('p95', '-'):>7} p99 {row.get('p99', '-'):>7}"
        f" ms  batch {row.get('mean_batch', '-'):>4}  CPU {row['server_cpu_ms_per_200']} ms/200 "
        f"({row['server_cores_used']} cores, load {row['load_average_1m']})  {row['statuses']}  "
        f"RSS {row['worker_rss_mb']} MB",
        flush=True,
    )


def slow_upload(server: Server, body: bytes, content_type: str, seconds: float) -> dict:
    """4 normal clients with and without one slow uploader, alternating, same durations."""
    report: dict = {}
    for label in ("without", "with", "without-again"):
        slow: list[tuple[str, float]] = []
        thread = None
        if label == "with":
            thread = threading.Thread(
                target=lambda out=slow: out.append(
                    slow_post_match(server.url, body, content_type, seconds)
                )
            )
            thread.start()
        results, wall = run_clients(server.url, body, content_type, 4, seconds)
        if thread is not None:
            thread.join(REQUEST_TIMEOUT_S + seconds)
        ok = [elapsed for status, elapsed in results if status == "200"]
        report[label] = {
            "throughput_rps": round(len(ok) / wall, 2),
            "statuses": dict(Counter(status for status, _ in results)),
            **percentiles(ok),
        }
        if slow:
            report[label]["slow_client"] = {"status": slow[0][0], "seconds": round(slow[0][1], 1)}
        print(f"  slow upload, 4 clients {label}: {report[label]}", flush=True)
    return report


def soak(server: Server, body: bytes, content_type: str, clients: int, minutes: float) -> dict:
    """``clients`` clients for ``minutes``: RSS at the end of each quarter, statuses."""
    sampler = MemorySampler(server, interval=2.0)
    quarter_s = minutes * 60.0 / 4
    quarters = []
    sampler.start()
    try:
        for quarter in range(1, 5):
            results, wall = run_clients(server.url, body, content_type, clients, quarter_s)
            ok = [elapsed for status, elapsed in results if status == "200"]
            row = {
                "quarter": quarter,
                "worker_rss_mb": sum(server.memory()["rss"]),
                "throughput_rps": round(len(ok) / wall, 2),
                "statuses": dict(Counter(status for status, _ in results)),
                **percentiles(ok),
            }
            quarters.append(row)
            print(f"  soak quarter {quarter}: {row}", flush=True)
    finally:
        sampler.stopped.set()
    rss = [row["worker_rss_mb"] for row in quarters]
    return {
        "clients": clients,
        "minutes": minutes,
        "quarters": quarters,
        "rss_drift_pct_q1_to_q4": round((rss[-1] - rss[0]) / rss[0] * 100.0, 2),
        "errors": sum(
            count
            for row in quarters
            for status, count in row["statuses"].items()
            if status != "200"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="batched,unbatched", help=f"of {', '.join(SERVERS)}")
    parser.add_argument("--levels", default="1,2,4,8,16,32,100", help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level, server and round")
    parser.add_argument("--rounds", type=int, default=1, help="times over all levels, pooled")
    parser.add_argument("--slow-upload", action="store_true", help="measure a slow uploader")
    parser.add_argument("--slow-seconds", type=float, default=8.0)
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="0: no soak")
    parser.add_argument("--soak-clients", type=int, default=8)
    parser.add_argument("--index", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--photo", type=Path, default=None, help="face photo to upscale")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        raise SystemExit(f"unknown server configuration(s) {unknown}; choose from {list(SERVERS)}")
    levels = [int(level) for level in args.levels.split(",")]

    index_dir, model_path = args.index, args.model
    if index_dir is None:
        index_dir, model_path = ensure_test_index(config.cache_dir() / "web-test-index")
    body, content_type = multipart_upload(selfie_bytes(args.photo), "selfie.jpg")

    servers: list[Server] = []
    report: dict = {"cpus": psutil.cpu_count(), "levels": [], "servers": {}}
    try:
        for name in names:
            print(f"starting {name} ({' '.join(SERVERS[name]['args']) or 'defaults'}) …")
            server = Server(name, index_dir, model_path)
            servers.append(server)
            for _ in range(WARM_UP_REQUESTS):
                status, _seconds, _retry = post_match(server.url, body, content_type)
                if status != "200":
                    raise SystemExit(f"{name}: warm-up request failed with {status}")
            memory = server.memory()
            report["servers"][name] = {
                "args": SERVERS[name]["args"],
                "ready_after_s": round(server.start_s, 1),
                "after_warm_up": memory,
                "serving": server.serving(),
            }
            print(
                f"  ready in {server.start_s:.1f} s; workers RSS {memory['rss']} MB, "
                f"USS {memory['uss']} MB"
            )
        report["load_average_start"] = [round(x, 2) for x in psutil.getloadavg()]
        # Every (level, server) slot in turn, ``--rounds`` times over: background load that
        # comes and goes falls on every configuration and level alike.
        slots: dict[tuple[str, int], list[dict]] = {}
        for round_number in range(1, args.rounds + 1):
            for clients in levels:
                for server in servers:
                    slot = measure_level(server, body, content_type, clients, args.seconds)
                    slots.setdefault((server.name, clients), []).append(slot)
                    if args.rounds > 1:
                        print_row(summarise(server.name, clients, [slot]), f"round {round_number}")
        print("pooled over rounds:" if args.rounds > 1 else "", flush=True)
        for clients in levels:
            for server in servers:
                row = summarise(server.name, clients, slots[(server.name, clients)])
                report["levels"].append(row)
                print_row(row)
        report["load_average_end"] = [round(x, 2) for x in psutil.getloadavg()]
        if args.slow_upload:
            report["slow_upload"] = slow_upload(servers[0], body, content_type, args.slow_seconds)
        if args.soak_minutes > 0:
            print(
                f"soak: {args.soak_clients} clients for {args.soak_minutes} min on "
                f"{servers[0].name} …",
                flush=True,
            )
            report["soak"] = soak(
                servers[0], body, content_type, args.soak_clients, args.soak_minutes
            )
    finally:
        for server in servers:
            report["servers"].setdefault(server.name, {})["exit_status"] = server.stop()

    print("\nheadline: throughput at 8 clients ÷ one client, same run")
    for name in names:
        rows = {row["clients"]: row for row in report["levels"] if row["server"] == name}
        if 1 in rows and 8 in rows and rows[1]["throughput_rps"]:
            ratio = rows[8]["throughput_rps"] / rows[1]["throughput_rps"]
            report["servers"][name]["ratio_8_to_1"] = round(ratio, 2)
            print(
                f"  {name}: {rows[8]['throughput_rps']} / {rows[1]['throughput_rps']} req/s "
                f"= {ratio:.2f}×; one client p50 {rows[1].get('p50')} ms"
            )
    if "soak" in report:
        soak_report = report["soak"]
        print(
            f"soak: RSS by quarter {[q['worker_rss_mb'] for q in soak_report['quarters']]} MB "
            f"(drift {soak_report['rss_drift_pct_q1_to_q4']}%), errors {soak_report['errors']}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
