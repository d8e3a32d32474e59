"""Generate the sample dataset the app ships for its first run (``resources/sample_data/shapes``).

Three classes of simple shapes (circle, square, triangle) drawn in random colours, sizes and
positions on plain backgrounds, 64 x 64 PNGs in an ImageFolder layout. Everything is drawn here from a
fixed seed, so the images are ours (licensed with the app) and the output is the same on every run.
Run it again after changing it: ``.venv/bin/python scripts/make_sample_dataset.py``.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.resources import SAMPLE_DATASET, resource_path  # noqa: E402

SIZE = 64
PER_CLASS = 24
SEED = 15


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _box(rng: random.Random) -> tuple[int, int, int, int]:
    side = rng.randint(26, 46)
    left, top = rng.randint(4, SIZE - side - 4), rng.randint(4, SIZE - side - 4)
    return left, top, left + side, top + side


def draw_shape(shape: str, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), _colour(rng, 180, 255))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = _box(rng)
    fill = _colour(rng, 0, 150)
    if shape == "circle":
        draw.ellipse((left, top, right, bottom), fill=fill)
    elif shape == "square":
        draw.rectangle((left, top, right, bottom), fill=fill)
    else:
        draw.polygon([((left + right) // 2, top), (right, bottom), (left, bottom)], fill=fill)
    return image


def generate(out: Path, per_class: int = PER_CLASS, seed: int = SEED) -> list[Path]:
    rng = random.Random(seed)
    shutil.rmtree(out, ignore_errors=True)
    written = []
    for shape in ("circle", "square", "triangle"):
        (out / shape).mkdir(parents=True)
        for number in range(per_class):
            path = out / shape / f"{shape}_{number:03d}.png"
            draw_shape(shape, rng).save(path, optimize=True)
            written.append(path)
    return written


if __name__ == "__main__":
    target = resource_path(*SAMPLE_DATASET)
    files = generate(target)
    size = sum(path.stat().st_size for path in files)
    print(f"{len(files)} images, {size / 1024:.0f} KB in {target}")
