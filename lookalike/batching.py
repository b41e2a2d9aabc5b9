"""Batching across requests: a bounded queue in front of the face models, for the web API.

``BatchingMatcher.match(data, options)`` answers exactly what ``Matcher.match`` answers, but
photos that arrive together are detected and embedded together:

1. the request's thread (gunicorn's) decodes the photo (the upload is already read: a slow
   upload never reaches the models) and puts it in a bounded queue; when the queue is full it
   is refused at once with :class:`Overloaded` (the API's 503 + ``Retry-After``);
2. a model thread takes what is waiting, up to ``max_batch`` photos. It waits up to
   ``max_wait_ms`` for more only while another request is being decoded right then, so a lone
   request never waits;
3. the batch is detected as one call (YuNet runs its photos in a thread pool, each at its own
   size; MTCNN photos are grouped by their detection size, so none is padded), and every face
   of every photo is embedded in one model call (:func:`embed_chips_batch`);
4. each request gets its own faces back, and searches the index in its own thread.

A request that waited in the queue longer than ``deadline_s`` is taken out and refused with
:class:`Overloaded` rather than processed for a client that has probably gone.

The numbers do not depend on what a photo was batched with: :func:`embed_chips_batch` makes
every model call at least two rows (a chip and its mirror image; a lone chip alone goes through
TensorFlow's single-row path, whose float32 rounding differs by ~1e-7) and normalises row by
row, so a photo sent alone and the same photo sent in a crowd get the same scores.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike import detection, images
from lookalike.errors import LookalikeError
from lookalike.match import Matcher, MatchOptions
from lookalike.pipeline import FaceEmbedding, FacePipeline, PhotoFaces, StageTimer

logger = logging.getLogger(__name__)

# Rows per embedding model call (a chip and its mirror are two: 3 faces). TensorFlow's oneDNN
# convolutions switch kernels at 8 rows: every call of 2 to 7 rows gives bit-identical rows for
# each registered model, 8 and more differ by ~3e-8, one row alone by up to 7e-7 (this project's
# CPU). Per face, calls of 6 rows cost the same as calls of 16 (31.3 vs 31.1 ms for 8 faces).
EMBED_CALL_ROWS = 6


@dataclass(frozen=True)
class BatchSettings:
    """The serving knobs (README "Serving under load" has the measurements behind them)."""

    max_batch: int = 8  # photos per model batch
    max_wait_ms: float = 5.0  # longest wait for more photos, only while others are arriving
    queue_size: int = 16  # photos waiting for the models; more are refused with 503
    deadline_s: float = 10.0  # longest wait in the queue; longer is refused with 503
    # Threads taking batches off the queue, each running whole batches: with two, one batch is
    # detected while another is embedded (README: measured on 2 cores).
    model_threads: int = 2

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {self.max_wait_ms}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.queue_size}")
        if self.deadline_s <= 0:
            raise ValueError(f"deadline_s must be positive, got {self.deadline_s}")
        if self.model_threads < 1:
            raise ValueError(f"model_threads must be at least 1, got {self.model_threads}")


class Overloaded(LookalikeError, RuntimeError):
    """The photo was not processed: the queue was full, or it waited past the deadline.

    ``retry_after_s``: whole seconds after which the queue should have room again.
    """

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(eq=False)
class _Job:
    image: np.ndarray
    max_faces: int
    enqueued: float
    picked: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: PhotoFaces | None = None
    error: BaseException | None = None
    queue_ms: float = 0.0
    batch_size: int = 0


class FaceBatcher:
    """The bounded queue and its model thread(s) for one :class:`FacePipeline`."""

    def __init__(self, pipeline: FacePipeline, settings: BatchSettings | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings or BatchSettings()
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._arriving = 0
        self._closed = False
        # Seconds of model time per photo (moving average): sizes Retry-After.
        self._seconds_per_photo = 0.1
        self.counts = {"batches": 0, "photos": 0, "largest_batch": 0, "full": 0, "expired": 0}
        self._threads = [
            threading.Thread(target=self._run, name=f"face-batcher-{i}", daemon=True)
            for i in range(self.settings.model_threads)
        ]
        for thread in self._threads:
            thread.start()

    # -- the request's side -------------------------------------------------------------------

    def arriving(self) -> _Arrival:
        """``with batcher.arriving():`` around decoding a photo that will be submitted: the
        model thread may wait (``max_wait_ms``) for it. Refuses at once when the queue is full."""
        return _Arrival(self)

    def faces(self, image: np.ndarray, max_faces: int) -> tuple[PhotoFaces, float, int]:
        """Queue one decoded RGB photo and wait for its faces: ``(faces, queue_ms, batch_size)``.

        Raises :class:`Overloaded` when the queue is full or the photo waited past the deadline.
        """
        job = _Job(image, max_faces, time.perf_counter())
        with self._cond:
            self._check_room()
            self._queue.append(job)
            self._cond.notify()
        if not job.picked.wait(self.settings.deadline_s):
            with self._cond:
                if not job.picked.is_set():  # still queued: take it out, nobody will run it
                    self._queue.remove(job)
                    self.counts["expired"] += 1
                    raise Overloaded("deadline", self._retry_after())
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result, job.queue_ms, job.batch_size

    def _check_room(self) -> None:
        # Called holding the lock.
        if self._closed:
            raise Overloaded("closed", 1)
        if len(self._queue) >= self.settings.queue_size:
            self.counts["full"] += 1
            raise Overloaded("queue_full", self._retry_after())

    def _retry_after(self) -> int:
        # Time for the model threads to work through the queue as it is now, in whole seconds.
        backlog = (len(self._queue) + self.settings.max_batch) * self._seconds_per_photo
        return int(min(30, max(1, math.ceil(backlog / self.settings.model_threads))))

    def stats(self) -> dict:
        """Queue length, settings and counters (for /api/health and the benchmark)."""
        with self._cond:
            counts = dict(self.counts)
            queued = len(self._queue)
        mean = counts["photos"] / counts["batches"] if counts["batches"] else 0.0
        return {
            "queued": queued,
            "queue_size": self.settings.queue_size,
            "max_batch": self.settings.max_batch,
            "max_wait_ms": self.settings.max_wait_ms,
            "deadline_s": self.settings.deadline_s,
            "model_threads": self.settings.model_threads,
            "batches": counts["batches"],
            "photos": counts["photos"],
            "mean_batch": round(mean, 2),
            "largest_batch": counts["largest_batch"],
            "refused": {"queue_full": counts["full"], "deadline": counts["expired"]},
        }

    def close(self, timeout: float = 5.0) -> None:
        """Stop the model threads once the queue is empty; new photos are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- the model thread's side --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            started = time.perf_counter()
            try:
                results: list[PhotoFaces | BaseException] = list(
                    faces_in_images(
                        self.pipeline,
                        [job.image for job in batch],
                        [job.max_faces for job in batch],
                    )
                )
            except Exception:
                # One photo the models choke on must not fail the others: run them one by one.
                logger.exception("a batch of %d photos failed; retrying one by one", len(batch))
                results = [self._alone(job) for job in batch]
            elapsed = time.perf_counter() - started
            with self._cond:
                per_photo = elapsed / len(batch)
                self._seconds_per_photo += 0.2 * (per_photo - self._seconds_per_photo)
                self.counts["batches"] += 1
                self.counts["photos"] += len(batch)
                self.counts["largest_batch"] = max(self.counts["largest_batch"], len(batch))
            for job, outcome in zip(batch, results, strict=True):
                job.image = None  # type: ignore[assignment]  # let the pixels go now
                if isinstance(outcome, BaseException):
                    job.error = outcome
                else:
                    job.result = outcome
                job.batch_size = len(batch)
                job.done.set()

    def _alone(self, job: _Job) -> PhotoFaces | BaseException:
        try:
            return faces_in_images(self.pipeline, [job.image], [job.max_faces])[0]
        except Exception as error:
            return error

    def _take_batch(self) -> list[_Job] | None:
        """Up to ``max_batch`` waiting photos; waits briefly for more only while others are
        being decoded. None once closed and drained."""
        limit = self.settings.max_batch
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            batch = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
            wait_until = time.perf_counter() + self.settings.max_wait_ms / 1000.0
            while len(batch) < limit:
                if self._queue:
                    batch.append(self._queue.popleft())
                    continue
                remaining = wait_until - time.perf_counter()
                if self._arriving == 0 or remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            now = time.perf_counter()
            for job in batch:
                job.queue_ms = (now - job.enqueued) * 1000.0
                job.picked.set()
        return batch


class _Arrival:
    """The context manager of :meth:`FaceBatcher.arriving`."""

    def __init__(self, batcher: FaceBatcher) -> None:
        self.batcher = batcher

    def __enter__(self) -> _Arrival:
        with self.batcher._cond:
            self.batcher._check_room()  # refuse before spending time on decoding
            self.batcher._arriving += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self.batcher._cond:
            self.batcher._arriving -= 1
            self.batcher._cond.notify()


class BatchingMatcher:
    """``Matcher.match`` through a :class:`FaceBatcher`: same answers, photos batched."""

    def __init__(self, matcher: Matcher, settings: BatchSettings | None = None) -> None:
        self.matcher = matcher
        self.batcher = FaceBatcher(matcher.pipeline, settings)

    def match(self, data: bytes, options: MatchOptions | None = None) -> dict:
        """As ``Matcher.match`` for photo bytes, with ``timings_ms.queue`` (time waiting for the
        models) and ``batch`` (photos in the batch it was embedded with) in ``timings_ms``'s
        neighbourhood: ``result["batch"]``. Raises ``ImageError``, ``NoFaceError``, and
        :class:`Overloaded`.
        """
        options = options or MatchOptions()
        started = time.perf_counter()
        with self.batcher.arriving():
            image = images.load_image(data)
        decoded = time.perf_counter()
        photo, queue_ms, _batch = self.batcher.faces(image, options.max_faces)
        del image
        timer = StageTimer({"decode": (decoded - started) * 1000.0, "queue": queue_ms})
        timer.milliseconds.update(photo.timer.milliseconds)
        photo = PhotoFaces(photo.faces, photo.total_faces, photo.width, photo.height, timer)
        return self.matcher.describe(photo, options, started)

    def warm_up(self) -> None:
        """Run a batch of two photos, then every embedding call size batches make (oneDNN
        prepares each shape on its first call), so no request pays for that."""
        pipeline = self.matcher.pipeline
        image = images.load_image(self.matcher.index.thumbnail(0))
        photos = faces_in_images(pipeline, [image, image], [1, 1])
        chips = pipeline.align(image, [found.face for found in photos[0].faces])
        for faces in range(1, EMBED_CALL_ROWS // 2 + 1) if len(chips) else ():
            embed_chips_batch(pipeline, np.repeat(chips[:1], faces, axis=0))

    def close(self) -> None:
        self.batcher.close()


def faces_in_images(
    pipeline: FacePipeline, photos: Sequence[np.ndarray], max_faces: Sequence[int | None]
) -> list[PhotoFaces]:
    """``pipeline.faces_in_image`` for several RGB photos at once: one detection call, one
    embedding call (:func:`embed_chips_batch`) for all their faces. The stage timings of each
    photo are those of the whole batch."""
    timer = StageTimer()
    started = time.perf_counter()
    detected = _detect(pipeline, photos)
    kept_per_photo = []
    for faces, limit in zip(detected, max_faces, strict=True):
        if pipeline.detector == "yunet":
            faces = detection.keep_confident(faces)  # as FacePipeline.faces_in_image does
        kept_per_photo.append((faces, faces[:limit] if limit is not None else faces))
    started = timer.add("detect", started)
    chips = [
        pipeline.align(photo, kept) for photo, (_, kept) in zip(photos, kept_per_photo, strict=True)
    ]
    started = timer.add("align", started)
    everything = np.concatenate(chips) if chips else np.zeros((0, 1, 1, 3), np.uint8)
    embeddings = embed_chips_batch(pipeline, everything)
    timer.add("embed", started)
    results, offset = [], 0
    for photo, (found, kept) in zip(photos, kept_per_photo, strict=True):
        vectors = embeddings[offset : offset + len(kept)]
        offset += len(kept)
        height, width = photo.shape[:2]
        results.append(
            PhotoFaces(
                [FaceEmbedding(face, vector) for face, vector in zip(kept, vectors, strict=True)],
                len(found),
                int(width),
                int(height),
                StageTimer(dict(timer.milliseconds)),
            )
        )
    return results


def _detect(pipeline: FacePipeline, photos: Sequence[np.ndarray]) -> list[list]:
    """Faces per photo with the pipeline's detector, in as few calls as give the same faces as
    one photo at a time: YuNet takes any mix of sizes; MTCNN pads a batch to its largest photo,
    so its photos are grouped by detection size (most photos shrink to a few: 640×480, ...)."""
    if pipeline.detector != "mtcnn":
        return detection.detect_faces_batch(
            photos, detector=pipeline.detector, min_confidence=pipeline.min_confidence
        )
    groups: dict[tuple[int, int], list[int]] = {}
    for position, photo in enumerate(photos):
        groups.setdefault(detection_size(photo.shape), []).append(position)
    found: list[list] = [[] for _ in photos]
    for positions in groups.values():
        per_photo = detection.detect_faces_batch(
            [photos[i] for i in positions],
            detector="mtcnn",
            min_confidence=pipeline.min_confidence,
        )
        for position, faces in zip(positions, per_photo, strict=True):
            found[position] = faces
    return found


def detection_size(shape: Sequence[int], max_side: int = detection.DEFAULT_MAX_SIDE) -> tuple:
    """(height, width) a photo of ``shape`` is detected at (``images.downscale``'s rounding)."""
    height, width = int(shape[0]), int(shape[1])
    longest = max(height, width)
    if longest <= max_side:
        return height, width
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def embed_chips_batch(pipeline: FacePipeline, chips: np.ndarray) -> np.ndarray:
    """Unit-length embeddings (N, D) of aligned chips, each independent of the others in the
    batch: what ``pipeline.embed_chips`` computes (mirror average when the model wants it), but
    with every model call holding 2 to ``EMBED_CALL_ROWS`` rows (a chip beside its mirror image,
    which also makes one face a single call instead of two) and each row normalised alone."""
    from lookalike import embedder

    count = len(chips)
    if count == 0:
        return np.zeros((0, pipeline.embedding_size), np.float32)
    predict = embedder._predict_function(pipeline.model)
    chips = np.asarray(chips, dtype=np.float32)
    if pipeline.flip_average:
        rows = np.empty((2 * count, *chips.shape[1:]), np.float32)
        rows[0::2] = chips
        rows[1::2] = chips[:, :, ::-1, :]
    else:
        rows = chips
    per_call = EMBED_CALL_ROWS - EMBED_CALL_ROWS % 2  # whole pairs
    outputs = []
    for start in range(0, len(rows), per_call):
        part = rows[start : start + per_call]
        if len(part) == 1:  # only without mirroring: keep off the single-row path
            outputs.append(np.asarray(predict(np.concatenate([part, part])), np.float32)[:1])
        else:
            outputs.append(np.asarray(predict(part), np.float32))
    vectors = np.concatenate(outputs)
    if pipeline.flip_average:
        vectors = vectors[0::2] + vectors[1::2]
    normalised = np.empty_like(vectors)
    for i, vector in enumerate(vectors):
        normalised[i] = vector / max(float(np.sqrt(np.dot(vector, vector))), 1e-12)
    return normalised
