"""Shared fixtures. Tests that need ``../shared/data`` use ``shared_data`` and skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike import config

REPO_ROOT = config.REPO_ROOT
TEST_ASSETS = Path(__file__).resolve().parent / "assets"


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
