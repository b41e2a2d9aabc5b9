"""The public verbs of ``import lookalike``: each does what its docstring says, on real data."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lookalike


def test_every_public_verb_has_a_docstring_and_importing_the_package_is_light() -> None:
    for name in lookalike.__all__:
        assert getattr(lookalike, name).__doc__, f"lookalike.{name} has no docstring"
    # The verbs import their modules (and TensorFlow) only when called.
    code = "import sys, lookalike; print(sorted({'tensorflow', 'keras', 'cv2'} & set(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_importing_a_module_does_not_shadow_a_verb() -> None:
    # A submodule import sets an attribute of the package: no verb may share a module's name.
    for name in lookalike.__all__:
        try:
            importlib.import_module(f"lookalike.{name}")
        except ModuleNotFoundError:
            continue
        pytest.fail(f"lookalike.{name} is both a verb and a module")


def test_metadata_and_cleaning(sample_dir: Path) -> None:
    df = lookalike.load_metadata(sample_dir / "imdb_crop" / "imdb.mat")
    clean, steps = lookalike.clean_metadata(df)
    assert len(df) == 300 and 0 < len(clean) < len(df)
    removed = sum(step["removed"] for step in steps)
    assert removed == len(df) - len(clean)


def test_find_faces_in_a_group_photo(assets: Path) -> None:
    faces = lookalike.find_faces(assets / "two_people.jpg")
    assert len(faces) == 2
    assert all(face.landmarks.shape == (5, 2) for face in faces)
    areas = [(face.box[2] - face.box[0]) * (face.box[3] - face.box[1]) for face in faces]
    assert areas == sorted(areas, reverse=True)  # largest first


def test_embed_faces_tells_people_apart(sample_people: list[tuple[str, list[Path]]]) -> None:
    (_, first), (_, second) = sample_people[:2]
    vectors, found = lookalike.embed_faces([first[0], first[1], second[0]])
    assert found.all() and vectors.shape == (3, 128)
    same, stranger = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert same > stranger


def test_a_held_out_photo_finds_its_person(
    test_index: tuple[Path, Path | None], face_photo: tuple[Path, str]
) -> None:
    path, celebrity_id = face_photo
    result = lookalike.find_lookalikes(path, index=test_index[0], top_k=3)
    best = result["faces"][0]["matches"][0]
    assert best["celebrity_id"] == celebrity_id
    assert lookalike.open_index(test_index[0]).celebrities["celebrity_id"].eq(celebrity_id).any()


def test_evaluate_scores_separable_embeddings_perfectly_and_noise_at_chance() -> None:
    rng = np.random.default_rng(0)
    people, per_person, dimension = 30, 3, 64
    centres = rng.normal(size=(people, dimension))
    labels = np.repeat([f"p{i}" for i in range(people)], per_person)
    paths = [f"{label}/{n}.jpg" for n, label in enumerate(labels)]

    def unit(vectors: np.ndarray) -> np.ndarray:
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    tight = unit(np.repeat(centres, per_person, axis=0) + 0.05 * rng.normal(size=(90, dimension)))
    noise = unit(rng.normal(size=(90, dimension)))
    good = lookalike.evaluate(tight, labels, paths)
    bad = lookalike.evaluate(noise, labels, paths)
    assert good["identification"]["per_photo"]["top1"] == 1.0
    assert good["pairs"]["roc_auc"] > 0.99
    assert bad["identification"]["per_photo"]["top1"] < 0.3
    assert bad["pairs"]["roc_auc"] < 0.75
