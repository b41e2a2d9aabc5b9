"""The command-line contracts of design.md §3: embed, index build + match, evaluate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike.cli import main


@pytest.fixture(scope="module")
def people_dir(sample_people, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six sample people, three photos each, as folders; plus one photo with no face."""
    root = tmp_path_factory.mktemp("people")
    for name, crops in sample_people[:6]:
        folder = root / name.replace(" ", "_")
        folder.mkdir()
        for number, crop in enumerate(crops):
            shutil.copy(crop, folder / f"{number}.jpg")
    import cv2

    texture = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    (root / "Nobody").mkdir()
    cv2.imwrite(str(root / "Nobody" / "noise.png"), texture)
    (root / "Nobody" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_embed_writes_the_documented_npz(people_dir: Path, tmp_path: Path):
    out = tmp_path / "embeddings.npz"
    assert main(["embed", "--images-dir", str(people_dir), "--out", str(out)]) == 0
    saved = np.load(out)
    paths = list(saved["paths"])
    assert paths == sorted(paths) and "Nobody/noise.png" in paths and "Nobody/broken.jpg" in paths
    embeddings, found = saved["embeddings"], saved["face_found"]
    assert embeddings.dtype == np.float32 and embeddings.shape == (len(paths), 128)
    assert found.dtype == bool and found.sum() == len(paths) - 2
    np.testing.assert_allclose(np.linalg.norm(embeddings[found], axis=1), 1.0, atol=1e-5)
    assert not embeddings[~found].any()  # no face: a zero row


def test_index_build_then_match_json(people_dir: Path, tmp_path: Path, capsys):
    index = tmp_path / "index"
    gallery = tmp_path / "gallery"
    shutil.copytree(people_dir, gallery, ignore=shutil.ignore_patterns("2.jpg"))
    assert main(["index", "build", "--images-dir", str(gallery), "--out", str(index)]) == 0
    assert "6 celebrities" in capsys.readouterr().out
    # Six people with two photos each are too few to calibrate on: the model's reference is used.
    manifest = json.loads((index / "index.json").read_text())
    assert "reference" in manifest["calibration"]["fitted_on"]

    query = next(people_dir.glob("*/2.jpg"))
    assert main(["match", str(query), "--index", str(index), "--top-k", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    best = result["faces"][0]["matches"][0]
    assert best["name"].replace(" ", "_") == query.parent.name
    assert len(result["faces"][0]["matches"]) == 3

    assert main(["match", str(query), "--index", str(index)]) == 0
    assert "score" in capsys.readouterr().out

    noise = people_dir / "Nobody" / "noise.png"
    assert main(["match", str(noise), "--index", str(index)]) == 2
    assert "No face found" in capsys.readouterr().err


def test_evaluate_writes_report_and_plots(people_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "report"
    code = main(["evaluate", "all", "--images-dir", str(people_dir), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["missed_faces"] == 2
    # The six people plus "Nobody" (two files, no face in either: a query that must miss).
    assert report["identification"]["queries"] == 7
    assert report["identification"]["queries_without_face"] == 1
    assert report["identification"]["per_photo"]["top1"] >= 5 / 7
    assert (out / "roc.png").stat().st_size > 0 and (out / "cmc.png").stat().st_size > 0
    assert "top-1" in capsys.readouterr().out


def test_user_errors_are_one_line_not_a_traceback(tmp_path: Path, capsys):
    assert main(["embed", "--images-dir", str(tmp_path / "missing"), "--out", "x.npz"]) == 2
    error = capsys.readouterr().err
    assert "image folder not found" in error and "Traceback" not in error
    assert main(["match", str(tmp_path / "photo.jpg"), "--index", str(tmp_path)]) == 2
    assert "no index" in capsys.readouterr().err


def test_user_errors_keep_their_old_base_class():
    from lookalike.errors import LookalikeError
    from lookalike.images import ImageError
    from lookalike.imdb import MetadataError
    from lookalike.index import IndexFormatError
    from lookalike.model_registry import ModelInstallError

    for error, base in (
        (ImageError, ValueError),
        (MetadataError, ValueError),
        (IndexFormatError, ValueError),
        (ModelInstallError, RuntimeError),
    ):
        assert issubclass(error, LookalikeError) and issubclass(error, base)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["gallery", "imdb", "--workers", "0"], "--workers"),
        (["index", "build", "--imdb", "x", "--out", "y", "--ray", "--workers", "0"], "--workers"),
        (["data", "make-fixture", "--people-dir", "x", "--max-people", "0"], "--max-people"),
    ],
)
def test_a_count_below_one_is_refused_before_any_work(argv: list[str], flag: str, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(f"{flag} must be at least 1, got 0") and "\n" not in error


def test_a_bad_config_value_is_one_line(capsys):
    code = main(["train", "--preset", "tiny", "--set", "data.test_fraction=2"])
    error = capsys.readouterr().err
    assert code == 2 and "data.test_fraction must be in [0, 1)" in error
    assert "Traceback" not in error


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch):
    """A plain ValueError is ours, not the user's: it is not reduced to one line."""
    from lookalike import cleaning

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(cleaning, "validation_report", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        main(["data", "validate"])
