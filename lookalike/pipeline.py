"""From a photo to face embeddings: decode → detect → align → embed, in one object.

``FacePipeline`` holds the models (built once, shared by threads) and times every stage, so the
CLI, the index builder, the notebooks and the web API all run the very same steps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike import alignment, config, detection, images
from lookalike.detection import DetectedFace


@dataclass(frozen=True)
class FaceEmbedding:
    """One detected face: where it is, and its unit-length embedding."""

    face: DetectedFace
    embedding: np.ndarray


@dataclass
class StageTimer:
    """Milliseconds spent per stage, accumulated across calls."""

    milliseconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.milliseconds[stage] = self.milliseconds.get(stage, 0.0) + (now - started) * 1000.0
        return now


@dataclass(frozen=True)
class PhotoFaces:
    """The embedded faces of one photo (largest first) and what it took to get them."""

    faces: list[FaceEmbedding]
    total_faces: int
    width: int
    height: int
    timer: StageTimer


class FacePipeline:
    """Detect, align and embed faces with the project's default (or a given) embedding model."""

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        detector: str | None = None,
        min_confidence: float | None = None,
        subject_rule: str = detection.DEFAULT_SUBJECT_RULE,
        flip_average: bool | None = None,
        batch_size: int = 8,  # MobileFaceNet-style models peak at 4-8 chips a call on CPU
    ) -> None:
        """``model``: a registered name (``sface``), a ``.keras`` path, or None for the default.

        The chip size and landmark template come from the model (its ``model.json``), and so
        does ``flip_average`` unless given. ``detector`` is ``yunet`` or ``mtcnn`` (default: the
        model's own, :func:`lookalike.detection.detector_for`), with its own default score
        threshold unless ``min_confidence`` is given; ``subject_rule`` picks the
        face a gallery photo is about (:func:`lookalike.detection.choose_subject`).
        """
        if subject_rule not in detection.SUBJECT_RULES:
            raise ValueError(f"unknown subject rule {subject_rule!r}")
        self.subject_rule = subject_rule
        from lookalike import embedder  # TensorFlow import deferred until a pipeline is built

        self.model_path = config.resolve_model_path(model)
        self.model = embedder.load_embedding_model(self.model_path)
        self.model_info = embedder.model_info(self.model_path)
        self.detector = detection.detector_for(self.model_info, detector)
        self.min_confidence = detection.checked_confidence(min_confidence, self.detector)
        if flip_average is None:
            flip_average = bool(self.model_info.get("flip_average", True))
        self.flip_average = flip_average
        self.batch_size = batch_size
        self._template = alignment.model_template(self.model_info, self.chip_size)

    @property
    def embedding_size(self) -> int:
        return int(self.model.output_shape[-1])

    @property
    def chip_size(self) -> int:
        """Side in pixels of the aligned chips this pipeline's model takes."""
        return int(self.model.input_shape[1])

    @property
    def template(self) -> np.ndarray:
        """Where the 5 landmarks (eyes, nose, mouth corners; image-left first) sit in a chip."""
        return self._template.copy()

    def align(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        """The model's aligned chips (N, chip, chip, 3) uint8 RGB for ``faces`` of ``image``."""
        return alignment.align_faces(image, faces, size=self.chip_size, template=self._template)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length embeddings (N, D) of aligned RGB chips of the model's size."""
        from lookalike import embedder

        if len(chips) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        return embedder.embed_chips(
            self.model, chips, batch_size=self.batch_size, flip_average=self.flip_average
        )

    def faces_in_image(
        self, image: np.ndarray, *, max_faces: int | None = None, timer: StageTimer | None = None
    ) -> PhotoFaces:
        """Every confident face in an RGB image, largest first, each with its embedding.

        With ``max_faces``, only that many (the largest) are aligned and embedded; ``total_faces``
        still counts them all.
        """
        timer = timer or StageTimer()
        started = time.perf_counter()
        detected = detection.detect_faces(
            image, detector=self.detector, min_confidence=self.min_confidence
        )
        if self.detector == "yunet":
            detected = detection.keep_confident(detected)
        kept = detected[:max_faces] if max_faces is not None else detected
        started = timer.add("detect", started)
        chips = self.align(image, kept)
        started = timer.add("align", started)
        embeddings = self.embed_chips(chips)
        timer.add("embed", started)
        faces = [FaceEmbedding(face, vector) for face, vector in zip(kept, embeddings, strict=True)]
        height, width = image.shape[:2]
        return PhotoFaces(faces, len(detected), int(width), int(height), timer)

    def faces_in_file(
        self, source: bytes | str | os.PathLike, *, max_faces: int | None = None
    ) -> PhotoFaces:
        """Decode a photo (bytes or a path; EXIF orientation applied) and embed its faces."""
        timer = StageTimer()
        started = time.perf_counter()
        image = images.load_image(source)
        timer.add("decode", started)
        return self.faces_in_image(image, max_faces=max_faces, timer=timer)

    def largest_face_embeddings(
        self, photos: Sequence[np.ndarray], *, boxes: Sequence[Sequence[float] | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[DetectedFace | None]]:
        """Embed the largest face of each photo (batched detection).

        With ``boxes`` (a known x1, y1, x2, y2 face box per photo, e.g. from IMDB metadata, or
        None where unknown), the face at that box is used instead of the largest one. Photos
        without a face get a zero row. Returns (embeddings N×D, found N, faces).
        """
        chosen = subject_faces(
            photos,
            boxes,
            detector=self.detector,
            min_confidence=self.min_confidence,
            rule=self.subject_rule,
        )
        found = np.array([face is not None for face in chosen], dtype=bool)
        chips = [
            self.align(photo, [face])[0]
            for photo, face in zip(photos, chosen, strict=True)
            if face is not None
        ]
        embeddings = np.zeros((len(photos), self.embedding_size), np.float32)
        if chips:
            embeddings[found] = self.embed_chips(np.stack(chips))
        return embeddings, found, chosen


def embed_image_files(
    pipeline: FacePipeline,
    paths: Sequence[str | os.PathLike],
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N×D, zero rows where no face) and found flags of the largest face per file.

    Unreadable files count as "no face" (with a warning) rather than stopping a long run.
    """
    from tqdm.auto import tqdm

    embeddings = np.zeros((len(paths), pipeline.embedding_size), np.float32)
    found = np.zeros(len(paths), bool)
    with tqdm(total=len(paths), unit="photo", desc="embed", disable=not progress) as bar:
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            loaded = images.load_images_or_none(batch)
            positions = [start + offset for offset, image in enumerate(loaded) if image is not None]
            decoded = [image for image in loaded if image is not None]
            if decoded:
                vectors, hits, _faces = pipeline.largest_face_embeddings(decoded)
                embeddings[positions] = vectors
                found[positions] = hits
            bar.update(len(batch))
    return embeddings, found


def subject_faces(
    photos: Sequence[np.ndarray],
    boxes: Sequence[Sequence[float] | None] | None = None,
    *,
    detector: str = detection.DEFAULT_DETECTOR,
    min_confidence: float | None = None,
    rule: str = detection.DEFAULT_SUBJECT_RULE,
) -> list[DetectedFace | None]:
    """The face each photo is about: the one at its known box, else by ``rule`` among all.

    ``boxes`` holds a known (x1, y1, x2, y2) per photo or None where unknown. A known box is
    only refined (:data:`lookalike.detection.KNOWN_BOX_REFINER`), an order of magnitude faster
    than full detection. None where no face is found.
    """
    if boxes is None:
        boxes = [None] * len(photos)
    if len(boxes) != len(photos):
        raise ValueError(f"got {len(boxes)} boxes for {len(photos)} photos")
    chosen: list[DetectedFace | None] = [None] * len(photos)
    known = [index for index, box in enumerate(boxes) if box is not None]
    unknown = [index for index, box in enumerate(boxes) if box is None]
    if known:
        # MTCNN's last stage refines known boxes whatever the detector: measured faster and no
        # less accurate than YuNet on the crop (benchmarks/bench_known_boxes.py, README).
        refined = detection.landmarks_in_boxes(
            [photos[index] for index in known],
            [boxes[index] for index in known],
            detector=detection.KNOWN_BOX_REFINER,
        )
        for index, face in zip(known, refined, strict=True):
            chosen[index] = face
    if unknown:
        per_photo = detection.detect_faces_batch(
            [photos[index] for index in unknown], detector=detector, min_confidence=min_confidence
        )
        for index, faces in zip(unknown, per_photo, strict=True):
            chosen[index] = detection.choose_subject(faces, photos[index].shape, rule)
    return chosen
