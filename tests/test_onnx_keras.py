"""The ONNX → Keras converter: small hand-built graphs checked against onnxruntime, and the two
shipped embedders (SFace, ArcFace-MBF) checked against onnxruntime on real face chips.

onnxruntime is a test-only reference (requirements-reference.txt); the package never imports it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lookalike import config, images, onnx_keras

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto


def runtime_output(model_proto, batch_nchw: np.ndarray) -> np.ndarray:
    """onnxruntime's answer, after dropping inputs no node reads (SFace lists 174 of them)."""
    graph = model_proto.graph
    used = {name for node in graph.node for name in node.input}
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name in used or value.name in initializers]
    del graph.input[:]
    graph.input.extend(inputs)
    session = ort.InferenceSession(model_proto.SerializeToString())
    data_input = [value.name for value in inputs if value.name not in initializers][0]
    return np.concatenate(
        [session.run(None, {data_input: row[np.newaxis]})[0] for row in batch_nchw.astype("f4")]
    )


def keras_output(keras_model, batch_nchw: np.ndarray) -> np.ndarray:
    return np.asarray(keras_model(batch_nchw.transpose(0, 2, 3, 1).astype("f4"), training=False))


def tiny_graph(rng: np.random.Generator, *, op_after: str = "Gemm") -> onnx.ModelProto:
    """Conv → BN → PRelu → grouped conv (4 groups of 2) → Add (residual) → depthwise (stride 2,
    pad 1) → Flatten → Gemm → BN: every kind of node the converter handles."""

    def const(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(array, np.float32), name)

    channels = 8
    inits = [
        const("w1", rng.normal(size=(channels, 3, 3, 3)) * 0.3),
        const("b1", rng.normal(size=channels)),
        const("g1", rng.uniform(0.5, 1.5, channels)),
        const("beta1", rng.normal(size=channels)),
        const("m1", rng.normal(size=channels)),
        const("v1", rng.uniform(0.5, 2, channels)),
        const("slope", rng.uniform(-0.5, 0.9, (channels, 1, 1))),
        const("wg", rng.normal(size=(channels, 2, 3, 3)) * 0.3),
        const("bg", rng.normal(size=channels)),
        const("wd", rng.normal(size=(channels, 1, 3, 3)) * 0.3),
        const("wfc", rng.normal(size=(5, channels * 4 * 4)) * 0.1),
        const("bfc", rng.normal(size=5)),
        const("g2", rng.uniform(0.5, 1.5, 5)),
        const("beta2", rng.normal(size=5)),
        const("m2", rng.normal(size=5)),
        const("v2", rng.uniform(0.5, 2, 5)),
        const("half", [0.5]),
    ]
    nodes = [
        helper.make_node("Mul", ["x", "half"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g1", "beta1", "m1", "v1"], ["n1"]),
        helper.make_node("PRelu", ["n1", "slope"], ["p1"]),
        helper.make_node("Conv", ["p1", "wg", "bg"], ["g"], group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["p1", "g"], ["res"]),
        helper.make_node(
            "Conv", ["res", "wd"], ["d"], group=channels, strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Flatten", ["d"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "wfc", "bfc"], ["fc"], transB=1),
        helper.make_node(
            "BatchNormalization" if op_after == "Gemm" else op_after,
            ["fc", "g2", "beta2", "m2", "v2"],
            ["y"],
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_tiny_graph_matches_onnxruntime(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    proto = tiny_graph(rng)
    path = tmp_path / "tiny.onnx"
    onnx.save(proto, path)
    model = onnx_keras.convert_onnx(path, name="tiny", normalise_output=False)
    batch = rng.normal(size=(3, 3, 8, 8))
    np.testing.assert_allclose(
        keras_output(model, batch), runtime_output(proto, batch), rtol=1e-4, atol=1e-4
    )
    layer_types = {type(layer).__name__ for layer in model.layers}
    # Batch-norms after the conv and the dense layer are folded away; the grouped conv runs as
    # depthwise + a fixed group sum (no Conv2D with groups > 1).
    assert "BatchNormalization" not in layer_types
    assert all(getattr(layer, "groups", 1) == 1 for layer in model.layers)
    assert "DepthwiseConv2D" in layer_types


def test_unsupported_operator_is_named(tmp_path: Path) -> None:
    proto = tiny_graph(np.random.default_rng(1), op_after="LpNormalization")
    path = tmp_path / "odd.onnx"
    onnx.save(proto, path)
    with pytest.raises(onnx_keras.UnsupportedGraphError, match="LpNormalization"):
        onnx_keras.convert_onnx(path, name="odd")


def test_blocked_dequantize_folds_like_onnxruntime() -> None:
    rng = np.random.default_rng(3)
    quantized = rng.integers(-128, 127, size=(4, 10), dtype=np.int8)
    scales = rng.uniform(0.01, 0.1, size=(4, 3)).astype(np.float32)
    zero_points = rng.integers(-5, 5, size=(4, 3), dtype=np.int8)
    node = onnx_keras.Node("DequantizeLinear", "dq", [], ["y"], {"axis": 1, "block_size": 4})
    ours = onnx_keras._dequantize(node, [quantized, scales, zero_points])
    proto = helper.make_model(
        helper.make_graph(
            [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=4)],
            "dq",
            [],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 10])],
            [
                numpy_helper.from_array(quantized, "q"),
                numpy_helper.from_array(scales, "s"),
                numpy_helper.from_array(zero_points, "z"),
            ],
        ),
        opset_imports=[helper.make_opsetid("", 21)],
    )
    expected = ort.InferenceSession(proto.SerializeToString()).run(None, {})[0]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_not_an_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07not a protobuf at all" * 10)
    with pytest.raises(onnx_keras.UnsupportedGraphError, match="broken.onnx"):
        onnx_keras.read_onnx(path)


# --------------------------------------------------------------------------------------------
# The shipped models against onnxruntime, on real aligned face chips
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_chips(assets: Path) -> np.ndarray:
    """112×112 ArcFace-template chips of the real faces in the committed test photos."""
    from lookalike.pipeline import FacePipeline

    pipeline = FacePipeline("sface")
    chips = []
    for name in ("face.jpg", "two_people.jpg"):
        image = images.load_image(assets / name)
        faces = [found.face for found in pipeline.faces_in_image(image).faces]
        chips.extend(pipeline.align(image, faces))
    return np.stack(chips)


@pytest.mark.parametrize(
    ("name", "scale"), [("sface", None), ("arcface-mbf", (1 / 127.5, -127.5 / 127.5))]
)
def test_shipped_model_matches_onnxruntime(name: str, scale, real_chips: np.ndarray) -> None:
    from lookalike import embedder, model_files

    onnx_path = config.models_dir() / "pretrained" / "wheels" / f"{name}.onnx"
    if not onnx_path.is_file() or not config.model_path(name).is_file():
        pytest.fail(f"{name} is not installed: the test set-up installs it (`make setup-test`)")
    model = model_files.load_embedding_model(name)
    ours = embedder.embed_chips(model, real_chips)
    batch = real_chips.transpose(0, 3, 1, 2).astype(np.float32)
    if scale is not None:
        batch = batch * scale[0] + scale[1]
    theirs = runtime_output(onnx.load(onnx_path), batch)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert len(real_chips) >= 3
    cosine = np.sum(ours * theirs, axis=1)
    assert cosine.min() >= 0.9999, cosine


@pytest.mark.parametrize("name", ["sface", "arcface-mbf", "dlib-resnet"])
def test_installed_model_has_its_reference_calibration(name: str) -> None:
    """Conversion is byte-reproducible, so the calibration fitted on lfw-dev (keyed by the
    model file's sha256) applies to the model that set-up installs on any machine."""
    from lookalike import calibration, model_files

    if not config.model_path(name).is_file():
        pytest.fail(f"{name} is not installed: the test set-up installs it (`make setup-test`)")
    digest = hashlib.sha256(config.model_path(name).read_bytes()).hexdigest()
    assert calibration.reference_calibration(digest) is not None
    assert model_files.model_info(name)["sha256"] == digest  # what an index records
