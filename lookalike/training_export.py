"""A finished training run's files: the models, their ``model.json``, metrics and curves.

:func:`export_run` writes ``classifier.keras`` + ``classes.json``, ``metrics.json``,
``embedding.keras`` + ``model.json`` (the same fields as the registered models', so an index
records a trained model too, with the licence its training data impose) and the training
curves (:func:`plot_history`). What is written holds no absolute path of this machine
(:func:`lookalike.config.shown_path`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras

from lookalike import config, dlib_network, model_files, models
from lookalike.training_config import TrainingConfig
from lookalike.training_data import TrainingData

# Trained weights inherit the terms of the photos they were trained on: IMDB-WIKI's images and
# metadata are for academic research only, LFW (the demo gallery) for research use.
TRAINED_MODEL_LICENSE = {
    "name": "research only (inherited from the training data)",
    "commercial_use": False,
    "summary": "Trained on IMDB-WIKI or LFW photos, which are licensed for research use only: "
    "the weights may not be used commercially.",
}


def shown_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """``TrainingData.summary`` as ``metrics.json`` records it: its paths without the machine's
    prefix (``data/sample``, ``~/…``)."""
    shown = dict(summary)
    for key in ("source", "cache"):
        if shown.get(key):
            shown[key] = config.shown_path(shown[key])
    return shown


def export_run(
    classifier: keras.Model,
    embedding_model: keras.Model,
    settings: TrainingConfig,
    data: TrainingData,
    metrics: dict[str, Any],
    out: Path,
) -> None:
    """Write every output of a finished run into ``out``."""
    # Build the optimizer's slots so the saved file reloads without a variable-count mismatch.
    classifier.optimizer.build(classifier.trainable_variables)
    model_files.save_keras_atomically(classifier, out / "classifier.keras", reproducible=False)
    classes = [
        {"index": i, "id": cid, "name": data.names[cid]} for i, cid in enumerate(data.classes)
    ]
    (out / "classes.json").write_text(json.dumps(classes, indent=1) + "\n", encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    info = trained_model_card(settings, data, metrics.get("heldout"))
    model_files.save_embedding_model(embedding_model, out / "embedding.keras", info)
    plot_history(out / "history.csv", out, fine_tune_from=metrics["fine_tune_from_epoch"])


def trained_model_card(
    settings: TrainingConfig, data: TrainingData, heldout: dict[str, Any] | None
) -> dict[str, Any]:
    """The trained embedding model's ``model.json`` (less what saving adds: file, sha256)."""
    model_settings = settings.model_settings
    spec = models.chip_geometry(model_settings)  # the chips it trained on, and their detector
    if settings.model == "scratch":
        trained_from, alignment_record = "random weights", None
        formula = "resize, then per-channel standard scaling (adapted)"
    else:
        backbone = models.backbone_card(model_settings)
        trained_from = f"{backbone['title']} (backbone {model_settings.backbone}, frozen)"
        alignment_record = backbone["alignment"]
        formula = "as the pretrained backbone"
    # The same fields as the registered models' model.json, so indexes record this model too.
    return {
        "name": settings.run_name,
        "architecture": f"{settings.model} CNN ({model_settings.head} head), trained by lookalike",
        "source": {
            "trained_from": trained_from,
            "data": config.shown_path(data.summary["source"]),
            "config": settings.to_dict(),
        },
        "license": dict(TRAINED_MODEL_LICENSE),
        "input": {"shape": [spec.size] * 2 + [3], "dtype": "float32", "color": "RGB"},
        # Chips framed from MTCNN's points on dlib's template, unless the backbone has its own.
        "alignment": alignment_record or dlib_network.dlib_alignment_record(),
        "preprocessing": {
            "inside_model": True,
            "resize_to": model_settings.image_size,
            "formula": formula,
        },
        "embedding_size": model_settings.embedding_size,
        "output": "L2-normalised embedding (layer 'embedding')",
        "flip_average": True,
        "detector": spec.detector,
        "heldout": heldout,
    }


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
