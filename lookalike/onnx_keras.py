"""A small ONNX → Keras 3 converter for the face-recognition graphs the project ships.

It covers the operators of MobileFaceNet-style embedders (SFace, InsightFace's ``w600k_mbf``):
``Conv`` (plain, depthwise and grouped), ``BatchNormalization``, ``PRelu``, ``Add``, scalar
``Sub``/``Mul``, ``Flatten``, ``Gemm`` and ``Dropout``, plus whatever can be folded into constants
at conversion time (``DequantizeLinear`` with per-axis or block scales, ``Reshape``,
``Constant``). Anything else raises :class:`UnsupportedGraphError` naming the operator.

The Keras model works in NHWC: it takes ``(batch, H, W, C)`` images, converts every kernel to
Keras' layout, folds batch-norms that follow a convolution or a dense layer into its weights,
and reorders the dense weights after a ``Flatten`` so that no transpose runs at inference.
Grouped convolutions (not depthwise) run as a depthwise convolution plus a fixed per-group sum:
TensorFlow's CPU kernel for ``groups > 1`` is several times slower.

Only the ``onnx`` package's protobuf reader is used; no ONNX runtime is needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from lookalike.errors import LookalikeError


class UnsupportedGraphError(LookalikeError, ValueError):
    """The ONNX graph uses an operator or attribute this converter does not handle."""


@dataclass
class Node:
    """One ONNX node, reduced to what conversion needs."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """An ONNX graph as plain Python: nodes in order, constant tensors, the data input/output."""

    nodes: list[Node]
    constants: dict[str, np.ndarray]
    input_name: str
    input_shape: tuple[int, ...]  # NCHW without the batch dimension
    output_name: str


def _layer_name(onnx_name: str) -> str:
    """A Keras-safe layer name (letters, digits, ``_``, ``-``, ``.``; not starting with a digit)."""
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in onnx_name)
    return cleaned if cleaned[:1].isalpha() else f"node_{cleaned}"


def read_onnx(path: str | Path) -> Graph:
    """Read an ``.onnx`` file into a :class:`Graph` (initializers become ``constants``).

    Graph inputs that are initializers or that no node reads (SFace's file lists 174 such) are
    ignored; exactly one true data input and one output are required.
    """
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path))
    except Exception as error:  # protobuf raises its own DecodeError types
        raise UnsupportedGraphError(f"{path} is not a readable ONNX model: {error}") from error
    graph = proto.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumed = {name for node in graph.node for name in node.input}
    # Exporters may list weights (or stale, unused names) as inputs: only a consumed,
    # non-constant input carries data.
    data_inputs = [
        value for value in graph.input if value.name not in constants and value.name in consumed
    ]
    if len(data_inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedGraphError(
            f"{path}: expected one data input and one output, got "
            f"{[v.name for v in data_inputs]} and {[v.name for v in graph.output]}"
        )
    dims = data_inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(dim.dim_value) for dim in dims[1:])
    if len(shape) != 3 or min(shape) < 1:
        raise UnsupportedGraphError(f"{path}: the input must be N×C×H×W, got {list(dims)}")
    nodes = [
        Node(
            op=node.op_type,
            name=_layer_name(node.name or node.output[0]),
            inputs=list(node.input),
            outputs=list(node.output),
            attributes={a.name: onnx.helper.get_attribute_value(a) for a in node.attribute},
        )
        for node in graph.node
    ]
    for node in nodes:
        if node.op == "Constant":
            node.attributes = {
                key: numpy_helper.to_array(value) if hasattr(value, "dims") else value
                for key, value in node.attributes.items()
            }
    return Graph(nodes, constants, data_inputs[0].name, shape, graph.output[0].name)


# --------------------------------------------------------------------------------------------
# Constant folding and batch-norm folding (NumPy, at conversion time)
# --------------------------------------------------------------------------------------------


def _dequantize(node: Node, values: list[np.ndarray]) -> np.ndarray:
    quantized = values[0].astype(np.float64)
    scale = values[1].astype(np.float64)
    zero_point = values[2].astype(np.float64) if len(values) > 2 else np.zeros_like(scale)
    if scale.ndim == 0 or scale.size == 1:
        return ((quantized - zero_point.reshape(())) * scale.reshape(())).astype(np.float32)
    axis = int(node.attributes.get("axis", 1)) % quantized.ndim
    block = int(node.attributes.get("block_size", 0))
    if block:  # blocked quantisation: one scale per `block` elements along `axis`
        length = quantized.shape[axis]
        scale = np.repeat(scale, block, axis=axis).take(range(length), axis=axis)
        zero_point = np.repeat(zero_point, block, axis=axis).take(range(length), axis=axis)
    else:  # per-axis: a 1-D scale along `axis`
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return ((quantized - zero_point) * scale).astype(np.float32)


def _reshape(values: list[np.ndarray]) -> np.ndarray:
    data, target = values[0], [int(dim) for dim in values[1]]
    shape = [data.shape[i] if dim == 0 else dim for i, dim in enumerate(target)]
    return data.reshape(shape)


def _fold_constant(node: Node, values: list[np.ndarray]) -> np.ndarray:
    if node.op == "DequantizeLinear":
        return _dequantize(node, values)
    if node.op == "Reshape":
        return _reshape(values)
    if node.op == "Constant":
        if "value" not in node.attributes:
            raise UnsupportedGraphError(f"Constant {node.name} has no 'value' tensor")
        return np.asarray(node.attributes["value"])
    if node.op == "Identity":
        return values[0]
    raise UnsupportedGraphError(f"cannot fold constant operator {node.op} ({node.name})")


def fold_constants(graph: Graph) -> None:
    """Evaluate every node whose inputs are all constants; drop it from ``graph.nodes``."""
    remaining = []
    for node in graph.nodes:
        inputs = [name for name in node.inputs if name]
        if all(name in graph.constants for name in inputs) and node.op != "Dropout":
            graph.constants[node.outputs[0]] = _fold_constant(
                node, [graph.constants[name] for name in inputs]
            )
        else:
            remaining.append(node)
    graph.nodes = remaining


def _batch_norm_scale_shift(node: Node, constants: dict[str, np.ndarray]):
    gamma, beta, mean, variance = (constants[name].astype(np.float64) for name in node.inputs[1:5])
    scale = gamma / np.sqrt(variance + float(node.attributes.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def fold_batch_norms(graph: Graph) -> int:
    """Fold each BatchNormalization whose input comes only from a Conv or Gemm into its weights.

    ``y = (W·x + b − mean)·s + beta`` with ``s = gamma / sqrt(var + eps)`` becomes
    ``(W·s)·x + (b − mean)·s + beta``. Returns how many were folded.
    """
    consumers = Counter(name for node in graph.nodes for name in node.inputs)
    producers = {node.outputs[0]: node for node in graph.nodes}
    folded = 0
    kept = []
    renamed: dict[str, str] = {}
    for node in graph.nodes:
        node.inputs = [renamed.get(name, name) for name in node.inputs]
        source = producers.get(node.inputs[0]) if node.inputs else None
        foldable = (
            node.op == "BatchNormalization"
            and source is not None
            and source.op in ("Conv", "Gemm")
            and consumers[node.inputs[0]] == 1
            and node.inputs[0] != graph.output_name
            and source.inputs[1] in graph.constants
        )
        if not foldable:
            kept.append(node)
            continue
        scale, shift = _batch_norm_scale_shift(node, graph.constants)
        weight = graph.constants[source.inputs[1]].astype(np.float64)
        bias_name = source.inputs[2] if len(source.inputs) > 2 and source.inputs[2] else None
        bias = graph.constants[bias_name].astype(np.float64) if bias_name else 0.0
        if source.op == "Gemm":
            if int(source.attributes.get("transB", 0)) != 1:
                weight = weight.T  # make it (out, in) like transB=1
                source.attributes["transB"] = 1
            alpha = float(source.attributes.get("alpha", 1.0))
            beta = float(source.attributes.get("beta", 1.0))
            weight, bias = weight * alpha, bias * beta
            source.attributes["alpha"] = source.attributes["beta"] = 1.0
        new_weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        new_bias = bias * scale + shift
        weight_name, bias_name = f"{source.name}::folded_weight", f"{source.name}::folded_bias"
        graph.constants[weight_name] = new_weight.astype(np.float32)
        graph.constants[bias_name] = new_bias.astype(np.float32)
        source.inputs = [source.inputs[0], weight_name, bias_name]
        # The batch-norm's output is now the producer's output.
        renamed[node.outputs[0]] = source.outputs[0]
        if node.outputs[0] == graph.output_name:
            graph.output_name = source.outputs[0]
        folded += 1
    graph.nodes = kept
    return folded


# --------------------------------------------------------------------------------------------
# Building the Keras model
# --------------------------------------------------------------------------------------------


@dataclass
class _Tensor:
    value: Any  # a KerasTensor
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) when made by Flatten


def _padding(node: Node, kernel: tuple[int, int], strides: tuple[int, int]):
    """Keras padding for ONNX ``pads`` (top, left, bottom, right): 'same', 'valid' or explicit."""
    if node.attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedGraphError(f"{node.name}: auto_pad is not supported")
    top, left, bottom, right = (int(p) for p in node.attributes.get("pads", [0, 0, 0, 0]))
    if not (top or left or bottom or right):
        return "valid", None
    symmetric = top == bottom == (kernel[0] - 1) // 2 and left == right == (kernel[1] - 1) // 2
    if strides == (1, 1) and symmetric and kernel[0] % 2 and kernel[1] % 2:
        return "same", None
    return "valid", ((top, bottom), (left, right))


def _conv(node: Node, x: _Tensor, constants: dict[str, np.ndarray]) -> _Tensor:
    weight = constants[node.inputs[1]]  # (out, in / groups, kh, kw)
    bias = constants[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    out_channels, in_per_group, kh, kw = weight.shape
    in_channels = int(x.value.shape[-1])
    groups = int(node.attributes.get("group", 1))
    strides = tuple(int(s) for s in node.attributes.get("strides", [1, 1]))
    if any(int(d) != 1 for d in node.attributes.get("dilations", [1, 1])):
        raise UnsupportedGraphError(f"{node.name}: dilated convolutions are not supported")
    if in_per_group * groups != in_channels or out_channels % groups:
        raise UnsupportedGraphError(f"{node.name}: channels do not match group={groups}")
    padding, explicit = _padding(node, (kh, kw), strides)
    value = x.value
    if explicit:
        value = keras.layers.ZeroPadding2D(explicit, name=f"{node.name}_pad")(value)
    bias = np.zeros(out_channels, np.float32) if bias is None else bias.astype(np.float32)
    if groups == 1:
        layer = keras.layers.Conv2D(
            out_channels, (kh, kw), strides=strides, padding=padding, name=node.name
        )
        value = layer(value)
        layer.set_weights([weight.transpose(2, 3, 1, 0), bias])
        return _Tensor(value)

    # Depthwise (in_per_group == 1) or grouped: a depthwise conv with one output per
    # (input channel, output-in-group) pair, then a sum over the inputs of each group.
    out_per_group = out_channels // groups
    kernel = np.zeros((kh, kw, in_channels, out_per_group), np.float32)
    depthwise_bias = np.zeros((in_channels, out_per_group), np.float32)
    for group in range(groups):
        for inner in range(in_per_group):
            channel = group * in_per_group + inner
            rows = slice(group * out_per_group, (group + 1) * out_per_group)
            kernel[:, :, channel, :] = weight[rows, inner].transpose(1, 2, 0)
        depthwise_bias[group * in_per_group] = bias[
            group * out_per_group : (group + 1) * out_per_group
        ]
    layer = keras.layers.DepthwiseConv2D(
        (kh, kw), strides=strides, padding=padding, depth_multiplier=out_per_group, name=node.name
    )
    value = layer(value)
    layer.set_weights([kernel, depthwise_bias.reshape(-1)])
    if in_per_group == 1:
        return _Tensor(value)
    height, width = int(value.shape[1]), int(value.shape[2])
    value = keras.layers.Reshape(
        (height, width, groups, in_per_group * out_per_group), name=f"{node.name}_by_group"
    )(value)
    # Channel (inner, j) of a group adds into output j: a fixed 0/1 matrix.
    summing = keras.layers.Dense(
        out_per_group, use_bias=False, trainable=False, name=f"{node.name}_group_sum"
    )
    value = summing(value)
    summing.set_weights([np.tile(np.eye(out_per_group, dtype=np.float32), (in_per_group, 1))])
    value = keras.layers.Reshape((height, width, out_channels), name=f"{node.name}_merge")(value)
    return _Tensor(value)


def _gemm(node: Node, x: _Tensor, constants: dict[str, np.ndarray]) -> _Tensor:
    weight = constants[node.inputs[1]].astype(np.float64)
    if int(node.attributes.get("transA", 0)):
        raise UnsupportedGraphError(f"{node.name}: transA is not supported")
    if not int(node.attributes.get("transB", 0)):
        weight = weight.T
    out_features = weight.shape[0]  # now (out, in)
    bias = constants[node.inputs[2]] if len(node.inputs) > 2 and node.inputs[2] else None
    bias = np.zeros(out_features) if bias is None else bias.astype(np.float64)
    weight = weight * float(node.attributes.get("alpha", 1.0))
    bias = bias * float(node.attributes.get("beta", 1.0))
    if x.flattened_from is not None:
        # ONNX flattened C×H×W; Keras flattened H×W×C: reorder the input axis to match.
        height, width, channels = x.flattened_from
        weight = (
            weight.reshape(out_features, channels, height, width)
            .transpose(0, 2, 3, 1)
            .reshape(out_features, -1)
        )
    layer = keras.layers.Dense(out_features, name=node.name)
    value = layer(x.value)
    layer.set_weights([weight.T.astype(np.float32), bias.astype(np.float32)])
    return _Tensor(value)


def _prelu(node: Node, x: _Tensor, constants: dict[str, np.ndarray]) -> _Tensor:
    slope = constants[node.inputs[1]].astype(np.float32).reshape(-1)
    channels = int(x.value.shape[-1])
    if slope.size == 1:
        slope = np.full(channels, slope[0], np.float32)
    if slope.size != channels:
        raise UnsupportedGraphError(f"{node.name}: PRelu slope of {slope.size} for {channels}")
    shared = [1, 2] if len(x.value.shape) == 4 else None
    layer = keras.layers.PReLU(shared_axes=shared, name=node.name)
    value = layer(x.value)
    layer.set_weights([slope.reshape(layer.get_weights()[0].shape)])
    return _Tensor(value)


def _batch_norm(node: Node, x: _Tensor, constants: dict[str, np.ndarray]) -> _Tensor:
    gamma, beta, mean, variance = (constants[name].astype(np.float32) for name in node.inputs[1:5])
    layer = keras.layers.BatchNormalization(
        epsilon=float(node.attributes.get("epsilon", 1e-5)), name=node.name
    )
    value = layer(x.value)
    layer.set_weights([gamma, beta, mean, variance])
    return _Tensor(value)


def _scalar(node: Node, name: str, constants: dict[str, np.ndarray]) -> float:
    value = np.asarray(constants[name])
    if value.size != 1:
        raise UnsupportedGraphError(f"{node.name}: only scalar {node.op} is supported")
    return float(value.reshape(()))


def _elementwise(node: Node, tensors: dict[str, _Tensor], constants: dict[str, np.ndarray]):
    first, second = node.inputs
    if first in tensors and second in tensors:
        if node.op != "Add":
            raise UnsupportedGraphError(f"{node.name}: {node.op} of two tensors is not supported")
        return _Tensor(
            keras.layers.Add(name=node.name)([tensors[first].value, tensors[second].value])
        )
    tensor_name, constant_name = (first, second) if first in tensors else (second, first)
    constant = _scalar(node, constant_name, constants)
    if node.op == "Sub" and tensor_name != first:
        raise UnsupportedGraphError(f"{node.name}: constant − tensor is not supported")
    scale, offset = {
        "Add": (1.0, constant),
        "Sub": (1.0, -constant),
        "Mul": (constant, 0.0),
        "Div": (1.0 / constant, 0.0),
    }[node.op]
    layer = keras.layers.Rescaling(scale, offset, name=node.name)
    return _Tensor(layer(tensors[tensor_name].value))


def _flatten(node: Node, x: _Tensor) -> _Tensor:
    if int(node.attributes.get("axis", 1)) != 1:
        raise UnsupportedGraphError(f"{node.name}: Flatten is supported on axis 1 only")
    shape = tuple(int(dim) for dim in x.value.shape[1:])
    value = keras.layers.Flatten(name=node.name)(x.value)
    return _Tensor(value, flattened_from=shape if len(shape) == 3 else None)


_WEIGHTED_OPS = {
    "Conv": _conv,
    "Gemm": _gemm,
    "PRelu": _prelu,
    "BatchNormalization": _batch_norm,
}


def build_keras_model(
    graph: Graph,
    *,
    name: str,
    input_name: str = "chip_rgb",
    preprocess: Callable[[Any], Any] | None = None,
    normalise_output: bool = True,
) -> keras.Model:
    """The Keras functional model computing ``graph`` (NHWC float32 input, e.g. RGB 0-255).

    ``preprocess`` maps the Keras input tensor before the graph's first node (for models whose
    pixel scaling lives outside the ONNX file). With ``normalise_output`` a ``UnitNormalization``
    layer named ``embedding`` ends the model.
    """
    fold_constants(graph)
    fold_batch_norms(graph)
    channels, height, width = graph.input_shape
    inputs = keras.Input(shape=(height, width, channels), dtype="float32", name=input_name)
    start = preprocess(inputs) if preprocess else inputs
    tensors: dict[str, _Tensor] = {graph.input_name: _Tensor(start)}
    for node in graph.nodes:
        if node.op == "Dropout":  # inference: identity
            tensors[node.outputs[0]] = tensors[node.inputs[0]]
            continue
        if node.op in ("Add", "Sub", "Mul", "Div"):
            tensors[node.outputs[0]] = _elementwise(node, tensors, graph.constants)
            continue
        if node.inputs[0] not in tensors:
            raise UnsupportedGraphError(f"{node.name}: input {node.inputs[0]!r} is not computed")
        x = tensors[node.inputs[0]]
        if node.op == "Flatten":
            tensors[node.outputs[0]] = _flatten(node, x)
        elif node.op in _WEIGHTED_OPS:
            tensors[node.outputs[0]] = _WEIGHTED_OPS[node.op](node, x, graph.constants)
        else:
            raise UnsupportedGraphError(f"operator {node.op} ({node.name}) is not supported")
    output = tensors[graph.output_name].value
    if normalise_output:
        output = keras.layers.UnitNormalization(name="embedding")(output)
    return keras.Model(inputs, output, name=name)


def convert_onnx(
    path: str | Path,
    *,
    name: str,
    preprocess: Callable[[Any], Any] | None = None,
    normalise_output: bool = True,
) -> keras.Model:
    """Read an ``.onnx`` face embedder and return the equivalent Keras functional model."""
    return build_keras_model(
        read_onnx(path), name=name, preprocess=preprocess, normalise_output=normalise_output
    )
