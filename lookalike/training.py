"""Train a face-embedding model (scratch or transfer), evaluate it, and export it for the index.

A run is described by a :class:`lookalike.training_config.TrainingConfig` (a preset, a JSON file,
overrides). :func:`run_training` prepares the data (:mod:`lookalike.training_data`), builds the
model (:mod:`lookalike.models`), compiles and fits it with callbacks (early stopping,
best-weights checkpoint, CSV history, backup-and-restore so an interrupted run resumes),
evaluates and predicts, and writes (:mod:`lookalike.training_export`) to
``models/<name>-<model>/``:

- ``embedding.keras`` + ``model.json``: unit-length embeddings of 150×150 RGB chips (0-255), usable
  wherever the pretrained model is (``--model``);
- ``classifier.keras`` + ``classes.json``: the identity classifier;
- ``metrics.json``: train/validation/test loss and accuracy, held-out identification and pairs
  (``lookalike.evaluation``); ``heldout/`` holds the full report with ROC and CMC plots;
- ``history.csv``, ``loss.png``, ``accuracy.png``, ``test_predictions.csv``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from lookalike import config, embedder, evaluation, models
from lookalike.errors import InvalidInputError
from lookalike.training_config import DISTRIBUTE, TrainingConfig
from lookalike.training_data import ChipSet, TrainingData, make_dataset, prepare_training_data
from lookalike.training_export import export_run, shown_summary

log = logging.getLogger(__name__)

WORK_DIR = ".training"  # checkpoints and backups of an unfinished run; removed when it ends
HELDOUT_BLOCK = 4096  # held-out chips embedded per step


# --------------------------------------------------------------------------------------------
# Hardware switches
# --------------------------------------------------------------------------------------------


def use_mixed_precision(setting: bool | None) -> bool:
    """Mixed float16 on request, or (``None``) whenever a GPU is visible."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU")) if setting is None else setting


def distribution_strategy(setting: str) -> Any:
    """``tf.distribute.MirroredStrategy`` over all GPUs (``auto``: when there are several)."""
    import tensorflow as tf

    if setting not in DISTRIBUTE:
        raise InvalidInputError(
            f"distribute must be one of {', '.join(DISTRIBUTE)}, got {setting!r}"
        )
    gpus = tf.config.list_physical_devices("GPU")
    if setting == "mirrored" or (setting == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()  # the default (no-op) strategy


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """Where a run wrote its files, and its metrics (as in ``metrics.json``)."""

    out_dir: Path
    metrics: dict[str, Any]
    data: TrainingData

    @property
    def embedding_path(self) -> Path:
        return self.out_dir / "embedding.keras"


def _compile(model: keras.Model, settings: models.HeadConfig, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=models.make_loss(settings),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"),
        ],
    )


def _best_logged(history_csv: Path, monitor: str) -> float | None:
    """The best value of ``monitor`` logged so far (a resumed run must not forget it)."""
    if not history_csv.is_file():
        return None
    history = pd.read_csv(history_csv)
    return float(history[monitor].min()) if monitor in history and len(history) else None


def _fit_phase(
    model: keras.Model,
    phase: str,
    *,
    train: Any,
    validation: Any,
    out: Path,
    initial_epoch: int,
    epochs: int,
    patience: int,
    verbose: int,
) -> None:
    """One ``fit``: early stopping, best checkpoint, CSV history, backup for resuming."""
    work = out / WORK_DIR
    monitor = "val_loss" if validation is not None else "loss"
    checkpoint = work / "best.weights.h5"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, verbose=verbose),
        keras.callbacks.ModelCheckpoint(
            checkpoint,
            monitor=monitor,
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_logged(out / "history.csv", monitor),
        ),
        keras.callbacks.CSVLogger(out / "history.csv", append=True),
        keras.callbacks.BackupAndRestore(work / f"backup-{phase}"),
    ]
    model.fit(
        train,
        shuffle=False,  # the dataset reshuffles itself every epoch
        validation_data=validation,
        initial_epoch=initial_epoch,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    with warnings.catch_warnings():
        # A best epoch from the head phase holds that phase's (smaller) optimizer state; only
        # the model's weights matter here.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(checkpoint)  # the best epoch, whether or not training stopped early


def _fit(
    settings: TrainingConfig,
    data: TrainingData,
    datasets: dict[str, Any],
    out: Path,
    verbose: int,
) -> int | None:
    """Build, compile and fit (head, then optional fine-tuning); final weights in the work dir.

    Returns the epoch at which fine-tuning started, if it did. A run whose head phase finished
    before an interruption skips straight to fine-tuning.
    """
    work = out / WORK_DIR
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    augmented = _augmented_train(settings, data)
    strategy = distribution_strategy(settings.training.distribute)
    training_model = _built_model(settings, data, datasets, strategy)
    phase_args = dict(
        train=augmented,
        validation=datasets.get("validation"),
        out=out,
        patience=settings.training.patience,
        verbose=verbose,
    )
    if not state.get("head_done"):
        epochs = settings.training.epochs
        _fit_phase(training_model, "head", initial_epoch=0, epochs=epochs, **phase_args)
        state = {"head_done": True, "head_epochs": len(pd.read_csv(out / "history.csv"))}
        state_path.write_text(json.dumps(state))
    else:
        training_model.load_weights(work / "best.weights.h5")
    fine_tune_from = _fine_tune(training_model, settings, strategy, state, phase_args)
    training_model.save_weights(work / "final.weights.h5")
    return fine_tune_from


def _augmented_train(settings: TrainingConfig, data: TrainingData) -> Any:
    """The training split, shuffled and augmented every epoch."""
    return make_dataset(
        data.train.chips,
        data.class_labels(data.train),
        image_size=settings.model_settings.image_size,
        batch_size=settings.training.batch_size,
        training=True,
        settings=settings.data,
        seed=settings.data.seed,
    )


def _built_model(
    settings: TrainingConfig, data: TrainingData, datasets: dict[str, Any], strategy: Any
) -> keras.Model:
    """The compiled classifier, under the distribution strategy."""
    with strategy.scope():
        # Standard scaling is adapted on the (unaugmented) training images.
        images_only = datasets["train"].map(lambda images, labels: images)
        training_model, _ = models.build(
            settings.model,
            len(data.classes),
            settings.model_settings,
            normalization_data=images_only,
        )
        _compile(training_model, settings.model_settings, settings.training.learning_rate)
    return training_model


def _fine_tune(
    training_model: keras.Model,
    settings: TrainingConfig,
    strategy: Any,
    state: dict[str, Any],
    phase_args: dict[str, Any],
) -> int | None:
    """Unfreeze the backbone's top blocks and fit on (transfer models that ask for it); returns
    the epoch fine-tuning started at, or None."""
    model_settings = settings.model_settings
    if not (
        isinstance(model_settings, models.TransferConfig)
        and model_settings.fine_tune_blocks > 0
        and model_settings.fine_tune_epochs > 0
    ):
        return None
    fine_tune_from = int(state["head_epochs"])
    with strategy.scope():
        unfrozen = models.unfreeze_top_blocks(training_model, model_settings.fine_tune_blocks)
        log.info("fine-tuning %d backbone layers: %s", len(unfrozen), ", ".join(unfrozen))
        _compile(training_model, model_settings, model_settings.fine_tune_learning_rate)
    _fit_phase(
        training_model,
        "fine-tune",
        initial_epoch=fine_tune_from,
        epochs=fine_tune_from + model_settings.fine_tune_epochs,
        **phase_args,
    )
    return fine_tune_from


def run_training(
    settings: TrainingConfig, out_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> TrainingResult:
    """Train, evaluate and export one model; an interrupted run resumes from its backup."""
    started = time.perf_counter()
    out = Path(out_dir) if out_dir else config.models_dir() / settings.run_name
    work = out / WORK_DIR
    if not work.is_dir():
        (out / "history.csv").unlink(missing_ok=True)  # a finished run's history is replaced
    work.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(settings.data.seed)
    verbose = 1 if progress else 0

    spec = models.chip_geometry(settings.model_settings)  # the backbone's chips, or dlib's
    data = prepare_training_data(settings.data, progress=progress, spec=spec)
    datasets = _datasets(settings, data)
    mixed = use_mixed_precision(settings.training.mixed_precision)
    with _precision_policy("mixed_float16" if mixed else None):
        fine_tune_from = _fit(settings, data, datasets, out, verbose)

    # Export in float32 outside any strategy: rebuild the same graph and load the weights.
    model_settings = settings.model_settings
    classifier, embedding_model = models.build(settings.model, len(data.classes), model_settings)
    classifier.load_weights(work / "final.weights.h5")
    _compile(classifier, model_settings, settings.training.learning_rate)
    train_seconds = time.perf_counter() - started

    metrics = _evaluate(classifier, embedding_model, datasets, data, out, verbose)
    metrics.update(
        name=settings.run_name,
        model=settings.model,
        mixed_precision=mixed,
        data=shown_summary(data.summary),
        classes=len(data.classes),
        epochs_run=len(pd.read_csv(out / "history.csv")),
        fine_tune_from_epoch=fine_tune_from,
        train_seconds=round(train_seconds, 1),
        total_seconds=round(time.perf_counter() - started, 1),
        config=settings.to_dict(),
    )
    export_run(classifier, embedding_model, settings, data, metrics, out)
    shutil.rmtree(work)
    return TrainingResult(out, metrics, data)


def _datasets(settings: TrainingConfig, data: TrainingData) -> dict[str, Any]:
    """The non-empty splits as unaugmented ``tf.data`` datasets, by name."""
    size, batch = settings.model_settings.image_size, settings.training.batch_size
    return {
        name: make_dataset(part.chips, data.class_labels(part), image_size=size, batch_size=batch)
        for name, part in (
            ("train", data.train),
            ("validation", data.validation),
            ("test", data.test),
        )
        if len(part)
    }


@contextlib.contextmanager
def _precision_policy(policy: str | None) -> Iterator[None]:
    """Keras' global dtype policy set to ``policy`` (None: unchanged) for the block only."""
    previous = keras.mixed_precision.global_policy()
    try:
        if policy is not None:
            keras.mixed_precision.set_global_policy(policy)
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _evaluate(
    classifier: keras.Model,
    embedding_model: keras.Model,
    datasets: dict[str, Any],
    data: TrainingData,
    out: Path,
    verbose: int,
) -> dict[str, Any]:
    """Loss/accuracy per split, test predictions, and held-out look-alike metrics."""
    metrics: dict[str, Any] = {"classification": {}}
    for name, dataset in datasets.items():
        scores = classifier.evaluate(dataset, return_dict=True, verbose=verbose)
        metrics["classification"][name] = {key: float(value) for key, value in scores.items()}

    if "test" in datasets:
        scores = classifier.predict(datasets["test"], verbose=verbose)
        predicted = np.argmax(scores, axis=1)
        pd.DataFrame(
            {
                "path": data.test.paths,
                "identity": data.test.identities,
                "predicted": np.array(data.classes)[predicted],
                "score": scores[np.arange(len(predicted)), predicted],
            }
        ).to_csv(out / "test_predictions.csv", index=False)

    try:
        report = heldout_report(embedding_model, data.heldout)
    except ValueError as error:  # too few held-out people for identification or pairs
        log.warning("no held-out metrics: %s", error)
        metrics["heldout"] = {"error": str(error)}
    else:
        evaluation.save_report(report, out / "heldout", title="held-out identities")
        metrics["heldout"] = evaluation.headline(report)
    return metrics


def heldout_report(embedding_model: keras.Model, heldout: ChipSet) -> dict[str, Any]:
    """``lookalike.evaluation.evaluate`` of a model's embeddings of held-out chips."""
    chips, block = heldout.chips, HELDOUT_BLOCK
    # Chips on disk are read a block at a time (the held-out share of IMDB is gigabytes).
    vectors = np.concatenate(
        [
            embedder.embed_chips(embedding_model, chips[start : start + block])
            for start in range(0, max(len(chips), 1), block)
        ]
    )
    labelled = evaluation.LabelledEmbeddings(
        paths=list(heldout.paths),
        labels=np.asarray(heldout.identities),
        embeddings=vectors,
        found=np.ones(len(heldout), bool),  # chips exist only where a face was found
    )
    return evaluation.evaluate(labelled)
