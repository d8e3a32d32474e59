"""Framework registry with lazy string entry points (like timm's ``create_model``/``list_models``).

Nothing here imports a framework: an adapter module is imported on first use.
"""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any

from adapters.base import AdapterError, TrainingAdapter

_ENTRY_POINTS: dict[str, str] = {
    "timm": "adapters.timm_adapter:TimmAdapter",
    "ultralytics": "adapters.ultralytics_adapter:UltralyticsAdapter",
    "transformers": "adapters.transformers_adapter:TransformersAdapter",
}


def register(framework: str, entry_point: str) -> None:
    _ENTRY_POINTS[framework] = entry_point


def list_frameworks() -> list[str]:
    return sorted(_ENTRY_POINTS)


def get_adapter_class(framework: str) -> type[TrainingAdapter]:
    entry = _ENTRY_POINTS.get(framework)
    if entry is None:
        raise AdapterError(f"unknown framework {framework!r}; available: {', '.join(list_frameworks())}")
    module_name, _, class_name = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(f"framework {framework!r} is not installed: {exc}") from exc
    adapter_class: type[TrainingAdapter] = getattr(module, class_name)
    return adapter_class


def list_models(framework: str, pattern: str = "*") -> list[str]:
    return get_adapter_class(framework).list_models(pattern)


def tasks_for(framework: str) -> tuple[str, ...]:
    return get_adapter_class(framework).tasks


def describe_all() -> dict[str, dict[str, Any]]:
    """Every registered framework's declarations, in registry order (the order of preference when
    several train a task); one that cannot be imported here says why."""
    described: dict[str, dict[str, Any]] = {}
    for framework in _ENTRY_POINTS:
        try:
            described[framework] = get_adapter_class(framework).describe(None)
        except AdapterError as exc:
            described[framework] = {"framework": framework, "error": str(exc)}
    return described


def matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatch(name, pattern)
