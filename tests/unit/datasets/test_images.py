from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image

from core.datasets import images
from core.datasets.errors import DatasetError
from core.datasets.images import check_image_limits, load_image_rgb, read_image_header, read_image_size


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature + IHDR claiming width x height, with a tiny IDAT (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    ("fmt", "ext", "mode", "kwargs"),
    [
        ("JPEG", ".jpg", "RGB", {}),
        ("JPEG", ".jpg", "RGB", {"progressive": True}),
        ("JPEG", ".jpg", "CMYK", {}),
        ("PNG", ".png", "RGBA", {}),
        ("GIF", ".gif", "P", {}),
        ("BMP", ".bmp", "RGB", {}),
        ("WEBP", ".webp", "RGB", {"lossless": True}),
        ("WEBP", ".webp", "RGB", {"quality": 80}),
        ("TIFF", ".tiff", "RGB", {}),
    ],
)
def test_header_size_matches_pillow(tmp_path: Path, fmt: str, ext: str, mode: str, kwargs: dict[str, object]) -> None:
    path = tmp_path / f"x{ext}"
    Image.new(mode, (123, 45)).save(path, format=fmt, **kwargs)
    assert read_image_header(path) == (123, 45, fmt)


def test_jpeg_with_large_exif_segment(tmp_path: Path) -> None:
    path = tmp_path / "exif.jpg"
    Image.new("RGB", (300, 7)).save(path, exif=b"Exif\x00\x00" + b"x" * 60000)
    assert read_image_size(path) == (300, 7)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0\x00", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00"])
def test_unreadable_headers_raise_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match="bad.jpg"):
        read_image_size(path)


def test_png_bomb_rejected_from_header_without_allocating(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 50000, 50000)
    tracemalloc.start()
    with pytest.raises(DatasetError, match=r"bomb\.png.*50000x50000"):
        check_image_limits(path)
    with pytest.raises(DatasetError, match="pixel limit"):
        load_image_rgb(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_pixel_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = png_header_only(tmp_path / "big.png", 30000, 30000)  # 900 Mpx: over the default cap
    with pytest.raises(DatasetError, match="pixel limit"):
        check_image_limits(path)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1_000_000_000)
    check_image_limits(path)  # under the raised cap


def test_file_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 10)
    with pytest.raises(DatasetError, match=r"big\.png.*MB limit"):
        check_image_limits(path)


def test_load_image_rgb_converts_modes(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 4), (0, 255, 255, 0)).save(cmyk)
    grey16 = tmp_path / "grey16.png"
    Image.new("I;16", (8, 4), 65535).save(grey16)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 4), (255, 0, 0, 0)).save(rgba)
    for path in (cmyk, grey16, rgba):
        image = load_image_rgb(path)
        assert image.mode == "RGB" and image.size == (8, 4)
    assert load_image_rgb(grey16).getpixel((0, 0)) == (255, 255, 255)  # scaled, not clipped to garbage
    assert load_image_rgb(rgba).getpixel((0, 0)) == (0, 0, 0)  # transparent → black background


def test_load_image_rgb_rejects_truncated_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "trunc.jpg"
    Image.effect_noise((64, 64), 50).convert("RGB").save(path)
    path.write_bytes(path.read_bytes()[:400])
    assert read_image_size(path) == (64, 64)  # the header is intact...
    with pytest.raises(DatasetError, match=r"trunc\.jpg"):
        load_image_rgb(path)  # ...the pixels are not
