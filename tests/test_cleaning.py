"""Validation report, filters and content-hash dedup; the ``lookalike data`` commands."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lookalike import cleaning
from lookalike.cli import main
from lookalike.imdb import load_metadata


@pytest.fixture(scope="module")
def wiki(wiki_mat: Path) -> pd.DataFrame:
    return load_metadata(wiki_mat)


def _rows() -> pd.DataFrame:
    """One row per problem, plus one clean row (index 0)."""
    df = pd.DataFrame(
        {
            "full_path": [f"00/{i}.jpg" for i in range(7)],
            "name": ["Ann", "Bob", "", "Cy", "Di", "Ed", "Flo"],
            "face_x1": [10.0, 1, 10, 10, 10, 10, 10],
            "face_y1": [10.0, 1, 10, 10, 10, 10, 10],
            "face_x2": [90.0, 1, 90, 90, 90, 90, 90],
            "face_y2": [90.0, 1, 90, 90, 90, 90, 90],
            "face_score": [3.0, -np.inf, 3.0, 0.5, 3.0, 3.0, 3.0],
            "second_face_score": [np.nan, np.nan, np.nan, np.nan, 1.2, np.nan, np.nan],
            "gender": [1.0, 0.0, 1.0, 0.0, 1.0, np.nan, 0.0],
        }
    )
    df["age"] = pd.array([30, 30, 30, 30, 30, 30, None], dtype="Int64")
    return df


def test_wiki_report_counts_every_problem(wiki: pd.DataFrame) -> None:
    report = cleaning.validation_report(wiki)
    assert report["total_rows"] == 62_328
    assert report["no_face"] == 18_016
    assert report["second_face"] == 4_096
    assert report["low_score_0_to_1"] == 1_319
    assert report["missing_gender"] == 2_643
    assert report["empty_name"] == 124
    assert report["birth_year_before_1900"] == 1_448
    assert report["age_negative"] == 1_288
    assert report["age_over_100"] == 493
    assert report["invalid_dob"] == 0
    assert 0 < report["broken_box"] <= report["no_face"]  # [1 1 1 1] only where no face
    assert cleaning.validation_report(wiki, min_score=3.0)["below_min_score"] > 1_319


def test_standard_filters_keep_38138_wiki_rows(wiki: pd.DataFrame) -> None:
    kept, steps = cleaning.apply_filters(wiki, cleaning.standard_filters())
    assert len(kept) == 38_138
    assert [step["filter"] for step in steps] == [
        "has_face",
        "min_face_score(1)",
        "single_face",
        "age_in_range(0, 100)",
        "gender_known",
    ]
    assert steps[0]["removed"] == 18_016
    assert sum(step["removed"] for step in steps) == len(wiki) - 38_138
    assert steps[-1]["remaining"] == 38_138


def test_each_filter_removes_its_own_problem() -> None:
    df = _rows()
    assert list(cleaning.has_face(df)["name"]) == ["Ann", "", "Cy", "Di", "Ed", "Flo"]
    assert "Bob" not in set(cleaning.not_broken(df)["name"])
    assert "Cy" not in set(cleaning.min_face_score(1.0)(df)["name"])
    assert "Di" not in set(cleaning.single_face(df)["name"])
    assert "Ed" not in set(cleaning.gender_known(df)["name"])
    assert "" not in set(cleaning.has_name(df)["name"])
    assert "Flo" not in set(cleaning.age_in_range(0, 100)(df)["name"])  # unknown age drops
    assert len(cleaning.age_in_range(31, 40)(df)) == 0
    with pytest.raises(ValueError, match="age range is empty"):
        cleaning.age_in_range(50, 10)
    kept, steps = cleaning.apply_filters(df, [cleaning.has_name, *cleaning.standard_filters()])
    assert list(kept["name"]) == ["Ann"]
    assert [step["removed"] for step in steps] == [1, 1, 1, 1, 1, 1]


def _copy(source: Path, root: Path, relative: str) -> None:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, root / relative)


def test_dedup_drops_images_filed_under_two_names(sample_dir: Path, tmp_path: Path) -> None:
    crops = sorted((sample_dir / "imdb_crop").glob("*/*.jpg"))[:3]
    if len(crops) < 3:
        pytest.skip("the committed sample is absent")
    first, second, third = crops
    _copy(first, tmp_path, "01/a.jpg")
    _copy(first, tmp_path, "02/b.jpg")  # same bytes, another person: unusable
    _copy(second, tmp_path, "03/c.jpg")
    _copy(second, tmp_path, "04/d.jpg")  # same bytes, same person: keep one
    _copy(third, tmp_path, "05/e.jpg")
    df = pd.DataFrame(
        {
            "full_path": [
                "01/a.jpg",
                "02/b.jpg",
                "03/c.jpg",
                "04/d.jpg",
                "05/e.jpg",
                "06/gone.jpg",
            ],
            "name": ["Ann", "Bob", "Cy", "Cy", "Di", "Ed"],
        }
    )
    hashed = cleaning.hash_images(df, tmp_path, progress=False)
    assert hashed["content_hash"].iloc[0] == hashlib.sha1(first.read_bytes()).hexdigest()
    assert hashed["content_hash"].iloc[0] == hashed["content_hash"].iloc[1]
    assert pd.isna(hashed["content_hash"].iloc[5])  # missing file tolerated
    kept = cleaning.drop_conflicting_duplicates(hashed)
    assert list(kept["full_path"]) == ["03/c.jpg", "05/e.jpg", "06/gone.jpg"]
    with pytest.raises(ValueError, match="run hash_images first"):
        cleaning.drop_conflicting_duplicates(df)


def test_cli_validate_json(wiki_mat: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "validate", "--mat", str(wiki_mat), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kept"] == 38_138
    assert result["report"]["no_face"] == 18_016


def test_cli_validate_table_on_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "validate"]) == 0  # default: the committed sample
    out = capsys.readouterr().out
    assert "(imdb, " in out and "min_face_score(1)" in out
    # The sample: 300 photos of 100 people (data/README.md); the filters drop every photo of 3.
    assert "distinct celebrities: 100 in all rows, 97 after the filters" in out


def test_distinct_celebrities_by_id_else_by_name() -> None:
    imdb_rows = pd.DataFrame({"celeb_id": [1, 1, 2], "name": ["A", "A b", "B"]})
    assert cleaning.distinct_celebrities(imdb_rows) == 2  # ids, not the noisy names
    wiki_rows = pd.DataFrame({"name": ["A", "", "B", "A", ""]})
    assert cleaning.distinct_celebrities(wiki_rows) == 2  # an empty name is nobody


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "validate", "--mat", str(tmp_path / "none.mat")]) == 2
    assert "no such file" in capsys.readouterr().err
    args = ["data", "make-fixture", "--people-dir", str(tmp_path), "--out", str(tmp_path)]
    assert main([*args, "--max-photos", "0"]) == 2
    assert "--max-photos must be at least 1" in capsys.readouterr().err


def test_cli_download_passes_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import lookalike.download

    calls = []

    def fake(name: str, dest: Path, **options: object) -> Path:
        calls.append((name, dest, options))
        return dest / "wiki_crop"

    monkeypatch.setattr(lookalike.download, "download_dataset", fake)
    argv = ["data", "download", "wiki", "--dest", str(tmp_path), "--base-url", "http://mirror/"]
    assert main([*argv, "--no-extract"]) == 0
    assert calls == [("wiki", tmp_path, {"base_url": "http://mirror/", "extract": False})]
