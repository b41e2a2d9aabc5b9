"""Training data: aligned face chips from a photo collection, cached, split, and as ``tf.data``.

:func:`prepare_training_data` turns a dataset (IMDB layout or a folder per person) into
:class:`TrainingData`:

- every selected photo is decoded, its face found and aligned into a 150×150 chip with the same
  functions the index uses (known IMDB face box → ONet landmarks; otherwise the largest detected
  face), and the chips are cached as one ``.npz`` under ``config.cache_dir()/training``, keyed by
  the photo list and the alignment settings, so a second run skips detection; large sets
  (``data.chip_store``: the full IMDB crops) go to an on-disk ``lookalike.chip_store.ChipStore``
  instead, filled resumably and streamed by ``tf.data`` without holding the chips in RAM;
- identities with too few photos are dropped; a seeded share of the rest, plus every identity too
  small to train on, is HELD OUT (never trained on) for look-alike metrics;
- the photos of the training identities are split train / validation / test within each identity
  (stratified, seeded) for classification accuracy and loss.

:func:`make_dataset` streams uint8 chips through resizing and (train only) augmentation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike import config, detection, gallery
from lookalike.alignment import ChipSpec
from lookalike.chip_store import ChipArray, ChipStore
from lookalike.errors import InvalidInputError, MissingFileError
from lookalike.pipeline import load_subjects

log = logging.getLogger(__name__)

# 150-px chips on dlib's template from MTCNN's points: the scratch CNN and the dlib backbone.
DLIB_CHIPS = ChipSpec()
LAYOUTS = ("auto", "imdb", "folders")
CACHE_VERSION = 1  # bump when the cached arrays change meaning
DETECTION_CHUNK = 32  # photos decoded and detected per step (bounded memory, steady progress)
CHIP_STORES = ("auto", "memory", "disk")
DISK_ABOVE = 20_000  # photos: "auto" keeps larger sets' chips on disk (~67 KB per 150-px chip)


@dataclass(frozen=True)
class DataConfig:
    """Which photos to use and how to split them (the ``data`` section of a training config)."""

    source: str = "sample"
    layout: str = "auto"
    min_photos: int = 4  # identities with fewer found faces are not trained on
    heldout_min_photos: int = 2  # identities with fewer are dropped altogether
    heldout_fraction: float = 0.2  # share of trainable identities held out instead
    max_identities: int | None = None  # keep only the identities with the most photos
    max_photos_per_identity: int | None = None  # the first N photos (by path) of each
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    augment_flip: bool = True
    augment_shift: float = 0.05  # random translation, fraction of the image side
    augment_brightness: float = 0.1  # random brightness change, fraction of the 0-255 range
    chip_store: str = "auto"  # memory (one .npz, in RAM) | disk (streamed) | auto (by size)

    def __post_init__(self) -> None:
        if self.chip_store not in CHIP_STORES:
            raise InvalidInputError(
                f"data.chip_store must be one of {', '.join(CHIP_STORES)}, got {self.chip_store!r}"
            )
        if self.layout not in LAYOUTS:
            raise InvalidInputError(
                f"data.layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}"
            )
        if self.heldout_min_photos < 2:
            raise InvalidInputError(
                "data.heldout_min_photos must be at least 2 (a query and a match)"
            )
        splits = int(self.validation_fraction > 0) + int(self.test_fraction > 0)
        if self.min_photos < 1 + splits:
            raise InvalidInputError(
                f"data.min_photos must be at least {1 + splits}: one photo per split "
                f"(train{', validation' * (self.validation_fraction > 0)}"
                f"{', test' * (self.test_fraction > 0)}), got {self.min_photos}"
            )
        for name in ("heldout_fraction", "validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InvalidInputError(f"data.{name} must be in [0, 1), got {value}")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise InvalidInputError("data.validation_fraction + data.test_fraction must be below 1")
        for name in ("max_identities", "max_photos_per_identity"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise InvalidInputError(f"data.{name} must be at least 2 (or null), got {value}")
        if not 0.0 <= self.augment_shift < 0.5 or not 0.0 <= self.augment_brightness < 1.0:
            raise InvalidInputError(
                "data.augment_shift must be in [0, 0.5), augment_brightness in [0, 1)"
            )


@dataclass(frozen=True)
class ChipSet:
    """Aligned chips (N, S, S, 3) uint8, the identity of each, and its path in the source.

    ``chips`` is an array in RAM, or a :class:`~lookalike.chip_store.ChipArray` read from disk.
    """

    chips: np.ndarray | ChipArray
    identities: np.ndarray  # celebrity ids (str)
    paths: list[str]

    def __post_init__(self) -> None:
        if not len(self.chips) == len(self.identities) == len(self.paths):
            raise ValueError("chips, identities and paths must have the same length")

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, rows: np.ndarray) -> ChipSet:
        """The chips at these row indices (in this order)."""
        rows = np.asarray(rows, dtype=np.int64)
        chips = self.chips.take(rows) if isinstance(self.chips, ChipArray) else self.chips[rows]
        return ChipSet(chips, self.identities[rows], [self.paths[i] for i in rows])


@dataclass(frozen=True)
class TrainingData:
    """Classification splits of the training identities, and the held-out identities."""

    classes: list[str]  # celebrity id of each class index
    names: dict[str, str]  # celebrity id → display name
    train: ChipSet
    validation: ChipSet
    test: ChipSet
    heldout: ChipSet
    summary: dict[str, Any] = field(default_factory=dict)

    def class_labels(self, part: ChipSet) -> np.ndarray:
        """Class indices (int32) of a split's identities."""
        index = {identity: number for number, identity in enumerate(self.classes)}
        return np.array([index[identity] for identity in part.identities], dtype=np.int32)


# --------------------------------------------------------------------------------------------
# Photos and the chip cache
# --------------------------------------------------------------------------------------------


def resolve_source(source: str | os.PathLike) -> Path:
    """A dataset folder: as given, else under ``config.data_dir()``, else the shared data."""
    path = Path(source).expanduser()
    candidates = (
        [path]
        if path.is_absolute()
        else [
            path,
            config.data_dir() / path,
            config.shared_data_dir() / path,
        ]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise MissingFileError(f"dataset {source!r} not found (tried {tried})")


def _is_imdb_layout(root: Path) -> bool:
    return (root / "imdb_crop" / "imdb.mat").is_file() or (root / "imdb.mat").is_file()


def load_photos(root: Path, layout: str = "auto") -> list[gallery.GalleryPhoto]:
    """The gallery's photos of a dataset folder (``auto``: IMDB layout when imdb.mat is there)."""
    if layout not in LAYOUTS:
        raise InvalidInputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "imdb" or (layout == "auto" and _is_imdb_layout(root)):
        return gallery.from_imdb(root)
    return gallery.from_folders(root)


def select_photos(
    photos: list[gallery.GalleryPhoto], settings: DataConfig
) -> list[gallery.GalleryPhoto]:
    """The photos worth aligning: per-identity cap, enough photos, and the identity cap.

    Deterministic (no seed): a different split of the same photos reuses the same chip cache.
    """
    by_identity: dict[str, list[gallery.GalleryPhoto]] = defaultdict(list)
    for photo in photos:
        by_identity[photo.celebrity_id].append(photo)
    groups = []
    for identity in sorted(by_identity):
        group = sorted(by_identity[identity], key=lambda photo: str(photo.path))
        group = group[: settings.max_photos_per_identity]
        if len(group) >= settings.heldout_min_photos:
            groups.append(group)
    if settings.max_identities is not None:
        # The best-photographed identities first: a small run still has photos to learn from.
        groups.sort(key=lambda group: (-len(group), group[0].celebrity_id))
        groups = sorted(groups[: settings.max_identities], key=lambda group: group[0].celebrity_id)
    return [photo for group in groups for photo in group]


def _cache_key(root: Path, photos: list[gallery.GalleryPhoto], spec: ChipSpec) -> str:
    # The photo list and every setting that changes a chip; the split settings do not.
    settings = {
        "version": CACHE_VERSION,
        "source": str(root),
        "chip_size": spec.size,
        "template": spec.points.tolist(),
        "detector": spec.detector,  # folder photos; known boxes are always refined by ONet
        "min_confidence": detection.checked_confidence(None, spec.detector),
        "max_side": detection.DEFAULT_MAX_SIDE,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for photo in photos:
        box = photo.relative_face_box
        digest.update(f"{photo.path}\t{photo.celebrity_id}\t{box}\n".encode())
    return digest.hexdigest()


def _align_chunk(
    photos: list[gallery.GalleryPhoto], spec: ChipSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Chips (found faces only) and a found mask for a few photos."""
    subjects = load_subjects(
        [photo.path for photo in photos],
        [photo.face_box for photo in photos],
        size=spec.size,
        template=spec.points,
        detector=spec.detector,  # its own default score threshold
    )
    return subjects.chips, subjects.found


def load_chips(
    root: Path,
    photos: list[gallery.GalleryPhoto],
    *,
    progress: bool = True,
    storage: str = "memory",
    spec: ChipSpec = DLIB_CHIPS,
) -> tuple[ChipSet, dict[str, Any]]:
    """Aligned chips of the photos whose face was found, from the cache or freshly aligned.

    ``storage``: ``memory`` (one ``.npz``, loaded whole) or ``disk`` (a resumable
    :class:`~lookalike.chip_store.ChipStore`; the chip set reads its rows on demand).
    ``spec``: the chips' size and template (default dlib's 150-px chips).
    Returns the chips and facts about them (cache file, whether it was reused, faces missed).
    """
    key = _cache_key(root, photos, spec)
    if storage == "disk":
        return _load_chip_store(root, photos, key, progress, spec)
    if storage != "memory":
        raise InvalidInputError(f"storage must be memory or disk, got {storage!r}")
    name = f"chips-{gallery.slugify(root.name)}-{key[:16]}.npz"
    cache_path = config.cache_dir() / "training" / name
    cached = _read_cache(cache_path, key)
    if cached is not None:
        chips, found = cached
        log.info("reusing %d cached chips from %s", len(chips), cache_path)
    else:
        chips, found = _align_all(photos, progress, spec)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_path.with_suffix(".partial")
        with open(partial, "wb") as handle:  # a handle: np.savez would append ".npz" to a name
            np.savez(handle, key=np.array(key), chips=chips, found=found)
        partial.replace(cache_path)  # readers never see half a cache
        log.info(
            "cached %d chips (%d photos without a face) in %s",
            len(chips),
            (~found).sum(),
            cache_path,
        )
    relative = [Path(photo.path).relative_to(root).as_posix() for photo in photos]
    identities = np.array([photo.celebrity_id for photo in photos], dtype=str)
    chip_set = ChipSet(chips, identities[found], _where(relative, found))
    facts = {
        "cache": str(cache_path),
        "cache_reused": cached is not None,
        "missed_faces": int((~found).sum()),
    }
    return chip_set, facts


def _load_chip_store(
    root: Path, photos: list[gallery.GalleryPhoto], key: str, progress: bool, spec: ChipSpec
) -> tuple[ChipSet, dict[str, Any]]:
    name = f"chips-{gallery.slugify(root.name)}-{key[:16]}.store"
    path = config.cache_dir() / "training" / name
    store = ChipStore.open_or_create(path, key=key, count=len(photos), chip_size=spec.size)
    reused, resumed_at = store.complete, store.done
    if not reused:
        store.fill(lambda start, stop: _align_chunk(photos[start:stop], spec), progress=progress)
        log.info("stored %d chips in %s", int(store.found.sum()), path)
    found = store.found
    relative = [Path(photo.path).relative_to(root).as_posix() for photo in photos]
    identities = np.array([photo.celebrity_id for photo in photos], dtype=str)
    chip_set = ChipSet(store.chips(), identities[found], _where(relative, found))
    facts = {
        "cache": str(path),
        "cache_reused": reused,
        "cache_resumed_at": resumed_at if not reused else None,
        "missed_faces": int((~found).sum()),
    }
    return chip_set, facts


def chip_storage(settings: DataConfig, photo_count: int) -> str:
    """Where the chips of ``photo_count`` photos live: ``memory`` or ``disk``."""
    if settings.chip_store != "auto":
        return settings.chip_store
    return "disk" if photo_count > DISK_ABOVE else "memory"


def _read_cache(path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path) as cached:
        if str(cached["key"]) != key:  # a hash-prefix collision: treat as a miss
            return None
        return cached["chips"], cached["found"]


def _align_all(
    photos: list[gallery.GalleryPhoto], progress: bool, spec: ChipSpec
) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm

    chunks, masks = [], []
    with tqdm(total=len(photos), unit="photo", desc="align faces", disable=not progress) as bar:
        for start in range(0, len(photos), DETECTION_CHUNK):
            chips, found = _align_chunk(photos[start : start + DETECTION_CHUNK], spec)
            chunks.append(chips)
            masks.append(found)
            bar.update(len(found))
    empty = np.zeros((0, spec.size, spec.size, 3), np.uint8)
    return (
        np.concatenate(chunks) if chunks else empty,
        np.concatenate(masks) if masks else np.zeros(0, bool),
    )


def _where(values: list[str], mask: np.ndarray) -> list[str]:
    return [value for value, keep in zip(values, mask, strict=True) if keep]


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def split_identities(counts: dict[str, int], settings: DataConfig) -> tuple[list[str], list[str]]:
    """(training identities, held-out identities), both sorted.

    Identities with fewer than ``heldout_min_photos`` are dropped; those with fewer than
    ``min_photos`` cannot be trained on and are held out; of the rest a seeded random
    ``heldout_fraction`` is held out too.
    """
    trainable = sorted(
        identity for identity, count in counts.items() if count >= settings.min_photos
    )
    too_small = sorted(
        identity
        for identity, count in counts.items()
        if settings.heldout_min_photos <= count < settings.min_photos
    )
    rng = np.random.default_rng(settings.seed)
    held_count = int(round(settings.heldout_fraction * len(trainable)))
    held = set(rng.permutation(trainable)[:held_count].tolist()) if held_count else set()
    training = [identity for identity in trainable if identity not in held]
    return training, sorted(held | set(too_small))


def split_photos(
    chip_set: ChipSet, settings: DataConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train / validation / test: each identity's photos split by the fractions.

    Stratified by construction (every identity appears in every split that has a non-zero
    fraction) and seeded.
    """
    rng = np.random.default_rng(settings.seed + 1)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    rows_by_identity: dict[str, list[int]] = defaultdict(list)
    for row, identity in enumerate(chip_set.identities):
        rows_by_identity[str(identity)].append(row)
    for identity in sorted(rows_by_identity):
        rows = rng.permutation(rows_by_identity[identity])
        count = len(rows)
        n_validation = (
            max(1, round(count * settings.validation_fraction))
            if settings.validation_fraction
            else 0
        )
        n_test = max(1, round(count * settings.test_fraction)) if settings.test_fraction else 0
        if count - n_validation - n_test < 1:
            raise InvalidInputError(f"identity {identity} has {count} photos: too few to split")
        parts[1].extend(rows[:n_validation])
        parts[2].extend(rows[n_validation : n_validation + n_test])
        parts[0].extend(rows[n_validation + n_test :])
    return tuple(np.sort(np.array(part, dtype=np.int64)) for part in parts)  # type: ignore[return-value]


def prepare_training_data(
    settings: DataConfig, *, progress: bool = True, spec: ChipSpec = DLIB_CHIPS
) -> TrainingData:
    """Load, align (cached), filter and split a dataset for training and held-out evaluation.

    ``spec``: the chips' size and template: dlib's 150-px chips by default, or a transfer
    backbone's own (``lookalike.models.chip_geometry``)."""
    root = resolve_source(settings.source)
    photos = select_photos(load_photos(root, settings.layout), settings)
    if not photos:
        raise InvalidInputError(
            f"no identity in {root} has {settings.heldout_min_photos} or more photos"
        )
    names = {photo.celebrity_id: photo.name for photo in photos}
    storage = chip_storage(settings, len(photos))
    chip_set, facts = load_chips(root, photos, progress=progress, storage=storage, spec=spec)
    facts["chip_store"] = storage

    identities, counts = np.unique(chip_set.identities, return_counts=True)
    training, heldout = split_identities(
        dict(zip(identities.tolist(), counts.tolist(), strict=True)), settings
    )
    if len(training) < 2:
        raise InvalidInputError(
            f"too few identities to train on: {len(training)} with at least "
            f"{settings.min_photos} photos in {root} (need 2 or more; lower data.min_photos, "
            "data.heldout_fraction or raise data.max_identities)"
        )
    is_training = np.isin(chip_set.identities, training)
    trainable = chip_set.take(np.flatnonzero(is_training))
    train_rows, validation_rows, test_rows = split_photos(trainable, settings)
    held = chip_set.take(np.flatnonzero(np.isin(chip_set.identities, heldout)))
    summary = {
        "source": str(root),
        "settings": asdict(settings),
        "photos_selected": len(photos),
        **facts,
        "training_identities": len(training),
        "heldout_identities": len(heldout),
        "photos": {
            "train": len(train_rows),
            "validation": len(validation_rows),
            "test": len(test_rows),
            "heldout": len(held),
        },
    }
    return TrainingData(
        classes=training,
        names={identity: names[identity] for identity in identities.tolist()},
        train=trainable.take(train_rows),
        validation=trainable.take(validation_rows),
        test=trainable.take(test_rows),
        heldout=held,
        summary=summary,
    )


# --------------------------------------------------------------------------------------------
# tf.data
# --------------------------------------------------------------------------------------------


def make_dataset(
    chips: np.ndarray,
    labels: np.ndarray,
    *,
    image_size: int,
    batch_size: int,
    training: bool = False,
    settings: DataConfig | None = None,
    seed: int = 0,
) -> Any:
    """A ``tf.data.Dataset`` of (float32 images 0-255 at ``image_size``, int labels) batches.

    With ``training``: shuffled every epoch and augmented (horizontal flip, small shifts,
    brightness, from ``settings``). Resizing uses the same layer as the exported embedding model.
    ``chips`` in RAM become one tensor; a :class:`~lookalike.chip_store.ChipArray` is streamed:
    only row positions are shuffled and batched, and each batch's chips are read from disk.
    """
    import tensorflow as tf

    from lookalike.models import resizing_layer

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    settings = settings or DataConfig()
    resize = resizing_layer(image_size) if chips.shape[1] != image_size else None
    augment = _augmentation(settings, seed) if training else None

    def prepare(batch: tf.Tensor, batch_labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images_float = tf.cast(batch, tf.float32)
        if resize is not None:
            images_float = resize(images_float)
        if augment is not None:
            images_float = augment(images_float, training=True)
        return images_float, batch_labels

    dataset = _chip_batches(chips, np.asarray(labels, dtype=np.int32), batch_size, training, seed)
    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _augmentation(settings: DataConfig, seed: int) -> Any:
    """The training augmentation the settings ask for, as one Keras model (None: none)."""
    import keras

    steps = []
    if settings.augment_flip:
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if settings.augment_shift > 0:
        shift = settings.augment_shift
        # Black fill, like the aligner's border outside the photo.
        steps.append(
            keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed + 1)
        )
    if settings.augment_brightness > 0:
        steps.append(
            keras.layers.RandomBrightness(
                settings.augment_brightness, value_range=(0, 255), seed=seed + 2
            )
        )
    return keras.Sequential(steps, name="augmentation") if steps else None


def _chip_batches(
    chips: np.ndarray | ChipArray, labels: np.ndarray, batch_size: int, training: bool, seed: int
) -> Any:
    """(uint8 chips, labels) batches, shuffled every epoch when ``training``; chips on disk are
    read a batch at a time (only row positions are shuffled)."""
    import tensorflow as tf

    on_disk = isinstance(chips, ChipArray)
    if on_disk:
        positions = np.arange(len(chips), dtype=np.int64)
        dataset = tf.data.Dataset.from_tensor_slices((positions, labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((chips, labels))
    if training:
        dataset = dataset.shuffle(len(chips), seed=seed, reshuffle_each_iteration=True)
    # Batch first, then map: one vectorised resize/augment per batch, run in parallel.
    dataset = dataset.batch(batch_size)
    if on_disk:

        def read(positions: tf.Tensor, batch_labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            batch = tf.numpy_function(chips.read_positions, [positions], tf.uint8)
            batch.set_shape((None, *chips.shape[1:]))
            return batch, batch_labels

        dataset = dataset.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset
