"""Dataset readers, converters, splits and health checks (see model.py for the shared index)."""

from __future__ import annotations

from core.datasets.errors import DatasetError
from core.datasets.health import check_health
from core.datasets.model import DatasetIndex, Finding, ImageRecord, Shape
from core.datasets.reader import FORMATS, detect_format, open_dataset
from core.datasets.splits import SplitResult, split_dataset

__all__ = [
    "FORMATS",
    "DatasetError",
    "DatasetIndex",
    "Finding",
    "ImageRecord",
    "Shape",
    "SplitResult",
    "check_health",
    "detect_format",
    "open_dataset",
    "split_dataset",
]
