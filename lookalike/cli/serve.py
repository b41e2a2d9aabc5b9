"""``lookalike serve``: the web app (API + built front end) under gunicorn, or Flask's dev server.

Gunicorn runs ONE worker process with a pool of threads: the TensorFlow models take hundreds of
megabytes per process and do not survive a fork, so the app (and its models) is built inside
that worker, after the fork, never preloaded in the master.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lookalike import config
from lookalike.cli import CommandError, add_detector_argument, add_model_argument

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_THREADS = 4
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
        "--threads", type=int, default=DEFAULT_THREADS, help="concurrent requests (one process)"
    )
    serve.add_argument(
        "--dev", action="store_true", help="Flask's development server instead of gunicorn"
    )
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    index_dir = args.index or config.default_index_dir()
    model_path = config.resolve_model_path(args.model) if args.model else None
    _check_inputs(index_dir, model_path)
    if args.threads < 1:
        raise CommandError(f"--threads must be at least 1, got {args.threads}")
    app_config = {"INDEX_DIR": index_dir, "MODEL_PATH": args.model, "DETECTOR": args.detector}
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
        "workers": 1,
        "worker_class": "gthread",
        "threads": args.threads,
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
