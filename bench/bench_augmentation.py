"""Augmentation parity (issue 13): our timm job with the "standard" preset vs a plain timm training
loop with timm's own default train transforms, same model, data, epochs, optimizer and seed.

Ours: ``vision-platform train`` (decode once into a uint8 cache at 64 / 0.875 px, then random-resized
crop, flip and colour jitter on the device for a whole batch, ``adapters.timm_augment``). Plain timm:
``torchvision.datasets.ImageFolder`` + ``timm.data.create_transform(is_training=True)`` (its defaults:
random-resized crop scale 0.08–1 ratio 3/4–4/3, hflip 0.5, colour jitter 0.4) in DataLoader worker
processes, label smoothing 0.1 (timm train.py), evaluated with ``create_transform(is_training=False,
crop_pct=1.0)`` (the whole image resized: what our validation, inference and exports see). Both train
an AdamW + per-epoch cosine schedule from scratch. The data: generated shapes (6 classes, random
colours, sizes, positions) as 80 px JPEGs in train/ and val/ folders, so both read the same split.
One run each (target: ours within 1.5 points of plain timm's val accuracy), times printed.

Why this data: the comparison is only meaningful where both trainings converge. An earlier version
(small shapes in any colour on any background, more clutter) sat near chance for most epochs and
then "took off" late or not at all, depending on the run (plain timm 52.8 % vs ours 21.8 % in one
run; in a controlled loop, 600 images and 10 epochs, neither left chance level): the random-resized
crop (down to 8 % of the area) often cut a small, low-contrast shape away. Here the shape is large
and always contrasts with its background, so both learn steadily; per-seed spread measured in a
controlled loop (same loop and order, 600 images, 8 epochs, final val accuracy): plain timm 93.7 -
98.3 %, ours 85.5 - 96.7 %: run-to-run noise of a model still learning. At this bench's defaults
(1200 images, 12 epochs) both converge: seed 0 plain 99.3 % / ours 99.8 %, seed 1 plain 99.5 % /
ours 99.3 % (``--seed`` repeats a run with another seed).

Run: ``python bench/bench_augmentation.py [--epochs 12] [--per-class 200] [--model resnet10t] [--seed 0]``
(part of ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
SOURCE_SIDE = 80  # the JPEGs are larger than the training size: timm's crop sees the full image
VAL_PER_CLASS = 100

PLAIN_TIMM = r'''
import json, math, sys, time
started = time.perf_counter()
import timm, torch
from timm.data import create_transform
from timm.loss import LabelSmoothingCrossEntropy
from torchvision.datasets import ImageFolder
cfg = json.loads(sys.argv[1])
torch.manual_seed(cfg["seed"])
torch.set_num_threads(cfg["threads"])
train = ImageFolder(cfg["train"], transform=create_transform(cfg["size"], is_training=True))
val = ImageFolder(cfg["val"], transform=create_transform(cfg["size"], is_training=False, crop_pct=1.0))
loader = torch.utils.data.DataLoader(train, batch_size=cfg["batch"], shuffle=True, num_workers=cfg["workers"],
                                     persistent_workers=True, generator=torch.Generator().manual_seed(cfg["seed"]))
val_loader = torch.utils.data.DataLoader(val, batch_size=cfg["batch"], num_workers=cfg["workers"], persistent_workers=True)
model = timm.create_model(cfg["model"], num_classes=len(train.classes))
optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
loss_fn = LabelSmoothingCrossEntropy(smoothing=0.1)
accuracies = []
train_seconds = 0.0
for epoch in range(cfg["epochs"]):
    epoch_started = time.perf_counter()
    model.train()
    for images, labels in loader:
        if len(labels) < 2:
            continue  # as our job: a last batch of one image breaks BatchNorm
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step()
    train_seconds += time.perf_counter() - epoch_started
    model.eval(); correct = 0
    with torch.no_grad():
        for images, labels in val_loader:
            correct += int((model(images).argmax(1) == labels).sum())
    accuracies.append(correct / len(val))
    scheduler.step()
print(json.dumps({"accuracies": accuracies, "wall": time.perf_counter() - started, "train_seconds": train_seconds}))
'''


def _draw(shape: str, rng: random.Random) -> object:
    """One shape filling 45-80 % of the side, light on dark or dark on light (random colours either
    way), with a few thin clutter lines."""
    from PIL import Image, ImageDraw

    def colour(low: int, high: int) -> tuple[int, int, int]:
        return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))

    dark_background = rng.random() < 0.5
    background, fill = (colour(0, 110), colour(150, 255)) if dark_background else (colour(150, 255), colour(0, 110))
    image = Image.new("RGB", (SOURCE_SIDE, SOURCE_SIDE), background)
    draw = ImageDraw.Draw(image)
    for _ in range(3):  # clutter: short thin lines in any colour
        x, y = rng.randint(0, SOURCE_SIDE), rng.randint(0, SOURCE_SIDE)
        draw.line((x, y, x + rng.randint(-12, 12), y + rng.randint(-12, 12)), fill=colour(0, 255), width=1)
    side = rng.randint(36, 64)
    left, top = rng.randint(4, SOURCE_SIDE - side - 4), rng.randint(4, SOURCE_SIDE - side - 4)
    box = (left, top, left + side, top + side)
    cx, cy = left + side / 2, top + side / 2
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(4, side // 6))
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, top), (left + side, top + side), (left, top + side)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, top), (left + side, cy), (cx, top + side), (left, cy)], fill=fill)
    else:  # cross
        bar = max(6, side // 4)
        draw.rectangle((cx - bar / 2, top, cx + bar / 2, top + side), fill=fill)
        draw.rectangle((left, cy - bar / 2, left + side, cy + bar / 2), fill=fill)
    return image


def make_dataset(root: Path, per_class: int) -> None:
    rng = random.Random(13)
    for split, count in (("train", per_class), ("val", VAL_PER_CLASS)):
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                _draw(shape, rng).save(folder / f"{shape}_{i:04d}.jpg", quality=90)  # type: ignore[attr-defined]


def run_ours(cfg: dict[str, object], work: Path) -> dict[str, object]:
    home = work / "home"
    env = dict(os.environ, PYTHONPATH=str(ROOT), VP_HOME=str(home), OMP_NUM_THREADS=str(cfg["threads"]))
    subprocess.run([sys.executable, "-c", "from core.db.engine import open_store; from core.settings import Settings;"
                    "s=open_store(); c=Settings.load(s); c.tracking_enabled=False; c.sync_enabled=False; c.save(s)"],
                   env=env, check=True, cwd=ROOT)
    job = work / "job.yaml"
    job.write_text(json.dumps({
        "dataset": str(work / "data"), "model": cfg["model"], "epochs": cfg["epochs"], "batch_size": cfg["batch"],
        "image_size": cfg["size"], "learning_rate": cfg["lr"], "weight_decay": cfg["wd"], "optimizer": "adamw",
        "seed": cfg["seed"], "device": "cpu", "augmentation": {"preset": "standard"},
    }))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vision_platform", "train", str(job)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"vision-platform train failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    with sqlite3.connect(home / "vision_platform.db") as db:
        rows = db.execute("SELECT extra_metrics FROM training_metrics WHERE job_id = 1 AND kind = 'epoch' ORDER BY id").fetchall()
    accuracies = [json.loads(row[0])["val/accuracy"] for row in rows]
    return {"accuracies": accuracies, "wall": wall}


def run_plain(cfg: dict[str, object], work: Path) -> dict[str, object]:
    plain = dict(cfg, train=str(work / "data" / "train"), val=str(work / "data" / "val"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(cfg["threads"]))
    done = subprocess.run([sys.executable, "-c", PLAIN_TIMM, json.dumps(plain)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"plain timm loop failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--per-class", type=int, default=200, help="training images per class (val: 100)")
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="model init, order and augmentation seed (both runs)")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    cfg: dict[str, object] = {"model": args.model, "epochs": args.epochs, "batch": args.batch, "size": 64,
                              "lr": 0.002, "wd": 0.05, "seed": args.seed, "threads": cpus, "workers": min(4, cpus)}
    with tempfile.TemporaryDirectory(prefix="vp-bench-aug-") as tmp:
        work = Path(tmp)
        make_dataset(work / "data", args.per_class)
        load_before = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
        plain = run_plain(cfg, work)
        ours = run_ours(cfg, work)
        load_after = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    ours_acc, plain_acc = ours["accuracies"], plain["accuracies"]
    assert isinstance(ours_acc, list) and isinstance(plain_acc, list) and len(ours_acc) == len(plain_acc) == args.epochs
    gap = (ours_acc[-1] - plain_acc[-1]) * 100
    print(f"per-epoch val accuracy, plain timm: {[round(a, 3) for a in plain_acc]}")
    print(f"per-epoch val accuracy, ours:       {[round(a, 3) for a in ours_acc]}")
    images = args.per_class * len(SHAPES)
    print_table(
        f"standard preset vs timm's default train transforms: {args.model} from scratch, {images} train / "
        f"{VAL_PER_CLASS * len(SHAPES)} val images at 64 px, {args.epochs} epochs, batch {args.batch}, CPU "
        f"({cpus} cores; load average {' '.join(load_before)} before, {' '.join(load_after)} after)",
        [
            ("plain timm: final val accuracy", f"{plain_acc[-1] * 100:.1f} %", "baseline", ""),
            ("ours (standard): final val accuracy", f"{ours_acc[-1] * 100:.1f} %", "within 1.5 points",
             "PASS" if abs(gap) <= 1.5 else "FAIL"),
            ("difference ours - plain", f"{gap:+.1f} points", "|difference| ≤ 1.5", ""),
            ("plain timm: best val accuracy", f"{max(plain_acc) * 100:.1f} %", "", ""),
            ("ours: best val accuracy", f"{max(ours_acc) * 100:.1f} %", "", ""),
            ("plain timm: wall (process, incl. imports)", f"{plain['wall']:.1f} s",
             f"{plain['train_seconds']:.1f} s in training epochs", ""),
            ("ours: wall (vision-platform train, incl. worker start)", f"{ours['wall']:.1f} s",
             f"{ours['wall'] / float(plain['wall']):.2f}x plain", ""),  # type: ignore[arg-type]
        ],
    )
    return 0 if abs(gap) <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
