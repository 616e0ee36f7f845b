"""Decoding every kind of input file to upright 8-bit RGB, and refusing bad ones."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from latentpress.infra.images import (
    IMAGE_EXTENSIONS,
    ImageError,
    count_frames,
    decode_image,
    encode_png,
    has_image_extension,
)


def save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def blocks(h: int = 24, w: int = 40) -> np.ndarray:
    """Large flat colour blocks (survive lossy codecs) with no symmetry."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (220, 30, 30)
    img[: h // 2, w // 2 :] = (30, 220, 30)
    img[h // 2 :, : w // 2] = (30, 30, 220)
    img[h // 2 :, w // 2 :] = (240, 240, 40)
    return img


def close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    return a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < tol


def test_extensions() -> None:
    assert {"jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "avif", "gif", "heic", "heif"} == IMAGE_EXTENSIONS
    assert has_image_extension("a/B.JPG") and has_image_extension("x.TiFf")
    assert not has_image_extension("notes.txt") and not has_image_extension("jpg")


def test_rgb_png_exact(smooth_image: np.ndarray) -> None:
    out = decode_image(save(Image.fromarray(smooth_image), "PNG"), "a.png")
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, smooth_image)


def test_exif_orientation_rotates() -> None:
    stored = blocks(24, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    data = save(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    out = decode_image(data, "rot.jpg")
    assert out.shape == (40, 24, 3)
    upright = np.rot90(stored, k=-1)
    centres = np.ix_([10, 30], [6, 18])  # the middle of each colour block
    assert close(out[centres], upright[centres], tol=6)
    assert not close(out[centres], np.rot90(stored, k=1)[centres], tol=6)


def test_greyscale() -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = decode_image(save(Image.fromarray(grey), "PNG"), "g.png")
    assert out.shape == (16, 16, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_palette_with_transparency_on_white() -> None:
    img = Image.new("P", (4, 2))
    img.putpalette([0, 0, 0, 200, 10, 10] + [0] * (254 * 3))
    img.putdata([0, 1, 1, 0, 1, 1, 0, 0])
    out = decode_image(save(img, "PNG", transparency=0), "p.png")
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [200, 10, 10]


def test_rgba_composited_on_white() -> None:
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 0)
    rgba[0, 1] = (10, 20, 30, 255)
    rgba[0, 2] = (0, 0, 0, 128)
    out = decode_image(save(Image.fromarray(rgba), "PNG"), "a.png")
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [10, 20, 30]
    assert out[0, 2].tolist() == [127, 127, 127]  # 255 * (255 - 128) / 255, rounded


def test_greyscale_with_alpha() -> None:
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA")
    out = decode_image(save(la, "PNG"), "la.png")
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 0]]


def test_cmyk_jpeg() -> None:
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:, :8] = (0, 255, 255, 0)  # red
    data = save(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95)
    out = decode_image(data, "c.jpg")
    assert out.shape == (16, 16, 3)
    assert close(out[:, :6], np.full((16, 6, 3), (255, 0, 0), np.uint8), tol=8)
    assert close(out[:, 10:], np.full((16, 6, 3), 255, np.uint8), tol=8)


def test_16bit_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 32768, 65535, 1000]], np.uint16)
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    out = decode_image(save(img, "PNG"), "deep.png")
    assert out[0, :, 0].tolist() == [0, 1, 128, 255, 4]  # round(v * 255 / 65535)


def test_float_tiff_taken_as_unit_range() -> None:
    img = Image.fromarray(np.array([[0.0, 0.5, 1.0, 2.0]], np.float32))
    out = decode_image(save(img, "TIFF"), "f.tif")
    assert out[0, :, 1].tolist() == [0, 128, 255, 255]


def test_webp_lossless_and_avif_round_trip(smooth_image: np.ndarray) -> None:
    webp = decode_image(save(Image.fromarray(smooth_image), "WEBP", lossless=True), "a.webp")
    np.testing.assert_array_equal(webp, smooth_image)
    avif = decode_image(save(Image.fromarray(smooth_image), "AVIF", quality=90), "a.avif")
    assert close(avif, smooth_image, tol=6)


def test_multi_frame_gives_first() -> None:
    first, second = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    data = save(first, "TIFF", save_all=True, append_images=[second])
    assert decode_image(data, "pages.tif")[0, 0].tolist() == [255, 0, 0]


def test_truncated_jpeg(smooth_image: np.ndarray) -> None:
    data = save(Image.fromarray(smooth_image), "JPEG")
    with pytest.raises(ImageError, match="cut.jpg"):
        decode_image(data[: len(data) // 2], "cut.jpg")


def test_zero_bytes() -> None:
    with pytest.raises(ImageError, match="empty") as info:
        decode_image(b"", "empty.png")
    assert info.value.name == "empty.png" and info.value.reason == "empty file"


def test_text_named_png() -> None:
    with pytest.raises(ImageError, match="notes.png.*not a supported image"):
        decode_image(b"just some notes\n" * 10, "notes.png")


def test_formats_outside_the_list_refused() -> None:
    pcx = save(Image.new("RGB", (4, 4)), "PCX")
    with pytest.raises(ImageError, match="not a supported image"):
        decode_image(pcx, "disguised.png")


def test_animated_gif_gives_its_first_frame_and_counts_them() -> None:
    frames = [Image.new("RGB", (8, 6), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    data = out.getvalue()
    decoded = decode_image(data, "anim.gif")
    assert decoded.shape == (6, 8, 3) and tuple(decoded[0, 0]) == (200, 0, 0)
    assert count_frames(data) == 3


def test_heic_photo_is_read(kodak_crop: np.ndarray) -> None:
    from pillow_heif import from_bytes

    heif = from_bytes(mode="RGB", size=(64, 48), data=np.ascontiguousarray(kodak_crop[:48, :64]).tobytes())
    out = io.BytesIO()
    heif.save(out, quality=90)
    decoded = decode_image(out.getvalue(), "phone.heic")
    assert decoded.shape == (48, 64, 3)
    assert np.abs(decoded.astype(int) - kodak_crop[:48, :64]).mean() < 8  # lossy, but the same picture
    assert count_frames(out.getvalue()) == 1


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG claiming the given size, with a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [12_000, 100_000])  # over our limit and Pillow's, over twice Pillow's
def test_bomb_header_refused(side: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageError, match=f"bomb.png: image too large.*{side * side}"):
            decode_image(png_header(side, side), "bomb.png")


def test_max_pixels_limit(smooth_image: np.ndarray) -> None:
    data = save(Image.fromarray(smooth_image), "PNG")
    with pytest.raises(ImageError, match="75x61"):
        decode_image(data, "big.png", max_pixels=1000)
    assert decode_image(data, "ok.png", max_pixels=75 * 61).shape == (61, 75, 3)


def test_encode_png_round_trip(smooth_image: np.ndarray) -> None:
    data = encode_png(smooth_image)
    assert data.startswith(b"\x89PNG")
    np.testing.assert_array_equal(decode_image(data, "r.png"), smooth_image)
    with pytest.raises(ValueError):
        encode_png(smooth_image.astype(np.float32))


def test_the_pixel_limit_is_100_megapixels_unless_configured(smooth_image: np.ndarray, monkeypatch) -> None:
    from latentpress.infra.images import MAX_MEGAPIXELS_ENV, pixel_limit

    monkeypatch.delenv(MAX_MEGAPIXELS_ENV, raising=False)
    assert pixel_limit() == 100_000_000
    data = encode_png(smooth_image)  # 75 x 61 = 4,575 pixels
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "0.004")
    with pytest.raises(ImageError, match="image too large: 75x61 = 4575 pixels exceeds the limit of 4000"):
        decode_image(data, "big.png")
    monkeypatch.setenv(MAX_MEGAPIXELS_ENV, "0.005")
    assert decode_image(data, "ok.png").shape == (61, 75, 3)
    for bad in ("lots", "0", "500"):
        monkeypatch.setenv(MAX_MEGAPIXELS_ENV, bad)
        with pytest.raises(ValueError, match=MAX_MEGAPIXELS_ENV):
            pixel_limit()
