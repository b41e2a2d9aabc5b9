"""load_metadata against the real wiki.mat, the 1 July age rule, and malformed files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from lookalike.fixtures import write_imdb_mat
from lookalike.imdb import MetadataError, load_metadata


@pytest.fixture(scope="module")
def wiki(wiki_mat: Path) -> pd.DataFrame:
    return load_metadata(wiki_mat)


def _records(n: int = 3) -> pd.DataFrame:
    """A few valid rows, as load_metadata would return them."""
    return pd.DataFrame(
        {
            "full_path": [f"0{i}/nm000000{i}_rm1_1980-6-30_2000.jpg" for i in range(n)],
            "name": [f"Person {chr(65 + i)}" for i in range(n)],
            "dob": pd.to_datetime(["1980-06-30"] * n),
            "photo_taken": [2000] * n,
            "gender": [1.0] * n,
            "face_x1": [10.5] * n,
            "face_y1": [20.0] * n,
            "face_x2": [110.0] * n,
            "face_y2": [120.0] * n,
            "face_score": [3.0] * n,
            "second_face_score": [np.nan] * n,
        }
    )


def _raw_struct(path: Path, variable: str) -> dict[str, np.ndarray]:
    record = scipy.io.loadmat(path)[variable][0, 0]
    return {field: record[field] for field in record.dtype.names}


def _rewrite(tmp_path: Path, variable: str = "wiki", **changes: object) -> Path:
    """A valid file, then its struct edited (``None`` drops a field) and saved again."""
    good = write_imdb_mat(_records(), tmp_path / "good.mat", variable)
    struct = _raw_struct(good, variable)
    for field, value in changes.items():
        if value is None:
            del struct[field]
        else:
            struct[field] = value
    bad = tmp_path / "bad.mat"
    scipy.io.savemat(bad, {variable: struct})
    return bad


def test_wiki_counts_match_the_verified_figures(wiki: pd.DataFrame) -> None:
    assert len(wiki) == 62_328
    assert wiki.attrs["variable"] == "wiki"
    assert "celeb_id" not in wiki.columns
    assert np.isneginf(wiki["face_score"]).sum() == 18_016
    assert wiki["second_face_score"].notna().sum() == 4_096
    assert wiki["face_score"].between(0, 1, inclusive="neither").sum() == 1_319
    assert wiki["gender"].isna().sum() == 2_643
    assert (wiki["name"] == "").sum() == 124
    assert (wiki["birth_year"] < 1900).sum() == 1_448
    assert (wiki["age"] < 0).sum() == 1_288
    assert (wiki["age"] > 100).sum() == 493


def test_wiki_columns_and_types(wiki: pd.DataFrame) -> None:
    assert list(wiki.columns[:2]) == ["full_path", "name"]
    assert str(wiki["birth_year"].dtype) == "Int64"
    assert str(wiki["age"].dtype) == "Int64"
    assert wiki["dob"].dtype.kind == "M"
    assert wiki["face_x1"].dtype == np.float64
    first = wiki.iloc[0]
    assert first["name"] == "Sami Jauhojärvi"
    assert first["full_path"] == "17/10000217_1981-05-05_2009.jpg"
    assert first["dob"] == pd.Timestamp("1981-05-05")
    assert (first["photo_taken"], first["age"]) == (2009, 28)
    # No face: the box is the whole photo, 1-based, integer-valued.
    no_face = wiki[np.isneginf(wiki["face_score"])]
    assert (no_face[["face_x1", "face_y1"]] == 1).all().all()
    assert (no_face["face_x2"] % 1 == 0).all()


def test_dates_and_ages_agree_with_the_scalar_formula(wiki: pd.DataFrame, wiki_mat: Path) -> None:
    raw = scipy.io.loadmat(wiki_mat)["wiki"][0, 0]
    rows = np.random.default_rng(0).choice(len(wiki), size=500, replace=False)
    for i in rows:
        born = date.fromordinal(int(raw["dob"][0, i]) - 366)
        taken = int(raw["photo_taken"][0, i])
        assert wiki["dob"].iloc[i].date() == born
        assert wiki["age"].iloc[i] == taken - born.year - (1 if born.month >= 7 else 0)


def test_age_rule_and_unknown_dates(tmp_path: Path) -> None:
    df = _records(4)
    df["dob"] = [719529 + 3833, 719529 + 3834, 100, 719529]  # 1980-06-30, 1980-07-01, invalid
    df["photo_taken"] = [2000, 2000, 2000, 0]
    loaded = load_metadata(write_imdb_mat(df, tmp_path / "w.mat", "wiki"))
    assert loaded["dob"].iloc[0] == pd.Timestamp("1980-06-30")
    assert loaded["age"].iloc[0] == 20
    assert loaded["age"].iloc[1] == 19  # born after 1 July: one year less
    assert pd.isna(loaded["dob"].iloc[2]) and pd.isna(loaded["birth_year"].iloc[2])
    assert pd.isna(loaded["age"].iloc[2])
    assert pd.isna(loaded["photo_taken"].iloc[3]) and pd.isna(loaded["age"].iloc[3])


def test_imdb_celeb_id_base_is_checked(tmp_path: Path) -> None:
    df = _records(3)
    df["name"] = ["Person C", "", "Person B"]  # an empty name still has its celeb_id
    df["celeb_name"] = ["Person C", "Person A", "Person B"]
    path = write_imdb_mat(df, tmp_path / "imdb.mat")
    loaded = load_metadata(path)
    assert loaded.attrs["celeb_id_base"] == 1
    assert list(loaded["celeb_id"]) == [3, 1, 2]
    assert list(loaded["celeb_name"]) == ["Person C", "Person A", "Person B"]

    struct = _raw_struct(path, "imdb")
    struct["celeb_id"] = (struct["celeb_id"] - 1).astype(np.uint16)
    scipy.io.savemat(tmp_path / "zero.mat", {"imdb": struct})
    assert load_metadata(tmp_path / "zero.mat").attrs["celeb_id_base"] == 0

    struct["celeb_id"] = np.array([[2, 3, 1]], dtype=np.uint16)  # fits neither base
    scipy.io.savemat(tmp_path / "wrong.mat", {"imdb": struct})
    with pytest.raises(MetadataError, match="celeb_id does not index celeb_names"):
        load_metadata(tmp_path / "wrong.mat")


def _cells(values: list) -> np.ndarray:
    """A MATLAB cell row: a (1, N) object array filled element by element."""
    row = np.empty((1, len(values)), dtype=object)
    for i, value in enumerate(values):
        row[0, i] = value
    return row


def _datenum(day: date) -> int:
    """MATLAB's serial day number, by the documented formula (not the loader's)."""
    return day.toordinal() + 366


def test_hand_built_imdb_mat_is_read_right(tmp_path: Path) -> None:
    """A file laid out like the real ``imdb.mat`` (``shared/docs/imdb-format.md``), written with
    ``scipy.io.savemat`` cell by cell here, not by the project's own writer."""
    celeb_names = ["Ann Actor", "Bo Director", "Nobody In Rows", "Zoë Ödegaard"]  # sorted, all
    paths = [f"{i:02d}/nm000000{i}_rm{1000 + i}_1981-5-5_2009.jpg" for i in range(1, 6)]
    struct = {  # the real field order
        "dob": np.array(
            [[_datenum(date(1981, 5, 5)), _datenum(date(1950, 8, 20)), 12, 0, 710000]], np.int32
        ),
        "photo_taken": np.array([[2009, 2000, 2005, 2011, 0]], np.uint16),
        "full_path": _cells(paths),
        "gender": np.array([[1.0, np.nan, 0.0, 0.0, 1.0]]),
        "name": _cells(["Ann Actor", "", "Zoë Ödegaard", "Bo Director", "Ann Actor"]),
        "face_location": _cells(
            [
                np.array([[10.5, 20.25, 110.75, 130.0]]),  # float64
                np.array([[3, 4, 200, 250]], np.uint8),  # uint8 cell
                np.array([[1, 1, 640, 480]], np.uint16),  # no face: the whole photo, uint16
                np.array([[1, 1, 1, 1]], np.uint8),  # a broken download
                np.array([[40.0, 30.0, 90.0, 85.0]]),
            ]
        ),
        "face_score": np.array([[4.25, 1.5, -np.inf, -np.inf, 2.0]]),
        "second_face_score": np.array([[np.nan, 3.5, np.nan, np.nan, np.nan]]),
        "celeb_names": _cells(celeb_names),
        "celeb_id": np.array([[1, 2, 4, 2, 1]], np.uint16),  # 1-based; row 1's name is empty
    }
    path = tmp_path / "imdb.mat"
    scipy.io.savemat(path, {"imdb": struct}, do_compression=True)
    # The file reads back with the real file's types (as the format notes list them).
    raw = scipy.io.loadmat(path)["imdb"][0, 0]
    assert raw.dtype.names == tuple(struct)
    assert (raw["dob"].dtype, raw["photo_taken"].dtype) == (np.int32, np.uint16)
    assert raw["name"][0, 1].shape == (0,)
    assert [cell.dtype for cell in raw["face_location"][0][:3]] == [np.float64, np.uint8, np.uint16]

    loaded = load_metadata(path)

    assert loaded.attrs["variable"] == "imdb" and loaded.attrs["celeb_id_base"] == 1
    assert loaded.attrs["n_celebrities"] == 4
    assert list(loaded["full_path"]) == paths
    assert list(loaded["name"]) == ["Ann Actor", "", "Zoë Ödegaard", "Bo Director", "Ann Actor"]
    assert list(loaded["celeb_id"]) == [1, 2, 4, 2, 1]
    assert list(loaded["celeb_name"]) == [
        "Ann Actor",
        "Bo Director",  # the empty name's identity comes from celeb_id
        "Zoë Ödegaard",
        "Bo Director",
        "Ann Actor",
    ]
    assert list(loaded["dob"][:2]) == [pd.Timestamp("1981-05-05"), pd.Timestamp("1950-08-20")]
    assert loaded["dob"][2:4].isna().all()  # serial days 12 and 0: before year 1
    assert loaded["dob"].iloc[4] == pd.Timestamp(date.fromordinal(710000 - 366))
    assert loaded["birth_year"].tolist()[:2] == [1981, 1950]
    # Photo taken on 1 July: born in May → 28 in 2009; born in August → 49 in 2000.
    assert loaded["age"].tolist()[:2] == [28, 49]
    assert loaded["age"][2:].isna().all()  # unknown birth date, or photo year 0
    assert loaded["photo_taken"].tolist()[:4] == [2009, 2000, 2005, 2011]
    assert pd.isna(loaded["photo_taken"].iloc[4])
    np.testing.assert_array_equal(loaded["gender"], [1.0, np.nan, 0.0, 0.0, 1.0])
    boxes = loaded[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy()
    assert boxes.dtype == np.float64
    np.testing.assert_array_equal(
        boxes,
        [
            [10.5, 20.25, 110.75, 130.0],
            [3, 4, 200, 250],
            [1, 1, 640, 480],
            [1, 1, 1, 1],
            [40, 30, 90, 85],
        ],
    )
    assert np.isneginf(loaded["face_score"]).tolist() == [False, False, True, True, False]
    assert loaded["second_face_score"].isna().tolist() == [True, False, True, True, True]
    assert loaded["second_face_score"].iloc[1] == 3.5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="no such file"):
        load_metadata(tmp_path / "absent.mat")


def test_not_a_mat_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.mat"
    path.write_text("name,dob\nsomeone,1980\n" * 20)
    with pytest.raises(MetadataError, match="not a readable MATLAB v5 file"):
        load_metadata(path)


def test_truncated_file(tmp_path: Path) -> None:
    good = write_imdb_mat(_records(50), tmp_path / "good.mat", "wiki")
    cut = tmp_path / "cut.mat"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MetadataError, match="truncated"):
        load_metadata(cut)


def test_wrong_variable_name(tmp_path: Path) -> None:
    good = write_imdb_mat(_records(), tmp_path / "good.mat", "wiki")
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"celebs": _raw_struct(good, "wiki")})
    with pytest.raises(MetadataError, match="no variable named 'imdb' or 'wiki'.*celebs"):
        load_metadata(path)


def test_missing_field(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="lacks field.*face_score"):
        load_metadata(_rewrite(tmp_path, face_score=None))
    with pytest.raises(MetadataError, match="struct 'imdb' lacks field.*celeb_names"):
        load_metadata(_rewrite(tmp_path, variable="imdb", celeb_names=None))


def test_field_lengths_differ(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="field lengths differ.*gender=2"):
        load_metadata(_rewrite(tmp_path, gender=np.array([[1.0, 0.0]])))


def test_face_location_cell_of_wrong_shape(tmp_path: Path) -> None:
    cells = np.empty((1, 3), dtype=object)
    for i in range(3):
        cells[0, i] = np.array([[1.0, 2.0, 3.0, 4.0]])
    cells[0, 1] = np.array([[1.0, 2.0, 3.0]])
    with pytest.raises(MetadataError, match=r"face_location': cell 1 has shape \(1, 3\)"):
        load_metadata(_rewrite(tmp_path, face_location=cells))


def test_name_cell_that_is_a_number(tmp_path: Path) -> None:
    cells = np.empty((1, 3), dtype=object)
    for i in range(3):
        cells[0, i] = "Someone"
    cells[0, 2] = np.array([7.0])
    # A number is never a (1,) cell once saved, so the shape check names the problem.
    with pytest.raises(MetadataError, match=r"'name': cell 2 has shape \(1, 1\)"):
        load_metadata(_rewrite(tmp_path, name=cells))
