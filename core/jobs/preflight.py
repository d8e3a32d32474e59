"""Checks run before a job is queued: problems a user can fix, found in seconds, named precisely."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.config import JobConfig
from core.frameworks import Catalog, catalog_for, check_config

MIN_FREE_BYTES = 1 * 1024**3


@dataclass
class Problem:
    severity: str  # "error" blocks the job; "warning" is shown
    message: str


def preflight(config: JobConfig, *, deep: bool = False,
              catalog: Catalog | Callable[[], Catalog | None] | None = None) -> list[Problem]:
    """``catalog``: what the adapters declare (the GUI passes its helper answers); without it the
    model-list helper is asked in a child process (this process never imports a framework). A
    callable is asked only after the dataset and disk checks: ``train`` passes its standby worker's
    answer, which comes once the worker's framework imports are done, so the checks overlap them."""
    resources = _resources(config, deep)
    given = catalog() if callable(catalog) else catalog
    judged = given if given is not None and _covers(given, config) else catalog_for(config)
    offered = [Problem(severity, message) for severity, message in check_config(config, judged)]
    if any(p.severity == "error" for p in offered):
        return offered
    return offered + resources


def _covers(catalog: Catalog | None, config: JobConfig) -> bool:
    """Whether ``catalog`` can judge ``config`` (its framework listed with its models), else ask the helper."""
    if catalog is None:
        return False
    info = catalog.get(config.framework)
    return info is not None and info.models is not None


def _resources(config: JobConfig, deep: bool) -> list[Problem]:
    problems: list[Problem] = []
    if not config.dataset.startswith("r2://"):
        dataset = Path(config.dataset).expanduser()
        if not dataset.exists():
            return [Problem("error", f"dataset not found: {dataset}")]
        from core.datasets import DatasetError, check_health, open_dataset

        try:
            index = open_dataset(dataset, config.dataset_format)
        except DatasetError as exc:
            return [Problem("error", str(exc))]
        for finding in [*index.findings, *check_health(index, deep=deep)]:
            if finding.severity in ("error", "warning"):
                problems.append(Problem("warning" if finding.severity == "warning" else "error", str(finding)))
        # Findings about single files (a corrupt image) do not block: those files are skipped. Only a
        # dataset that has nothing usable does.
        problems = [p if p.severity != "error" else Problem("warning", p.message) for p in problems]
        if not index.images:
            problems.append(Problem("error", f"{dataset}: no images found"))
    if config.weights and not Path(config.weights).expanduser().is_file():
        problems.append(Problem("error", f"weights file not found: {config.weights}"))
    free = shutil.disk_usage(paths.runs_dir()).free
    if free < MIN_FREE_BYTES:
        problems.append(
            Problem("error", f"only {free / 1e9:.1f} GB free in {paths.runs_dir()}; checkpoints need at least 1 GB")
        )
    return problems
