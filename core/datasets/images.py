"""Image headers, size limits and safe decoding.

Indexing must never decode pixels: a 20,000-image dataset is indexed in seconds only because sizes
come from a few header bytes. PNG, JPEG, GIF, BMP and WebP headers are parsed here directly (a few
small reads); anything else falls back to Pillow, whose ``Image.open`` is lazy and reads only the
header. Limits are checked from the header, before any allocation, so a PNG that claims
50000x50000 pixels is refused in microseconds.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from core.datasets.errors import DatasetError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# Module-level so a deployment (or a test) can change them; functions read them at call time.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 100_000_000
# Longest side: Qt cannot paint wider than 32,767 px, and no training size needs more.
MAX_IMAGE_SIDE = 30_000
_HEAD_BYTES = 4096  # one read: a small JPEG's frame header is almost always in it

_EXT_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def is_image_file(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def expected_format(path: str | Path) -> str | None:
    """The format an image's extension promises (``JPEG``, ``PNG`` ...), or None for an unknown one."""
    return _EXT_FORMATS.get(Path(path).suffix.lower())


def _jpeg_size(head: bytes, f: IO[bytes]) -> tuple[int, int]:
    """Walk the JPEG segments to the frame header, in a buffer grown from ``f`` only when needed."""
    buf = bytearray(head)

    def need(n: int) -> bool:
        while len(buf) < n:
            more = f.read(max(4096, n - len(buf)))
            if not more:
                return False
            buf.extend(more)
        return True

    pos = 2
    while True:
        if not need(pos + 4):
            raise ValueError("no frame header before end of file")
        if buf[pos] != 0xFF:
            # Garbage between segments: scan forward to the next marker.
            found = buf.find(b"\xff", pos)
            while found < 0:
                pos = len(buf)
                if not need(pos + 4):
                    raise ValueError("no frame header before end of file")
                found = buf.find(b"\xff", pos)
            pos = found
            continue
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("no frame header before the image data")
        seg_len = (buf[pos] << 8) | buf[pos + 1]
        if seg_len < 2:
            raise ValueError("invalid segment length")
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if not need(pos + 7):
                raise ValueError("truncated frame header")
            height, width = struct.unpack(">HH", bytes(buf[pos + 3 : pos + 7]))
            return width, height
        pos += seg_len


def _webp_size(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    raise ValueError("unknown WebP chunk")


def read_image_header(path: str | Path) -> tuple[int, int, str]:
    """(width, height, format) from the file header, without decoding. Raises DatasetError if unreadable."""
    return read_image_header_and_size(path)[:3]


def read_image_header_and_size(path: str | Path) -> tuple[int, int, str, int]:
    """(width, height, format, file size in bytes) with one open: the indexer's hot path."""
    try:
        with open(path, "rb") as f:
            size_bytes = os.fstat(f.fileno()).st_size
            head = f.read(_HEAD_BYTES)
            if len(head) == 0:
                raise ValueError("the file is empty")
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                if len(head) < 24 or head[12:16] != b"IHDR":
                    raise ValueError("truncated PNG header")
                width, height = struct.unpack(">II", head[16:24])
                fmt = "PNG"
            elif head.startswith(b"\xff\xd8"):
                width, height = _jpeg_size(head, f)
                fmt = "JPEG"
            elif head[:6] in (b"GIF87a", b"GIF89a"):
                if len(head) < 10:
                    raise ValueError("truncated GIF header")
                width, height = struct.unpack("<HH", head[6:10])
                fmt = "GIF"
            elif head.startswith(b"BM") and len(head) >= 26:
                header_size = int.from_bytes(head[14:18], "little")
                if header_size == 12:
                    width, height = struct.unpack("<HH", head[18:22])
                else:
                    width, height = struct.unpack("<ii", head[18:26])
                width, height = abs(width), abs(height)  # negative height = top-down rows
                fmt = "BMP"
            elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
                width, height = _webp_size(head)
                fmt = "WEBP"
            else:
                # Pillow reads only the header here; it also refuses decompression bombs at open.
                f.seek(0)
                with Image.open(f) as image:
                    width, height = image.size
                    fmt = image.format or "unknown"
    except DatasetError:
        raise
    except (OSError, ValueError, struct.error, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: unreadable image header ({exc})") from exc
    if width <= 0 or height <= 0:
        raise DatasetError(f"{path}: image header gives an empty size {width}x{height}")
    return width, height, fmt, size_bytes


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header, without decoding. Raises DatasetError naming the file."""
    width, height, _ = read_image_header(path)
    return width, height


def limit_problem(size_bytes: int, width: int | None, height: int | None) -> str | None:
    """Why an image breaks the limits, or None. Shared by check_image_limits and the health check."""
    if size_bytes > MAX_IMAGE_BYTES:
        return f"file is {size_bytes / 1024**2:.1f} MB, over the {MAX_IMAGE_BYTES / 1024**2:.0f} MB limit"
    if width is not None and height is not None and width * height > MAX_IMAGE_PIXELS:
        return f"image is {width}x{height} = {width * height:,} pixels, over the {MAX_IMAGE_PIXELS:,} pixel limit"
    if width is not None and height is not None and max(width, height) > MAX_IMAGE_SIDE:
        return f"image is {width}x{height} pixels; sides longer than {MAX_IMAGE_SIDE:,} px are not supported"
    return None


def check_image_limits(path: str | Path) -> None:
    """Raise DatasetError if the file is too big or its header claims too many pixels (nothing is decoded)."""
    try:
        size_bytes = Path(path).stat().st_size
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the image ({exc.strerror or exc})") from exc
    problem = limit_problem(size_bytes, None, None)
    if problem is None:
        width, height = read_image_size(path)
        problem = limit_problem(size_bytes, width, height)
    if problem is not None:
        raise DatasetError(f"{path}: {problem}")


def load_image_rgb(path: str | Path) -> Image.Image:
    """Decode an image as 8-bit RGB after checking the limits. Raises DatasetError for bad files."""
    check_image_limits(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image: Image.Image = opened
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit greyscale: scale to 8 bits instead of clipping everything to white.
                image = image.point(lambda value: value / 256).convert("L")
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                background = Image.new("RGB", image.size, (0, 0, 0))
                background.paste(image, mask=image.getchannel("A"))
                return background
            return image.convert("RGB")
    except DatasetError:
        raise
    except UnidentifiedImageError as exc:
        raise DatasetError(f"{path}: not an image Pillow can read (unknown or damaged format)") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot decode the image ({exc})") from exc
