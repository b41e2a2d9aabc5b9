"""The Keras port of dlib's face ResNet (``dlib-resnet``) against real dlib, on every run.

``tests/assets/dlib_reference.npz`` holds dlib's own aligned chips and descriptors of committed
photos (written by ``benchmarks/make_dlib_reference.py``, which records the dlib version and each
photo's sha256), so this needs neither ``../shared`` nor dlib. ``test_embedder.py`` repeats the
comparison live on 48 LFW faces when ``../shared`` and dlib are there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lookalike import config, embedder

REFERENCE = config.REPO_ROOT / "tests" / "assets" / "dlib_reference.npz"
REGENERATE = "python benchmarks/make_dlib_reference.py"


@pytest.fixture(scope="module")
def reference() -> dict:
    with np.load(REFERENCE) as stored:
        arrays = {name: stored[name] for name in stored.files}
    return {**arrays, "meta": json.loads(str(arrays["meta"]))}


@pytest.fixture(scope="module")
def port():
    """The installed dlib port, as ``lookalike model install dlib-resnet`` made it."""
    import keras

    path = config.model_path("dlib-resnet")
    if not path.is_file():
        pytest.fail("dlib-resnet is not installed: the test set-up installs it (`make setup-test`)")
    return keras.saving.load_model(path, compile=False)


def test_reference_is_of_the_committed_photos(reference: dict) -> None:
    inputs = reference["meta"]["inputs"]
    for entry in inputs:
        digest = hashlib.sha256((config.REPO_ROOT / entry["path"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{entry['path']} changed: run `{REGENERATE}`"
    assert reference["meta"]["dlib"] and reference["meta"]["command"].endswith(
        Path(REGENERATE).name
    )
    # Every photo gave its faces (two in two_people.jpg), each with a chip and a descriptor.
    assert np.bincount(reference["source"], minlength=len(inputs)).tolist() == [1, 2, 1, 1, 1, 1]
    assert reference["chips"].shape == (7, 150, 150, 3) and reference["chips"].dtype == np.uint8
    assert reference["descriptors"].shape == (7, 128)


def test_port_gives_dlibs_descriptors(port, reference: dict) -> None:
    chips, descriptors = reference["chips"], reference["descriptors"]
    embeddings = embedder.embed_chips(port, chips)
    unit = descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True)
    cosines = np.sum(embeddings * unit, axis=1)
    assert cosines.min() >= 0.999, f"cosine to dlib's descriptors: {np.round(cosines, 5)}"

    # The raw descriptor layer reproduces dlib's scale too, so dlib's 0.6 distance rule carries.
    import keras

    raw_model = keras.Model(port.input, port.get_layer("descriptor").output)
    raw = np.asarray(raw_model(chips.astype(np.float32), training=False))
    distances = np.linalg.norm(raw - descriptors, axis=1)
    assert distances.max() < 0.1, f"Euclidean distances to dlib: {np.round(distances, 4)}"
    # ... and so do its same/different calls on these faces (three pairs are one person to dlib).
    theirs = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=2) < 0.6
    ours = np.linalg.norm(raw[:, None] - raw[None], axis=2) < 0.6
    assert (theirs & ~np.eye(len(raw), dtype=bool)).any()
    np.testing.assert_array_equal(ours, theirs)


def test_reference_is_what_dlib_computes(reference: dict) -> None:
    """Where dlib is installed (``make setup-test``), the committed descriptors are its own."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    recogniser = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    again = np.array([recogniser.compute_face_descriptor(chip) for chip in reference["chips"]])
    np.testing.assert_allclose(again, reference["descriptors"], atol=1e-5)
