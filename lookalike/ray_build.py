"""Index build on Ray Data (opt-in: ``lookalike index build ... --ray [ADDRESS]``).

``RayChunkRunner`` is a ``lookalike.index_build`` chunk runner: the pending chunks become a Ray
Dataset of chunk numbers; ``map_batches`` sends them, one at a time, to a pool of actors that each
build the face pipeline ONCE (from the same factory as the in-process build) and run the very
same ``_embed_chunk``. Results stream back to the driver as each chunk finishes, and the driver
saves every chunk at once, exactly like the in-process build: the index format, the resume
after an interruption and the result are the same. The factory carries the build's model and
detector (``--model``, ``--detector``, ``--min-score``), so every actor finds and embeds faces
exactly as the in-process build would; each result says which detector its actor ran, and the
runner's ``stats["detectors"]`` lists them.

Local Ray by default; ``address`` joins a cluster (``ray://head:10001`` or ``host:6379``). On a
cluster, every node must have this package installed and read the gallery at the same paths
(a shared filesystem). Actors ask for a FRACTION of a CPU (the pool is sized from the CPUs Ray
sees, with room left for the dataset's own tasks): on a 2-core machine, two actors asking for a
whole CPU each starve the rest of the job and it hangs. Each actor's TensorFlow gets its share
of the node's cores as threads. Ray keeps its session files under ``/tmp/ray`` and a token under
the user's home.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

LEFT_FOR_DATA_TASKS = 0.5  # CPUs kept free for the dataset's own tasks


def _arrays_to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _arrays_from_bytes(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload)) as loaded:
        return {name: loaded[name] for name in loaded.files}


class _EmbedActor:
    """One pool member: a face pipeline built once, then chunk after chunk."""

    def __init__(self, make_pipeline: Callable, threads: int) -> None:
        import tensorflow as tf

        # Before any TensorFlow op: share the node's cores instead of each actor taking all.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.pipeline = make_pipeline()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from lookalike import index_build

        numbers, payloads = [], []
        for number, photos in zip(batch["number"], batch["photos"], strict=True):
            arrays = index_build._embed_chunk(self.pipeline, pickle.loads(photos))
            numbers.append(int(number))
            payloads.append(_arrays_to_bytes(arrays))
        return {
            "number": np.array(numbers, np.int64),
            "payload": np.array(payloads, dtype=object),
            "detector": np.array([self.pipeline.detector] * len(numbers), dtype=object),
        }


class RayChunkRunner:
    """Embed index chunks in a Ray Data actor pool (local Ray, or a cluster at ``address``)."""

    def __init__(self, address: str | None = None, *, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self.stats: dict[str, Any] = {}

    def _start(self):
        import ray

        if ray.is_initialized():
            return ray, False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # our own bar shows progress
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        return ray, True

    def __call__(
        self, make_pipeline: Callable, pending: list[tuple[int, list]]
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        if not pending:
            return
        try:
            import ray.data
        except ImportError as error:
            raise ImportError("--ray needs Ray Data: pip install '.[ray]'") from error

        ray, started_here = self._start()
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            workers = self.workers or max(1, int(cpus))
            workers = max(1, min(workers, len(pending)))
            per_actor = max(0.1, min(1.0, (cpus - LEFT_FOR_DATA_TASKS) / workers))
            threads = max(1, int(cpus // workers)) if not self.address else 0
            self.stats = {"workers": workers, "cpus_per_actor": round(per_actor, 3)}
            ray.data.DataContext.get_current().enable_progress_bars = False
            log.info(
                "Ray: %d actors × %.2f CPU over %d chunks (%g CPUs)",
                workers,
                per_actor,
                len(pending),
                cpus,
            )
            # Each row carries its chunk's photo list (paths and labels, not pixels).
            dataset = ray.data.from_items(
                [{"number": number, "photos": pickle.dumps(photos)} for number, photos in pending]
            )
            embedded = dataset.map_batches(
                _EmbedActor,
                fn_constructor_args=(make_pipeline, threads),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=per_actor,
            )
            detectors: set[str] = set()
            for row in embedded.iter_rows():
                detectors.add(str(row["detector"]))
                self.stats["detectors"] = sorted(detectors)
                yield int(row["number"]), _arrays_from_bytes(row["payload"])
        finally:
            if started_here:
                ray.shutdown()
