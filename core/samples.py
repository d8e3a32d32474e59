"""The sample dataset the app ships (three classes of drawn shapes, ``scripts/make_sample_dataset.py``)
and the tiny training both the "Try it" button and ``vision-platform selftest`` run on it.

The shipped copy sits inside the app (read-only in an installed app); a job trains on a copy in the
user's data dir, so its path stays valid across app updates and nothing is written next to the app.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from core import paths
from core.resources import SAMPLE_DATASET, resource_path

# A from-scratch timm test model at 32 px: seconds per epoch on a CPU.
SAMPLE_TRAINING: dict[str, Any] = {"framework": "timm", "task": "classify", "model": "test_resnet",
                                   "pretrained": False, "batch_size": 8, "image_size": 32}
TRY_IT_EPOCHS = 5
TRY_IT_NAME = "Try it: shapes"


def shipped_sample() -> Path:
    return resource_path(*SAMPLE_DATASET)


def copy_sample(target: Path) -> Path:
    """Copy the shipped sample to ``target`` (kept when already there) and return it."""
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(shipped_sample(), partial)
        partial.replace(target)
    return target


def user_sample() -> Path:
    """The sample's copy in the data dir (made on first use)."""
    return copy_sample(paths.data_dir() / "samples" / SAMPLE_DATASET[-1])


def first_image(folder: Path) -> Path:
    return sorted(folder.rglob("*.png"))[0]


def try_it_config(dataset: Path) -> dict[str, Any]:
    return {**SAMPLE_TRAINING, "dataset": str(dataset), "epochs": TRY_IT_EPOCHS, "name": TRY_IT_NAME}
