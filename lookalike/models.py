"""Trainable face-embedding models (Keras functional API): a CNN from scratch, and transfer.

Every builder returns ``(training_model, embedding_model)`` sharing their layers:

- the training model takes ``image_size`` float images (0-255) and outputs one score per
  identity: softmax probabilities, or with ``head="arcface"`` the cosine to each class centre,
  trained with :class:`AdditiveAngularMarginLoss`;
- the embedding model takes aligned chips (0-255, like the pretrained models: 150×150 on dlib's
  template, or the transfer backbone's own chips, e.g. SFace's 112×112 ArcFace ones), resizes
  them to ``image_size`` inside, and outputs a unit-length embedding, so the rest of the pipeline
  (index, match, evaluate) can load it with ``--model``.

The transfer model's backbone is a registered model (``dlib-resnet``, the default, whose top
residual blocks can be fine-tuned; ``sface``; ``arcface-mbf``) or a ``.keras`` file. The chips
it trains on are cut to the backbone's template and size (:func:`chip_geometry`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import ops

from lookalike import alignment, config, dlib_network, model_files, tfjs_weights
from lookalike.errors import InvalidInputError

CHIP_SIZE = dlib_network.CHIP_SIZE
HEADS = ("softmax", "arcface")
BACKBONE_NAME = "face_resnet_backbone"
DLIB_BACKBONE = "dlib-resnet"  # built from the weights package; its residual blocks can be tuned


@dataclass(frozen=True)
class HeadConfig:
    """The classifier head shared by both model types."""

    embedding_size: int = 128
    dropout: float = 0.3
    l1: float = 0.0
    l2: float = 1e-4
    head: str = "softmax"
    arcface_scale: float = 30.0
    arcface_margin: float = 0.3

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise InvalidInputError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.embedding_size < 2:
            raise InvalidInputError(f"embedding_size must be at least 2, got {self.embedding_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInputError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.l1 < 0 or self.l2 < 0:
            raise InvalidInputError(f"l1 and l2 must not be negative, got {self.l1}, {self.l2}")
        if self.arcface_scale <= 0 or not 0.0 <= self.arcface_margin < math.pi / 2:
            raise InvalidInputError("arcface_scale must be positive and arcface_margin in [0, π/2)")


@dataclass(frozen=True)
class ScratchConfig(HeadConfig):
    """A small VGG-like CNN trained from random weights."""

    image_size: int = 64
    filters: tuple[int, ...] = field(default=(32, 64, 128, 256))
    block_dropout: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "filters", tuple(int(count) for count in self.filters))
        if not 16 <= self.image_size <= 512:
            raise InvalidInputError(f"image_size must be between 16 and 512, got {self.image_size}")
        if not self.filters or min(self.filters) < 1:
            raise InvalidInputError(
                f"filters must be a non-empty list of positive counts: {self.filters}"
            )
        if self.image_size >> len(self.filters) < 1:
            raise InvalidInputError(
                f"{len(self.filters)} pooling blocks shrink {self.image_size} px to 0"
            )
        if not 0.0 <= self.block_dropout < 1.0:
            raise InvalidInputError(f"block_dropout must be in [0, 1), got {self.block_dropout}")


@dataclass(frozen=True)
class TransferConfig(HeadConfig):
    """A pretrained face network, frozen, with a new head; optionally its top blocks tuned."""

    backbone: str = DLIB_BACKBONE  # a registered model name or a .keras path
    dropout: float = 0.2
    fine_tune_blocks: int = 0  # residual blocks (from the top) unfrozen after the head trains
    fine_tune_epochs: int = 0
    fine_tune_learning_rate: float = 1e-5

    @property
    def image_size(self) -> int:
        return chip_geometry(self).size  # the backbone's input size is fixed

    def __post_init__(self) -> None:
        super().__post_init__()
        blocks = len(dlib_network.RESIDUAL_BLOCKS)
        if not 0 <= self.fine_tune_blocks <= blocks:
            raise InvalidInputError(f"fine_tune_blocks must be between 0 and {blocks}")
        if self.fine_tune_blocks and self.backbone != DLIB_BACKBONE:
            raise InvalidInputError(
                f"fine_tune_blocks needs the {DLIB_BACKBONE} backbone (its residual blocks), "
                f"not {self.backbone!r}: set transfer.fine_tune_blocks=0"
            )
        if self.fine_tune_epochs < 0 or self.fine_tune_learning_rate <= 0:
            raise InvalidInputError("fine_tune_epochs must be ≥ 0 and fine_tune_learning_rate > 0")


def chip_geometry(settings: ScratchConfig | TransferConfig) -> alignment.ChipSpec:
    """The chips a model trains on: dlib's 150-px chips (MTCNN's points) for the scratch CNN and
    the dlib backbone, else the backbone's own size, template and detector (its ``model.json``)."""
    if isinstance(settings, TransferConfig) and settings.backbone != DLIB_BACKBONE:
        return _backbone_geometry(settings.backbone)
    return alignment.ChipSpec()


@functools.lru_cache(maxsize=8)
def _backbone_geometry(backbone: str) -> alignment.ChipSpec:
    path = config.resolve_model_path(backbone)
    info = model_files.model_info(path)
    shape = (info.get("input") or {}).get("shape")
    if not shape:
        raise InvalidInputError(f"{path}'s model.json does not give its input shape")
    size = int(shape[0])
    points = alignment.model_template(info, size)
    template = tuple((float(x), float(y)) for x, y in points)
    return alignment.ChipSpec(size, template, detector=info.get("detector", "yunet"))


def backbone_card(settings: TransferConfig) -> dict[str, Any]:
    """What a trained model's ``model.json`` inherits from its backbone: the backbone's title
    and chip alignment record (its detector is :func:`chip_geometry`'s)."""
    if settings.backbone == DLIB_BACKBONE:
        title = f"{dlib_network.SOURCE_PACKAGE} face ResNet"
        return {"title": title, "alignment": dlib_network.dlib_alignment_record()}
    info = model_files.model_info(config.resolve_model_path(settings.backbone))
    title = info.get("title", info.get("name", settings.backbone))
    return {"title": title, "alignment": info.get("alignment")}


# --------------------------------------------------------------------------------------------
# ArcFace: cosine classifier + additive angular margin loss
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="lookalike")
class CosineClassifier(keras.layers.Layer):
    """Cosine similarity between each embedding and one learned unit vector per class."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform"
        )

    def call(self, inputs: Any) -> Any:
        return ops.matmul(ops.normalize(inputs, axis=-1), ops.normalize(self.kernel, axis=0))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="lookalike")
class AdditiveAngularMarginLoss(keras.losses.Loss):
    """ArcFace (Deng et al. 2019): softmax cross-entropy on ``scale · cos(θ + margin)``.

    ``y_pred`` are cosines from :class:`CosineClassifier`; the margin is added to the angle of
    the true class only, which pulls each identity's embeddings tightly around its centre.
    """

    def __init__(
        self,
        scale: float = 30.0,
        margin: float = 0.3,
        name: str = "additive_angular_margin_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)
        self.margin = float(margin)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        cosine = ops.clip(ops.cast(y_pred, "float32"), -1.0 + 1e-7, 1.0 - 1e-7)
        truth = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), ops.shape(cosine)[-1])
        sine = ops.sqrt(1.0 - ops.square(cosine))
        shifted = cosine * math.cos(self.margin) - sine * math.sin(self.margin)  # cos(θ + m)
        # Beyond θ = π - m, cos(θ + m) would rise again; fall back to a linear penalty there.
        threshold = math.cos(math.pi - self.margin)
        shifted = ops.where(
            cosine > threshold, shifted, cosine - math.sin(math.pi - self.margin) * self.margin
        )
        logits = self.scale * ops.where(truth > 0, shifted, cosine)
        return keras.losses.categorical_crossentropy(truth, logits, from_logits=True)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "margin": self.margin}


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def resizing_layer(image_size: int, name: str = "resize_chip") -> keras.layers.Resizing:
    """The one resize used by the tf.data pipeline and the exported embedding model."""
    return keras.layers.Resizing(
        image_size, image_size, interpolation="bilinear", antialias=True, name=name
    )


def _regulariser(settings: HeadConfig) -> keras.regularizers.Regularizer | None:
    if settings.l1 == 0 and settings.l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=settings.l1, l2=settings.l2)


def _heads(
    features: keras.KerasTensor, num_classes: int, settings: HeadConfig
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(unit embedding, class scores) on top of pooled features."""
    x = keras.layers.Dropout(settings.dropout, name="embedding_dropout")(features)
    x = keras.layers.Dense(
        settings.embedding_size, kernel_regularizer=_regulariser(settings), name="embedding_dense"
    )(x)
    # Float32 outputs: under mixed precision the normalisation and softmax stay exact.
    embedding = keras.layers.UnitNormalization(name="embedding", dtype="float32")(x)
    if settings.head == "arcface":
        scores = CosineClassifier(num_classes, name="identity", dtype="float32")(embedding)
    else:
        # Softmax on the raw embedding: a unit-length input would cap the logits' range.
        scores = keras.layers.Dense(
            num_classes,
            activation="softmax",
            kernel_regularizer=_regulariser(settings),
            name="identity",
            dtype="float32",
        )(x)
    return embedding, scores


def _embedding_for_chips(
    network: keras.Model, image_size: int, name: str, *, chip: int = CHIP_SIZE
) -> keras.Model:
    """Wrap ``network`` (images at ``image_size`` → embedding) to take ``chip``-px chips."""
    chips = keras.Input(shape=(chip, chip, 3), name="chip_rgb")
    x = chips if image_size == chip else resizing_layer(image_size)(chips)
    return keras.Model(chips, network(x), name=name)


def make_loss(settings: HeadConfig) -> keras.losses.Loss:
    """The training loss that matches the head."""
    if settings.head == "arcface":
        return AdditiveAngularMarginLoss(settings.arcface_scale, settings.arcface_margin)
    return keras.losses.SparseCategoricalCrossentropy()


# --------------------------------------------------------------------------------------------
# From scratch
# --------------------------------------------------------------------------------------------


def build_scratch(
    num_classes: int, settings: ScratchConfig, *, normalization_data: Any = None
) -> tuple[keras.Model, keras.Model]:
    """A CNN from random weights: conv blocks (BatchNorm, ReLU, max-pool, dropout), L1/L2.

    Standard scaling is the first layer, a ``Normalization`` adapted on ``normalization_data``
    (training images at ``image_size``, an array or a dataset of image batches) when given.
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    size = settings.image_size
    inputs = keras.Input(shape=(size, size, 3), name="image")
    # Per-channel standard scaling; float32 even under mixed precision (pixel variance ~ 4e3).
    normalise = keras.layers.Normalization(axis=-1, name="standard_scaling", dtype="float32")
    if normalization_data is not None:
        normalise.adapt(normalization_data)
    x = normalise(inputs)
    for number, filters in enumerate(settings.filters, start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=False,  # BatchNormalization supplies the shift
                kernel_regularizer=_regulariser(settings),
                name=f"block{number}_conv{conv}",
            )(x)
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{number}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"block{number}_relu{conv}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{number}_pool")(x)
        x = keras.layers.SpatialDropout2D(settings.block_dropout, name=f"block{number}_dropout")(x)
    features = keras.layers.GlobalAveragePooling2D(name="global_average_pool")(x)
    embedding, scores = _heads(features, num_classes, settings)
    training_model = keras.Model(inputs, scores, name="scratch_classifier")
    network = keras.Model(inputs, embedding, name="scratch_network")
    return training_model, _embedding_for_chips(network, size, "scratch_embedding")


# --------------------------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------------------------


def pretrained_model(weights_dir: Any = None) -> keras.Model:
    """A fresh copy of the pretrained face ResNet (unit 128-D embeddings), built in memory.

    Built from the weights package rather than loaded from the shared cached model, so
    training can change which layers are trainable without touching anyone else's copy.
    """
    model = dlib_network.build_face_resnet()
    weights = tfjs_weights.read_tfjs_weights(weights_dir or config.pretrained_weights_dir())
    dlib_network.load_tfjs_weights(model, weights)
    policy = keras.mixed_precision.global_policy().name
    if policy == "float32":
        return model

    # The input scaling divides by 256² = 65,536, beyond float16's range: keep it in float32.
    def with_policy(layer: keras.layers.Layer) -> keras.layers.Layer:
        layer_config = layer.get_config()
        layer_config["dtype"] = "float32" if layer.name == "preprocess" else policy
        return layer.__class__.from_config(layer_config)

    mixed = keras.models.clone_model(model, clone_function=with_policy)
    mixed.set_weights(model.get_weights())
    return mixed


def build_transfer(
    num_classes: int, settings: TransferConfig, *, backbone: keras.Model | None = None
) -> tuple[keras.Model, keras.Model]:
    """The pretrained backbone (frozen) up to its face features, plus a new head.

    The dlib ResNet gives its pooled 256-D features; any other backbone its whole unit
    embedding. ``backbone`` replaces the model ``settings.backbone`` names (tests).
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    size = settings.image_size
    if settings.backbone == DLIB_BACKBONE:
        pretrained = backbone if backbone is not None else pretrained_model()
        features_out = pretrained.get_layer("global_average_pool").output
    else:
        pretrained = backbone if backbone is not None else _fresh_copy(settings.backbone)
        features_out = pretrained.output
    trunk = keras.Model(pretrained.input, features_out, name=BACKBONE_NAME)
    trunk.trainable = False
    inputs = keras.Input(shape=(size, size, 3), name="image")
    features = trunk(inputs, training=False)  # inference mode even when its top is unfrozen
    # The dlib ResNet's pooled features share a large positive offset (~1.2, spread ~0.3 across
    # faces): standardise them, or the new head needs many epochs just to find the differences.
    features = keras.layers.BatchNormalization(name="features_bn")(features)
    embedding, scores = _heads(features, num_classes, settings)
    training_model = keras.Model(inputs, scores, name="transfer_classifier")
    network = keras.Model(inputs, embedding, name="transfer_network")
    return training_model, _embedding_for_chips(network, size, "transfer_embedding", chip=size)


def _fresh_copy(backbone: str) -> keras.Model:
    """A private copy of a saved backbone, so freezing it touches no one else's cached model."""
    shared = model_files.load_embedding_model(backbone)
    copy = keras.models.clone_model(shared)
    copy.set_weights(shared.get_weights())
    return copy


def unfreeze_top_blocks(training_model: keras.Model, blocks: int) -> list[str]:
    """Make the top ``blocks`` residual blocks of the backbone trainable; returns their layers.

    Recompile the model afterwards (with a low learning rate) for the change to take effect.
    """
    trunk = training_model.get_layer(BACKBONE_NAME)
    if blocks < 0 or blocks > len(dlib_network.RESIDUAL_BLOCKS):
        raise ValueError(f"blocks must be between 0 and {len(dlib_network.RESIDUAL_BLOCKS)}")
    prefixes = tuple(
        f"{name}_"
        for name, _, _ in dlib_network.RESIDUAL_BLOCKS[len(dlib_network.RESIDUAL_BLOCKS) - blocks :]
    )
    trunk.trainable = blocks > 0
    unfrozen = []
    for layer in trunk.layers:
        layer.trainable = bool(prefixes) and layer.name.startswith(prefixes)
        if layer.trainable and layer.weights:
            unfrozen.append(layer.name)
    return unfrozen


def build(
    model_type: str,
    num_classes: int,
    settings: ScratchConfig | TransferConfig,
    *,
    normalization_data: Any = None,
) -> tuple[keras.Model, keras.Model]:
    """Build a model by type name (``scratch`` or ``transfer``)."""
    if model_type == "scratch" and isinstance(settings, ScratchConfig):
        return build_scratch(num_classes, settings, normalization_data=normalization_data)
    if model_type == "transfer" and isinstance(settings, TransferConfig):
        return build_transfer(num_classes, settings)
    raise InvalidInputError(f"unknown model type {model_type!r} (choose scratch or transfer)")
