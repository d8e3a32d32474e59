"""GPU benchmark for the timm path (issues 2 and 13), run by hand on a CUDA machine (≤ 8 minutes).

Four numbers in img/s, same model/batch/size, one run:
  1. synthetic tensors already on the GPU (the model's ceiling: bf16 autocast, channels_last);
  2. our worker (`vision-platform train`) on ~2,000 generated JPEGs — its data path decodes and resizes
     every image once into a uint8 tensor cache (held on the GPU when it fits), then an epoch is tensor
     indexing + on-GPU flip/normalise;
  3. our worker streaming the same JPEGs (memory budget 1 MB: nothing cached; loader processes read
     the files, nvJPEG decodes each batch on the GPU on a side stream) — target ≥ 0.9× synthetic;
  4. a bare timm loop over the same JPEGs with a plain PIL DataLoader (what users usually write).

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
from collections.abc import Callable
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


def bare_pil_rate(data: Path, model_name: str, size: int, batch: int, epochs: int, device: str,
                  workers: int | None = None) -> float:
    """img/s of a plain torchvision ImageFolder + DataLoader loop (what users usually write); timed from
    epoch 2 (epoch 1 warms up workers and cudnn), or after the first batch when there is one epoch."""
    import timm
    import torch
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Resize((size, size)), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    dataset = datasets.ImageFolder(str(data), transform=transform)
    workers = (os.cpu_count() or 1) if workers is None else workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.startswith("cuda"), drop_last=True, persistent_workers=workers > 0)
    model = timm.create_model(model_name, num_classes=len(dataset.classes)).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    use_amp = device.startswith("cuda")
    warm_epochs, warm_batches = (1, 0) if epochs > 1 else (0, 1)
    images = 0
    started = 0.0
    for epoch in range(epochs):
        for number, (x, y) in enumerate(loader):
            if epoch == warm_epochs and number == warm_batches:
                if use_amp:
                    torch.cuda.synchronize()
                started = time.perf_counter()
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if (epoch, number) >= (warm_epochs, warm_batches):
                images += x.shape[0]
    if use_amp:
        torch.cuda.synchronize()
    return images / (time.perf_counter() - started)


def worker_rate(data: Path, model_name: str, size: int, batch: int, epochs: int, device: str, work: Path,
                settings: dict[str, object] | None = None, job: dict[str, object] | None = None,
                run: Callable[[list[str], dict[str, str]], None] | None = None) -> float:
    """img/s of our worker from its own step timestamps: epochs 2.. (after the decode cache is built),
    or all of epoch 1 but its first step when there is one epoch. ``settings`` are stored first (the
    memory budget), ``job`` adds config keys, ``run`` runs the train command (default: subprocess.run)."""
    work.mkdir(parents=True, exist_ok=True)
    job_file = work / "job.yaml"
    job_file.write_text(json.dumps({"dataset": str(data), "model": model_name, "epochs": epochs, "batch_size": batch,
                                    "image_size": size, "device": device, "amp": True, "split": {"ratio": 0.95},
                                    **(job or {})}))
    env = dict(os.environ, VP_HOME=str(work / "home"), PYTHONPATH=str(ROOT))
    stored = {"tracking_enabled": False, "sync_enabled": False, **(settings or {})}
    subprocess.run([sys.executable, "-c", "import json, sys; from core.db.engine import open_store; "
                    "from core.settings import Settings; s=open_store(); c=Settings.load(s); "
                    "[setattr(c, k, v) for k, v in json.loads(sys.argv[1]).items()]; c.save(s)", json.dumps(stored)],
                   env=env, check=True, cwd=ROOT)
    command = [sys.executable, "-m", "vision_platform", "train", str(job_file)]
    if run is None:
        subprocess.run(command, env=env, check=True, cwd=ROOT, capture_output=True, text=True)
    else:
        run(command, env)
    from core.db.engine import open_store
    from core.jobs import series

    first_epoch = 2 if epochs > 1 else 1
    with open_store(work / "home" / "vision_platform.db").read() as session:
        records = [r for r in series.iter_records(session.connection(), 1) if r.epoch >= first_epoch]
    if len(records) < 2 or records[-1].time == records[0].time:
        raise RuntimeError("not enough step records to time the worker; use more images or epochs")
    return (records[-1].step - records[0].step) * batch / (records[-1].time - records[0].time)


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
        ours = worker_rate(data, args.model, args.size, args.batch, args.epochs, args.device, work / "cached")
        streamed = worker_rate(data, args.model, args.size, args.batch, args.epochs, args.device, work / "streamed",
                               settings={"memory_budget_mb": 1}, job={"workers": os.cpu_count() or 1})
        bare = bare_pil_rate(data, args.model, args.size, args.batch, args.epochs, args.device)
    print_table(f"timm {args.model} @ {args.size}px, batch {args.batch}, {args.device}", [
        ("synthetic tensors on device", f"{synthetic:,.0f} img/s", "ceiling", ""),
        ("our worker (decoded uint8 cache)", f"{ours:,.0f} img/s", f"{ours / synthetic:.0%} of synthetic", ""),
        ("our worker (streaming, GPU JPEG decode)", f"{streamed:,.0f} img/s", f"{streamed / synthetic:.0%} of synthetic",
         "ok (≥ 90%)" if streamed >= 0.9 * synthetic else "below 90%"),
        ("bare timm loop, PIL DataLoader", f"{bare:,.0f} img/s", f"{bare / synthetic:.0%} of synthetic", "baseline"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
