"""decode_resized, the one decoder of the timm data path: its pixels, and the size limits it checks on the
header of the file it opens once, before anything is decoded."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters.timm_data import decode_resized
from core.datasets import images
from core.datasets.errors import DatasetError
from tests.unit.datasets.test_images import png_header_only


def pil_reference(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def noise_image(path: Path, side: int) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_a_png_is_resized_as_pil_resizes_it(tmp_path: Path) -> None:
    path = noise_image(tmp_path / "noise.png", 40)
    decoded = decode_resized(path, 24)
    assert decoded.shape == (3, 24, 24) and decoded.dtype == np.uint8
    assert np.array_equal(decoded, pil_reference(path, 24))


def test_an_image_already_at_the_size_keeps_its_pixels(tmp_path: Path) -> None:
    path = noise_image(tmp_path / "noise.jpg", 24)
    assert np.array_equal(decode_resized(path, 24), pil_reference(path, 24))


def test_a_jpeg_decoded_in_draft_mode_is_close_to_a_full_decode(tmp_path: Path) -> None:
    path = tmp_path / "smooth.jpg"
    ramp = np.linspace(0, 255, 128, dtype=np.float32)
    Image.fromarray(np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1).astype(np.uint8)).save(path, quality=95)
    difference = decode_resized(path, 64).astype(int) - pil_reference(path, 64).astype(int)
    assert np.abs(difference).mean() < 2.0  # a smooth ramp: a half-scale DCT decode ≈ decode + downscale


def test_a_header_claiming_too_many_pixels_is_refused_without_decoding(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 50000, 50000)
    tracemalloc.start()
    with pytest.raises(DatasetError, match=r"bomb\.png.*50000x50000.*pixel limit"):
        decode_resized(path, 24)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_a_file_over_the_byte_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = noise_image(tmp_path / "big.png", 40)
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(DatasetError, match=r"big\.png: file is .* MB, over the"):
        decode_resized(path, 24)


@pytest.mark.parametrize("content", [b"", b"not an image at all"], ids=["empty", "garbage"])
def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=r"broken\.jpg: unreadable image header"):
        decode_resized(path, 24)
