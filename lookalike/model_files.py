"""Embedding model files: a ``.keras`` file plus the ``model.json`` that describes it.

Saving is atomic and reproducible (:func:`save_keras_atomically`: equal models give equal
bytes, so an index built with one conversion accepts the model from another);
:func:`model_info` reads ``model.json`` and the file's actual sha256; :func:`load_embedding_model`
loads a model once per file. Every model the project makes (converted or trained) is saved by
:func:`save_embedding_model`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike import config
from lookalike.errors import InvalidInputError, MissingFileError
from lookalike.model_registry import sha256_of

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)


def _make_reproducible(keras_path: Path) -> None:
    """Rewrite a ``.keras`` zip without timestamps so equal models give equal bytes (and sha256).

    Keras stamps ``metadata.json`` with the save time, the weights entry with the zip time, and
    ``config.json``'s ``shared_object_id`` fields with memory addresses; the weights are
    otherwise deterministic. A stable digest lets an index built from one conversion accept the
    model from another.
    """
    with zipfile.ZipFile(keras_path) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(keras_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for filename, data in entries:
            if filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
            archive.writestr(zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0)), data)


def _renumber_shared_objects(node: Any, numbers: dict[int, int] | None = None) -> Any:
    """Replace ``shared_object_id`` values (``id()`` of objects) by 1, 2, ... in order seen."""
    numbers = {} if numbers is None else numbers
    if isinstance(node, dict):
        renumbered = {}
        for key, value in node.items():
            if key == "shared_object_id" and isinstance(value, int):
                renumbered[key] = numbers.setdefault(value, len(numbers) + 1)
            else:
                renumbered[key] = _renumber_shared_objects(value, numbers)
        return renumbered
    if isinstance(node, list):
        return [_renumber_shared_objects(value, numbers) for value in node]
    return node


def model_info_path(model_path: Path) -> Path:
    """Where the ``model.json`` describing ``model_path`` lives (same folder)."""
    return Path(model_path).with_name(config.MODEL_INFO_NAME)


def _missing_model_message(path: Path) -> str:
    from lookalike.model_registry import REGISTRY

    name = path.parent.name
    if name in REGISTRY and config.model_path(name).resolve() == path.resolve():
        how = f"install it with `lookalike model install {name}`"
    else:
        how = "pass a registered model name (`lookalike model list`) or a .keras file"
    return f"no embedding model at {path}; {how} (`make setup` installs the default)"


_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


def model_info(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Describe a saved model: its ``model.json`` plus the sha256 of the file as it is now.

    ``sha256`` is always the digest of the actual ``.keras`` file (cached per size and mtime),
    so an index can tell exactly which model built it. When ``model.json`` is absent or
    describes another file (a replaced or hand-made model), only ``name``, ``file`` and
    ``sha256`` are returned. Raises ``FileNotFoundError`` when the model file is missing.
    """
    path = config.resolve_model_path(path)
    if not path.is_file():
        raise MissingFileError(_missing_model_message(path))
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _SHA256_CACHE.get(key) or sha256_of(path)
    _SHA256_CACHE[key] = digest

    info_path = model_info_path(path)
    recorded: dict[str, Any] = {}
    if info_path.is_file():
        try:
            recorded = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("ignoring unreadable %s", info_path)
    # A model installed under models/<name>/ is known by that name (`--model NAME`).
    installed = config.model_path(path.parent.name).resolve() == path.resolve()
    installed_as = path.parent.name if installed else None
    if recorded.get("file") == path.name and recorded.get("sha256") == digest:
        return {**recorded, "registry_name": installed_as}
    if recorded:
        logger.warning("%s does not describe %s as it is now; ignoring it", info_path, path.name)
    return {"name": path.stem, "file": path.name, "sha256": digest, "registry_name": installed_as}


def save_keras_atomically(model: keras.Model, out_path: Path, *, reproducible: bool = True) -> None:
    """Save a ``.keras`` file under a temporary name and rename it (a reader never sees half a
    model), readable by everyone; ``reproducible`` strips timestamps so equal models are equal
    bytes."""
    out_path = Path(out_path)
    if out_path.suffix != ".keras":
        raise InvalidInputError(f"the output must be a .keras file, got {out_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{out_path.stem}-", suffix=".keras", dir=out_path.parent
    )
    os.close(handle)
    import keras  # TensorFlow only when a model is saved or loaded

    try:
        keras.saving.save_model(model, temporary)
        if reproducible:
            _make_reproducible(Path(temporary))
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; the model is an ordinary shared file
        os.replace(temporary, out_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_embedding_model(model: keras.Model, out_path: Path, info: dict[str, Any]) -> Path:
    """Save ``model`` as a reproducible ``.keras`` file plus ``model.json`` describing it.

    The file is written under a temporary name and renamed, so a reader never sees half a model;
    it is readable by everyone (0644). ``info`` gains ``file``, ``sha256`` and the Keras version.
    """
    out_path = Path(out_path)
    save_keras_atomically(model, out_path)
    info = {**info, "file": out_path.name, "sha256": sha256_of(out_path)}
    info["keras_version"] = _keras_version()
    model_info_path(out_path).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info("saved %s (sha256 %s…)", out_path, info["sha256"][:12])
    return out_path


_MODEL_CACHE: dict[tuple[str, int, int], keras.Model] = {}
_MODEL_CACHE_LOCK = threading.Lock()


def load_embedding_model(path: str | os.PathLike | None = None) -> keras.Model:
    """Load a saved embedding model (default ``config.default_model_path()``), cached per file.

    The cache key includes the file's size and modification time, so a reconverted model is
    reloaded; concurrent callers share one load. Raises ``FileNotFoundError`` with the set-up
    command when the file is missing.
    """
    path = config.resolve_model_path(path)
    if not path.is_file():
        raise MissingFileError(_missing_model_message(path))
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _MODEL_CACHE_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            import keras

            model = keras.saving.load_model(path, compile=False)
            # Drop stale entries for the same file before caching the fresh one.
            for stale in [cached for cached in _MODEL_CACHE if cached[0] == key[0]]:
                del _MODEL_CACHE[stale]
            _MODEL_CACHE[key] = model
    return model


def _keras_version() -> str:
    import keras

    return keras.__version__
