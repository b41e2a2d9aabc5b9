"""Write IMDB-layout data: a faithful ``imdb.mat`` and a crop folder made from real photos.

``write_imdb_mat`` writes what :func:`lookalike.imdb.load_metadata` reads, with the real file's
field order, dtypes and cell shapes (``shared/docs/imdb-format.md``). ``make_imdb_fixture`` turns
a folder-per-person photo set (e.g. LFW) into ``imdb_crop/imdb.mat`` plus face crops, with real
MTCNN detections:

- ``face_location`` is the detected box in ORIGINAL-photo pixels, 1-based like MATLAB's:
  ``[x1 + 1, y1 + 1, x2, y2]`` for a detector box ``(x1, y1, x2, y2)`` in 0-based continuous
  pixels, so the whole photo is ``[1 1 W H]`` as in the real file.
- ``face_score`` is MTCNN's confidence ``p`` stored as its logit ``ln(p / (1 - p))`` (the margin
  between ONet's two class outputs, ``p`` clipped to 1 - 1e-7, so at most ~16.1). The real file's
  scores come from another detector (DPM) on its own scale; the logit is MTCNN's raw score and
  lands in a similar range (MTCNN's 0.9 cut-off is 2.2), so the usual ``face_score ≥ 1`` filter
  keeps what MTCNN accepted. ``second_face_score`` is the next face's score on the same scale or
  NaN; a photo without a face gets ``-inf`` and the whole-photo box.
- The primary face is the LARGEST one: LFW-like photos centre their subject, and the most
  confident face (the dataset authors' choice) is sometimes a bystander's. The second face is
  the most confident of the others.
- Unknown facts stay unknown: gender NaN, dob 0 (loads as NaT), photo_taken 0 (loads as <NA>),
  unless ``people_csv`` gives them.

``write_synthetic_index`` writes an index of generated embeddings for the search benchmarks.
``selfie_jpeg`` makes the ~1 MP selfie the speed benchmarks post (``multipart_upload`` wraps a
photo as the page uploads it, for raw HTTP clients); ``png_header_only`` and
``png_of_zeros`` the oversized PNGs (decompression bombs) that the decoding tests and
``benchmarks/bench_refusals.py`` feed to :func:`lookalike.images.load_image`.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io
from PIL import Image
from tqdm import tqdm

from lookalike.errors import InvalidInputError, MissingFileError
from lookalike.imdb import BOX_COLUMNS, MATLAB_EPOCH, VARIABLES

logger = logging.getLogger(__name__)

CROP_MARGIN = 0.4  # the dataset's 40% margin on every side of the face box
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_SCORE_CONFIDENCE = 1 - 1e-7
NM_OFFSET = 9_000_000  # synthetic nm ids, well away from IMDB's oldest (famous) ids
REQUIRED_COLUMNS = (
    "full_path",
    "name",
    "dob",
    "photo_taken",
    "gender",
    *BOX_COLUMNS,
    "face_score",
    "second_face_score",
)

Detector = Callable[[np.ndarray], list[Any]]


def selfie_jpeg(source: Path | None = None, size: tuple[int, int] = (1152, 864)) -> bytes:
    """A ~1-megapixel JPEG (quality 90) of a real face, in memory: ``source`` (default the
    committed ``tests/assets/face.jpg``) resized to ``size``, as the speed benchmarks post it."""
    from lookalike import config

    source = source or config.REPO_ROOT / "tests" / "assets" / "face.jpg"
    with Image.open(source) as photo:
        big = photo.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_synthetic_index(
    out: Path, embeddings: np.ndarray, counts: np.ndarray, genders: np.ndarray, model_info: dict
) -> Path:
    """An index folder of given embeddings, for search benchmarks: ``counts[n]`` rows (in order)
    of ``celebrity-n`` of gender ``genders[n]``, placeholder photo facts, no thumbnails, and a
    score calibration fitted on up to 20,000 of the photos."""
    from lookalike.calibration import fit_calibration
    from lookalike.index_build import write_index

    ids = [f"celebrity-{number}" for number in range(len(counts))]
    labels = np.repeat(np.arange(len(counts)), counts)
    photos = pd.DataFrame(
        {
            "celebrity_id": np.repeat(ids, counts),
            "source_path": "",
            "photo_year": 2000,
            "age": 40,
            "gender": np.asarray(genders)[labels],
        }
    )
    celebrities = pd.DataFrame(
        {"celebrity_id": ids, "name": ids, "gender": genders, "photo_count": counts}
    )
    sample = np.random.default_rng(0).choice(len(labels), min(len(labels), 20_000), replace=False)
    calibration = fit_calibration(embeddings[sample], labels[sample])
    return write_index(
        out, embeddings, photos, celebrities, model_info=model_info, calibration=calibration
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(width: int, height: int, idat: bytes) -> bytes:
    """A greyscale 8-bit PNG whose IHDR says ``width``×``height``, around the given IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height greyscale pixels (IDAT holds one row)."""
    return _png(width, height, zlib.compress(b"\x00" * (width + 1)))


def png_of_zeros(width: int, height: int) -> bytes:
    """A real, complete greyscale PNG of black pixels, compressed row by row (small in memory)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return _png(width, height, idat)


def write_imdb_mat(
    records: pd.DataFrame | Iterable[Mapping[str, Any]], path: str | Path, variable: str = "imdb"
) -> Path:
    """Write rows shaped like ``load_metadata``'s output as a v5 ``imdb.mat``/``wiki.mat``."""
    if variable not in VARIABLES:
        raise ValueError(f"variable must be one of {VARIABLES}, got {variable!r}")
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    missing = [column for column in REQUIRED_COLUMNS if column not in df.columns]
    if missing:
        raise ValueError(f"records lack column(s) {', '.join(missing)}")
    n = len(df)
    boxes = df[list(BOX_COLUMNS)].to_numpy(dtype=np.float64)
    # Dict insertion order is the struct's field order, which some loaders rely on.
    struct: dict[str, np.ndarray] = {
        "dob": _datenums(df["dob"]).reshape(1, n),
        "photo_taken": _uint16(df["photo_taken"], "photo_taken").reshape(1, n),
        "full_path": _cells(df["full_path"].astype(str)),
        "gender": df["gender"].to_numpy(dtype=np.float64, na_value=np.nan).reshape(1, n),
        "name": _cells(df["name"].fillna("").astype(str)),
        "face_location": _cells(_box_cell(box) for box in boxes),
        "face_score": df["face_score"].to_numpy(dtype=np.float64).reshape(1, n),
        "second_face_score": df["second_face_score"]
        .to_numpy(dtype=np.float64, na_value=np.nan)
        .reshape(1, n),
    }
    if variable == "imdb":
        identity = df["celeb_name"] if "celeb_name" in df.columns else df["name"]
        identity = identity.fillna("").astype(str)
        if (identity == "").any():
            row = int(np.flatnonzero((identity == "").to_numpy())[0])
            raise ValueError(f"imdb rows need a celebrity name (row {row} has none)")
        celeb_names = sorted(set(identity))
        if len(celeb_names) > np.iinfo(np.uint16).max:
            raise ValueError(f"{len(celeb_names)} celebrities do not fit imdb.mat's uint16 ids")
        position = {name: i + 1 for i, name in enumerate(celeb_names)}  # 1-based, MATLAB's
        struct["celeb_names"] = _cells(celeb_names)
        struct["celeb_id"] = np.array([position[name] for name in identity], np.uint16).reshape(
            1, n
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {variable: struct}, format="5", do_compression=True, oned_as="row")
    return path


def make_imdb_fixture(
    people_dir: str | Path,
    out_dir: str | Path,
    *,
    people_csv: str | Path | None = None,
    max_people: int | None = None,
    max_photos_per_person: int | None = None,
    seed: int = 0,
    detector: Detector | None = None,
    quality: int = 85,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Build ``out_dir/imdb_crop/imdb.mat`` and its face crops from a folder-per-person set.

    Returns the ``.mat`` path. ``people_csv`` (columns ``name``, ``birth_date`` YYYY-MM-DD,
    ``gender`` male/female, ``photo_year``; blanks allowed) chooses the people and gives their
    facts; ``detector`` defaults to :func:`lookalike.detection.detect_faces`.
    """
    from lookalike.images import load_image

    people_dir, out_dir = Path(people_dir), Path(out_dir)
    if not people_dir.is_dir():
        raise MissingFileError(f"people directory {people_dir} does not exist")
    if detector is None:
        from lookalike.detection import detect_faces as detector
    crop_root = out_dir / "imdb_crop"
    if crop_root.exists() and any(crop_root.iterdir()):
        if not overwrite:
            raise InvalidInputError(
                f"{crop_root} already holds files (pass overwrite=True to replace)"
            )
        shutil.rmtree(crop_root)

    rng = np.random.default_rng(seed)
    people = _choose_people(people_dir, people_csv, max_people, rng)
    jobs = _photo_jobs(people, max_photos_per_person, rng)
    if not jobs:
        raise InvalidInputError(f"no photos found under {people_dir}")
    rows = []
    for photo_number, (nm, photo, facts) in enumerate(tqdm(jobs, disable=not progress), start=1):
        image = load_image(photo)
        faces = sorted(detector(image), key=_area, reverse=True)
        rows.append(_crop_row(image, faces, nm, photo_number, facts, crop_root, quality))
    mat = write_imdb_mat(pd.DataFrame(rows), crop_root / "imdb.mat", variable="imdb")
    logger.info("wrote %d photos of %d people to %s", len(rows), len(people), crop_root)
    return mat


def _photo_jobs(
    people: list[tuple[Path, dict[str, Any]]],
    max_photos_per_person: int | None,
    rng: np.random.Generator,
) -> list[tuple[int, Path, dict[str, Any]]]:
    """(nm id, photo, facts) of every photo to crop: each person's, or a seeded sample of them."""
    jobs = []
    for index, (folder, facts) in enumerate(people, start=1):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if max_photos_per_person is not None and len(photos) > max_photos_per_person:
            chosen = rng.choice(len(photos), size=max_photos_per_person, replace=False)
            photos = [photos[i] for i in sorted(chosen)]
        jobs.extend((NM_OFFSET + index, photo, facts) for photo in photos)
    return jobs


def _crop_row(
    image: np.ndarray,
    faces: list[Any],
    nm: int,
    photo_number: int,
    facts: dict[str, Any],
    crop_root: Path,
    quality: int,
) -> dict[str, Any]:
    """Save one photo's crop around its largest face (the whole photo without one) and return
    its ``imdb.mat`` row."""
    height, width = image.shape[:2]
    box = faces[0].box if faces else (0.0, 0.0, float(width), float(height))
    dob: date | None = facts["dob"]
    dob_text = f"{dob.year}-{dob.month}-{dob.day}" if dob else "0-0-0"
    relative = f"{nm % 100:02d}/nm{nm:07d}_rm{100_000_000 + photo_number}_{dob_text}"
    relative += f"_{facts['photo_year']:04d}.jpg"
    _save_crop(image, box, crop_root / relative, quality)
    return {
        "full_path": relative,
        "name": facts["name"],
        "dob": pd.Timestamp(dob) if dob else pd.NaT,
        "photo_taken": facts["photo_year"],
        "gender": facts["gender"],
        "face_x1": box[0] + 1,
        "face_y1": box[1] + 1,
        "face_x2": box[2],
        "face_y2": box[3],
        "face_score": _score(faces[0].confidence) if faces else -np.inf,
        "second_face_score": (
            _score(max(face.confidence for face in faces[1:])) if len(faces) > 1 else np.nan
        ),
    }


def crop_with_margin(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Cut ``box`` plus a 40% margin on every side, zero-padded where it leaves the photo."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise ValueError(f"face box {box} has no area")
    left, top = round(x1 - CROP_MARGIN * w), round(y1 - CROP_MARGIN * h)
    right, bottom = round(x2 + CROP_MARGIN * w), round(y2 + CROP_MARGIN * h)
    crop = np.zeros((bottom - top, right - left, *image.shape[2:]), dtype=image.dtype)
    height, width = image.shape[:2]
    sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if sx2 > sx1 and sy2 > sy1:
        crop[sy1 - top : sy2 - top, sx1 - left : sx2 - left] = image[sy1:sy2, sx1:sx2]
    return crop


def _save_crop(image: np.ndarray, box: tuple, path: Path, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(crop_with_margin(image, box)).save(path, format="JPEG", quality=quality)


def _area(face: Any) -> float:
    x1, y1, x2, y2 = face.box
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


def _score(confidence: float) -> float:
    p = min(max(float(confidence), 1e-7), MAX_SCORE_CONFIDENCE)
    return float(np.log(p / (1 - p)))


def _choose_people(
    people_dir: Path,
    people_csv: str | Path | None,
    max_people: int | None,
    rng: np.random.Generator,
) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, facts) per person, sorted by folder name."""
    folders = {p.name: p for p in people_dir.iterdir() if p.is_dir()}
    if people_csv is None:
        names = sorted(folders)
        facts_by_name = {name: _facts(name.replace("_", " "), {}) for name in names}
    else:
        table = pd.read_csv(people_csv, dtype=str, keep_default_na=False)
        if "name" not in table.columns:
            raise InvalidInputError(f"{people_csv} has no 'name' column")
        facts_by_name = {}
        for record in table.to_dict("records"):
            folder = record["name"].strip().replace(" ", "_")
            facts_by_name[folder] = _facts(folder.replace("_", " "), record)
        absent = [name for name in facts_by_name if name not in folders]
        if absent:
            raise InvalidInputError(
                f"{people_csv}: no folder in {people_dir} for {', '.join(absent)}"
            )
        names = sorted(facts_by_name)
    if max_people is not None and len(names) > max_people:
        names = sorted(rng.choice(names, size=max_people, replace=False).tolist())
    return [(folders[name], facts_by_name[name]) for name in names]


def _facts(name: str, record: Mapping[str, str]) -> dict[str, Any]:
    """A person's name, dob (date or None), gender (1/0/NaN) and photo year (0 = unknown)."""
    birth = record.get("birth_date", "").strip()
    if birth and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth):
        raise InvalidInputError(f"{name}: birth_date {birth!r} is not YYYY-MM-DD")
    gender_text = record.get("gender", "").strip().lower()
    genders = {"male": 1.0, "m": 1.0, "1": 1.0, "female": 0.0, "f": 0.0, "0": 0.0, "": np.nan}
    if gender_text not in genders:
        raise InvalidInputError(f"{name}: gender {gender_text!r} is not male/female/blank")
    year = record.get("photo_year", "").strip()
    if year and not year.isdigit():
        raise InvalidInputError(f"{name}: photo_year {year!r} is not a year")
    return {
        "name": name,
        "dob": date.fromisoformat(birth) if birth else None,
        "gender": genders[gender_text],
        "photo_year": int(year) if year else 0,
    }


def _datenums(dob: pd.Series) -> np.ndarray:
    """Birth dates (datetime-like, or MATLAB serial days already) → int32; unknown → 0."""
    if pd.api.types.is_numeric_dtype(dob):
        return dob.fillna(0).to_numpy(dtype=np.int64).astype(np.int32)
    days = pd.to_datetime(dob).to_numpy().astype("datetime64[D]")
    known = ~np.isnat(days)
    serial = np.where(known, days.astype(np.int64) + MATLAB_EPOCH, 0)
    return serial.astype(np.int32)


def _uint16(values: pd.Series, column: str) -> np.ndarray:
    numbers = values.fillna(0).to_numpy(dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() > np.iinfo(np.uint16).max):
        raise ValueError(f"column {column!r} does not fit uint16")
    return numbers.astype(np.uint16)


def _box_cell(box: np.ndarray) -> np.ndarray:
    """A (1,4) cell typed as in the real file: integer boxes as uint8/uint16, others float64."""
    if np.all(np.isfinite(box)) and np.all(box == np.round(box)) and box.min() >= 0:
        if box.max() <= np.iinfo(np.uint8).max:
            return box.astype(np.uint8).reshape(1, 4)
        if box.max() <= np.iinfo(np.uint16).max:
            return box.astype(np.uint16).reshape(1, 4)
    return box.astype(np.float64).reshape(1, 4)


def _cells(values: Iterable[Any]) -> np.ndarray:
    """A (1,N) cell row filled element by element (np.array would make a char matrix or 3-D)."""
    values = list(values)
    cells = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        cells[0, i] = value
    return cells


def multipart_upload(
    data: bytes, filename: str = "photo.jpg", *, field: str = "image"
) -> tuple[bytes, str]:
    """A multipart/form-data body holding one file field, and its Content-Type header value:
    what the page's upload sends, for clients that speak raw HTTP (load tests, benchmarks)."""
    import uuid

    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
