"""Ultralytics metric keys → our metric names (``metrics/mAP50(B)`` → ``val/map50`` …).

Pure functions over plain dicts, so the mapping is unit-tested without training anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

# Suffix of an Ultralytics metric key → prefix of our name: (B)ox, (M)ask, (P)ose.
_FAMILY = {"B": "", "M": "mask_", "P": "pose_"}
_STAT = {"precision": "precision", "recall": "recall", "mAP50": "map50", "mAP50-95": "map50_95"}
_METRIC_RE = re.compile(r"^metrics/(precision|recall|mAP50|mAP50-95)\(([BMP])\)$")
_CLASSIFY = {"metrics/accuracy_top1": "val/accuracy", "metrics/accuracy_top5": "val/top5"}

# The metric that picks best.pt, per task (Ultralytics' fitness also weighs mAP50; we report the main one).
PRIMARY_METRIC = {
    "detect": "val/map50_95",
    "segment": "val/mask_map50_95",
    "pose": "val/pose_map50_95",
    "classify": "val/accuracy",
}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        try:  # a tensor with more than one element: its sum is the loss Ultralytics prints
            number = float(value.sum())
        except (AttributeError, TypeError, ValueError):
            return None
    return number if math.isfinite(number) else None


def loss_values(losses: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """``{"box_loss": t, ...}`` → ``{"train/box_loss": ..., "train/loss": sum}`` (``prefix`` = train|val).

    Keys may already carry the prefix (``label_loss_items`` output). A lone ``loss`` key (classify) is the total.
    """
    values: dict[str, float] = {}
    for key, raw in losses.items():
        name = key.split("/", 1)[1] if "/" in key else key
        number = _number(raw)
        if number is not None:
            values[f"{prefix}/{name}"] = number
    if values and f"{prefix}/loss" not in values:
        values[f"{prefix}/loss"] = sum(values.values())
    return values


def map_epoch_metrics(raw: Mapping[str, Any]) -> dict[str, float]:
    """An epoch's ``{**train losses, **trainer.metrics, **trainer.lr}`` in our names."""
    mapped: dict[str, float] = {}
    train_losses = {k: v for k, v in raw.items() if k.startswith("train/")}
    val_losses = {k: v for k, v in raw.items() if k.startswith("val/")}
    mapped.update(loss_values(train_losses, "train"))
    mapped.update(loss_values(val_losses, "val"))
    for key, value in raw.items():
        number = _number(value)
        if number is None:
            continue
        match = _METRIC_RE.match(key)
        if match:
            stat, family = match.groups()
            mapped[f"val/{_FAMILY[family]}{_STAT[stat]}"] = number
        elif key in _CLASSIFY:
            mapped[_CLASSIFY[key]] = number
        elif key == "lr/pg0":
            mapped["lr"] = number
    return mapped


def step_metrics(loss_items: Mapping[str, Any], lr: float | None) -> dict[str, float]:
    """One batch's loss components (``trainer.loss_items``) and the current learning rate."""
    values = loss_values(loss_items, "train")
    if lr is not None:
        values["lr"] = float(lr)
    return values
