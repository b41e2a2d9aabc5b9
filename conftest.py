"""Shared fixtures. Tests that need ``../shared/data`` use ``shared_data`` and skip without it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike import config

REPO_ROOT = config.REPO_ROOT
TEST_ASSETS = REPO_ROOT / "tests" / "assets"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (developer/CI only): skip cleanly when it is absent."""
    path = config.shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"needs the developer data set at {path} (absent on a user's machine)")
    return path


@pytest.fixture(scope="session")
def wiki_mat(shared_data: Path) -> Path:
    path = shared_data / "imdb" / "wiki.mat"
    if not path.is_file():
        pytest.skip(f"needs {path}")
    return path


@pytest.fixture(scope="session")
def lfw_dir(shared_data: Path) -> Path:
    return shared_data / "lfw-dev"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The committed IMDB-layout sample under ``data/sample``."""
    return REPO_ROOT / "data" / "sample"


@pytest.fixture(scope="session")
def assets() -> Path:
    """Small committed test images (``tests/assets``)."""
    return TEST_ASSETS


# The web back end's live-server helpers, exposed as fixtures for its tests and the browser
# tests in webapp-frontend/e2e (they start the real `lookalike serve` process on 127.0.0.1).
sys.path.insert(0, str(REPO_ROOT / "webapp-backend" / "tests"))
from live_server import ensure_test_index, find_face_photo, live_server  # noqa: E402


@pytest.fixture(scope="session")
def test_index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path | None]:
    """``(index_dir, model_path)``: an index built from the sample with one photo of some
    people held out (``face_photo``), once, then kept in pytest's cache."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache_dir = cache.mkdir("lookalike-web") if cache else tmp_path_factory.mktemp("lookalike-web")
    try:
        return ensure_test_index(cache_dir, held_out=True)
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def live_server_url(test_index: tuple[Path, Path | None]) -> Iterator[str]:
    """Base URL of a real server process serving the real frontend build."""
    index_dir, model_path = test_index
    with live_server(index_dir, model_path=model_path) as url:
        yield url


@pytest.fixture(scope="session")
def face_photo(
    test_index: tuple[Path, Path | None], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """``(path, celebrity_id)``: a real photo of someone in the index; the photo itself is
    not in it, so matching it tests recognition, not lookup."""
    return find_face_photo(test_index[0], tmp_path_factory.mktemp("face"))


@pytest.fixture(scope="session")
def face_photo_path(face_photo: tuple[Path, str]) -> Path:
    """The path of ``face_photo``."""
    return face_photo[0]


@pytest.fixture(scope="session")
def sample_people(sample_dir: Path) -> list[tuple[str, list[Path]]]:
    """Sample people with at least three single-face photos: ``(name, first three crops)``,
    sorted by name, for tests that need a small folder-per-person gallery."""
    import numpy as np

    from lookalike.imdb import load_metadata

    crops = sample_dir / "imdb_crop"
    metadata = load_metadata(crops / "imdb.mat")
    metadata = metadata[np.isfinite(metadata["face_score"]) & metadata["second_face_score"].isna()]
    people = []
    for name, rows in sorted(metadata.groupby("name")):
        if len(rows) >= 3:
            people.append((name, [crops / path for path in sorted(rows["full_path"])[:3]]))
    return people


@pytest.fixture
def interrupt_build_after(monkeypatch: pytest.MonkeyPatch):
    """``arm(n)``: from now on an index build raises KeyboardInterrupt once ``n`` chunks are
    embedded, as a Ctrl-C would (``monkeypatch.undo()`` disarms it)."""
    from lookalike import index_build

    real_embed_chunk = index_build._embed_chunk

    def arm(chunks: int) -> None:
        done: list[int] = []

        def interrupted(pipeline, chunk):
            if len(done) == chunks:
                raise KeyboardInterrupt
            done.append(len(chunk))
            return real_embed_chunk(pipeline, chunk)

        monkeypatch.setattr(index_build, "_embed_chunk", interrupted)

    return arm
