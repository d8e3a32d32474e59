"""Dataset readers, converters, splits and health checks (see model.py for the shared index).

The names below load on first use (PEP 562): importing ``core.datasets.model`` (the index types the
GUI's widgets need at start-up) does not load the readers, the health check and Pillow with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.datasets.errors import DatasetError
    from core.datasets.health import check_health
    from core.datasets.model import DatasetIndex, Finding, ImageRecord, Shape
    from core.datasets.reader import FORMATS, detect_format, open_dataset
    from core.datasets.splits import SplitResult, split_dataset

_HOMES = {
    "DatasetError": "errors",
    "check_health": "health",
    "DatasetIndex": "model",
    "Finding": "model",
    "ImageRecord": "model",
    "Shape": "model",
    "FORMATS": "reader",
    "detect_format": "reader",
    "open_dataset": "reader",
    "SplitResult": "splits",
    "split_dataset": "splits",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
