"""Index build, search and matching on a small real gallery cut from the committed sample.

The gallery holds two photos of each of 12 sample people; their third photo is the query.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lookalike import config, gallery, index_build, search
from lookalike.index import CelebrityIndex, IndexFormatError
from lookalike.match import Matcher, MatchOptions, NoFaceError

PEOPLE = 12


@pytest.fixture(scope="module")
def people_folders(sample_people, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder-per-person copies of the sample: ``gallery/<Name>/`` (2 photos) + ``queries/``."""
    root = tmp_path_factory.mktemp("people")
    for name, crops in sample_people[:PEOPLE]:
        folder = name.replace(" ", "_")
        for number, crop in enumerate(crops):
            target = root / ("queries" if number == 2 else "gallery") / folder
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(crop, target / f"{folder}_{number}.jpg")
    return root


@pytest.fixture(scope="module")
def small_index(people_folders: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = gallery.from_folders(people_folders / "gallery")
    out = tmp_path_factory.mktemp("index") / "small"
    return index_build.build_index(photos, out, chunk_size=8, progress=False)


@pytest.fixture(scope="module")
def matcher(small_index: Path) -> Matcher:
    return Matcher(small_index)


def test_index_folder_holds_every_documented_file(small_index: Path):
    manifest = json.loads((small_index / "index.json").read_text())
    assert manifest["celebrities"] == PEOPLE
    assert manifest["photos"] + manifest["photos_without_face"] == 2 * PEOPLE
    # The model recorded is the file that embedded the gallery (the default model).
    model_file = config.default_model_path()
    assert manifest["model"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    index = CelebrityIndex(small_index)
    norms = np.linalg.norm(index.embeddings, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert index.thumbnail(0)[:3] == b"\xff\xd8\xff"  # a JPEG
    assert not (small_index / ".build").exists()


def test_a_new_photo_of_a_gallery_person_ranks_them_first(matcher: Matcher, people_folders: Path):
    queries = sorted((people_folders / "queries").glob("*/*.jpg"))
    first = []
    for query in queries:
        result = matcher.match(query, MatchOptions(top_k=3))
        best = result["faces"][0]["matches"][0]
        first.append(best["name"].replace(" ", "_") == query.parent.name)
    assert sum(first) >= len(queries) - 1, f"top-1 hits: {sum(first)} of {len(queries)}"


def test_match_result_follows_the_api_contract(matcher: Matcher, people_folders: Path):
    query = sorted((people_folders / "queries").glob("*/*.jpg"))[0]
    result = matcher.match(query.read_bytes(), MatchOptions(top_k=5))
    assert set(result) == {"image", "faces", "faces_total", "timings_ms"}
    face = result["faces"][0]
    x, y, width, height = face["box"]
    assert 0 <= x < result["image"]["width"] and width > 20 and height > 20
    matches = face["matches"]
    assert len(matches) == 5
    assert len({match["celebrity_id"] for match in matches}) == 5  # one entry per celebrity
    scores = [match["score"] for match in matches]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 100 for s in scores)
    assert set(result["timings_ms"]) >= {"decode", "detect", "align", "embed", "search", "total"}


def test_group_photo_gets_one_result_list_per_face(matcher: Matcher, assets: Path):
    result = matcher.match(assets / "two_people.jpg", MatchOptions(top_k=2))
    assert result["faces_total"] == 2 and len(result["faces"]) == 2
    assert all(len(face["matches"]) == 2 for face in result["faces"])
    capped = matcher.match(assets / "two_people.jpg", MatchOptions(top_k=2, max_faces=1))
    assert len(capped["faces"]) == 1 and capped["faces_total"] == 2


def test_no_face_is_a_clear_error(matcher: Matcher):
    import cv2

    texture = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", texture)
    assert ok
    with pytest.raises(NoFaceError, match="No face found"):
        matcher.match(encoded.tobytes())


def test_gender_filter_keeps_only_that_gender(small_index: Path):
    exact = CelebrityIndex(small_index, search="exact")
    genders = dict(zip(exact.celebrities["celebrity_id"], exact.celebrities["gender"], strict=True))
    for photo_id in range(0, len(exact), 5):
        query = np.asarray(exact.embeddings[photo_id])
        for candidate in exact.search(query, 3, gender="female"):
            celebrity_id = exact.celebrities["celebrity_id"].iat[candidate.celebrity_row]
            assert genders[celebrity_id] == "female"
    with pytest.raises(ValueError, match="top_k"):
        exact.search(query, 0)


def test_compressed_search_agrees_with_exact_beyond_its_rescore_pool():
    """The 8-bit scan hands ``top_k × CANDIDATES_PER_RESULT`` photos to the exact re-score. On
    the demo index (272 real SFace embeddings, 100 celebrities) that pool is a fraction of the
    photos, so a pool that missed the right photos, or scores left 8-bit, would show here."""
    path = config.default_index_dir()
    if not (path / "index.json").is_file():
        pytest.fail(f"no demo index at {path}: the test set-up builds it (`make setup`)")
    exact = CelebrityIndex(path, search="exact")
    compressed = CelebrityIndex(path, search="compressed")
    embeddings = np.asarray(exact.embeddings, np.float32)
    owner = np.repeat(np.arange(len(exact.celebrities)), exact.celebrities["photo_count"])
    # Queries: every photo, and 300 blends of two celebrities' photos (unequal weights plus
    # noise, so no exact ties), whose nearest celebrities are close calls.
    rng = np.random.default_rng(0)
    pairs = rng.choice(len(embeddings), size=(300, 2))
    pairs = pairs[owner[pairs[:, 0]] != owner[pairs[:, 1]]]
    weight = rng.uniform(0.3, 0.7, size=(len(pairs), 1))
    blends = weight * embeddings[pairs[:, 0]] + (1 - weight) * embeddings[pairs[:, 1]]
    blends += rng.normal(0, 0.02, size=blends.shape)
    blends /= np.linalg.norm(blends, axis=1, keepdims=True)
    queries = np.concatenate([embeddings, blends.astype(np.float32)])

    def assert_same_answer(top_k: int, gender: str | None = None) -> None:
        for query in queries if gender is None else queries[::7]:
            want = exact.search(query, top_k, gender=gender)
            got = compressed.search(query, top_k, gender=gender)
            assert [(c.celebrity_row, c.photo_id) for c in got] == [
                (c.celebrity_row, c.photo_id) for c in want
            ]
            # Re-scored exactly: not the 8-bit scan's scores, which are off by up to ~1e-3.
            np.testing.assert_allclose(
                [c.similarity for c in got], [c.similarity for c in want], atol=1e-6
            )

    for top_k in (3, 5):
        assert top_k * search.CANDIDATES_PER_RESULT < len(embeddings) / 3  # a real pre-selection
        assert_same_answer(top_k)
    assert_same_answer(3, gender="male")

    # The agreement is the re-score's doing: the scan's own scores are not exact.
    scores, photo_ids = search.compressed_scan(embeddings).search(queries, 10)
    exact_scores = np.take_along_axis(queries @ embeddings.T, photo_ids, axis=1)
    assert np.abs(scores - exact_scores).max() > 1e-4


def test_damaged_index_and_wrong_model_are_refused(small_index: Path, tmp_path: Path):
    damaged = tmp_path / "damaged"
    shutil.copytree(small_index, damaged)
    np.save(damaged / "embeddings.npy", np.zeros((3, 128), np.float32))
    with pytest.raises(IndexFormatError, match="damaged"):
        CelebrityIndex(damaged)
    (damaged / "index.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        CelebrityIndex(damaged)
    with pytest.raises(IndexFormatError, match="no index"):
        CelebrityIndex(tmp_path / "nowhere")
    # A folder of another format, or of another version of this one, is refused by name.
    other_format = tmp_path / "other-format"
    shutil.copytree(small_index, other_format)
    for field, value, message in (
        ("format", "another-index", "not a lookalike index"),
        ("format_version", 2, "version 2 is not supported"),
    ):
        manifest = json.loads((small_index / "index.json").read_text())
        manifest[field] = value
        (other_format / "index.json").write_text(json.dumps(manifest))
        with pytest.raises(IndexFormatError, match=message):
            CelebrityIndex(other_format)

    other_model = tmp_path / "other-model"
    shutil.copytree(small_index, other_model)
    manifest = json.loads((other_model / "index.json").read_text())
    manifest["model"]["sha256"] = "0" * 64
    (other_model / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="rebuild the index"):
        Matcher(other_model)


def test_empty_gallery_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="empty"):
        index_build.build_index([], tmp_path / "index")
    (tmp_path / "photos").mkdir()
    with pytest.raises(ValueError, match="no photos"):
        gallery.from_folders(tmp_path / "photos")


def test_interrupted_build_resumes_without_redoing_finished_chunks(
    people_folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt_build_after
):
    photos = gallery.from_folders(people_folders / "gallery")
    real_embed_chunk = index_build._embed_chunk
    interrupt_build_after(2)
    out = tmp_path / "index"
    with pytest.raises(KeyboardInterrupt):
        index_build.build_index(photos, out, chunk_size=5, progress=False)
    assert len(list((out / ".build").glob("chunk-*.npz"))) == 2
    assert not (out / "index.json").exists()

    resumed: list[int] = []
    monkeypatch.setattr(
        index_build, "_embed_chunk", lambda p, c: resumed.append(len(c)) or real_embed_chunk(p, c)
    )
    index_build.build_index(photos, out, chunk_size=5, progress=False)
    assert sum(resumed) == len(photos) - 10  # only the chunks after the interruption
    assert CelebrityIndex(out).manifest["celebrities"] == PEOPLE
