"""``lookalike serve``: the web app (API + built front end) under gunicorn, or Flask's dev server.

Gunicorn runs ONE worker process (``--workers N`` for more) with a pool of threads: the
TensorFlow models take hundreds of megabytes per process and do not survive a fork, so the app
(and its models) is built inside each worker, after the fork, never preloaded in the master.
In the worker, requests are batched across threads (``lookalike.batching``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lookalike import config
from lookalike.cli import CommandError, add_detector_argument, add_model_argument

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
# Requests are batched across threads (lookalike.batching): a thread mostly waits for its batch.
# Threads beyond what the queue and the running batches hold (here 16 + 2 × 8) read uploads and
# refuse the overflow with 503 + Retry-After at once; with fewer, excess requests would wait
# unseen in gunicorn's own pool instead (measured at 100 clients, README "Serving under load").
DEFAULT_QUEUE_SIZE = 16
DEFAULT_BATCH_SIZE = 8
DEFAULT_MODEL_THREADS = 2
SPARE_THREADS = 32
DEFAULT_THREADS = DEFAULT_QUEUE_SIZE + DEFAULT_MODEL_THREADS * DEFAULT_BATCH_SIZE + SPARE_THREADS
DEFAULT_WORKERS = 1
# A big photo on a busy machine can take seconds; the gthread worker's heartbeat does not depend
# on requests finishing, so this only matters for a truly stuck worker.
WORKER_TIMEOUT_S = 120


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="serve the web app and its JSON API")
    serve.add_argument("--index", type=Path, default=None, help="index folder (default: demo)")
    add_model_argument(serve)
    add_detector_argument(serve, for_index=True)
    serve.add_argument(
        "--store", default=None, help="search a Milvus store (default: $LOOKALIKE_STORE, else here)"
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"concurrent requests per process (default {DEFAULT_THREADS}: queue + model threads "
        f"× batch + {SPARE_THREADS})",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"processes, each with its own models (default {DEFAULT_WORKERS}; README: why)",
    )
    batching = serve.add_argument_group("batching across requests (README: Serving under load)")
    # Default None: not passed to the app, whose defaults (or LOOKALIKE_WEB_* variables) apply.
    batching.add_argument(
        "--batch-size", type=int, help=f"photos per model batch (default {DEFAULT_BATCH_SIZE})"
    )
    batching.add_argument(
        "--batch-wait-ms",
        type=float,
        help="longest wait for more photos, only while others are arriving (default 5)",
    )
    batching.add_argument(
        "--queue-size",
        type=int,
        help=f"photos waiting for the models; more get 503 (default {DEFAULT_QUEUE_SIZE})",
    )
    batching.add_argument(
        "--deadline",
        type=float,
        help="seconds a photo may wait in the queue before it gets 503 (default 10)",
    )
    batching.add_argument(
        "--model-threads",
        type=int,
        help=f"threads running batches, a whole batch each (default {DEFAULT_MODEL_THREADS})",
    )
    batching.add_argument(
        "--no-batching", action="store_true", help="each request runs the models on its own"
    )
    serve.add_argument(
        "--dev", action="store_true", help="Flask's development server instead of gunicorn"
    )
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    index_dir = args.index or config.default_index_dir()
    model_path = config.resolve_model_path(args.model) if args.model else None
    _check_inputs(index_dir, model_path)
    for name in ("threads", "workers", "batch_size", "queue_size", "model_threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if (args.batch_wait_ms is not None and args.batch_wait_ms < 0) or (
        args.deadline is not None and args.deadline <= 0
    ):
        raise CommandError("--batch-wait-ms must be 0 or more, --deadline more than 0")
    threads = args.threads or (
        (args.queue_size or DEFAULT_QUEUE_SIZE)
        + (args.model_threads or DEFAULT_MODEL_THREADS) * (args.batch_size or DEFAULT_BATCH_SIZE)
        + SPARE_THREADS
    )
    app_config = {"INDEX_DIR": index_dir, "MODEL_PATH": args.model, "DETECTOR": args.detector}
    batching = {
        "BATCH_SIZE": args.batch_size,
        "BATCH_WAIT_MS": args.batch_wait_ms,
        "QUEUE_SIZE": args.queue_size,
        "QUEUE_DEADLINE_S": args.deadline,
        "MODEL_THREADS": args.model_threads,
        "BATCHING": False if args.no_batching else None,
    }
    app_config.update({key: value for key, value in batching.items() if value is not None})
    if args.store:
        app_config["STORE"] = args.store

    if args.dev:
        from lookalike_web import create_app

        # No reloader: it would run a second process that loads the models again.
        create_app(app_config).run(
            host=args.host, port=args.port, threaded=True, use_reloader=False
        )
        return 0

    options = {
        "bind": _bind_address(args.host, args.port),
        # Each worker process loads its own models (README "Serving under load": RSS per
        # process, and why one process is the default on 2 cores).
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": False,
        "timeout": WORKER_TIMEOUT_S,
        "graceful_timeout": 15,
        "accesslog": "-",  # method, path, status, size, time: nothing of the photo
        "errorlog": "-",
        "proc_name": "lookalike",
        # Gunicorn's control socket is one per user; several servers would fight over it.
        "control_socket_disable": True,
    }
    _gunicorn_application(app_config, options).run()
    return 0


def _check_inputs(index_dir: Path, model_path: Path | None) -> None:
    # Fail here with a hint rather than as a worker that keeps failing to boot.
    if not (Path(index_dir) / "index.json").is_file():
        raise CommandError(
            f"no index at {index_dir}: build the demo one with `make setup` (or `lookalike index "
            "build --imdb data/sample --out models/demo-index`), or pass --index DIR"
        )
    if model_path is not None and not Path(model_path).is_file():
        raise CommandError(
            f"no embedding model at {model_path}: install it with `lookalike model install "
            f"{Path(model_path).parent.name}` (see `lookalike model list`), or pass --model"
        )


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _gunicorn_application(app_config: dict[str, Any], options: dict[str, Any]) -> Any:
    from gunicorn.app.base import BaseApplication

    class GunicornServer(BaseApplication):
        """Gunicorn with our settings; ``load`` builds the Flask app inside the worker."""

        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from lookalike_web import create_app

            return create_app(app_config)

    return GunicornServer()
