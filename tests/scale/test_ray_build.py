"""The index build on Ray Data (local Ray, an actor pool with fractional CPUs): the same index
as the in-process build, and the same resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lookalike import gallery, index_build

pytest.importorskip("ray.data")

CHUNK = 6


@pytest.mark.slow
def test_ray_build_resumes_and_writes_the_in_process_index(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt_build_after
):
    from lookalike.ray_build import RayChunkRunner

    photos = gallery.from_imdb(sample_dir, progress=False)[:30]
    # Not the default detector: the actors must build the pipeline the build asks for.
    build = {"chunk_size": CHUNK, "detector": "mtcnn"}
    reference = index_build.build_index(photos, tmp_path / "in-process", **build)

    # An in-process build interrupted after two chunks...
    interrupt_build_after(2)
    out = tmp_path / "ray"
    with pytest.raises(KeyboardInterrupt):
        index_build.build_index(photos, out, progress=False, **build)
    monkeypatch.undo()

    # ... is finished on Ray: only the missing chunks go to the actors.
    runner = RayChunkRunner(workers=2)
    sent: list[int] = []

    def recording(make_pipeline, pending):
        sent.extend(number for number, _ in pending)
        yield from runner(make_pipeline, pending)

    index_build.build_index(photos, out, progress=False, runner=recording, **build)
    assert sorted(sent) == [2, 3, 4]
    assert runner.stats["workers"] == 2 and runner.stats["cpus_per_actor"] < 1
    assert runner.stats["detectors"] == ["mtcnn"]
    assert json.loads((out / "index.json").read_text())["detector"]["name"] == "mtcnn"
    for name in ("embeddings.npy", "thumbnail_offsets.npy"):
        np.testing.assert_array_equal(np.load(reference / name), np.load(out / name))
    assert (reference / "photos.csv").read_text() == (out / "photos.csv").read_text()
    assert (reference / "thumbnails.bin").read_bytes() == (out / "thumbnails.bin").read_bytes()
