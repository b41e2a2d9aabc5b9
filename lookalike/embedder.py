"""Embed aligned face chips with a Keras embedding model: one traced graph per model.

Typical use::

    model = model_files.load_embedding_model()   # the default model (models/sface/)
    vectors = embed_chips(model, chips)          # (N, D) float32, rows L2-normalised

The models themselves: :mod:`lookalike.model_files` (loading, saving, ``model.json``),
:mod:`lookalike.dlib_network` (dlib's face ResNet, converted from :mod:`lookalike.tfjs_weights`),
:mod:`lookalike.onnx_keras` (SFace, ArcFace-MBF).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

_PREDICT_FUNCTIONS: weakref.WeakKeyDictionary[keras.Model, Callable[[Any], Any]] = (
    weakref.WeakKeyDictionary()
)
_PREDICT_LOCK = threading.Lock()


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
