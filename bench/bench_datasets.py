"""Datasets-layer benchmark: index + health check of a 20,000-image DICE set, DICE → YOLO link vs copy.

Run: ``python bench/bench_datasets.py [--images N]``. The dataset is generated into a temporary
folder (small JPEGs, one or two boxes each) and deleted afterwards. Targets come from issue 3.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw  # noqa: E402

from core.datasets import check_health, open_dataset, split_dataset  # noqa: E402
from core.datasets.convert import read_conversion_report, to_yolo  # noqa: E402

TARGET_INDEX_HEALTH_S = 5.0
TARGET_CONVERT_S = 10.0


def _jpeg_variants(count: int, size: int) -> list[tuple[bytes, tuple[int, int, int, int]]]:
    """A few distinct small JPEGs (encoding 20,000 would time the generator, not the code under test)."""
    rng = random.Random(0)
    variants = []
    for _ in range(count):
        image = Image.new("RGB", (size, size), (rng.randint(80, 160),) * 3)
        extent = rng.randint(size // 5, size // 2)
        x0, y0 = rng.randint(0, size - extent - 1), rng.randint(0, size - extent - 1)
        box = (x0, y0, x0 + extent, y0 + extent)
        ImageDraw.Draw(image).rectangle(box, fill=(200, 50, 50))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        variants.append((buffer.getvalue(), box))
    return variants


def generate(root: Path, n: int, size: int = 64) -> None:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    variants = _jpeg_variants(64, size)
    labels = ("cat", "dog", "bird", "fish")
    for i in range(n):
        data, (x1, y1, x2, y2) = variants[i % len(variants)]
        stem = f"img_{i:06d}"
        (root / "images" / f"{stem}.jpg").write_bytes(data)
        shapes = [
            {"label": labels[i % 4], "points": [[x1, y1], [x2, y2]], "group_id": None, "shape_type": "rectangle", "flags": {}}
        ]
        (root / "annotations" / f"{stem}.json").write_text(
            json.dumps(
                {
                    "version": "5.0.1",
                    "flags": {},
                    "shapes": shapes,
                    "imagePath": f"../images/{stem}.jpg",
                    "imageData": None,
                    "imageHeight": size,
                    "imageWidth": size,
                }
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vp_bench_datasets_"))
    rows: list[tuple[str, float, float | None, str]] = []
    try:
        src = work / "dice"
        t0 = time.perf_counter()
        generate(src, args.images)
        gen_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        index = open_dataset(src)
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        findings = check_health(index)
        t_health = time.perf_counter() - t0
        assert len(index.images) == args.images, len(index.images)
        rows.append(("index (open_dataset)", t_index, None, f"{len(index.images)} images"))
        rows.append(("health check (shallow)", t_health, None, f"{len(findings)} findings"))
        rows.append(("index + health", t_index + t_health, TARGET_INDEX_HEALTH_S, ""))

        split = split_dataset(index, ratio=0.8, seed=42)
        for link in (True, False):
            out = work / f"yolo_{'link' if link else 'copy'}"
            t0 = time.perf_counter()
            to_yolo(index, out, task="detect", split=split, link=link)
            elapsed = time.perf_counter() - t0
            methods = read_conversion_report(out)["link_methods"]
            rows.append((f"DICE -> YOLO ({'link' if link else 'copy'})", elapsed, TARGET_CONVERT_S, json.dumps(methods)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"datasets benchmark: {args.images:,} generated 64x64 JPEGs (generation {gen_s:.1f} s, not timed)")
    print(f"{'step':<28} {'seconds':>8} {'target':>8}  result  notes")
    failed = False
    for name, seconds, target, notes in rows:
        verdict = "" if target is None else ("PASS" if seconds <= target else "FAIL")
        failed = failed or verdict == "FAIL"
        target_text = "" if target is None else f"<= {target:.0f}"
        print(f"{name:<28} {seconds:>8.2f} {target_text:>8}  {verdict:<6}  {notes}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
