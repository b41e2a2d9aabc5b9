"""From a photo to face embeddings: decode → detect → align → embed, in one object.

``FacePipeline`` holds the models (built once, shared by threads) and times every stage, so the
CLI, the index builder, the notebooks and the web API all run the very same steps.

A batch of gallery or training photos takes one path: :func:`load_subjects` (decode) →
:func:`align_subjects` (:func:`subject_faces`: the face each photo is about, at its known box or
by the subject rule → an aligned chip of a given size and template), then
``FacePipeline.embed_subjects``. The index build, the training data and :func:`embed_image_files`
all go through it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
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
        from lookalike import model_files  # TensorFlow import deferred until a pipeline is built

        self.model_path = config.resolve_model_path(model)
        self.model = model_files.load_embedding_model(self.model_path)
        self.model_info = model_files.model_info(self.model_path)
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

    def align_subjects(
        self,
        photos: Sequence[np.ndarray | None],
        boxes: Sequence[Sequence[float] | None] | None = None,
    ) -> SubjectChips:
        """:func:`align_subjects` with this pipeline's detector, subject rule and model chips."""
        return align_subjects(photos, boxes, **self._subject_settings())

    def load_subjects(
        self, paths: Sequence[str | os.PathLike], face_boxes: Sequence[FaceBox] | None = None
    ) -> SubjectChips:
        """:func:`load_subjects` with this pipeline's detector, subject rule and model chips."""
        return load_subjects(paths, face_boxes, **self._subject_settings())

    def embed_subjects(self, subjects: SubjectChips) -> np.ndarray:
        """Embeddings (N×D) of each photo's subject face; a zero row where none was found."""
        embeddings = np.zeros((len(subjects.faces), self.embedding_size), np.float32)
        if len(subjects.chips):
            embeddings[subjects.found] = self.embed_chips(subjects.chips)
        return embeddings

    def _subject_settings(self) -> dict:
        return {
            "size": self.chip_size,
            "template": self._template,
            "detector": self.detector,
            "min_confidence": self.min_confidence,
            "rule": self.subject_rule,
        }


def embed_image_files(
    pipeline: FacePipeline,
    paths: Sequence[str | os.PathLike],
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (N×D, zero rows where no face) and found flags of the subject face per file.

    Unreadable files count as "no face" (with a warning) rather than stopping a long run.
    """
    from tqdm.auto import tqdm

    embeddings = np.zeros((len(paths), pipeline.embedding_size), np.float32)
    found = np.zeros(len(paths), bool)
    with tqdm(total=len(paths), unit="photo", desc="embed", disable=not progress) as bar:
        for start in range(0, len(paths), batch_size):
            subjects = pipeline.load_subjects(paths[start : start + batch_size])
            stop = start + len(subjects.faces)
            embeddings[start:stop] = pipeline.embed_subjects(subjects)
            found[start:stop] = subjects.found
            bar.update(stop - start)
    return embeddings, found


# --------------------------------------------------------------------------------------------
# The one face path of a batch of photos: decode → detect → pick the subject face → align
# --------------------------------------------------------------------------------------------

# A photo's known face box, as a function of the decoded image's shape (``GalleryPhoto.face_box``).
FaceBox = Callable[[tuple[int, ...]], Sequence[float] | None]


@dataclass(frozen=True)
class SubjectChips:
    """The face each photo of a batch is about, aligned into a chip."""

    images: list[np.ndarray | None]  # the decoded photos (None: unreadable)
    faces: list[DetectedFace | None]  # each photo's subject face (None: unreadable or no face)
    chips: np.ndarray  # (faces found, S, S, 3) uint8, in the photos' order

    @property
    def found(self) -> np.ndarray:
        """Per photo, whether its subject face was found (the rows of ``chips``)."""
        return np.array([face is not None for face in self.faces], dtype=bool)


def load_subjects(
    paths: Sequence[str | os.PathLike],
    face_boxes: Sequence[FaceBox] | None = None,
    **settings,
) -> SubjectChips:
    """Decode photos (unreadable ones: no face, with a warning) and :func:`align_subjects` them.

    ``face_boxes`` gives, per path, the photo's known face box as a function of the decoded
    image's shape (``GalleryPhoto.face_box``); ``settings`` are :func:`align_subjects`'s.
    """
    if face_boxes is not None and len(face_boxes) != len(paths):
        raise ValueError(f"got {len(face_boxes)} face boxes for {len(paths)} photos")
    decoded = images.load_images_or_none(paths)
    boxes = None
    if face_boxes is not None:
        boxes = [
            None if image is None else box_of(image.shape)
            for image, box_of in zip(decoded, face_boxes, strict=True)
        ]
    return align_subjects(decoded, boxes, **settings)


def align_subjects(
    photos: Sequence[np.ndarray | None],
    boxes: Sequence[Sequence[float] | None] | None = None,
    *,
    size: int = alignment.CHIP_SIZE,
    template: np.ndarray | None = None,
    detector: str = detection.DEFAULT_DETECTOR,
    min_confidence: float | None = None,
    rule: str = detection.DEFAULT_SUBJECT_RULE,
) -> SubjectChips:
    """Find each photo's subject face (:func:`subject_faces`, batched) and align it.

    ``photos`` may hold None (an unreadable photo: no face). Chips are ``size`` pixels, framed
    by ``template`` (default dlib's, :func:`lookalike.alignment.template_for`).
    """
    if boxes is not None and len(boxes) != len(photos):
        raise ValueError(f"got {len(boxes)} boxes for {len(photos)} photos")
    readable = [index for index, photo in enumerate(photos) if photo is not None]
    located = subject_faces(
        [photos[index] for index in readable],
        None if boxes is None else [boxes[index] for index in readable],
        detector=detector,
        min_confidence=min_confidence,
        rule=rule,
    )
    faces: list[DetectedFace | None] = [None] * len(photos)
    for index, face in zip(readable, located, strict=True):
        faces[index] = face
    chips = np.zeros((sum(face is not None for face in faces), size, size, 3), np.uint8)
    kept = [(photo, face) for photo, face in zip(photos, faces, strict=True) if face is not None]
    for row, (photo, face) in enumerate(kept):
        chips[row] = alignment.align_face(photo, face.landmarks, size=size, template=template)
    return SubjectChips(list(photos), faces, chips)


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
