"""GPU benchmark for the timm path (issue 2), run by hand on a CUDA machine (≤ 8 minutes).

Three numbers in img/s, same model/batch/size, one run:
  1. synthetic tensors already on the GPU (the model's ceiling: bf16 autocast, channels_last);
  2. our worker (`vision-platform train`) on ~2,000 generated JPEGs — its data path decodes and resizes
     every image once into a uint8 tensor cache, then an epoch is tensor indexing + on-GPU flip/normalise;
  3. a bare timm loop over the same JPEGs with a plain PIL DataLoader (what users usually write).

Usage: python bench/gpu_timm.py [--model resnet50] [--images 2000] [--size 224] [--batch 128] [--epochs 3]
(`--device cpu --model test_resnet --images 64 --size 32` runs a tiny smoke version anywhere.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402


def synthetic_rate(model_name: str, size: int, batch: int, device: str, steps: int = 30) -> float:
    import timm
    import torch

    model = timm.create_model(model_name, num_classes=10).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    use_amp = device.startswith("cuda")
    for step in range(steps + 5):
        if step == 5:
            if use_amp:
                torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if use_amp:
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def bare_pil_rate(data: Path, model_name: str, size: int, batch: int, epochs: int, device: str) -> float:
    import timm
    import torch
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Resize((size, size)), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    dataset = datasets.ImageFolder(str(data), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=os.cpu_count() or 1,
                                         pin_memory=device.startswith("cuda"), drop_last=True, persistent_workers=True)
    model = timm.create_model(model_name, num_classes=len(dataset.classes)).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    use_amp = device.startswith("cuda")
    images = 0
    started = 0.0
    for epoch in range(epochs):
        if epoch == 1:  # epoch 0 warms up workers and cudnn
            if use_amp:
                torch.cuda.synchronize()
            started = time.perf_counter()
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if epoch >= 1:
                images += x.shape[0]
    if use_amp:
        torch.cuda.synchronize()
    return images / (time.perf_counter() - started)


def worker_rate(data: Path, model_name: str, size: int, batch: int, epochs: int, device: str, work: Path) -> float:
    """img/s of our worker from its own step timestamps (epochs 2.., after the decode cache is built)."""
    job = work / "job.yaml"
    job.write_text(json.dumps({"dataset": str(data), "model": model_name, "epochs": epochs, "batch_size": batch,
                               "image_size": size, "device": device, "amp": True, "split": {"ratio": 0.95}}))
    env = dict(os.environ, VP_HOME=str(work / "home"), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", "from core.db.engine import open_store; from core.settings import Settings;"
                    "s=open_store(); c=Settings.load(s); c.tracking_enabled=False; c.sync_enabled=False; c.save(s)"],
                   env=env, check=True, cwd=ROOT)
    subprocess.run([sys.executable, "-m", "vision_platform", "train", str(job)], env=env, check=True, cwd=ROOT,
                   capture_output=True, text=True)
    import sqlite3

    db = sqlite3.connect(work / "home" / "vision_platform.db")
    # Per-epoch wall time from the epoch rows' timestamps is too coarse; use step rows of epochs >= 2.
    rows = db.execute("SELECT epoch, step, created_at FROM training_metrics WHERE kind='step' AND epoch >= 2 "
                      "ORDER BY step").fetchall()
    spans = db.execute("SELECT MIN(julianday(created_at)), MAX(julianday(created_at)), MIN(step), MAX(step) "
                       "FROM training_metrics WHERE kind='step' AND epoch >= 2").fetchone()
    if not rows or spans[0] is None or spans[1] == spans[0]:
        raise RuntimeError("not enough step rows to time the worker; use more images or epochs")
    seconds = (spans[1] - spans[0]) * 86400
    return (spans[3] - spans[2]) * batch / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    from tests.helpers.datasets_gen import make_imagefolder

    with tempfile.TemporaryDirectory(prefix="vp-gpu-timm-") as tmp:
        work = Path(tmp)
        data = make_imagefolder(work / "data", classes=("red", "green", "blue", "white"), per_class=args.images // 4,
                                size=max(args.size + 32, 64), ext=".jpg")
        synthetic = synthetic_rate(args.model, args.size, args.batch, args.device)
        ours = worker_rate(data, args.model, args.size, args.batch, args.epochs, args.device, work)
        bare = bare_pil_rate(data, args.model, args.size, args.batch, args.epochs, args.device)
    print_table(f"timm {args.model} @ {args.size}px, batch {args.batch}, {args.device}", [
        ("synthetic tensors on device", f"{synthetic:,.0f} img/s", "ceiling", ""),
        ("our worker (decoded uint8 cache)", f"{ours:,.0f} img/s", f"{ours / synthetic:.0%} of synthetic", ""),
        ("bare timm loop, PIL DataLoader", f"{bare:,.0f} img/s", f"{bare / synthetic:.0%} of synthetic", "baseline"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
