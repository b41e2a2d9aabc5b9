"""Fixtures for the web back end: the app built on the real test index, and real photos.

Nothing is faked: the app runs the real ``Matcher`` (detector + the embedding model) on a real
index, so the app is built once per session. The index (``test_index``) and the held-out query
photo (``face_photo``) are the repository's session fixtures (``conftest.py`` at its root).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import contract_check
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from lookalike import config
from lookalike_web import create_app

ASSETS = config.REPO_ROOT / "tests" / "assets"


@pytest.fixture(scope="session")
def make_app(
    test_index: tuple[Path, Path | None], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Flask]:
    """Build an app on the test index with extra config (models are cached per process); its
    every ``/api`` answer is checked against the contract (``contract_check``)."""
    no_dist = tmp_path_factory.mktemp("no-frontend-build")

    def build(**overrides: Any) -> Flask:
        index_dir, model_path = test_index
        settings = {
            "TESTING": True,
            "INDEX_DIR": index_dir,
            "MODEL_PATH": model_path,
            "FRONTEND_DIST": no_dist,  # not the developer's build: tests decide what exists
        }
        return contract_check.install(create_app({**settings, **overrides}))

    return build


@pytest.fixture(scope="session")
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app under test, shared by the session (loading the models takes seconds)."""
    return make_app()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def face_image(face_photo: tuple[Path, str]) -> Image.Image:
    """That photo decoded as RGB."""
    with Image.open(face_photo[0]) as image:
        return image.convert("RGB")


@pytest.fixture(scope="session")
def expected_celebrity(face_photo: tuple[Path, str]) -> str:
    """Who ``face_photo`` shows: its top match must be this celebrity id."""
    return face_photo[1]


@pytest.fixture(scope="session")
def group_photo() -> Path:
    """A real photo with two people (committed asset, or the developer data set)."""
    examples = config.shared_data_dir() / "face_recognition_examples"
    for path in (ASSETS / "two_people.jpg", examples / "_multi_face_unlabelled/two_people.jpg"):
        if path.is_file():
            return path
    pytest.skip("needs tests/assets/two_people.jpg or the shared face_recognition_examples")
