"""Training: data cache and splits, model builders, a tiny run that learns, exports, bad configs.

One tiny training run (module fixture) feeds most tests. It uses the committed IMDB-layout
sample ``data/sample`` when present, otherwise a few lfw-dev people (skipped without either).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lookalike import comparison, config, detection, training, training_config, training_data
from lookalike.errors import LookalikeError

keras = pytest.importorskip("keras")


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_source(sample_dir: Path) -> str:
    """``data/sample`` once it is usable, else lfw-dev (developer data)."""
    if (sample_dir / "imdb_crop" / "imdb.mat").is_file():
        return str(sample_dir)
    lfw = config.shared_data_dir() / "lfw-dev"
    if not lfw.is_dir():
        pytest.skip("needs data/sample or the shared lfw-dev set")
    return str(lfw)


@pytest.fixture(scope="module")
def detection_calls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A fresh chip cache, and a count of calls into the face detector (spies on both paths)."""
    calls = {"count": 0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        for name in ("detect_faces_batch", "landmarks_in_boxes"):
            original = getattr(detection, name)

            def spy(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                calls["count"] += 1
                return _original(*args, **kwargs)

            patch.setattr(detection, name, spy)
        yield calls


@pytest.fixture(scope="module")
def tiny_settings(tiny_source: str) -> training_config.TrainingConfig:
    return training_config.load_config("tiny", overrides={"data.source": tiny_source})


@pytest.fixture(scope="module")
def tiny_run(
    tiny_settings: training_config.TrainingConfig,
    detection_calls: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> training.TrainingResult:
    result = training.run_training(
        tiny_settings, tmp_path_factory.mktemp("tiny") / "run", progress=False
    )
    assert detection_calls["count"] > 0  # the first run aligned the photos itself
    return result


# --------------------------------------------------------------------------------------------
# A tiny run
# --------------------------------------------------------------------------------------------


def test_tiny_run_learns(tiny_run: training.TrainingResult) -> None:
    history = pd.read_csv(tiny_run.out_dir / "history.csv")
    assert len(history) == 3
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    chance = 1.0 / tiny_run.metrics["classes"]
    assert history["accuracy"].iloc[-1] > chance


def test_run_writes_every_output(tiny_run: training.TrainingResult) -> None:
    out = tiny_run.out_dir
    for name in (
        "embedding.keras",
        "classifier.keras",
        "model.json",
        "metrics.json",
        "classes.json",
        "history.csv",
        "loss.png",
        "accuracy.png",
        "test_predictions.csv",
        "heldout/report.json",
    ):
        assert (out / name).is_file(), name
    assert not (out / training.WORK_DIR).exists()  # checkpoints and backups are cleaned up
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "validation", "test"):
        assert {"loss", "accuracy"} <= set(metrics["classification"][split])
    assert {"top1", "top5", "pair_accuracy"} <= set(metrics["heldout"])
    assert 0.0 <= metrics["heldout"]["top1"] <= metrics["heldout"]["top5"] <= 1.0
    # The file names the data without this machine's prefix; the object in memory keeps it.
    source = tiny_run.data.summary["source"]
    assert Path(source).is_absolute()
    assert metrics["data"]["source"] == config.shown_path(source)
    assert not Path(metrics["data"]["source"]).is_absolute()


def test_exported_embedding_model_reloads(tiny_run: training.TrainingResult) -> None:
    from lookalike import embedder, model_files

    path = tiny_run.embedding_path
    model = keras.saving.load_model(path, compile=False)
    assert model.input_shape == (None, 150, 150, 3)
    chips = tiny_run.data.heldout.chips[:5]
    vectors = embedder.embed_chips(model, chips)
    size = tiny_run.metrics["config"]["scratch"]["embedding_size"]
    assert vectors.shape == (len(chips), size)
    # The model itself outputs unit vectors (not only after embed_chips' normalisation).
    raw = np.asarray(model.predict(chips.astype(np.float32), verbose=0))
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-4)

    info = json.loads(model_files.model_info_path(path).read_text())
    assert info["file"] == "embedding.keras"
    assert info["embedding_size"] == size
    assert info["input"]["shape"] == [150, 150, 3]
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.stat().st_mode & 0o777 == 0o644  # an ordinary shared file, like every model
    assert info["alignment"]["chip_size"] == 150  # trained on dlib-framed chips
    assert info["source"]["data"] == config.shown_path(tiny_run.data.summary["source"])
    # Weights trained on research-only photos (IMDB-WIKI, LFW) may not be used commercially.
    assert info["license"]["commercial_use"] is False


def test_classifier_reloads_and_predicts(tiny_run: training.TrainingResult) -> None:
    classifier = keras.saving.load_model(tiny_run.out_dir / "classifier.keras")
    size = tiny_run.metrics["config"]["scratch"]["image_size"]
    scores = classifier.predict(np.full((2, size, size, 3), 128.0, np.float32), verbose=0)
    assert scores.shape == (2, tiny_run.metrics["classes"])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-4)  # softmax


def test_standard_scaling_is_adapted(tiny_run: training.TrainingResult) -> None:
    classifier = keras.saving.load_model(tiny_run.out_dir / "classifier.keras", compile=False)
    mean, variance = classifier.get_layer("standard_scaling").get_weights()[:2]
    assert mean.shape == (3,) and variance.shape == (3,)
    assert np.all((mean > 20) & (mean < 235))  # pixel means, not the default 0
    assert np.all(variance > 100)  # pixel variances, not the default 1


def test_chip_cache_is_reused(
    tiny_run: training.TrainingResult,
    tiny_settings: training_config.TrainingConfig,
    detection_calls: dict[str, int],
) -> None:
    before = detection_calls["count"]
    again = training_data.prepare_training_data(tiny_settings.data, progress=False)
    assert detection_calls["count"] == before  # no face detection the second time
    assert again.summary["cache_reused"] is True
    assert Path(again.summary["cache"]).parent == config.cache_dir() / "training"
    np.testing.assert_array_equal(again.train.chips, tiny_run.data.train.chips)


def test_splits_are_stratified_and_heldout_is_unseen(tiny_run: training.TrainingResult) -> None:
    data = tiny_run.data
    classes = set(data.classes)
    for part in (data.train, data.validation, data.test):
        assert set(part.identities) == classes  # every identity in every split
    assert not set(data.heldout.identities) & classes
    all_paths = data.train.paths + data.validation.paths + data.test.paths
    assert len(all_paths) == len(set(all_paths))  # no photo in two splits


def test_compare_models_puts_each_model_through_its_own_face_path(
    tiny_run: training.TrainingResult, tiny_settings: training_config.TrainingConfig
) -> None:
    photos = comparison.heldout_photos(tiny_run.data, tiny_settings.data.source)
    assert {photo.celebrity_id for photo in photos} == set(tiny_run.data.heldout.identities)
    result = comparison.compare_models(photos, {"sface": "sface", "tiny": tiny_run.embedding_path})
    table = result.table
    assert list(table.index) == ["sface", "tiny"]
    assert (table["photos"] == len(photos)).all()
    # Each model's own chips and detector: SFace 112-px ArcFace chips with YuNet, the trained
    # model the 150-px dlib chips with MTCNN it was trained on.
    assert result.embeddings["sface"].shape == (len(photos), 128)
    assert table.loc["sface", "detector"] == "yunet"
    assert table.loc["tiny", "detector"] == "mtcnn"
    # A state-of-the-art network against three epochs on a few dozen photos.
    assert table.loc["sface", "top1"] > table.loc["tiny", "top1"]
    assert table.loc["sface", "commercial_use"]
    assert not table.loc["tiny", "commercial_use"]  # trained on research-only data


def test_choose_model_takes_the_best_commercially_usable() -> None:
    table = pd.DataFrame(
        {
            "top1": [0.99, 0.98, 0.98, 0.98, 0.50],
            "pair_auc": [1.0, 0.990, 0.995, 0.995, 0.9],
            "pair_accuracy": [0.99, 0.98, 0.97, 0.97, 0.9],
            "commercial_use": [False, True, True, True, True],
        },
        index=["non-commercial best", "second", "second, better AUC", "tied, listed later", "weak"],
    )
    assert comparison.choose_model(table) == "second, better AUC"
    assert comparison.choose_model(table, commercial_only=False) == "non-commercial best"
    with pytest.raises(LookalikeError, match="commercially"):
        comparison.choose_model(table[~table["commercial_use"]])


# --------------------------------------------------------------------------------------------
# Bad configs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "resnet"}, "unknown model type"),
        ({"training.epochs": -1}, "epochs must be at least 1"),
        ({"training.epoch": 3}, "unknown key"),
        ({"colour": "red"}, "unknown key"),
        ({"training.batch_size": "64"}, "batch_size must be int"),
        ({"data.layout": "zip"}, "layout must be one of"),
        ({"data.min_photos": 2}, "min_photos must be at least 3"),
        ({"scratch.head": "cosface"}, "head must be one of"),
        ({"scratch.filters": [32] * 7}, "pooling blocks"),
        ({"transfer.fine_tune_blocks": 99}, "fine_tune_blocks"),
        ({"transfer.backbone": "sface", "transfer.fine_tune_blocks": 1}, "needs the dlib-resnet"),
        ({"training": 5}, "must be a JSON object"),
    ],
)
def test_bad_configs_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        training_config.load_config("tiny", overrides=overrides)


def test_unknown_preset_and_double_source_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        training_config.load_config("huge")
    with pytest.raises(ValueError, match="exactly one"):
        training_config.load_config("tiny", tmp_path / "x.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        training_config.load_config(config_file=broken)


def test_presets_load() -> None:
    assert {"tiny", "lfw-cpu", "imdb-gpu"} <= set(training_config.list_presets())
    for name in training_config.list_presets():
        settings = training_config.load_config(name)
        assert settings.name == name
        # metrics.json stores the config; notebooks rebuild it from there.
        stored = json.loads(json.dumps(settings.to_dict()))
        assert training_config.TrainingConfig.from_dict(stored) == settings
    gpu = training_config.load_config("imdb-gpu")
    assert gpu.training.mixed_precision is True and gpu.training.distribute == "auto"


def test_too_few_identities_is_refused(
    tiny_run: training.TrainingResult, tiny_settings: training_config.TrainingConfig
) -> None:
    import dataclasses

    settings = dataclasses.replace(tiny_settings.data, min_photos=1000)  # everyone too small
    with pytest.raises(ValueError, match="too few identities"):
        training_data.prepare_training_data(settings, progress=False)


def test_cli_lists_presets_and_reports_bad_presets(capsys: pytest.CaptureFixture[str]) -> None:
    from lookalike.cli import main

    assert main(["train", "--list-presets"]) == 0
    assert "lfw-cpu" in capsys.readouterr().out
    assert main(["train", "--preset", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Pieces without training
# --------------------------------------------------------------------------------------------


def test_augmentation_only_on_training_batches() -> None:
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (8, 150, 150, 3), dtype=np.uint8)
    labels = np.arange(8) % 2
    plain = training_data.make_dataset(chips, labels, image_size=64, batch_size=4)
    first = np.concatenate([images for images, _ in plain])
    second = np.concatenate([images for images, _ in plain])
    assert first.shape == (8, 64, 64, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)  # deterministic: no augmentation, no shuffle
    augmented = training_data.make_dataset(
        chips, labels, image_size=64, batch_size=8, training=True, seed=1
    )
    images, _ = next(iter(augmented))
    assert images.shape == (8, 64, 64, 3)
    assert not np.allclose(np.sort(np.asarray(images).ravel()), np.sort(first.ravel()))


def test_arcface_loss_adds_the_margin_to_the_true_class_only() -> None:
    from lookalike.models import AdditiveAngularMarginLoss

    cosines = np.array([[0.8, 0.1, -0.2], [0.3, 0.6, 0.0]], np.float32)
    labels = np.array([0, 1])
    plain = AdditiveAngularMarginLoss(scale=10.0, margin=0.0)(labels, cosines)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, 10 * cosines)
    assert float(plain) == pytest.approx(float(expected), rel=1e-5)
    with_margin = AdditiveAngularMarginLoss(scale=10.0, margin=0.3)(labels, cosines)
    assert float(with_margin) > float(plain)


def test_arcface_head_learns_separable_clusters() -> None:
    from lookalike.models import AdditiveAngularMarginLoss, CosineClassifier

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 3
    labels = rng.integers(0, 4, 256)
    points = (centres[labels] + rng.normal(size=(256, 8))).astype(np.float32)
    inputs = keras.Input(shape=(8,))
    features = keras.layers.Dense(16, name="features")(inputs)
    outputs = CosineClassifier(4, name="identity")(features)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=AdditiveAngularMarginLoss(scale=16.0, margin=0.2),
        metrics=["accuracy"],
    )
    history = model.fit(points, labels, epochs=15, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] > 0.9
    again = keras.Model.from_config(model.get_config())  # registered, serialisable
    assert again.get_layer("identity").units == 4


def _pretrained_weights_or_skip() -> None:
    from lookalike import tfjs_weights

    if not (config.pretrained_weights_dir() / tfjs_weights.MANIFEST_NAME).is_file():
        pytest.skip("needs the pretrained weights package (make setup)")


def test_transfer_model_freezes_the_backbone_and_unfreezes_top_blocks() -> None:
    from lookalike import models

    _pretrained_weights_or_skip()
    settings = models.TransferConfig(embedding_size=16)
    classifier, embedding_model = models.build_transfer(5, settings)
    trainable = {weight.path.split("/")[0] for weight in classifier.trainable_weights}
    assert trainable == {"features_bn", "embedding_dense", "identity"}  # only the new head
    chips = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3)).astype(np.float32)
    vectors = np.asarray(embedding_model(chips))
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    unfrozen = models.unfreeze_top_blocks(classifier, 2)
    assert unfrozen and all(
        name.startswith(("conv256_2_", "conv256_down_out_")) for name in unfrozen
    )
    assert len(classifier.trainable_weights) == 2 + 2 + 2 + 2 * len(unfrozen)


def test_pretrained_backbone_under_mixed_precision_matches_float32() -> None:
    from lookalike import models

    _pretrained_weights_or_skip()
    chips = np.random.default_rng(1).integers(0, 256, (2, 150, 150, 3)).astype(np.float32)
    reference = np.asarray(models.pretrained_model()(chips))
    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        mixed = models.pretrained_model()
        assert mixed.get_layer("preprocess").compute_dtype == "float32"  # 256² overflows fp16
        vectors = np.asarray(mixed(chips), dtype=np.float32)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    cosines = np.sum(reference * vectors, axis=1)
    assert np.all(cosines > 0.99)


def test_tiny_transfer_run_fine_tunes_and_exports(
    tiny_source: str, detection_calls: dict[str, int], tmp_path: Path
) -> None:
    _pretrained_weights_or_skip()
    overrides = {
        "data.source": tiny_source,
        "model": "transfer",
        "training.epochs": 2,
        "transfer.fine_tune_blocks": 1,
        "transfer.fine_tune_epochs": 1,
    }
    settings = training_config.load_config("tiny", overrides=overrides)
    result = training.run_training(settings, tmp_path / "run", progress=False)
    history = pd.read_csv(result.out_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]  # 2 head epochs, then 1 fine-tuning epoch
    assert result.metrics["fine_tune_from_epoch"] == 2
    model = keras.saving.load_model(result.embedding_path, compile=False)
    vectors = np.asarray(model.predict(result.data.heldout.chips[:3].astype(np.float32), verbose=0))
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_transfer_on_the_sface_backbone_trains_on_its_chips_and_serves(
    tiny_source: str, tmp_path: Path, face_photo_path: Path
) -> None:
    from lookalike import model_files
    from lookalike.pipeline import FacePipeline

    overrides = {
        "data.source": tiny_source,
        "model": "transfer",
        "transfer.backbone": "sface",
        "training.epochs": 2,
    }
    settings = training_config.load_config("tiny", overrides=overrides)
    result = training.run_training(settings, tmp_path / "run", progress=False)
    # Trained on SFace's own 112-px ArcFace chips, not dlib's 150-px ones.
    assert result.data.train.chips.shape[1:] == (112, 112, 3)
    info = json.loads(model_files.model_info_path(result.embedding_path).read_text())
    sface = model_files.model_info(config.model_path("sface"))
    assert info["input"]["shape"] == [112, 112, 3]
    assert info["alignment"]["template"] == sface["alignment"]["template"]
    assert info["detector"] == "yunet" and "sface" in info["source"]["trained_from"]
    # The exported model goes through the product's face path with the backbone's chips.
    pipeline = FacePipeline(result.embedding_path)
    assert pipeline.chip_size == 112 and pipeline.detector == "yunet"
    faces = pipeline.faces_in_file(face_photo_path).faces
    assert faces and faces[0].embedding.shape == (32,)
    # SFace's features already separate people: held-out faces are matched far above chance.
    assert result.metrics["heldout"]["pair_auc"] > 0.9


def test_scratch_trains_under_mirrored_strategy_and_mixed_precision() -> None:
    """The GPU switches, exercised on the CPU (MirroredStrategy falls back to one device)."""
    from lookalike import models

    settings = models.ScratchConfig(image_size=32, filters=(8, 16), embedding_size=8)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    labels = np.arange(8) % 2
    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        strategy = training.distribution_strategy("mirrored")
        assert type(strategy).__name__ == "MirroredStrategy"
        with strategy.scope():
            classifier, embedding_model = models.build_scratch(
                2, settings, normalization_data=images
            )
            training._compile(classifier, settings, 1e-3)
        history = classifier.fit(images, labels, epochs=1, batch_size=4, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert np.isfinite(history["loss"][0])
    assert classifier.get_layer("block1_conv1").compute_dtype == "float16"
    assert classifier.output.dtype == "float32" and embedding_model.output.dtype == "float32"


# --------------------------------------------------------------------------------------------
# Slow
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_interrupted_run_resumes(
    tiny_settings: training_config.TrainingConfig,
    detection_calls: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = training_config.load_config(
        "tiny", overrides={"data.source": tiny_settings.data.source, "training.epochs": 4}
    )
    backup = keras.callbacks.BackupAndRestore
    original = backup.on_epoch_end

    def crash_after_second_epoch(self: Any, epoch: int, logs: Any = None) -> None:
        original(self, epoch, logs)  # the backup of this epoch is written, then we "crash"
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(backup, "on_epoch_end", crash_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        training.run_training(settings, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / training.WORK_DIR).is_dir()
    monkeypatch.setattr(backup, "on_epoch_end", original)
    training.run_training(settings, tmp_path / "run", progress=False)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]  # resumed at epoch 2, nothing redone
