"""Batching across requests (lookalike.batching) on the real models: what a photo gets does not
depend on what it was batched with, batches form from what is waiting, and a full queue or a
long wait is refused rather than queued.

Where a test needs the queue to fill, it uses one model thread and holds it: ``faces_in_images``
is wrapped to wait for an event, then runs for real.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from lookalike import batching, images
from lookalike.batching import BatchSettings, FaceBatcher, Overloaded
from lookalike.pipeline import FacePipeline


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline()  # the default model and detector, as served


@pytest.fixture(scope="module")
def photos(assets: Path, sample_dir: Path) -> list[np.ndarray]:
    """Real photos of different sizes: a portrait, a group of two, gallery crops, a 1 MP
    upscale of the portrait and a landscape crop of the group."""
    face = images.load_image(assets / "face.jpg")
    group = images.load_image(assets / "two_people.jpg")
    crops = [images.load_image(path) for path in sorted(sample_dir.glob("imdb_crop/*/*.jpg"))[:4]]
    big = np.repeat(np.repeat(face, 3, axis=0), 3, axis=1)
    wide = np.ascontiguousarray(group[: group.shape[0] * 2 // 3])
    chosen = [face, group, *crops, big, wide]
    assert len({photo.shape for photo in chosen}) >= 5  # sizes really differ
    return chosen


class HeldModelThread:
    """Wraps ``batching.faces_in_images`` so that the model thread waits until ``release``;
    records the size of every batch it runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batch_sizes: list[int] = []
        real = batching.faces_in_images

        def held(pipeline, photos, max_faces):
            self.batch_sizes.append(len(photos))
            self.entered.set()
            self.gate.wait(60)
            return real(pipeline, photos, max_faces)

        monkeypatch.setattr(batching, "faces_in_images", held)

    def release(self) -> None:
        self.gate.set()


def submit(batcher: FaceBatcher, photo: np.ndarray, out: dict, key: object) -> threading.Thread:
    def run() -> None:
        try:
            out[key] = batcher.faces(photo, 20)
        except Overloaded as error:
            out[key] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def queued(batcher: FaceBatcher) -> int:
    return batcher.stats()["queued"]


def wait_until(condition, timeout: float = 30.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached")


def test_a_batch_gives_each_photo_what_it_gets_alone(pipeline, photos) -> None:
    together = batching.faces_in_images(pipeline, photos, [20] * len(photos))
    for photo, batched in zip(photos, together, strict=True):
        alone = batching.faces_in_images(pipeline, [photo], [20])[0]
        reference = pipeline.faces_in_image(photo, max_faces=20)  # the unbatched pipeline
        assert (batched.width, batched.height) == (photo.shape[1], photo.shape[0])
        assert batched.total_faces == alone.total_faces == reference.total_faces
        assert [f.face.box for f in batched.faces] == [f.face.box for f in reference.faces]
        assert [f.face.confidence for f in batched.faces] == [
            f.face.confidence for f in reference.faces
        ]
        for mine, single, theirs in zip(batched.faces, alone.faces, reference.faces, strict=True):
            # Bit-identical whatever the batch; within float32 rounding of the plain pipeline.
            np.testing.assert_array_equal(mine.embedding, single.embedding)
            np.testing.assert_allclose(mine.embedding, theirs.embedding, atol=1e-5)
    assert sum(len(result.faces) for result in together) >= len(photos)  # faces were found


def test_a_chip_embeds_the_same_in_any_batch(pipeline, photos) -> None:
    found = batching.faces_in_images(pipeline, photos, [20] * len(photos))
    chips = np.concatenate(
        [
            pipeline.align(photo, [face.face for face in result.faces])
            for photo, result in zip(photos, found, strict=True)
        ]
    )
    assert len(chips) >= 9
    alone = batching.embed_chips_batch(pipeline, chips[:1])[0]
    for size in (2, 3, 5, 8, 9, len(chips)):
        order = np.roll(np.arange(size), size // 2)  # the chip somewhere inside the batch
        vectors = batching.embed_chips_batch(pipeline, chips[:size][order])
        np.testing.assert_array_equal(vectors[int(np.flatnonzero(order == 0)[0])], alone)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_photos_waiting_together_run_as_one_batch(pipeline, photos, monkeypatch) -> None:
    held = HeldModelThread(monkeypatch)
    batcher = FaceBatcher(pipeline, BatchSettings(max_batch=4, queue_size=8, model_threads=1))
    try:
        results: dict = {}
        threads = [submit(batcher, photos[0], results, "first")]
        assert held.entered.wait(30)  # the model thread holds the first photo
        threads += [submit(batcher, photo, results, i) for i, photo in enumerate(photos[1:6])]
        wait_until(lambda: queued(batcher) == 5)
        held.release()
        for thread in threads:
            thread.join(60)
        # The five waiting photos: one batch of four (max_batch), then the fifth.
        assert held.batch_sizes == [1, 4, 1]
        assert sorted(results[i][2] for i in range(5)) == [1, 4, 4, 4, 4]
        for i, photo in enumerate(photos[1:6]):
            faces, _queue_ms, _size = results[i]
            alone = batching.faces_in_images(pipeline, [photo], [20])[0]
            assert [f.face.box for f in faces.faces] == [f.face.box for f in alone.faces]
            for mine, single in zip(faces.faces, alone.faces, strict=True):
                np.testing.assert_array_equal(mine.embedding, single.embedding)
        stats = batcher.stats()
        assert (stats["batches"], stats["photos"], stats["largest_batch"]) == (3, 6, 4)
    finally:
        held.release()
        batcher.close()


def test_a_full_queue_is_refused_at_once_and_the_queued_photos_still_run(
    pipeline, photos, monkeypatch
) -> None:
    held = HeldModelThread(monkeypatch)
    batcher = FaceBatcher(pipeline, BatchSettings(max_batch=2, queue_size=2, model_threads=1))
    try:
        results: dict = {}
        threads = [submit(batcher, photos[0], results, 0)]
        assert held.entered.wait(30)
        threads += [submit(batcher, photos[i], results, i) for i in (1, 2)]
        wait_until(lambda: queued(batcher) == 2)
        with pytest.raises(Overloaded) as refused:
            batcher.faces(photos[3], 20)  # answered while the model thread is still held
        assert refused.value.reason == "queue_full"
        assert refused.value.retry_after_s >= 1
        with pytest.raises(Overloaded), batcher.arriving():  # refused before decoding, too
            pass
        held.release()
        for thread in threads:
            thread.join(60)
        assert all(not isinstance(results[i], Overloaded) for i in (0, 1, 2))
        assert batcher.stats()["refused"] == {"queue_full": 2, "deadline": 0}
    finally:
        held.release()
        batcher.close()


def test_a_photo_that_waits_past_the_deadline_is_refused_and_never_run(
    pipeline, photos, monkeypatch
) -> None:
    held = HeldModelThread(monkeypatch)
    batcher = FaceBatcher(
        pipeline, BatchSettings(max_batch=4, queue_size=4, deadline_s=0.2, model_threads=1)
    )
    try:
        results: dict = {}
        first = submit(batcher, photos[0], results, 0)
        assert held.entered.wait(30)
        with pytest.raises(Overloaded) as refused:
            batcher.faces(photos[1], 20)  # waits behind the held batch, past 0.2 s
        assert refused.value.reason == "deadline"
        assert queued(batcher) == 0  # taken out of the queue
        held.release()
        first.join(60)
        assert not isinstance(results[0], Overloaded)
        # The refused photo was never run: only the first photo's batch.
        assert held.batch_sizes == [1]
        assert batcher.stats()["refused"]["deadline"] == 1
    finally:
        held.release()
        batcher.close()


def test_a_lone_photo_does_not_wait_for_company(pipeline, photos) -> None:
    # A wait of a minute is never used when nobody else is arriving.
    batcher = FaceBatcher(pipeline, BatchSettings(max_wait_ms=60_000))
    try:
        results: dict = {}
        submit(batcher, photos[0], results, 0).join(30)
        assert 0 in results, "the lone photo waited for others"
        assert results[0][2] == 1
    finally:
        batcher.close()


def test_a_closed_batcher_refuses_new_photos(pipeline, photos) -> None:
    batcher = FaceBatcher(pipeline)
    batcher.close()
    with pytest.raises(Overloaded):
        batcher.faces(photos[0], 20)


def test_bad_settings_are_refused() -> None:
    bad_settings = (
        {"max_batch": 0},
        {"queue_size": 0},
        {"deadline_s": 0},
        {"max_wait_ms": -1},
        {"model_threads": 0},
    )
    for bad in bad_settings:
        with pytest.raises(ValueError):
            BatchSettings(**bad)


def test_detection_sizes_group_photos_as_the_detector_shrinks_them() -> None:
    for shape in ((864, 1152), (3024, 4032), (640, 480), (100, 5000), (1, 1)):
        small, _scale = images.downscale(np.zeros((*shape, 3), np.uint8), 640)
        assert batching.detection_size(shape) == small.shape[:2]
