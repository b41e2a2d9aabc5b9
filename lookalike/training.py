"""Train a face-embedding model (scratch or transfer), evaluate it, and export it for the index.

A run is described by a :class:`TrainingConfig`: a preset shipped in ``lookalike/presets/``, a
JSON file, and overrides. :func:`run_training` prepares the data (:mod:`lookalike.training_data`),
builds the model (:mod:`lookalike.models`), compiles and fits it with callbacks (early stopping,
best-weights checkpoint, CSV history, backup-and-restore so an interrupted run resumes),
evaluates and predicts, and writes to ``models/<name>-<model>/``:

- ``embedding.keras`` + ``model.json``: unit-length embeddings of 150×150 RGB chips (0-255), usable
  wherever the pretrained model is (``--model``);
- ``classifier.keras`` + ``classes.json``: the identity classifier;
- ``metrics.json``: train/validation/test loss and accuracy, held-out identification and pairs
  (``lookalike.evaluation``); ``heldout/`` holds the full report with ROC and CMC plots;
- ``history.csv``, ``loss.png``, ``accuracy.png``, ``test_predictions.csv``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from lookalike import config, dlib_network, embedder, evaluation, model_files, models
from lookalike.errors import InvalidInputError
from lookalike.training_data import (
    ChipSet,
    DataConfig,
    TrainingData,
    make_dataset,
    prepare_training_data,
)

log = logging.getLogger(__name__)

MODEL_TYPES = ("scratch", "transfer")
DISTRIBUTE = ("auto", "none", "mirrored")
WORK_DIR = ".training"  # checkpoints and backups of an unfinished run; removed when it ends
HELDOUT_BLOCK = 4096  # held-out chips embedded per step


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How to fit (the ``training`` section)."""

    batch_size: int = 64
    epochs: int = 30
    learning_rate: float = 1e-3
    patience: int = 5  # epochs without a better validation loss before stopping
    mixed_precision: bool | None = None  # None: on when a GPU is visible
    distribute: str = "auto"  # auto: MirroredStrategy when several GPUs are visible

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InvalidInputError(
                f"training.batch_size must be at least 1, got {self.batch_size}"
            )
        if self.epochs < 1:
            raise InvalidInputError(f"training.epochs must be at least 1, got {self.epochs}")
        if self.learning_rate <= 0:
            raise InvalidInputError(
                f"training.learning_rate must be positive, got {self.learning_rate}"
            )
        if self.patience < 1:
            raise InvalidInputError(f"training.patience must be at least 1, got {self.patience}")
        if self.distribute not in DISTRIBUTE:
            raise InvalidInputError(f"training.distribute must be one of {', '.join(DISTRIBUTE)}")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything a training run needs; ``model`` picks which model section is used."""

    name: str = "run"
    model: str = "scratch"
    description: str = ""
    data: DataConfig = DataConfig()
    training: FitConfig = FitConfig()
    scratch: models.ScratchConfig = models.ScratchConfig()
    transfer: models.TransferConfig = models.TransferConfig()

    def __post_init__(self) -> None:
        if self.model not in MODEL_TYPES:
            raise InvalidInputError(
                f"unknown model type {self.model!r} (choose {' or '.join(MODEL_TYPES)})"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise InvalidInputError(f"name must be a plain folder name, got {self.name!r}")

    @property
    def run_name(self) -> str:
        """The output folder's name: ``<name>-<model>``."""
        return f"{self.name}-{self.model}"

    @property
    def model_settings(self) -> models.ScratchConfig | models.TransferConfig:
        return self.scratch if self.model == "scratch" else self.transfer

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Parse a config dict (missing keys take defaults; unknown keys are errors)."""
        sections = {
            "data": DataConfig,
            "training": FitConfig,
            "scratch": models.ScratchConfig,
            "transfer": models.TransferConfig,
        }
        top = _checked_section(cls, values, "config", nested=set(sections))
        for key, section_class in sections.items():
            if key in top:
                top[key] = section_class(**_checked_section(section_class, top[key], key))
        return cls(**top)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _checked_section(
    cls: type, values: Any, where: str, nested: set[str] | None = None
) -> dict[str, Any]:
    """``values`` with unknown keys and mistyped values refused (types from the defaults)."""
    if not isinstance(values, dict):
        raise InvalidInputError(f"{where} must be a JSON object, got {type(values).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidInputError(
            f"unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(fields))})"
        )
    for key, value in values.items():
        if nested and key in nested:
            continue
        annotation = str(fields[key].type)
        if not _type_matches(value, annotation):
            raise InvalidInputError(f"{where}.{key} must be {annotation}, got {value!r}")
    return dict(values)


def _type_matches(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation such as ``int | None`` or ``float``."""
    allowed = {part.strip() for part in annotation.split("|")}
    if any(kind.startswith("tuple") for kind in allowed):
        return isinstance(value, list | tuple)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    checks = {
        "None": value is None,
        "bool": isinstance(value, bool),
        "int": is_number and isinstance(value, int),
        "float": is_number,
        "str": isinstance(value, str),
    }
    return any(checks.get(kind, False) for kind in allowed)


# --------------------------------------------------------------------------------------------
# Presets and overrides
# --------------------------------------------------------------------------------------------


def list_presets() -> list[str]:
    """Names of the presets shipped in ``lookalike/presets/``."""
    folder = resources.files("lookalike") / "presets"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".json"))


def load_config(
    preset: str | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainingConfig:
    """A validated config from a preset name or a JSON file, with dotted-key overrides.

    ``overrides={"training.epochs": 3, "model": "transfer"}`` replaces single values.
    """
    if (preset is None) == (config_file is None):
        raise InvalidInputError("give exactly one of a preset name or a config file")
    if preset is not None:
        if preset not in list_presets():
            raise InvalidInputError(
                f"unknown preset {preset!r} (presets: {', '.join(list_presets())})"
            )
        text = (resources.files("lookalike") / "presets" / f"{preset}.json").read_text("utf-8")
        where = f"preset {preset}"
    else:
        text = Path(config_file).read_text(encoding="utf-8")  # type: ignore[arg-type]
        where = str(config_file)
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"{where} is not valid JSON: {error}") from error
    for dotted, value in (overrides or {}).items():
        *parents, key = dotted.split(".")
        section = values
        for parent in parents:
            section = section.setdefault(parent, {})
            if not isinstance(section, dict):
                raise InvalidInputError(f"cannot set {dotted}: {parent} is not a section")
        section[key] = value
    return TrainingConfig.from_dict(values)


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
    model_settings = settings.model_settings
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    augmented = make_dataset(
        data.train.chips,
        data.class_labels(data.train),
        image_size=model_settings.image_size,
        batch_size=settings.training.batch_size,
        training=True,
        settings=settings.data,
        seed=settings.data.seed,
    )
    strategy = distribution_strategy(settings.training.distribute)
    with strategy.scope():
        # Standard scaling is adapted on the (unaugmented) training images.
        images_only = datasets["train"].map(lambda images, labels: images)
        training_model, _ = models.build(
            settings.model, len(data.classes), model_settings, normalization_data=images_only
        )
        _compile(training_model, model_settings, settings.training.learning_rate)
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

    fine_tune_from = None
    if isinstance(model_settings, models.TransferConfig) and (
        model_settings.fine_tune_blocks > 0 and model_settings.fine_tune_epochs > 0
    ):
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
    training_model.save_weights(work / "final.weights.h5")
    return fine_tune_from


def run_training(
    settings: TrainingConfig, out_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> TrainingResult:
    """Train, evaluate and export one model; an interrupted run resumes from its backup."""
    started = time.perf_counter()
    out = Path(out_dir) if out_dir else config.models_dir() / settings.run_name
    work = out / WORK_DIR
    resuming = work.is_dir()
    if not resuming:
        (out / "history.csv").unlink(missing_ok=True)  # a finished run's history is replaced
    work.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(settings.data.seed)
    verbose = 1 if progress else 0

    data = prepare_training_data(settings.data, progress=progress)
    size, batch = settings.model_settings.image_size, settings.training.batch_size
    datasets = {
        name: make_dataset(part.chips, data.class_labels(part), image_size=size, batch_size=batch)
        for name, part in (
            ("train", data.train),
            ("validation", data.validation),
            ("test", data.test),
        )
        if len(part)
    }
    mixed = use_mixed_precision(settings.training.mixed_precision)
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if mixed:
            keras.mixed_precision.set_global_policy("mixed_float16")
        fine_tune_from = _fit(settings, data, datasets, out, verbose)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

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
        data=data.summary,
        classes=len(data.classes),
        epochs_run=len(pd.read_csv(out / "history.csv")),
        fine_tune_from_epoch=fine_tune_from,
        train_seconds=round(train_seconds, 1),
        total_seconds=round(time.perf_counter() - started, 1),
        config=settings.to_dict(),
    )
    _export(classifier, embedding_model, settings, data, metrics, out)
    shutil.rmtree(work)
    return TrainingResult(out, metrics, data)


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
        metrics["heldout"] = _headline(report)
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


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    found = report["identification"]
    return {
        "photos": report["photos"],
        "people": report["people"],
        "queries": found["queries"],
        "top1": found["per_photo"]["top1"],
        "top5": found["per_photo"]["top5"],
        "per_person_top1": found["per_person"]["top1"],
        "per_person_top5": found["per_person"]["top5"],
        "pair_accuracy": report["pairs"]["accuracy"],
        "pair_auc": report["pairs"]["roc_auc"],
    }


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def _export(
    classifier: keras.Model,
    embedding_model: keras.Model,
    settings: TrainingConfig,
    data: TrainingData,
    metrics: dict[str, Any],
    out: Path,
) -> None:
    embedding_path = out / "embedding.keras"
    # Build the optimizer's slots so the saved file reloads without a variable-count mismatch.
    classifier.optimizer.build(classifier.trainable_variables)
    model_files.save_keras_atomically(classifier, out / "classifier.keras", reproducible=False)
    classes = [
        {"index": i, "id": cid, "name": data.names[cid]} for i, cid in enumerate(data.classes)
    ]
    (out / "classes.json").write_text(json.dumps(classes, indent=1) + "\n", encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    model_settings = settings.model_settings
    trained_from = (
        "random weights"
        if settings.model == "scratch"
        else f"{dlib_network.SOURCE_PACKAGE} face ResNet"
    )
    # The same fields as the registered models' model.json, so indexes record this model too.
    info = {
        "name": settings.run_name,
        "architecture": f"{settings.model} CNN ({model_settings.head} head), trained by lookalike",
        "source": {
            "trained_from": trained_from,
            "data": data.summary["source"],
            "config": settings.to_dict(),
        },
        "input": {"shape": [models.CHIP_SIZE] * 2 + [3], "dtype": "float32", "color": "RGB"},
        "alignment": dlib_network.dlib_alignment_record(),
        "preprocessing": {
            "inside_model": True,
            "resize_to": model_settings.image_size,
            "formula": "resize, then per-channel standard scaling (adapted)"
            if settings.model == "scratch"
            else "(pixel - mean_rgb) / divisor, as the pretrained model",
        },
        "embedding_size": model_settings.embedding_size,
        "output": "L2-normalised embedding (layer 'embedding')",
        "flip_average": True,
        "detector": "mtcnn",  # trained on chips framed from MTCNN's points
        "heldout": metrics.get("heldout"),
    }
    model_files.save_embedding_model(embedding_model, embedding_path, info)
    plot_history(out / "history.csv", out, fine_tune_from=metrics["fine_tune_from_epoch"])


def plot_history(
    history_csv: Path, out_dir: Path, *, fine_tune_from: int | None = None
) -> list[Path]:
    """``loss.png`` and ``accuracy.png`` (``lookalike.plots.training_curves``), with a line where
    fine-tuning began."""
    # No backend is forced here: headless runs pick a file backend by themselves, and notebooks
    # keep their inline one.
    import matplotlib.pyplot as plt

    from lookalike import plots

    written = []
    for metric in ("loss", "accuracy"):
        figure = plots.training_curves(history_csv, metrics=(metric,))
        if fine_tune_from is not None:
            axes = figure.axes[0]
            axes.axvline(fine_tune_from + 0.5, color="grey", linestyle="--", label="fine-tuning")
            axes.legend(fontsize=8)
        written.append(out_dir / f"{metric}.png")
        figure.savefig(written[-1], dpi=120)
        plt.close(figure)
    return written


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def _comparison_model(location: str | os.PathLike) -> keras.Model:
    if str(location) != "pretrained":
        return model_files.load_embedding_model(location)
    # "pretrained" is the network the trained models start from: the dlib port (150-px chips).
    if config.model_path("dlib-resnet").is_file():
        return model_files.load_embedding_model("dlib-resnet")
    return models.pretrained_model()  # same network, built from the weights package


def compare_models(
    dataset: TrainingData | ChipSet, model_paths: dict[str, str | os.PathLike]
) -> pd.DataFrame:
    """Held-out identification and pairs of several embedding models on the same chips.

    ``model_paths`` maps a display name to an ``embedding.keras`` path or ``"pretrained"``
    (the pretrained model as is). Returns one row per model.
    """
    heldout = dataset.heldout if isinstance(dataset, TrainingData) else dataset
    if len(heldout) == 0:
        raise InvalidInputError("no held-out chips to compare models on")
    rows = []
    for name, location in model_paths.items():
        model = _comparison_model(location)
        started = time.perf_counter()
        report = heldout_report(model, heldout)
        rows.append({"model": name, **_headline(report), "seconds": time.perf_counter() - started})
    return pd.DataFrame(rows).set_index("model")
