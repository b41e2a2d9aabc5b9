"""Several embedding models side by side on the same photos, and the one the product may use.

Each model sees the photos through its own face path (its detector, landmark template, chip size
and flip averaging, from its ``model.json``), exactly as the index build and the app would use
it, so models aligned differently (ArcFace 112 px, dlib 150 px) are compared fairly. A face a
model's detector misses counts against it.

The choice of a model for the product weighs its licence first: only models whose weights may be
used commercially (``model.json`` → ``license.commercial_use``) are eligible, since the README
promises that the shipped defaults may be.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike import config, evaluation
from lookalike.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from lookalike.gallery import GalleryPhoto
    from lookalike.training_data import TrainingData

ModelLocation = str | os.PathLike


@dataclass
class ModelComparison:
    """What :func:`compare_models` measured, per model name."""

    table: pd.DataFrame  # one row per model: headline figures, faces missed, licence, seconds
    reports: dict[str, dict[str, Any]]  # lookalike.evaluation.evaluate reports
    embeddings: dict[str, np.ndarray]  # N×D per model; zero rows where its detector missed
    found: dict[str, np.ndarray]  # per model: was the photo's face found
    labels: np.ndarray  # the N photos' celebrity ids
    locations: dict[str, ModelLocation]  # what each name was given as (registered name or path)


def compare_models(
    photos: Sequence[GalleryPhoto],
    models: Mapping[str, ModelLocation],
    *,
    progress: bool = False,
) -> ModelComparison:
    """Identification (top-1/5, per person) and pair verification of each model on ``photos``.

    ``models`` maps a display name to a registered model name (``sface``) or a ``.keras`` path.
    The photos should be of people no compared model was trained on (held-out identities).
    """
    import pandas as pd

    from lookalike.pipeline import FacePipeline, embed_image_files

    if not models:
        raise InvalidInputError("no models to compare")
    paths = [str(photo.path) for photo in photos]
    labels = np.array([photo.celebrity_id for photo in photos])
    if len(set(labels)) < 2:
        raise InvalidInputError("comparing models needs photos of at least two people")
    rows, reports, embeddings, found = [], {}, {}, {}
    for name, location in models.items():
        started = time.perf_counter()
        pipeline = FacePipeline(location)
        embeddings[name], found[name] = embed_image_files(pipeline, paths, progress=progress)
        data = evaluation.LabelledEmbeddings(paths, labels, embeddings[name], found[name])
        reports[name] = evaluation.evaluate(data)
        licence = pipeline.model_info.get("license") or {}
        rows.append(
            {
                "model": name,
                **evaluation.headline(reports[name]),
                "missed_faces": reports[name]["missed_faces"],
                "detector": pipeline.detector,
                "commercial_use": licence.get("commercial_use") is True,
                "licence": licence.get("summary", "not stated"),
                "seconds": time.perf_counter() - started,
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    return ModelComparison(table, reports, embeddings, found, labels, dict(models))


def heldout_of_run(run_dir: str | os.PathLike) -> tuple[TrainingData, list[GalleryPhoto]]:
    """A finished training run's data split, rebuilt from its ``metrics.json`` settings (the
    chips come from the cache), and the photos of its held-out people."""
    from lookalike.models import chip_geometry
    from lookalike.training_config import TrainingConfig
    from lookalike.training_data import prepare_training_data

    run = Path(run_dir)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    settings = TrainingConfig.from_dict(metrics["config"])
    spec = chip_geometry(settings.model_settings)  # the chips it trained on, from the cache
    data = prepare_training_data(settings.data, progress=False, spec=spec)
    trained = [entry["id"] for entry in json.loads((run / "classes.json").read_text())]
    if data.classes != trained:
        raise InvalidInputError(f"the data under {run} no longer give the split it trained on")
    return data, heldout_photos(data, settings.data.source)


def heldout_photos(data: TrainingData, source: str | os.PathLike) -> list[GalleryPhoto]:
    """The photos behind a training split's held-out chips (people no trained model has seen),
    from the dataset ``source`` they were cut from (the run's ``data.source``)."""
    from lookalike.training_data import load_photos, resolve_source

    root = resolve_source(source)
    wanted = set(data.heldout.paths)
    return [
        photo
        for photo in load_photos(root)
        if Path(photo.path).relative_to(root).as_posix() in wanted
    ]


def choose_model(table: pd.DataFrame, *, commercial_only: bool = True) -> str:
    """The best model of a :func:`compare_models` table: highest top-1, then pair AUC, then
    pair accuracy; a tie keeps the table's order (list the incumbent first).

    With ``commercial_only`` (the product's rule), only models whose licence allows commercial
    use are eligible; the others are still in the table, for comparison.
    """
    eligible = table[table["commercial_use"]] if commercial_only else table
    if eligible.empty:
        raise InvalidInputError("none of the compared models may be used commercially")
    ranking = ["top1", "pair_auc", "pair_accuracy"]
    return str(eligible.sort_values(ranking, ascending=False, kind="stable").index[0])


def save_choice(
    path: str | os.PathLike, comparison: ModelComparison, chosen: str, *, root: Path
) -> Path:
    """Write the chosen model as ``chosen_model.json``: its name, where it lives (a registered
    name, or a path relative to ``root`` so that no machine's folders are written), and the
    ranking it was chosen from."""
    location = comparison.locations[chosen]
    if not _is_registered_name(location):
        location = Path(location).resolve().relative_to(root.resolve()).as_posix()
    columns = ["top1", "top5", "pair_accuracy", "pair_auc", "commercial_use"]
    record = {
        "model": chosen,
        "location": str(location),
        "ranking": comparison.table[columns].round(4).to_dict("index"),
    }
    out = Path(path)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return out


def load_choice(path: str | os.PathLike, *, root: Path) -> Path:
    """The model file a ``chosen_model.json`` written by :func:`save_choice` names."""
    location = json.loads(Path(path).read_text(encoding="utf-8"))["location"]
    if _is_registered_name(location):
        return config.resolve_model_path(location)
    return root / location


def _is_registered_name(location: ModelLocation) -> bool:
    from lookalike.model_registry import REGISTRY

    return str(location) in REGISTRY
