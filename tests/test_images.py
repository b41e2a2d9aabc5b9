"""Decoding untrusted photos: modes, EXIF orientation, and every refusal with its code."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from lookalike.fixtures import png_header_only, png_of_zeros
from lookalike.images import ImageError, downscale, load_image

EXIF_ORIENTATION = 0x0112


def encode(picture: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def face_bytes(assets: Path) -> bytes:
    return (assets / "face.jpg").read_bytes()


def test_decodes_bytes_and_paths_alike(assets: Path, face_bytes: bytes) -> None:
    from_bytes = load_image(face_bytes)
    assert from_bytes.dtype == np.uint8 and from_bytes.shape == (400, 400, 3)
    assert from_bytes.flags.c_contiguous
    np.testing.assert_array_equal(load_image(assets / "face.jpg"), from_bytes)
    np.testing.assert_array_equal(load_image(str(assets / "face.jpg")), from_bytes)


# EXIF orientation → how the STORED pixels relate to the upright view, written with NumPy so
# the test does not lean on Pillow's own table: 6 = "rotate 90° clockwise to view".
STORED_FROM_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),  # stored turned 90° anticlockwise; the viewer turns it back
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("orientation", sorted(STORED_FROM_UPRIGHT))
def test_exif_orientation_gives_the_upright_photo(face_bytes: bytes, orientation: int) -> None:
    upright = load_image(face_bytes)[:, :300]  # not square, so a missed rotation shows
    stored = np.ascontiguousarray(STORED_FROM_UPRIGHT[orientation](upright))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    data = encode(Image.fromarray(stored), "PNG", exif=exif)  # lossless: exact comparison
    np.testing.assert_array_equal(load_image(data), upright)


def test_exif_rotated_jpeg_matches_upright(face_bytes: bytes) -> None:
    upright = load_image(face_bytes)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    data = encode(Image.fromarray(np.ascontiguousarray(np.rot90(upright))), "JPEG", exif=exif)
    decoded = load_image(data)
    assert decoded.shape == upright.shape
    assert np.abs(decoded.astype(int) - upright).mean() < 3  # only JPEG re-encoding noise


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (np.random.default_rng(0).bytes(5000), "not_an_image"),
        (b"name,age\nAda Lovelace,36\n" * 20, "not_an_image"),
        (b"GIF89a", "corrupt_image"),  # a signature and nothing more
    ],
    ids=["empty", "random-bytes", "text", "gif-signature-only"],
)
def test_refuses_non_images(data: bytes, code: str) -> None:
    with pytest.raises(ImageError) as caught:
        load_image(data)
    assert caught.value.code == code
    assert isinstance(caught.value, ValueError) and str(caught.value)


def test_refuses_empty_and_text_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a photo\n")
    with pytest.raises(ImageError, match="empty") as caught:
        load_image(tmp_path / "empty.jpg")
    assert caught.value.code == "empty_file"
    with pytest.raises(ImageError) as caught:
        load_image(tmp_path / "notes.txt")
    assert caught.value.code == "not_an_image"
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_refuses_truncated_files(face_bytes: bytes, fmt: str) -> None:
    data = face_bytes if fmt == "JPEG" else encode(Image.open(io.BytesIO(face_bytes)), "PNG")
    with pytest.raises(ImageError) as caught:
        load_image(data[: len(data) * 2 // 3])
    assert caught.value.code == "corrupt_image"


@pytest.fixture
def pixel_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The formats of the images whose pixels Pillow decoded (every decode goes through
    ``ImageFile.load``: ``Image.load``, ``np.asarray``, ``convert`` and ``tobytes`` call it)."""
    decodes: list[str] = []
    original = ImageFile.ImageFile.load

    def spy(picture: ImageFile.ImageFile):
        decodes.append(picture.format)
        return original(picture)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return decodes


@pytest.mark.parametrize(
    ("data", "size", "max_pixels"),
    [
        (png_header_only(20_000, 20_000), (20_000, 20_000), 40_000_000),  # our check
        (png_header_only(20_000, 20_000), (20_000, 20_000), 10**12),  # Pillow's bomb limit
        (png_of_zeros(7_000, 7_000), (7_000, 7_000), 40_000_000),  # a real, valid 49 MP PNG
        (png_of_zeros(100, 100), (100, 100), 9_999),
    ],
    ids=["header-20000x20000", "pillow-bomb-limit", "real-7000x7000", "caller-limit"],
)
def test_refuses_oversized_images_before_decoding(
    data: bytes, size: tuple[int, int], max_pixels: int, pixel_decodes: list[str]
) -> None:
    with pytest.raises(ImageError) as caught:
        load_image(data, max_pixels=max_pixels)
    assert caught.value.code == "too_large"
    # Refused from the header: the message gives the size the header claims, and Pillow's
    # pixel decoder was never entered (how long a refusal takes: `lookalike bench refusals`).
    assert str(size[0] * size[1]) in str(caught.value).replace(",", "")
    assert pixel_decodes == []
    # ... and the spy does see a decode when one happens.
    assert load_image(png_of_zeros(8, 6)).shape == (6, 8, 3)
    assert pixel_decodes and set(pixel_decodes) == {"PNG"}


def test_refuses_formats_outside_the_photo_set() -> None:
    pcx = encode(Image.new("RGB", (16, 16), (10, 20, 30)), "PCX")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # iPhone header
    for data in (pcx, heic):
        with pytest.raises(ImageError) as caught:
            load_image(data)
        assert caught.value.code == "unsupported_image"


def test_alpha_is_composited_over_white() -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 255  # red ...
    rgba[0, 0, 3] = 255  # ... opaque here
    rgba[0, 1, 3] = 128  # half transparent here, fully transparent elsewhere
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out.shape == (4, 6, 3)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 127, 127)
    assert tuple(out[1, 1]) == (255, 255, 255)


def test_greyscale_alpha_and_palette_transparency() -> None:
    la = Image.fromarray(np.dstack([np.full((3, 5), 40, np.uint8), np.zeros((3, 5), np.uint8)]))
    assert la.mode == "LA"
    assert (load_image(encode(la, "PNG")) == 255).all()  # transparent → white
    palette = Image.new("P", (5, 3), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    out = load_image(encode(palette, "PNG", transparency=0))
    assert out.shape == (3, 5, 3)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (0, 0, 255)


@pytest.mark.parametrize(
    ("picture", "fmt", "expected"),
    [
        (Image.new("L", (7, 5), 77), "PNG", (77, 77, 77)),
        (Image.new("1", (7, 5), 1), "PNG", (255, 255, 255)),
        (Image.new("CMYK", (7, 5), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (Image.new("RGB", (7, 5), (10, 200, 30)), "WEBP", (10, 200, 30)),
        (Image.new("RGB", (7, 5), (10, 200, 30)), "BMP", (10, 200, 30)),
        (Image.new("RGB", (7, 5), (10, 200, 30)), "TIFF", (10, 200, 30)),
        pytest.param(
            Image.new("RGB", (7, 5), (10, 200, 30)),
            "AVIF",
            (10, 200, 30),
            marks=pytest.mark.skipif(not features.check("avif"), reason="Pillow without AVIF"),
        ),
    ],
    ids=["grey", "1-bit", "cmyk-jpeg", "webp", "bmp", "tiff", "avif"],
)
def test_modes_become_rgb(picture: Image.Image, fmt: str, expected: tuple) -> None:
    options = {"lossless": True} if fmt == "WEBP" else {"quality": 100} if fmt == "AVIF" else {}
    out = load_image(encode(picture, fmt, **options))
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    assert np.abs(out[2, 3].astype(int) - expected).max() <= 2


def test_sixteen_bit_images_are_scaled_not_clipped() -> None:
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    png = Image.fromarray(values)
    assert png.mode == "I;16"
    np.testing.assert_array_equal(load_image(encode(png, "PNG"))[0, :, 0], [0, 100, 255])
    wide = Image.fromarray(values.astype(np.int32))  # mode "I", as some 16-bit files open
    np.testing.assert_array_equal(load_image(encode(wide, "TIFF"))[0, :, 1], [0, 100, 255])


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (9, 6), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = load_image(data)
    assert out.shape == (6, 9, 3)
    assert tuple(out[3, 4]) == (255, 0, 0)


def test_downscale_keeps_small_images_and_shrinks_large_ones() -> None:
    image = np.zeros((300, 1000, 3), np.uint8)
    same, scale = downscale(image, 1000)
    assert same is image and scale == 1.0
    assert downscale(image, None)[1] == 1.0
    small, scale = downscale(image, 640)
    assert small.shape == (192, 640, 3) and scale == pytest.approx(0.64)
    with pytest.raises(ValueError):
        downscale(image, 0)
