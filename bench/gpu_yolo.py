"""GPU throughput: yolo11n, 3 epochs, 1,000 generated 640 px images, through our worker and directly.

One prepared script for a borrowed GPU (≤ 8 minutes, offline). Both paths train the same YOLO layout
(written by our converter in the first run), same hyper-parameters, on the same GPU, in fresh
interpreters. AMP is on in both; the AMP self-check needs yolo26n.pt, which an offline machine
cannot download, so both paths skip it the same way (ours: ``adapters.ultralytics_env``; direct:
the same patch inline).

img/s = train images x epochs / Ultralytics' own training-loop time (``results.csv`` "time"), plus
whole wall time of each path.

Run: ``python bench/gpu_yolo.py [--images 1000] [--size 640] [--epochs 3] [--batch 32] [--workers 8]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402

DIRECT = r'''
import json, os, sys
cfg = json.loads(sys.argv[1])
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_CONFIG_DIR"] = cfg["config_dir"]
import ultralytics.engine.trainer as trainer_module
trainer_module.check_amp = lambda model: True  # offline: no yolo26n.pt download for the AMP self-check
from ultralytics import YOLO
YOLO("yolo11n.yaml").train(**cfg["train"])
'''


def make_dataset(root: Path, count: int, size: int) -> Path:
    """DICE-style JSON + PNG pairs: 1-4 rectangles/ellipses per image (fast to draw, PNG level 1)."""
    rng = random.Random(0)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i in range(count):
        image = Image.new("RGB", (size, size), (rng.randint(60, 160),) * 3)
        draw = ImageDraw.Draw(image)
        shapes = []
        for _ in range(rng.randint(1, 4)):
            w, h = rng.randint(size // 10, size // 3), rng.randint(size // 10, size // 3)
            x, y = rng.randint(0, size - w - 1), rng.randint(0, size - h - 1)
            label = rng.choice(("square", "circle"))
            (draw.rectangle if label == "square" else draw.ellipse)([x, y, x + w, y + h], fill=(200, 40, 40))
            shapes.append({"label": label, "shape_type": "rectangle", "points": [[x, y], [x + w, y + h]],
                           "group_id": None, "flags": {}})
        stem = f"img_{i:05d}"
        image.save(root / "images" / f"{stem}.png", compress_level=1)
        (root / "annotations" / f"{stem}.json").write_text(json.dumps({
            "version": "5.0.1", "flags": {}, "shapes": shapes, "imagePath": f"../images/{stem}.png",
            "imageData": None, "imageHeight": size, "imageWidth": size}), encoding="utf-8")
    return root


def loop_seconds(run_dir: Path) -> float:
    with open(run_dir / "results.csv", encoding="utf-8") as handle:
        return float(list(csv.DictReader(handle))[-1]["time"])


def timed(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> float:
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gpu_yolo_"))
    home = work / "vp_home"
    env = dict(os.environ, VP_HOME=str(home), YOLO_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    dataset = make_dataset(work / "data", args.images, args.size)
    print(f"generated {args.images} images in {time.perf_counter() - t0:.1f} s", flush=True)
    job = {
        "framework": "ultralytics", "task": "detect", "model": "yolo11n", "pretrained": False,
        "dataset": str(dataset), "dataset_format": "dice", "epochs": args.epochs, "batch_size": args.batch,
        "image_size": args.size, "workers": args.workers, "device": args.device, "amp": True, "seed": 0,
        "split": {"strategy": "random", "ratio": 0.9, "seed": 1}, "framework_args": {"plots": False},
    }
    job_file = work / "job.yaml"
    job_file.write_text(yaml.safe_dump(job), encoding="utf-8")

    ours_wall = timed([sys.executable, "-m", "vision_platform", "train", str(job_file)], env, work, 300)
    run_dir = home / "runs" / "job_1"
    train_images = len(list((run_dir / "data" / "images" / "train").iterdir()))
    ours_loop = loop_seconds(run_dir)
    print(f"ours: wall {ours_wall:.1f} s, loop {ours_loop:.1f} s", flush=True)

    direct_dir = work / "direct"
    device = (args.device.partition(":")[2] or "0") if args.device.startswith("cuda") else args.device
    train = {
        "data": str(run_dir / "data" / "data.yaml"), "epochs": args.epochs, "batch": args.batch, "imgsz": args.size,
        "workers": args.workers, "device": device, "amp": True, "seed": 0, "optimizer": "AdamW", "lr0": 0.001,
        "weight_decay": 0.0001, "patience": 0, "plots": False, "project": str(work), "name": "direct",
        "exist_ok": True,
    }
    payload = json.dumps({"train": train, "config_dir": str(home / "ultralytics")})
    direct_wall = timed([sys.executable, "-c", DIRECT, payload], env, work, 300)
    direct_loop = loop_seconds(direct_dir)
    print(f"direct: wall {direct_wall:.1f} s, loop {direct_loop:.1f} s", flush=True)

    seen = train_images * args.epochs
    numbers = {
        "ours_img_s": seen / ours_loop, "direct_img_s": seen / direct_loop,
        "ours_wall_s": ours_wall, "direct_wall_s": direct_wall, "train_images": train_images,
    }
    print_table(
        f"yolo11n, {args.epochs} epochs, {train_images} train images at {args.size}px, batch {args.batch}, {args.device}",
        [
            ("ours (worker) img/s", f"{numbers['ours_img_s']:.1f}", f"direct {numbers['direct_img_s']:.1f}",
             f"ratio {numbers['ours_img_s'] / numbers['direct_img_s']:.3f}"),
            ("ours wall (s)", f"{ours_wall:.1f}", f"direct {direct_wall:.1f}", f"ratio {ours_wall / direct_wall:.3f}"),
        ],
    )
    if args.out:
        args.out.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
