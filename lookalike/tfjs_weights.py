"""Read TensorFlow.js weights: a JSON manifest plus ``.bin`` shards of (quantised) tensors.

The npm package ``@vladmandic/face-api`` (MIT) ships dlib's face ResNet this way;
:mod:`lookalike.dlib_network` rebuilds the network and loads these tensors into it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import InvalidInputError, MissingFileError

MANIFEST_NAME = "face_recognition_model-weights_manifest.json"

# Bytes per element of the storage dtypes a tfjs manifest may use.
_STORAGE_BYTES = {"uint8": 1, "uint16": 2, "float16": 2, "float32": 4, "int32": 4}
_QUANTISED = ("uint8", "uint16", "float16")


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


def shard_names(weights_dir: Path, *, manifest_name: str = MANIFEST_NAME) -> list[str]:
    """The ``.bin`` files a manifest lists, in order."""
    manifest = _read_manifest(Path(weights_dir) / manifest_name)
    return [str(name) for group in manifest for name in group["paths"]]


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
    weights: dict[str, np.ndarray] = {}
    for group in _read_manifest(manifest_path):
        buffer = _group_bytes(group, weights_dir, manifest_path)
        specs = group["weights"]
        sizes = [_stored_size(spec, manifest_path) for spec in specs]
        expected = sum(sizes)
        if len(buffer) != expected:
            problem = "truncated" if len(buffer) < expected else "longer than expected"
            shard_list = ", ".join(str(name) for name in group["paths"])
            raise ValueError(
                f"weights file(s) {shard_list} in {weights_dir} hold {len(buffer)} bytes but "
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


def _group_bytes(group: dict[str, Any], weights_dir: Path, manifest_path: Path) -> bytes:
    """A group's shards joined: one byte stream, split into files of at most a few MB."""
    shards = []
    for shard_name in group["paths"]:
        shard_path = weights_dir / str(shard_name)
        if not shard_path.is_file():
            raise FileNotFoundError(
                f"weights file {shard_path} (listed in {manifest_path}) is missing; {_setup_hint()}"
            )
        shards.append(shard_path.read_bytes())
    return b"".join(shards)


def _stored_size(spec: Any, manifest_path: Path) -> int:
    """Bytes one manifest entry takes in its group's stream (its entry checked on the way)."""
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
    return math.prod(int(dim) for dim in spec["shape"]) * _STORAGE_BYTES[storage]
