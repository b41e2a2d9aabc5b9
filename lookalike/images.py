"""Decode untrusted photo bytes or files into RGB arrays, safely.

Everything a user can upload comes through :func:`load_image`: it refuses empty, non-image,
corrupt, truncated and oversized input with an :class:`ImageError` whose ``code`` the web API
turns into a JSON error, and it honours EXIF orientation so faces are upright for the detector.
Nothing is written to disk.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from lookalike.errors import LookalikeError

# Room for today's 48-50 MP phone photos (8064×6048 = 48.8 MP, ~150 MB decoded); anything far
# larger is a decompression bomb rather than a selfie.
DEFAULT_MAX_PIXELS = 64_000_000

# Photo formats we decode. Pillow recognises more (EPS would even start Ghostscript on load),
# so anything else is refused before its pixels are touched.
SUPPORTED_FORMATS = frozenset(
    {"JPEG", "MPO", "PNG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "PPM", "AVIF"}
)
# iPhones upload HEIC by default; Pillow cannot read it, so say so rather than "not an image".
_HEIC_BRANDS = (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypheim", b"ftypheis", b"ftypmif1")

# Leading bytes of the supported formats: a file that starts like a photo but fails to parse
# is reported as corrupt rather than as "not an image".
_PHOTO_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
)

ERROR_CODES = ("empty_file", "not_an_image", "corrupt_image", "too_large", "unsupported_image")

# Never decode a half-received upload into a grey-bottomed photo.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(LookalikeError, ValueError):
    """An input that is not a usable photo; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise AssertionError(f"unknown image error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


def load_image(
    source: bytes | str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a photo (bytes or a file path) into an upright RGB uint8 array of shape H×W×3.

    EXIF orientation is applied; alpha is composited over white; greyscale, palette, CMYK and
    16-bit images are converted; animated images give their first frame. Raises
    :class:`ImageError` for empty, non-image, corrupt or truncated input, for formats outside
    :data:`SUPPORTED_FORMATS`, and (``too_large``) when the header announces more than
    ``max_pixels`` pixels, checked before any pixel is decoded. A missing path raises
    ``FileNotFoundError`` as usual.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = "the uploaded data"
    else:
        path = Path(source)
        data = path.read_bytes()  # FileNotFoundError / IsADirectoryError pass through
        name = path.name
    if not data:
        raise ImageError("empty_file", f"{name} is empty (0 bytes)")
    try:
        picture = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[4:12] in _HEIC_BRANDS:
            raise ImageError(
                "unsupported_image", f"{name} is a HEIC/HEIF photo; please send JPEG or PNG"
            ) from None
        if data.startswith(_PHOTO_SIGNATURES) or data[8:12] == b"WEBP":
            raise ImageError("corrupt_image", f"{name} looks like an image but is broken") from None
        raise ImageError("not_an_image", f"{name} is not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError("too_large", f"{name} is too large to decode: {error}") from None
    except Exception as error:  # a plugin choking on a broken header
        raise ImageError("corrupt_image", f"{name} has a broken header: {error}") from None
    with picture:
        return _decode(picture, name, max_pixels)


def _decode(picture: Image.Image, name: str, max_pixels: int) -> np.ndarray:
    if picture.format not in SUPPORTED_FORMATS:
        supported = ", ".join(sorted(SUPPORTED_FORMATS))
        raise ImageError(
            "unsupported_image", f"{name} is a {picture.format} image; supported: {supported}"
        )
    width, height = picture.size
    # Pillow's own bomb limit also applies (it would only warn between 1× and 2× of it).
    pillow_limit = Image.MAX_IMAGE_PIXELS
    limit = max_pixels if pillow_limit is None else min(max_pixels, pillow_limit)
    if width * height > limit:
        raise ImageError(
            "too_large",
            f"{name} is {width}×{height} = {width * height:,} pixels; the limit is {limit:,}",
        )
    if width < 1 or height < 1:
        raise ImageError("corrupt_image", f"{name} has an empty {width}×{height} frame")
    try:
        picture.seek(0)  # animated GIF/WebP/APNG and multi-page TIFF: the first frame
        picture.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError("too_large", f"{name} is too large to decode: {error}") from None
    except Exception as error:  # truncated data, bad Huffman tables, zlib errors, ...
        raise ImageError("corrupt_image", f"{name} could not be decoded: {error}") from None
    # A malformed EXIF block must not cost us an otherwise good photo.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(picture, in_place=True)  # no copy when there is nothing to do
    try:
        rgb = _to_rgb(picture)
    except ValueError as error:
        raise ImageError(
            "unsupported_image", f"{name} has pixel mode {picture.mode!r}: {error}"
        ) from None
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _to_rgb(picture: Image.Image) -> np.ndarray:
    mode = picture.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _high_depth_to_rgb(picture)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info:
        rgba = np.asarray(picture.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        # Composite over white: a transparent PNG looks like it does on a web page.
        blended = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    if mode == "RGB":
        return np.asarray(picture)
    return np.asarray(picture.convert("RGB"))


def _high_depth_to_rgb(picture: Image.Image) -> np.ndarray:
    values = np.asarray(picture).astype(np.float64)
    if picture.mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
    elif picture.mode.startswith("I;16"):
        top = 65535.0
    else:
        # 32-bit "I": Pillow's mode for some 16-bit PNG/TIFF files; 8-bit data stays as is.
        top = 65535.0 if values.size and values.max() > 255 else 255.0
    grey = np.clip(np.nan_to_num(values) * (255.0 / top), 0, 255)
    grey = np.rint(grey).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``image`` so its longer side is at most ``max_side``; returns (image, scale).

    ``scale`` is new size / old size (1.0 when nothing was done, also for ``max_side=None``),
    so a point maps back with ``(x + 0.5) / scale - 0.5`` (pixel-centre convention).
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    height, width = image.shape[:2]
    longest = max(height, width)
    if max_side is None or longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    # Passing fx/fy (not a size) makes OpenCV map coordinates by exactly ``scale`` on both
    # axes; INTER_AREA averages the pixels each output pixel covers, so nothing aliases.
    if min(height, width) * scale < 1:  # a sliver: keep at least one row/column
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return small, scale


def load_images_or_none(paths: Sequence[str | os.PathLike]) -> list[np.ndarray | None]:
    """``load_image`` for each path, with ``None`` (and a logged warning) for an unreadable one,
    so that one bad file does not stop a long batch job."""
    decoded: list[np.ndarray | None] = []
    for path in paths:
        try:
            decoded.append(load_image(path))
        except (ImageError, OSError) as error:
            logging.getLogger(__name__).warning("skipping %s: %s", path, error)
            decoded.append(None)
    return decoded
