"""Photo collections as ``GalleryPhoto`` lists: a folder per person, or an IMDB-layout dataset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lookalike.errors import InvalidInputError, MissingFileError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}

# IMDB crops keep a 40% margin on every side of the face box, so in crop pixels the face sits at
# [0.4, 1.4] / 1.8 of the crop's width and height whatever the original photo's size was.
IMDB_CROP_FACE_BOX = (0.4 / 1.8, 0.4 / 1.8, 1.4 / 1.8, 1.4 / 1.8)


@dataclass(frozen=True)
class GalleryPhoto:
    """One photo of one celebrity, with what the source knows about it."""

    path: Path
    celebrity_id: str
    name: str
    gender: str | None = None  # "female" | "male" | None
    photo_year: int | None = None
    age: int | None = None
    relative_face_box: tuple[float, float, float, float] | None = None  # fractions of w, h

    def face_box(self, image_shape: tuple[int, ...]) -> tuple[float, float, float, float] | None:
        """The known face box (x1, y1, x2, y2) in pixels of an image of this shape, if any."""
        if self.relative_face_box is None:
            return None
        height, width = image_shape[:2]
        x1, y1, x2, y2 = self.relative_face_box
        return (x1 * width, y1 * height, x2 * width, y2 * height)


def slugify(name: str) -> str:
    """A URL-safe identifier: ``"George_W_Bush"`` → ``"george-w-bush"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "unnamed"


def list_images(images_dir: str | Path) -> list[str]:
    """Image files under a folder (recursively), as sorted POSIX paths relative to it."""
    root = Path(images_dir)
    if not root.is_dir():
        raise MissingFileError(f"image folder not found: {root}")
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def from_folders(images_dir: str | Path) -> list[GalleryPhoto]:
    """A folder-per-person gallery: each identity is named by its folder (``_`` read as space)."""
    root = Path(images_dir)
    photos = []
    for relative in list_images(root):
        parts = Path(relative).parts
        if len(parts) < 2:
            continue  # a loose file at the top has no identity
        folder = parts[-2]
        photos.append(
            GalleryPhoto(
                path=root / relative, celebrity_id=slugify(folder), name=folder.replace("_", " ")
            )
        )
    if not photos:
        raise InvalidInputError(
            f"no photos in person folders under {root} (expected DIR/<name>/*.jpg)"
        )
    return photos


def optional_int(value: object) -> int | None:
    """A whole number, or None for a missing value (NaN, pd.NA, None)."""
    return None if pd.isna(value) else int(value)


def from_imdb(
    dataset_dir: str | Path, metadata: pd.DataFrame | None = None, *, progress: bool = True
) -> list[GalleryPhoto]:
    """An IMDB-layout dataset (``DIR/imdb_crop/imdb.mat`` + crops), cleaned for a gallery.

    Keeps photos with exactly one confident face and a name; drops images filed under two
    different names. Birth dates may be unknown: such photos stay, without an age.
    """
    from lookalike import cleaning, imdb

    root = Path(dataset_dir)
    crop_root = root / "imdb_crop" if (root / "imdb_crop").is_dir() else root
    mat_path = crop_root / "imdb.mat"
    if metadata is None:
        metadata = imdb.load_metadata(mat_path)
    metadata, _report = cleaning.apply_filters(metadata, imdb_gallery_filters())
    metadata = metadata[[(crop_root / path).is_file() for path in metadata["full_path"]]]
    if metadata.empty:
        raise InvalidInputError(f"no usable photos listed in {mat_path}")
    metadata = cleaning.drop_conflicting_duplicates(
        cleaning.hash_images(metadata, crop_root, progress=progress)
    )
    return imdb_photos(metadata, crop_root)


def imdb_gallery_filters() -> list:
    """The filters a gallery applies to IMDB metadata: one confident face, a name."""
    from lookalike import cleaning

    return [cleaning.has_face, cleaning.single_face, cleaning.has_name]


def imdb_photos(metadata: pd.DataFrame, crop_root: str | Path) -> list[GalleryPhoto]:
    """Gallery photos of cleaned IMDB metadata rows (in their order), under ``crop_root``."""
    crop_root = Path(crop_root)
    ids_by_name: dict[str, str] = {}
    photos = []
    for row in metadata.itertuples(index=False):
        key = row.celeb_name if "celeb_name" in metadata.columns else row.name
        celebrity_id = ids_by_name.setdefault(key, slugify(key))
        gender = None if np.isnan(row.gender) else ("male" if row.gender == 1 else "female")
        photos.append(
            GalleryPhoto(
                path=crop_root / row.full_path,
                celebrity_id=celebrity_id,
                name=key,
                gender=gender,
                photo_year=optional_int(row.photo_taken),
                age=optional_int(row.age),
                relative_face_box=IMDB_CROP_FACE_BOX,
            )
        )
    return photos
