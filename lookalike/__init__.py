"""lookalike: find the celebrities a face looks like.

The verbs a data scientist needs, one call each; each imports its module (and TensorFlow, where
it needs it) only when called, so ``import lookalike`` stays instant::

    import lookalike

    df = lookalike.load_metadata()                    # imdb.mat / wiki.mat as a DataFrame
    clean, steps = lookalike.clean_metadata(df)       # the standard filters, rows each removed
    photos = lookalike.gallery_photos("data/sample")  # IMDB layout, or a folder per person
    faces = lookalike.find_faces("group.jpg")         # every face: box, 5 landmarks, confidence
    vectors, found = lookalike.embed_faces(["a.jpg", "b.jpg"])  # the subject face of each photo
    lookalike.build_index(photos, "models/my-index")   # embed a gallery into an index folder
    index = lookalike.open_index("models/my-index")
    result = lookalike.find_lookalikes("selfie.jpg")  # what /api/match answers
    report = lookalike.evaluate(vectors, labels, paths, found)       # top-k, CMC, pair ROC
    comparison = lookalike.compare_models(photos, {"sface": "sface", "mine": "run/embedding.keras"})
    best = lookalike.choose_model(comparison.table)   # best top-1 among commercially usable

The modules behind them (``lookalike.imdb``, ``cleaning``, ``detection``, ``pipeline``,
``index_build``, ``index``, ``match``, ``evaluation``, ``comparison``) hold the details and the
other options.
User-facing failures raise :class:`LookalikeError` (``lookalike.errors``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.errors import LookalikeError

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides our own output; warnings and
# errors still show. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from lookalike.comparison import ModelComparison
    from lookalike.detection import DetectedFace
    from lookalike.gallery import GalleryPhoto
    from lookalike.index import CelebrityIndex
    from lookalike.match import Matcher

PathLike = str | os.PathLike

__all__ = [
    "LookalikeError",
    "build_index",
    "choose_model",
    "clean_metadata",
    "compare_models",
    "embed_faces",
    "evaluate",
    "evaluate_matches",
    "find_faces",
    "find_lookalikes",
    "gallery_photos",
    "heldout_of_run",
    "load_metadata",
    "open_index",
    "open_matcher",
]


def load_metadata(path: PathLike | None = None) -> pd.DataFrame:
    """The IMDB-WIKI metadata (``imdb.mat`` or ``wiki.mat``) as a DataFrame, one row per photo.

    Without ``path``: the first that exists of the full download's ``imdb.mat``, the developer
    data's ``wiki.mat`` and the committed sample (``lookalike.config.find_metadata_file``);
    ``df.attrs`` holds ``source`` (the file), ``source_label`` and ``variable`` (imdb or wiki).
    """
    from lookalike import config, imdb

    label, found = config.find_metadata_file(path)
    df = imdb.load_metadata(found)
    df.attrs["source_label"] = label
    return df


def clean_metadata(df: pd.DataFrame, *, min_score: float = 1.0) -> tuple[pd.DataFrame, list]:
    """The rows that pass the standard filters, and how many rows each filter removed."""
    from lookalike import cleaning

    return cleaning.apply_filters(df, cleaning.standard_filters(min_score))


def gallery_photos(source: PathLike) -> list[GalleryPhoto]:
    """The photos of a gallery: an IMDB-layout folder (``imdb_crop/imdb.mat``), cleaned and
    de-duplicated, or a folder per person (``DIR/<Person_Name>/*.jpg``). ``source`` is a folder
    or a dataset's name under ``data/`` (``sample``)."""
    from lookalike.training_data import load_photos, resolve_source

    return load_photos(resolve_source(source))


def find_faces(
    image: PathLike | bytes | np.ndarray, *, detector: str | None = None
) -> list[DetectedFace]:
    """Every face in a photo (a path, encoded bytes or an RGB array), largest first, as
    ``DetectedFace`` (box, five landmarks, confidence). ``detector``: ``yunet`` (default) or
    ``mtcnn``."""
    from lookalike import detection, images

    pixels = image if hasattr(image, "shape") else images.load_image(image)
    return detection.detect_faces(pixels, detector=detector or detection.DEFAULT_DETECTOR)


def embed_faces(
    paths: Sequence[PathLike],
    *,
    model: PathLike | None = None,
    detector: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length embeddings (N×D; a zero row where no face) and found flags of the face each
    photo is about (the one nearest the centre), as ``lookalike embed`` writes them.

    ``model``: a registered name (``sface``, the default) or a ``.keras`` path.
    """
    from lookalike.pipeline import FacePipeline, embed_image_files

    pipeline = FacePipeline(model, detector=detector)
    return embed_image_files(pipeline, list(paths), progress=progress)


def build_index(
    photos: Sequence[GalleryPhoto],
    out_dir: PathLike,
    *,
    model: PathLike | None = None,
    detector: str | None = None,
    progress: bool = False,
    source: dict[str, Any] | None = None,
) -> Path:
    """Embed a gallery (from :func:`gallery_photos`) into a versioned index folder; resumable.
    Returns the folder, which :func:`open_index` and :func:`find_lookalikes` read.
    ``source``: facts about where the photos came from, recorded in the index's manifest."""
    from lookalike import index_build

    return index_build.build_index(
        list(photos),
        out_dir,
        model_path=model,
        detector=detector,
        progress=progress,
        source=source,
    )


def open_index(index_dir: PathLike | None = None) -> CelebrityIndex:
    """A built index: embeddings, celebrities, photo metadata, thumbnails and its score
    calibration (default: the demo index, ``lookalike.config.default_index_dir``)."""
    from lookalike import config
    from lookalike.index import CelebrityIndex

    return CelebrityIndex(index_dir or config.default_index_dir())


def open_matcher(index_dir: PathLike | None = None, *, model: PathLike | None = None) -> Matcher:
    """A ``Matcher`` over an index with its own model loaded: call ``.match(photo)`` many times
    without loading anything again (what the web API holds)."""
    from lookalike import config
    from lookalike.match import Matcher

    return Matcher(index_dir or config.default_index_dir(), model)


_matchers: dict[tuple[str, str], Matcher] = {}


def find_lookalikes(
    photo: PathLike | bytes,
    *,
    index: PathLike | None = None,
    top_k: int = 5,
    gender: str | None = None,
) -> dict[str, Any]:
    """The look-alikes of every face in a photo, exactly as ``/api/match`` answers (faces,
    boxes, top-k celebrities with score, similarity, age). The index (default: the demo index)
    and its model are loaded once per process. Raises ``NoFaceError`` when no face is found."""
    from lookalike import config
    from lookalike.match import MatchOptions

    key = (str(index or config.default_index_dir()), os.environ.get("LOOKALIKE_MODEL", ""))
    if key not in _matchers:
        _matchers[key] = open_matcher(key[0])
    return _matchers[key].match(photo, MatchOptions(top_k=top_k, gender=gender))


def evaluate(
    embeddings: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    found: np.ndarray | None = None,
) -> dict[str, Any]:
    """How well embeddings tell people apart: identification (top-1/5, CMC; the first photo of
    each person with two or more is the query), pair verification (10-fold accuracy, ROC, AUC)
    and missed faces. ``found``: False where no face was found (default: all found)."""
    import numpy as np

    from lookalike.evaluation import LabelledEmbeddings
    from lookalike.evaluation import evaluate as evaluate_embeddings

    found = np.ones(len(paths), bool) if found is None else np.asarray(found, bool)
    data = LabelledEmbeddings(list(paths), np.asarray(labels), np.asarray(embeddings), found)
    return evaluate_embeddings(data)


def evaluate_matches(matcher: Matcher, queries: Sequence[GalleryPhoto]) -> tuple[float, list]:
    """The app's own answer to held-out photos of indexed people: the share right at rank 1,
    and each miss as ``(photo, app's #1, the right person's match, its rank)``."""
    from lookalike.evaluation import app_misses

    misses = app_misses(matcher, queries)
    return 1 - len(misses) / max(len(queries), 1), misses


def compare_models(
    photos: Sequence[GalleryPhoto], models: dict[str, PathLike], *, progress: bool = False
) -> ModelComparison:
    """Several models side by side on the same photos (held-out people), each through its own
    face path (detector, template, chip size): ``.table`` has one row per model (top-1/5,
    pairs, AUC, faces missed, licence), ``.reports``/``.embeddings`` the details.
    ``models`` maps a display name to a registered name (``sface``) or a ``.keras`` path."""
    from lookalike.comparison import compare_models as compare

    return compare(photos, models, progress=progress)


def heldout_of_run(run_dir: PathLike) -> tuple[Any, list[GalleryPhoto]]:
    """A finished training run's data split (``TrainingData``: chips of every split) and the
    photos of its held-out people, whom no model trained on: what to compare models on."""
    from lookalike.comparison import heldout_of_run as heldout

    return heldout(run_dir)


def choose_model(table: pd.DataFrame, *, commercial_only: bool = True) -> str:
    """The best model of a comparison table (top-1, then pair AUC); by default only among the
    models whose licence allows commercial use, as the product's default must be."""
    from lookalike.comparison import choose_model as choose

    return choose(table, commercial_only=commercial_only)
