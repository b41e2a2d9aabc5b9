"""Read the IMDB-WIKI metadata file (``imdb.mat`` or ``wiki.mat``) into a clean DataFrame.

The file is a MATLAB v5 struct of 1×N rows (see ``shared/docs/imdb-format.md``). Loading is
vectorised: the 460,723-row ``imdb.mat`` is parsed with a few passes over its object arrays and
NumPy arithmetic, never a per-row pandas operation.

Columns of the result, one row per photo:

- ``full_path`` (str): path under ``imdb_crop/`` (or ``wiki_crop/``);
- ``name`` (str, ``""`` when the cell is empty);
- ``celeb_id`` (int, as stored) and ``celeb_name`` (str) — ``imdb.mat`` only; the 1- or 0-based
  convention of ``celeb_id`` is checked against ``name`` on load (``df.attrs["celeb_id_base"]``);
- ``dob`` (datetime64, NaT for serial days below 367), ``birth_year`` (Int64);
- ``photo_taken`` (Int64; 0 in the file means unknown and loads as <NA>);
- ``age`` (Int64): the authors' rule, photo taken on 1 July;
- ``gender`` (float: 0 female, 1 male, NaN unknown);
- ``face_x1``, ``face_y1``, ``face_x2``, ``face_y2`` (float): the box as stored, 1-based
  ORIGINAL-photo pixels (the whole photo ``[1 1 W H]`` when no face was found);
- ``face_score`` (float, ``-inf`` when no face), ``second_face_score`` (float, NaN when none).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
from scipy.io.matlab import MatReadError

from lookalike.errors import LookalikeError

# Field order in the real files; some public loaders index fields by position.
FIELDS = (
    "dob",
    "photo_taken",
    "full_path",
    "gender",
    "name",
    "face_location",
    "face_score",
    "second_face_score",
)
IMDB_FIELDS = (*FIELDS, "celeb_names", "celeb_id")
VARIABLES = ("imdb", "wiki")

# MATLAB serial day number of 1970-01-01; serial days below 367 fall before year 1 (invalid).
MATLAB_EPOCH = 719529
MIN_VALID_DATENUM = 367

BOX_COLUMNS = ("face_x1", "face_y1", "face_x2", "face_y2")


class MetadataError(LookalikeError, ValueError):
    """The metadata file is missing, unreadable or not laid out like imdb.mat / wiki.mat."""


def load_metadata(path: str | Path) -> pd.DataFrame:
    """Load ``imdb.mat`` or ``wiki.mat`` into a DataFrame with one row per photo."""
    path = Path(path)
    try:
        return _load(path)
    except MetadataError as error:  # every message names the file, once
        raise MetadataError(f"{path}: {error}") from error.__cause__


def _load(path: Path) -> pd.DataFrame:
    variable, record = _read_struct(path)
    expected = IMDB_FIELDS if variable == "imdb" else FIELDS
    present = set(record.dtype.names or ())
    missing = [field for field in expected if field not in present]
    if missing:
        raise MetadataError(f"struct {variable!r} lacks field(s) {', '.join(missing)}")

    rows = {field: _row(record[field], field) for field in expected if field != "celeb_names"}
    lengths = {field: len(values) for field, values in rows.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{field}={n}" for field, n in lengths.items())
        raise MetadataError(f"field lengths differ ({detail})")

    full_path = _strings(rows["full_path"], "full_path", allow_empty=False)
    name = _strings(rows["name"], "name", allow_empty=True)
    boxes = _boxes(rows["face_location"])
    dob, birth_year, birth_month = _dates(_numeric(rows["dob"], "dob"))
    photo_taken = _numeric(rows["photo_taken"], "photo_taken").astype(np.int64)

    # Ages only where both dates are known; int64 arithmetic (uint16 wraps under NumPy 2).
    known = ~birth_year.mask & (photo_taken > 0)
    age = photo_taken - birth_year.data - (birth_month >= 7)

    columns: dict[str, object] = {"full_path": full_path, "name": name}
    attrs: dict[str, object] = {"source": str(path), "variable": variable}
    if variable == "imdb":
        celeb_names = _strings(
            _row(record["celeb_names"], "celeb_names"), "celeb_names", allow_empty=False
        )
        celeb_id = _numeric(rows["celeb_id"], "celeb_id").astype(np.int64)
        base = _celeb_id_base(celeb_id, name, celeb_names)
        columns["celeb_id"] = celeb_id
        columns["celeb_name"] = np.asarray(celeb_names, dtype=object)[celeb_id - base]
        attrs["celeb_id_base"] = base
        attrs["n_celebrities"] = len(celeb_names)

    columns.update(
        dob=pd.Series(dob),
        birth_year=pd.arrays.IntegerArray(birth_year.data, birth_year.mask.copy()),
        photo_taken=pd.arrays.IntegerArray(photo_taken, photo_taken <= 0),
        age=pd.arrays.IntegerArray(age.astype(np.int64), ~known),
        gender=_numeric(rows["gender"], "gender").astype(np.float64),
    )
    for i, column in enumerate(BOX_COLUMNS):
        columns[column] = boxes[:, i]
    columns["face_score"] = _numeric(rows["face_score"], "face_score").astype(np.float64)
    columns["second_face_score"] = _numeric(rows["second_face_score"], "second_face_score").astype(
        np.float64
    )
    df = pd.DataFrame(columns)
    df.attrs.update(attrs)
    return df


def _read_struct(path: Path) -> tuple[str, np.void]:
    """Return (variable name, the 1×1 struct record) from a v5 MAT-file."""
    if not path.is_file():
        raise MetadataError("no such file")
    try:
        contents = scipy.io.loadmat(path, variable_names=VARIABLES)
    except NotImplementedError as error:  # scipy's answer to v7.3 (HDF5) files
        raise MetadataError("MATLAB v7.3/HDF5 file, expected a v5 MAT-file") from error
    except (MatReadError, ValueError, TypeError, OSError, EOFError, zlib.error) as error:
        raise MetadataError(f"not a readable MATLAB v5 file or truncated ({error})") from error
    found = [name for name in VARIABLES if name in contents]
    if not found:
        try:
            others = [entry[0] for entry in scipy.io.whosmat(path)]
        except Exception:  # the listing only decorates the message
            others = []
        raise MetadataError(
            f"no variable named 'imdb' or 'wiki' (found: {', '.join(others) or 'none'})"
        )
    value = contents[found[0]]
    if not isinstance(value, np.ndarray) or value.dtype.names is None or value.size != 1:
        raise MetadataError(f"variable {found[0]!r} is not a 1×1 struct")
    return found[0], value.reshape(-1)[0]


def _row(value: object, field: str) -> np.ndarray:
    """A field's 1×N (or N×1) array as a flat 1-D array."""
    if (
        not isinstance(value, np.ndarray)
        or value.ndim > 2
        or (value.ndim == 2 and 1 not in value.shape)
    ):
        shape = getattr(value, "shape", type(value).__name__)
        raise MetadataError(f"field {field!r} is not a 1×N row (shape {shape})")
    return value.reshape(-1)


def _numeric(values: np.ndarray, field: str) -> np.ndarray:
    if values.dtype.kind not in "iufb":
        raise MetadataError(f"field {field!r} should be numeric, found dtype {values.dtype}")
    return values


def _strings(cells: np.ndarray, field: str, allow_empty: bool) -> list[str]:
    """Each cell a (1,) str array (or (0,) when empty and allowed) → a list of str."""
    if cells.dtype != object:
        raise MetadataError(f"field {field!r} should be a cell row, found dtype {cells.dtype}")
    try:
        shapes = [cell.shape for cell in cells]
    except AttributeError as error:
        raise MetadataError(f"field {field!r} holds a cell that is not an array") from error
    empty = [shape == (0,) for shape in shapes] if allow_empty else [False] * len(shapes)
    for i, (shape, is_empty) in enumerate(zip(shapes, empty, strict=True)):
        if shape != (1,) and not is_empty:
            raise MetadataError(f"field {field!r}: cell {i} has shape {shape}, expected one string")
    values = ["" if is_empty else cell.item() for cell, is_empty in zip(cells, empty, strict=True)]
    bad = next((i for i, value in enumerate(values) if not isinstance(value, str)), None)
    if bad is not None:
        raise MetadataError(f"field {field!r}: cell {bad} is not text ({cells[bad].dtype})")
    return values


def _boxes(cells: np.ndarray) -> np.ndarray:
    """face_location cells, each (1,4) of float64/uint8/uint16 → an (N,4) float64 array."""
    if cells.dtype != object:
        raise MetadataError(f"field 'face_location' should be a cell row, found {cells.dtype}")
    try:
        bad = next((i for i, cell in enumerate(cells) if cell.shape != (1, 4)), None)
    except AttributeError as error:
        raise MetadataError("field 'face_location' holds a cell that is not an array") from error
    if bad is not None:
        raise MetadataError(
            f"field 'face_location': cell {bad} has shape {cells[bad].shape}, expected (1, 4)"
        )
    if len(cells) == 0:
        return np.empty((0, 4))
    # Concatenation promotes the mixed cell dtypes; float64 avoids any uint wrap-around later.
    boxes = np.concatenate(cells.tolist(), axis=0)
    if boxes.dtype.kind not in "iuf":
        raise MetadataError(f"field 'face_location' should hold numbers, found {boxes.dtype}")
    return boxes.astype(np.float64)


def _dates(datenum: np.ndarray) -> tuple[np.ndarray, np.ma.MaskedArray, np.ndarray]:
    """MATLAB serial days → (datetime64[D] with NaT, masked birth year, birth month)."""
    serial = datenum.astype(np.float64)
    valid = np.isfinite(serial) & (serial >= MIN_VALID_DATENUM)
    days = np.where(valid, np.floor(np.where(valid, serial, 0)) - MATLAB_EPOCH, 0).astype(np.int64)
    dates = days.astype("datetime64[D]")
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dates[~valid] = np.datetime64("NaT")
    return dates, np.ma.MaskedArray(year, mask=~valid), month


def _celeb_id_base(celeb_id: np.ndarray, name: list[str], celeb_names: list[str]) -> int:
    """Find whether celeb_id counts from 1 or 0 by matching names; fail if neither fits."""
    names = np.asarray(name, dtype=object)
    table = np.asarray(celeb_names, dtype=object)
    named = names != ""
    mismatches = {}
    for base in (1, 0):
        index = celeb_id - base
        if index.min(initial=0) < 0 or index.max(initial=0) >= len(table):
            mismatches[base] = "ids out of range"
            continue
        wrong = int(np.count_nonzero(table[index[named]] != names[named]))
        if wrong == 0:
            return base
        mismatches[base] = f"{wrong} of {int(named.sum())} named rows disagree"
    raise MetadataError(
        f"celeb_id does not index celeb_names (1-based: {mismatches[1]}; 0-based: {mismatches[0]})"
    )
