"""The .mat writer against the real wiki.mat, the fixture builder, and the committed sample."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image

from lookalike.fixtures import crop_with_margin, make_imdb_fixture, write_imdb_mat
from lookalike.images import load_image
from lookalike.imdb import FIELDS, IMDB_FIELDS, load_metadata

FILE_NAME = re.compile(r"(\d\d)/nm(\d{7})_rm\d+_\d+-\d+-\d+_\d{4}\.jpg")


@dataclass
class StubFace:
    box: tuple[float, float, float, float]
    confidence: float


def _cell_kinds(cells: np.ndarray) -> set[tuple[str, tuple[int, ...]]]:
    return {(cell.dtype.str, cell.shape) for cell in cells.reshape(-1)}


def test_writer_matches_the_real_wiki_mat(wiki_mat: Path, tmp_path: Path) -> None:
    real = scipy.io.loadmat(wiki_mat)["wiki"][0, 0]
    rows = load_metadata(wiki_mat).iloc[:3000].reset_index(drop=True)
    path = write_imdb_mat(rows, tmp_path / "wiki.mat", variable="wiki")
    mine = scipy.io.loadmat(path)["wiki"][0, 0]

    assert mine.dtype.names == real.dtype.names == FIELDS
    for field in FIELDS:
        assert mine[field].dtype == real[field].dtype, field
        assert mine[field].shape == (1, 3000), field
    for field in ("full_path", "name", "face_location"):
        assert _cell_kinds(mine[field]) <= _cell_kinds(real[field]), field
    boxes = {cell.dtype.str for cell in mine["face_location"][0]}
    assert boxes == {cell.dtype.str for cell in real["face_location"][0]} == {"<f8", "|u1", "<u2"}
    empty = [cell for cell in mine["name"][0] if cell.size == 0]
    assert empty and all(cell.dtype.str == "<U1" and cell.shape == (0,) for cell in empty)
    pd.testing.assert_frame_equal(load_metadata(path), rows, check_exact=True)


def test_imdb_variable_has_sorted_celeb_names_and_1_based_ids(
    sample_dir: Path, tmp_path: Path
) -> None:
    rows = load_metadata(sample_dir / "imdb_crop" / "imdb.mat").iloc[::-7]
    path = write_imdb_mat(rows.reset_index(drop=True), tmp_path / "imdb.mat")
    record = scipy.io.loadmat(path)["imdb"][0, 0]
    assert record.dtype.names == IMDB_FIELDS
    names = [cell.item() for cell in record["celeb_names"][0]]
    assert record["celeb_names"].shape == (1, len(set(rows["name"])))
    assert names == sorted(set(rows["name"]))
    assert record["celeb_id"].dtype == np.uint16
    ids = record["celeb_id"][0].astype(int)
    assert [names[i - 1] for i in ids] == list(rows["name"])
    with pytest.raises(ValueError, match="lack column"):
        write_imdb_mat(rows.drop(columns="gender"), tmp_path / "bad.mat")


def test_crop_with_margin_pads_with_black() -> None:
    image = np.full((100, 80, 3), 200, dtype=np.uint8)
    crop = crop_with_margin(image, (0.0, 0.0, 50.0, 50.0))
    assert crop.shape == (90, 90, 3)  # 1.8 × the box, 20 px of it left of / above the photo
    assert (crop[:20] == 0).all() and (crop[:, :20] == 0).all()
    assert (crop[20:, 20:] == 200).all()


def _stub_people(root: Path) -> None:
    """Two people; each photo's brightness tells the stub what to 'detect'."""
    for person, shades in (("Ann_Example", (10, 20)), ("Bob_Example", (30,))):
        (root / person).mkdir(parents=True)
        for i, shade in enumerate(shades, start=1):
            pixels = np.full((120, 100, 3), shade, dtype=np.uint8)
            Image.fromarray(pixels).save(root / person / f"{person}_{i:04d}.png")


def _stub_detector(image: np.ndarray) -> list[StubFace]:
    shade = int(image[0, 0, 0])
    if shade == 10:  # a small bystander, more confident than the subject
        return [StubFace((70, 0, 80, 10), 0.9999), StubFace((20.0, 30.0, 70.0, 90.0), 0.9)]
    if shade == 20:  # a face at the top-left corner: the margin leaves the photo
        return [StubFace((0.0, 0.0, 40.0, 50.0), 0.99)]
    return []


def test_make_fixture_with_a_stub_detector(tmp_path: Path) -> None:
    _stub_people(tmp_path / "people")
    facts = tmp_path / "people.csv"
    facts.write_text("name,birth_date,gender,photo_year\nAnn Example,1970-08-01,female,2003\n")
    with pytest.raises(ValueError, match="no folder .* for Cy_Nobody"):
        make_imdb_fixture(tmp_path / "people", tmp_path / "x", people_csv=_csv(tmp_path))
    mat = make_imdb_fixture(
        tmp_path / "people", tmp_path / "out", detector=_stub_detector, progress=False
    )
    df = load_metadata(mat).set_index("full_path")
    assert list(df["name"]) == ["Ann Example", "Ann Example", "Bob Example"]
    ann1, ann2, bob = df.iloc[0], df.iloc[1], df.iloc[2]
    # The largest face is the subject; the other face's confidence is the second score.
    assert [ann1[c] for c in ("face_x1", "face_y1", "face_x2", "face_y2")] == [21, 31, 70, 90]
    assert ann1["face_score"] == pytest.approx(np.log(0.9 / 0.1))
    assert ann1["second_face_score"] == pytest.approx(np.log(0.9999 / 0.0001), rel=1e-4)
    assert np.isnan(ann2["second_face_score"])
    assert np.isneginf(bob["face_score"])
    assert [bob[c] for c in ("face_x1", "face_y1", "face_x2", "face_y2")] == [1, 1, 100, 120]
    assert pd.isna(ann1["dob"]) and np.isnan(ann1["gender"]) and pd.isna(ann1["photo_taken"])
    corner = load_image(mat.parent / df.index[1])
    assert corner.shape == (90, 72, 3)
    assert corner[:15, :, :].mean() < 4 and corner[30:, 30:].mean() == pytest.approx(20, abs=4)
    with pytest.raises(ValueError, match="already holds files"):
        make_imdb_fixture(tmp_path / "people", tmp_path / "out", detector=_stub_detector)

    mat = make_imdb_fixture(
        tmp_path / "people",
        tmp_path / "out",
        people_csv=facts,
        detector=_stub_detector,
        overwrite=True,
        progress=False,
    )
    df = load_metadata(mat)
    assert list(df["name"]) == ["Ann Example", "Ann Example"]
    assert (df["gender"] == 0).all() and (df["photo_taken"] == 2003).all()
    assert (df["age"] == 32).all()  # born in August: the photo (1 July) came first
    assert all(FILE_NAME.fullmatch(p) for p in df["full_path"])
    assert df["full_path"].str.contains("_1970-8-1_2003.jpg").all()


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "missing.csv"
    path.write_text("name,birth_date,gender,photo_year\nCy Nobody,,,\n")
    return path


def test_make_fixture_on_real_lfw_photos(lfw_dir: Path, tmp_path: Path) -> None:
    people, sources = tmp_path / "people", []
    for person in ("Aaron_Peirsol", "Abdoulaye_Wade"):
        (people / person).mkdir(parents=True)
        for source in sorted((lfw_dir / person).glob("*.jpg"))[:2]:
            shutil.copyfile(source, people / person / source.name)
            sources.append(source)
    facts = tmp_path / "people.csv"
    facts.write_text(
        "name,birth_date,gender,photo_year\nAaron Peirsol,,male,2003\nAbdoulaye Wade,,,\n"
    )
    mat = make_imdb_fixture(people, tmp_path / "out", people_csv=facts, progress=False)
    assert mat == tmp_path / "out" / "imdb_crop" / "imdb.mat"
    df = load_metadata(mat)
    assert list(df["name"]) == ["Aaron Peirsol"] * 2 + ["Abdoulaye Wade"] * 2
    assert list(df["gender"].iloc[:2]) == [1.0, 1.0] and df["gender"].iloc[2:].isna().all()
    assert (df["face_score"] > 2).all()  # MTCNN's 0.9 cut-off as a logit is 2.2
    for row, source in zip(df.itertuples(), sources, strict=True):
        match = FILE_NAME.fullmatch(row.full_path)
        assert match and int(match[1]) == int(match[2]) % 100
        original, crop = load_image(source), load_image(mat.parent / row.full_path)
        x1, y1, x2, y2 = row.face_x1 - 1, row.face_y1 - 1, row.face_x2, row.face_y2
        w, h = x2 - x1, y2 - y1
        assert crop.shape[1] == pytest.approx(1.8 * w, abs=1.5)
        assert crop.shape[0] == pytest.approx(1.8 * h, abs=1.5)
        # The face sits at about [0.4w, 0.4h, 1.4w, 1.4h] of the crop, pixel for pixel.
        left, top = round(x1 - 0.4 * w), round(y1 - 0.4 * h)
        assert x1 - left == pytest.approx(0.4 * w, abs=0.5)
        assert y1 - top == pytest.approx(0.4 * h, abs=0.5)
        face_in_crop = crop[round(y1) - top : round(y2) - top, round(x1) - left : round(x2) - left]
        face_in_photo = original[round(y1) : round(y2), round(x1) : round(x2)]
        assert np.abs(face_in_crop.astype(int) - face_in_photo).mean() < 6
        other = original[::-1, ::-1][round(y1) : round(y2), round(x1) : round(x2)]
        assert np.abs(face_in_crop.astype(int) - other).mean() > 12  # the check can fail


def test_committed_sample_is_complete(sample_dir: Path) -> None:
    mat = sample_dir / "imdb_crop" / "imdb.mat"
    df = load_metadata(mat)
    assert df.attrs["variable"] == "imdb" and df.attrs["celeb_id_base"] == 1
    assert 90 <= df["celeb_name"].nunique() <= 110
    assert 250 <= len(df) <= 350
    assert all((mat.parent / p).is_file() for p in df["full_path"])
    assert all(FILE_NAME.fullmatch(p) for p in df["full_path"])
    photos_per_person = df.groupby("celeb_name").size()
    assert (photos_per_person >= 2).mean() >= 0.9
    size = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
    assert size <= 4_500_000
    blair = df[df["name"] == "Tony Blair"]
    assert (blair["dob"] == pd.Timestamp("1953-05-06")).all() and (blair["gender"] == 1).all()
    assert (df["face_score"] > 1).mean() > 0.95  # real detections on news photos
    assert (df["face_x2"] <= 250).all() and (df["face_y2"] <= 250).all()  # LFW's 250×250 pixels
