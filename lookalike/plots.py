"""Plotting helpers shared by the notebooks: face grids, detections, match panels, curves.

Plotting only: every function takes what the pipeline already computed (images, detections,
match results, histories, reports, calibrations) and returns a matplotlib ``Figure``; none of
them computes a metric or changes data. Images are RGB uint8 arrays (or paths/bytes, decoded
with :func:`lookalike.images.load_image`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

LANDMARK_NAMES = ("left eye", "right eye", "nose", "mouth left", "mouth right")
LANDMARK_COLOURS = ("#1f77b4", "#1f77b4", "#2ca02c", "#d62728", "#d62728")
NOTEBOOK_DPI = 80
GENDER_PALETTE = {"female": "#d62728", "male": "#1f77b4"}


def use_notebook_style(dpi: int = NOTEBOOK_DPI) -> None:
    """Seaborn's white-grid theme and a modest figure resolution (keeps saved notebooks small)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.max_open_warning": 0})


def show(figure: Figure) -> None:
    """Display a figure in the notebook and close it.

    Works whatever pyplot's backend is: some pipeline functions that write PNG files switch
    matplotlib to "Agg", after which ``plt.show()`` displays nothing.
    """
    from IPython.display import display

    display(figure)
    plt.close(figure)


def show_jpeg(figure: Figure, *, quality: int = 80) -> None:
    """Display a figure as a JPEG and close it: photo grids stay small in a saved notebook
    (PNG is lossless, and a few dozen face crops would weigh a megabyte)."""
    from io import BytesIO

    from IPython.display import Image, display

    buffer = BytesIO()
    figure.savefig(buffer, format="jpeg", pil_kwargs={"quality": quality}, bbox_inches="tight")
    plt.close(figure)
    display(Image(buffer.getvalue(), format="jpeg"))


def _as_image(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (str, bytes, os.PathLike)):
        from lookalike.images import load_image

        return load_image(image)
    raise TypeError(f"expected an image array, a path or bytes, got {type(image).__name__}")


def _hide_axes(axes: Any) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)


def face_grid(
    images: Sequence[Any],
    titles: Sequence[str] | None = None,
    *,
    columns: int = 6,
    size: float = 1.7,
    suptitle: str | None = None,
    title_colours: Sequence[str] | None = None,
    points: Sequence[np.ndarray | None] | None = None,
) -> Figure:
    """Images in a grid, each with an optional short title above it (and optional points on it).

    ``points``: one (K, 2) array of pixel coordinates per image (or None) drawn as dots, e.g.
    landmarks or the alignment template.
    """
    count = len(images)
    if count == 0:
        raise ValueError("no images to show")
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(
        rows, columns, figsize=(columns * size, rows * (size + 0.25)), squeeze=False
    )
    for index, ax in enumerate(axes.ravel()):
        _hide_axes(ax)
        if index >= count:
            ax.set_visible(False)
            continue
        ax.imshow(_as_image(images[index]))
        if points is not None and points[index] is not None:
            xy = np.asarray(points[index])
            ax.scatter(xy[:, 0], xy[:, 1], s=12, c=LANDMARK_COLOURS[: len(xy)], edgecolors="white")
        if titles is not None:
            colour = title_colours[index] if title_colours is not None else "black"
            ax.set_title(titles[index], fontsize=8, color=colour)
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    return figure


def draw_detections(
    image: Any, faces: Sequence[Any], *, ax: Any = None, title: str | None = None
) -> Any:
    """A photo with each face's box, confidence and 5 landmarks (``DetectedFace`` objects)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(_as_image(image))
    _hide_axes(ax)
    for number, face in enumerate(faces, start=1):
        x1, y1, x2, y2 = face.box
        ax.add_patch(
            plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="yellow", linewidth=2)
        )
        ax.text(
            x1,
            y1 - 3,
            f"#{number} {face.confidence:.3f}",
            color="black",
            fontsize=8,
            bbox={"facecolor": "yellow", "alpha": 0.8, "pad": 1, "edgecolor": "none"},
        )
        points = np.asarray(face.landmarks)
        ax.scatter(points[:, 0], points[:, 1], s=18, c=LANDMARK_COLOURS, edgecolors="white")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def channel_histograms(
    arrays: Mapping[str, np.ndarray], *, bins: int = 60, channel_names: Sequence[str] = "RGB"
) -> Figure:
    """One panel per array (…, 3): a histogram of each colour channel's values."""
    figure, axes = plt.subplots(1, len(arrays), figsize=(4.5 * len(arrays), 3), squeeze=False)
    colours = ("#d62728", "#2ca02c", "#1f77b4")
    for ax, (label, values) in zip(axes[0], arrays.items(), strict=True):
        values = np.asarray(values, dtype=np.float64).reshape(-1, 3)
        for channel in range(3):
            ax.hist(
                values[:, channel],
                bins=bins,
                histtype="step",
                color=colours[channel],
                label=channel_names[channel],
            )
        ax.set(title=label, xlabel="value", ylabel="pixels")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def training_curves(
    history: pd.DataFrame | str | Path,
    *,
    metrics: Sequence[str] = ("loss", "accuracy"),
    title: str | None = None,
    fine_tune_from: int | None = None,
) -> Figure:
    """Training (augmented) and validation curves per epoch, from a Keras ``history.csv``.

    ``fine_tune_from``: the 0-based epoch at which fine-tuning began, marked with a dashed line.
    """
    if not isinstance(history, pd.DataFrame):
        history = pd.read_csv(history)
    epochs = history["epoch"] + 1 if "epoch" in history else pd.RangeIndex(1, len(history) + 1)
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        ax.plot(epochs, history[metric], marker=".", label="train (augmented)")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker=".", label="validation")
        if fine_tune_from is not None:
            ax.axvline(fine_tune_from + 0.5, color="grey", linestyle="--", label="fine-tuning")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def similarity_distributions(
    same_person: np.ndarray,
    strangers: np.ndarray,
    *,
    ax: Any = None,
    title: str | None = None,
    threshold: float | None = None,
) -> Any:
    """Density histograms of same-person and stranger cosine similarities (one axes)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    low = max(-1.0, min(np.min(strangers, initial=1.0), np.min(same_person, initial=1.0)) - 0.02)
    bins = np.linspace(low, 1.0, 61)
    ax.hist(strangers, bins=bins, density=True, alpha=0.55, label=f"strangers ({len(strangers)})")
    ax.hist(
        same_person, bins=bins, density=True, alpha=0.55, label=f"same person ({len(same_person)})"
    )
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set(xlabel="cosine similarity", ylabel="density", xlim=(low, 1.0))
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def score_curve(calibration: Any, *, ax: Any = None, title: str | None = None) -> Any:
    """The calibrated 0–100 score as a function of cosine similarity."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    low = float(calibration.strangers_quantiles[0])
    high = float(calibration.same_person_quantiles[-1])
    similarities = np.linspace(max(-1.0, low - 0.1), min(1.0, high + 0.05), 300)
    ax.plot(similarities, calibration.score(similarities), color="black")
    ax.axhline(50, color="grey", linestyle=":", linewidth=1)  # "more alike than any strangers"
    ax.set(xlabel="cosine similarity", ylabel="look-alike score", ylim=(-2, 102))
    ax.set_title(title or "calibrated score", fontsize=10)
    return ax


def roc_curves(
    reports: Mapping[str, Mapping[str, Any]],
    *,
    ax: Any = None,
    title: str = "pair ROC",
    log_scale: bool = False,
) -> Any:
    """Pair-verification ROC curves of several ``lookalike.evaluation`` reports.

    ``log_scale``: a logarithmic false-positive axis, where good models differ.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for name, report in reports.items():
        pairs = report["pairs"]
        roc = pairs["roc"]
        ax.plot(
            roc["false_positive_rate"],
            roc["true_positive_rate"],
            label=f"{name} (AUC {pairs['roc_auc']:.4f})",
        )
    if not log_scale:
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    if log_scale:
        ax.set_xscale("log")
    ax.legend(fontsize=8)
    return ax


def cmc_curves(
    reports: Mapping[str, Mapping[str, Any]],
    *,
    method: str = "per_photo",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Identification rate by rank (CMC) of several ``lookalike.evaluation`` reports;
    ``method``: ``per_photo`` or ``per_person`` (each person's mean embedding)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for name, report in reports.items():
        cmc = report["identification"][method]["cmc"]
        ax.plot(range(1, len(cmc) + 1), cmc, marker=".", label=name)
    ax.set(xlabel="rank", ylabel="identification rate", ylim=(0, 1.02))
    ax.set_title(title or f"CMC ({method})")
    ax.legend(fontsize=8)
    return ax


def _face_crop(image: np.ndarray, box: Sequence[float], margin: float = 0.25) -> np.ndarray:
    """The face of an ``[x, y, w, h]`` box with a margin (for display only)."""
    x, y, w, h = box
    height, width = image.shape[:2]
    left, top = max(int(x - margin * w), 0), max(int(y - margin * h), 0)
    right, bottom = min(int(x + w + margin * w), width), min(int(y + h + margin * h), height)
    return image[top:bottom, left:right]


def match_panel(
    query: Any,
    result: Mapping[str, Any],
    index: Any,
    *,
    matches: int = 3,
    size: float = 1.9,
    title: str | None = None,
) -> Figure:
    """Side by side, one row per face: the query face | its best celebrity thumbnails + score.

    ``result`` is what ``lookalike.match.Matcher.match`` returns; ``index`` the
    ``CelebrityIndex`` it searched (for the thumbnails).
    """
    image = _as_image(query)
    faces = result["faces"]
    shown = max((min(matches, len(face["matches"])) for face in faces), default=0)
    figure, axes = plt.subplots(
        len(faces),
        1 + shown,
        figsize=((1 + shown) * size, len(faces) * (size + 0.45)),
        squeeze=False,
    )
    for row, face in enumerate(faces):
        _hide_axes(axes[row, 0])
        axes[row, 0].imshow(_face_crop(image, face["box"]))
        axes[row, 0].set_title(f"query face {row + 1}", fontsize=8)
        for column in range(1, 1 + shown):
            ax = axes[row, column]
            _hide_axes(ax)
            if column - 1 >= len(face["matches"]):
                ax.set_visible(False)
                continue
            match = face["matches"][column - 1]
            ax.imshow(_as_image(index.thumbnail(match["photo_id"])))
            age = f", age {match['age']}" if match.get("age") is not None else ""
            ax.set_title(
                f"{match['name']}{age}\nscore {match['score']:.0f} (cos {match['similarity']:.2f})",
                fontsize=7,
            )
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def image_rows(
    rows: Sequence[Sequence[tuple[Any, str] | tuple[Any, str, str] | None]],
    *,
    size: float = 1.8,
    title: str | None = None,
) -> Figure:
    """Rows of captioned images, e.g. query | wrong match | right person for failure cases.

    Each cell is ``(image, caption)`` or ``(image, caption, caption colour)``; ``None`` leaves
    the cell empty.
    """
    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(columns * size + 0.4, len(rows) * (size + 0.45)), squeeze=False
    )
    for row, row_axes in zip(rows, axes, strict=True):
        for column, ax in enumerate(row_axes):
            _hide_axes(ax)
            cell = row[column] if column < len(row) else None
            if cell is None:
                ax.set_visible(False)
                continue
            image, caption, *colour = cell
            ax.imshow(_as_image(image))
            ax.set_title(caption, fontsize=7, color=colour[0] if colour else "black")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
