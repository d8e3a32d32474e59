"""transformers adapter overhead (issue 12): our job vs the same ``transformers.Trainer`` run called directly.

The same generated ImageFolder data (solid colours with noise), the same train/val split (the one
``core.datasets.split_dataset`` decides, as our adapter reads it), the same from-scratch ViT config,
image processor, epochs, batch, optimizer (AdamW, same lr and weight decay), cosine schedule, seed,
per-epoch evaluation and per-epoch Trainer checkpoints (``save_total_limit=2``), no augmentation, CPU,
in one run, each in a fresh interpreter:

- ours:   ``vision-platform train job.yaml`` (CLI → runner → worker subprocess → adapter: our callback,
          events, SQLite, our validation loop, ``weights/best`` and ``weights/last`` folders);
- direct: a script that builds ``ViTForImageClassification`` from the same ``ViTConfig`` and calls
          ``Trainer.train()`` with accuracy as ``compute_metrics``.

MLflow tracking and R2 sync are off (they have their own bench: bench_engine.py). Reported: the wall
time of each (target ratio ≤ 1.03), and the direct run until ``train()`` returned (without the
interpreter's teardown, which our worker skips).

Run: ``python bench/bench_transformers.py [--per-class 160] [--size 32] [--epochs 3] [--batch 16] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._table import print_table  # noqa: E402
from bench._timing import timed_run  # noqa: E402

SIZES = {"layers": 4, "hidden_size": 64, "heads": 2}

DIRECT = r'''
import json, math, sys, time
cfg = json.loads(sys.argv[1])
import torch
from PIL import Image
from transformers import Trainer, TrainingArguments, ViTConfig, ViTForImageClassification, ViTImageProcessor

torch.manual_seed(cfg["seed"])
names = cfg["class_names"]
size = cfg["image_size"]
model = ViTForImageClassification(ViTConfig(
    image_size=size, patch_size=max(2, size // 8), hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["layers"],
    num_attention_heads=cfg["heads"], intermediate_size=2 * cfg["hidden_size"], num_labels=len(names),
    id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}))
processor = ViTImageProcessor(size={"height": size, "width": size})

class Images:
    def __init__(self, items): self.items = items
    def __len__(self): return len(self.items)
    def __getitem__(self, index):
        path, label = self.items[index]
        with Image.open(path) as image:
            pixels = processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        return {"pixel_values": pixels, "labels": label}

def collate(batch):
    return {"pixel_values": torch.stack([b["pixel_values"] for b in batch]),
            "labels": torch.tensor([b["labels"] for b in batch], dtype=torch.long)}

def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

steps_per_epoch = math.ceil(len(cfg["train"]) / cfg["batch"])
args = TrainingArguments(
    output_dir=cfg["output_dir"], num_train_epochs=cfg["epochs"], per_device_train_batch_size=cfg["batch"],
    per_device_eval_batch_size=cfg["batch"], learning_rate=cfg["lr"], weight_decay=cfg["weight_decay"],
    lr_scheduler_type="cosine", eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
    logging_strategy="steps", logging_steps=max(1, steps_per_epoch // 50), report_to="none", disable_tqdm=True,
    seed=cfg["seed"], data_seed=cfg["seed"], dataloader_num_workers=0, remove_unused_columns=False, use_cpu=True)
optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
trainer = Trainer(model=model, args=args, data_collator=collate, train_dataset=Images(cfg["train"]),
                  eval_dataset=Images(cfg["val"]), compute_metrics=accuracy, optimizers=(optimizer, None))
output = trainer.train()
print("TRAIN_RETURNED_AT", time.time(), flush=True)
print("TRAIN_RUNTIME", output.metrics["train_runtime"], flush=True)
print("EVAL", json.dumps([e["eval_accuracy"] for e in trainer.state.log_history if "eval_accuracy" in e]), flush=True)
'''


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, seconds until train() returned, stdout)."""
    return timed_run(cmd, env, cwd)

def _same_split(dataset: Path, job: dict[str, object]) -> tuple[list[str], list[list[object]], list[list[object]]]:
    """Class names and (path, label) lists of train and val, as our adapter's ``read_split`` decides them."""
    from core.config import config_from_dict
    from core.datasets import open_dataset, split_dataset

    config = config_from_dict(job)
    index = open_dataset(config.dataset, config.dataset_format)
    split = split_dataset(index, config.split.strategy, config.split.ratio, config.split.seed, config.split.file)
    names = list(index.class_names)

    def items(records: list[object]) -> list[list[object]]:
        return [[str(r.path), names.index((r.labels or r.class_names())[0])] for r in records]  # type: ignore[attr-defined]

    return names, items(split.train), items(split.val)


def _our_accuracy(home: Path, job_id: int) -> float | None:
    from core.db.engine import close_all_stores, open_store
    from core.jobs import store as job_store

    os.environ["VP_HOME"] = str(home)
    try:
        return job_store.get_job(open_store(), job_id).best_metric_value
    finally:
        close_all_stores()


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=160)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from tests.helpers.datasets_gen import make_imagefolder

    work = Path(tempfile.mkdtemp(prefix="bench_hf_"))
    home = work / "vp_home"
    env = dict(os.environ, VP_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false")
    env.pop("MLFLOW_TRACKING_URI", None)
    dataset = make_imagefolder(work / "data", classes=("red", "green", "blue"), per_class=args.per_class,
                               size=args.size)
    lr, weight_decay, seed = 0.001, 0.0001, 1
    job: dict[str, object] = {
        "framework": "transformers", "task": "classify", "model": "vit-scratch", "pretrained": False,
        "dataset": str(dataset), "epochs": args.epochs, "batch_size": args.batch, "image_size": args.size,
        "learning_rate": lr, "weight_decay": weight_decay, "optimizer": "adamw", "workers": 0, "device": "cpu",
        "seed": seed, "amp": False, "framework_args": SIZES, "augmentation": {"preset": "none"},
    }
    job_file = work / "job.yaml"
    job_file.write_text(yaml.safe_dump(job), encoding="utf-8")
    names, train, val = _same_split(dataset, job)
    subprocess.run([sys.executable, "-c", "import transformers.trainer"], env=env, check=True)  # warm the page cache
    subprocess.run([sys.executable, "-c", "from core.db.engine import open_store; from core.settings import Settings;"
                    "s=open_store(); c=Settings.load(s); c.tracking_enabled=False; c.sync_enabled=False; c.save(s)"],
                   env=env, check=True, cwd=ROOT)

    ours_wall: list[float] = []
    ours_acc: list[float | None] = []
    direct_wall: list[float] = []
    direct_returned: list[float] = []
    direct_acc: list[float] = []
    for attempt in range(args.repeat):  # alternating, ours first
        ours_wall.append(_timed([sys.executable, "-m", "vision_platform", "train", str(job_file)], env, work)[0])
        ours_acc.append(_our_accuracy(home, attempt + 1))
        payload = json.dumps({"seed": seed, "class_names": names, "image_size": args.size, **SIZES,
                              "train": train, "val": val, "batch": args.batch, "epochs": args.epochs, "lr": lr,
                              "weight_decay": weight_decay, "output_dir": str(work / "direct" / f"run{attempt}")})
        wall, returned, out = _timed([sys.executable, "-c", DIRECT, payload], env, work)
        direct_wall.append(wall)
        direct_returned.append(returned)
        accuracies = json.loads(next(line for line in out.splitlines() if line.startswith("EVAL "))[5:])
        direct_acc.append(max(accuracies))

    ow, dw, dr = statistics.median(ours_wall), statistics.median(direct_wall), statistics.median(direct_returned)
    ratio = ow / dw
    rows = [
        ("vision-platform train, wall (s)", f"{ow:.2f}", f"direct Trainer {dw:.2f}", ""),
        ("wall ratio ours / direct", f"{ratio:.3f}", "≤ 1.03", "PASS" if ratio <= 1.03 else "FAIL"),
        ("direct until train() returned (s)", f"{dr:.2f}", f"ratio ours / that {ow / dr:.3f}", ""),
        ("fixed + per-step cost ours - direct (s)", f"{ow - dw:.2f}", f"{args.epochs} epochs", ""),
        ("best val accuracy", "n/a" if ours_acc[-1] is None else f"{ours_acc[-1]:.3f}", f"direct {direct_acc[-1]:.3f}",
         "same data and split"),
        ("load average 1/5/15 min, at the end", _load_average(), "shared machine", ""),
    ]
    print_table(
        f"transformers adapter overhead: vit-scratch {SIZES}, {3 * args.per_class} images {args.size}px "
        f"({len(train)} train / {len(val)} val), {args.epochs} epochs, batch {args.batch}, cpu, median of "
        f"{args.repeat} (ours {[round(x, 2) for x in ours_wall]}, direct {[round(x, 2) for x in direct_wall]})",
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
