"""Checks run before a job is queued: problems a user can fix, found in seconds, named precisely."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.config import JobConfig

MIN_FREE_BYTES = 1 * 1024**3


@dataclass
class Problem:
    severity: str  # "error" blocks the job; "warning" is shown
    message: str


def preflight(config: JobConfig, *, deep: bool = False) -> list[Problem]:
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
