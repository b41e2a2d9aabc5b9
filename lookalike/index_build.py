"""Building a celebrity index from a gallery: batched, with a progress bar, resumable.

Work is done in chunks of photos; each finished chunk is saved under ``<out>/.build/`` at once,
so an interrupted build picks up at the first missing chunk. Chunks are embedded in this process,
or by a ``runner`` (``lookalike.ray_build.RayChunkRunner``: a Ray Data actor pool). The finished
index is written by :func:`write_index` in the format that ``lookalike.index`` documents, and
``.build/`` is removed. The benchmarks write their synthetic indexes with it too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from lookalike.calibration import (
    RELIABLE_PAIRS,
    Calibration,
    fit_calibration,
    reference_calibration,
)
from lookalike.detection import DetectedFace, default_min_confidence, detector_for
from lookalike.errors import InvalidInputError
from lookalike.gallery import GalleryPhoto
from lookalike.index import FORMAT_NAME, FORMAT_VERSION
from lookalike.pipeline import FacePipeline

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 160
THUMBNAIL_MARGIN = 0.4  # the IMDB crops' margin, so thumbnails look like the dataset's crops
JPEG_QUALITY = 85
# The columns of photos.csv and (less first_photo, derived) celebrities.csv.
PHOTO_COLUMNS = ("celebrity_id", "source_path", "photo_year", "age", "gender")
CELEBRITY_COLUMNS = ("celebrity_id", "name", "gender", "photo_count")


def face_thumbnail(image: np.ndarray, face: DetectedFace, size: int = THUMBNAIL_SIZE) -> bytes:
    """A square JPEG of the face with a margin around it, black where the photo ends."""
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * THUMBNAIL_MARGIN)
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    scale = size / side
    # One affine warp crops, pads and resizes at once.
    transform = np.array(
        [[scale, 0, size / 2 - centre_x * scale], [0, scale, size / 2 - centre_y * scale]],
        dtype=np.float64,
    )
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    thumbnail = cv2.warpAffine(image, transform, (size, size), flags=interpolation)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(thumbnail, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return encoded.tobytes()


def _inputs_fingerprint(photos: list[GalleryPhoto], model_sha256: str, chunk_size: int) -> str:
    digest = hashlib.sha256(f"{model_sha256}\n{chunk_size}\n".encode())
    for photo in photos:
        digest.update(f"{photo.path}\t{photo.celebrity_id}\n".encode())
    return digest.hexdigest()


def _embed_chunk(pipeline: FacePipeline, photos: list[GalleryPhoto]) -> dict[str, np.ndarray]:
    subjects = pipeline.load_subjects(
        [photo.path for photo in photos], [photo.face_box for photo in photos]
    )
    thumbnails = [
        b"" if face is None else face_thumbnail(image, face)
        for image, face in zip(subjects.images, subjects.faces, strict=True)
    ]
    return {
        "embeddings": pipeline.embed_subjects(subjects),
        "found": subjects.found,
        "thumbnail_lengths": np.array([len(blob) for blob in thumbnails], np.int64),
        "thumbnails": np.frombuffer(b"".join(thumbnails), np.uint8),
    }


# A runner embeds pending chunks, (number, photos), with pipelines it makes from the factory, and
# yields (number, arrays of ``_embed_chunk``) in any order as each chunk finishes.
ChunkRunner = Callable[
    [Callable[[], FacePipeline], list[tuple[int, list[GalleryPhoto]]]],
    Iterable[tuple[int, dict[str, np.ndarray]]],
]


def embed_in_process(
    make_pipeline: Callable[[], FacePipeline], pending: list[tuple[int, list[GalleryPhoto]]]
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """The default runner: one pipeline, the chunks in order."""
    pipeline = make_pipeline() if pending else None
    for number, chunk in pending:
        yield number, _embed_chunk(pipeline, chunk)


def _most_common_or_none(values: pd.Series) -> str | None:
    return values.mode().iat[0] if values.notna().any() else None


def _calibrate(embeddings: np.ndarray, table: pd.DataFrame, model_info: dict):
    """Fit the score on the gallery itself; a small gallery borrows the model's reference."""
    labels = table["group"].to_numpy()
    try:
        return fit_calibration(embeddings, labels, min_pairs=RELIABLE_PAIRS), "this gallery"
    except ValueError:
        reference = reference_calibration(model_info.get("sha256", ""))
        if reference is not None:
            log.info("small gallery: using the model's reference score calibration")
            return reference, "the model's reference calibration (lookalike/calibrations)"
    log.warning("small gallery and no reference calibration for this model: scores are rough")
    return fit_calibration(embeddings, labels), "this gallery (few pairs: rough)"


def build_index(
    photos: list[GalleryPhoto],
    out_dir: str | Path,
    *,
    model_path: str | Path | None = None,
    chunk_size: int = 256,
    progress: bool = True,
    source: dict | None = None,
    runner: ChunkRunner | None = None,
    detector: str | None = None,
    min_confidence: float | None = None,
) -> Path:
    """Embed every gallery photo and write a versioned index folder; resumes after interrupts.

    ``model_path`` is a registered model name or a ``.keras`` path (default: the default model);
    ``detector`` (``yunet`` or ``mtcnn``; default the model's own) finds the faces, and is
    recorded in ``index.json``.
    """
    if not photos:
        raise InvalidInputError("the gallery is empty: nothing to index")
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be at least 1, got {chunk_size}")
    from lookalike import model_files

    out = Path(out_dir)
    # A factory, so that a runner can build the very same pipeline in other processes.
    model_info = model_files.model_info(model_path)
    detector = detector_for(model_info, detector)
    make_pipeline = functools.partial(
        FacePipeline, model_path, detector=detector, min_confidence=min_confidence
    )
    threshold = default_min_confidence(detector) if min_confidence is None else min_confidence
    detector_info = {"name": detector, "min_confidence": threshold}
    work = out / ".build"
    fingerprint = _inputs_fingerprint(
        photos, f"{model_info['sha256']}/{detector}/{threshold}", chunk_size
    )
    _open_work_dir(work, fingerprint)
    (out / "index.json").unlink(missing_ok=True)  # an old index is no longer valid while we write
    chunk_count = (len(photos) + chunk_size - 1) // chunk_size
    chunk_paths = [work / f"chunk-{number:05d}.npz" for number in range(chunk_count)]
    _embed_missing_chunks(photos, chunk_paths, chunk_size, make_pipeline, runner, progress)

    chunks = [np.load(path) for path in chunk_paths]
    _finish_index(out, photos, chunks, model_info, source or {}, detector_info)
    shutil.rmtree(work)
    return out


def _open_work_dir(work: Path, fingerprint: str) -> None:
    """``.build/`` for these inputs: kept to resume when it was for the same ones, else emptied."""
    stamp = work / "inputs.sha256"
    if work.is_dir() and (not stamp.is_file() or stamp.read_text() != fingerprint):
        log.warning("discarding an unfinished build of other photos or another model in %s", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)


def _embed_missing_chunks(
    photos: list[GalleryPhoto],
    chunk_paths: list[Path],
    chunk_size: int,
    make_pipeline: Callable[[], FacePipeline],
    runner: ChunkRunner | None,
    progress: bool,
) -> None:
    """Embed the chunks not saved yet; each is saved whole as soon as it is done."""
    done = sum(path.is_file() for path in chunk_paths)
    if done:
        log.info("resuming: %d of %d chunks already embedded", done, len(chunk_paths))
    pending = [
        (number, photos[number * chunk_size : (number + 1) * chunk_size])
        for number, path in enumerate(chunk_paths)
        if not path.is_file()
    ]
    with tqdm(
        total=len(photos),
        initial=min(done * chunk_size, len(photos)),
        unit="photo",
        desc="index build",
        disable=not progress,
    ) as bar:
        for number, arrays in (runner or embed_in_process)(make_pipeline, pending):
            path = chunk_paths[number]
            partial = path.with_suffix(".tmp.npz")
            np.savez(partial, **arrays)
            partial.replace(path)  # a chunk exists only once it is complete
            bar.update(len(arrays["found"]))


def _finish_index(
    out: Path,
    photos: list[GalleryPhoto],
    chunks: list,
    model_info: dict,
    source: dict,
    detector_info: dict | None = None,
) -> None:
    """Join the embedded chunks, keep the photos with a face, group them and write the index."""
    found = np.concatenate([chunk["found"] for chunk in chunks])
    table = _photo_table(photos)[found]
    if table.empty:
        raise InvalidInputError(f"no face was found in any of the {len(photos)} gallery photos")
    # Group rows by celebrity (first-seen order) so search can take each one's best photo at once.
    first_seen = {cid: order for order, cid in enumerate(dict.fromkeys(table["celebrity_id"]))}
    table = table.assign(group=table["celebrity_id"].map(first_seen)).sort_values(
        ["group", "row"], kind="stable"
    )
    rows = table["row"].to_numpy()
    embeddings = np.concatenate([chunk["embeddings"] for chunk in chunks])[rows]
    thumbnails = _thumbnails(chunks)
    celebrities = (
        table.groupby("group", sort=True)
        .agg(
            celebrity_id=("celebrity_id", "first"),
            name=("name", "first"),
            gender=("gender", _most_common_or_none),
            photo_count=("row", "size"),
        )
        .reset_index(drop=True)
    )
    calibration, calibration_source = _calibrate(embeddings, table, model_info)
    write_index(
        out,
        embeddings,
        table,
        celebrities,
        thumbnails=[thumbnails[row] for row in rows],
        model_info=model_info,
        calibration=calibration,
        calibration_source=calibration_source,
        detector_info=detector_info,
        source=source,
        photos_without_face=int((~found).sum()),
    )


def _photo_table(photos: list[GalleryPhoto]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "celebrity_id": [photo.celebrity_id for photo in photos],
            "name": [photo.name for photo in photos],
            "source_path": [str(photo.path) for photo in photos],
            "photo_year": pd.array([photo.photo_year for photo in photos], dtype="Int64"),
            "age": pd.array([photo.age for photo in photos], dtype="Int64"),
            "gender": [photo.gender for photo in photos],
            "row": np.arange(len(photos)),
        }
    )


def _thumbnails(chunks: list) -> list[bytes]:
    """Every photo's JPEG thumbnail (empty where no face), in the photos' order."""
    lengths = np.concatenate([chunk["thumbnail_lengths"] for chunk in chunks])
    blob = np.concatenate([chunk["thumbnails"] for chunk in chunks])
    ends = np.cumsum(lengths)
    # One copy per thumbnail, not of the whole blob as well (gigabytes for the full gallery).
    return [blob[end - length : end].tobytes() for end, length in zip(ends, lengths, strict=True)]


def write_index(
    out: str | Path,
    embeddings: np.ndarray,
    photos: pd.DataFrame,
    celebrities: pd.DataFrame,
    *,
    model_info: dict,
    calibration: Calibration,
    thumbnails: Sequence[bytes] | None = None,
    calibration_source: str | None = None,
    detector_info: dict | None = None,
    source: dict | None = None,
    photos_without_face: int = 0,
) -> Path:
    """Write an index folder in the format that ``lookalike.index`` documents; returns it.

    ``embeddings`` (photos × D, unit rows) and ``photos`` (:data:`PHOTO_COLUMNS`; ``photo_id``
    = row) are grouped by celebrity in the order of ``celebrities`` (:data:`CELEBRITY_COLUMNS`;
    ``first_photo`` is derived from ``photo_count``). ``thumbnails``: a JPEG per photo (default:
    none). ``index.json`` is written last: its presence marks a complete index.
    """
    out = Path(out)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    celebrities = celebrities[list(CELEBRITY_COLUMNS)].reset_index(drop=True)
    counts = celebrities["photo_count"].to_numpy()
    if not len(embeddings) == len(photos) == counts.sum():
        raise ValueError(
            f"{len(embeddings)} embeddings, {len(photos)} photos and {counts.sum()} photos "
            "counted by the celebrities must agree"
        )
    celebrities.insert(3, "first_photo", np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64))
    thumbnails = [b""] * len(photos) if thumbnails is None else list(thumbnails)
    offsets = np.r_[0, np.cumsum([len(blob) for blob in thumbnails])].astype(np.int64)

    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embeddings.npy", embeddings)
    np.save(out / "thumbnail_offsets.npy", offsets)
    with open(out / "thumbnails.bin", "wb") as handle:  # streamed: no joined copy in memory
        for blob in thumbnails:
            handle.write(blob)
    photos[list(PHOTO_COLUMNS)].to_csv(out / "photos.csv", index=False)
    celebrities.to_csv(out / "celebrities.csv", index=False)
    fitted_on = {} if calibration_source is None else {"fitted_on": calibration_source}
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model_info,
        "detector": detector_info,
        "embedding_size": int(embeddings.shape[1]),
        "photos": int(len(photos)),
        "celebrities": int(len(celebrities)),
        "photos_without_face": int(photos_without_face),
        "source": source or {},
        "calibration": calibration.to_dict() | fitted_on,
    }
    (out / "index.json").write_text(json.dumps(manifest, indent=1))
    return out
