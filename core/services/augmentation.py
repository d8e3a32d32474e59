"""Augmentation previews: the Train page's grid and ``vision-platform dataset augment-preview``.

The samples are drawn by each framework's own augmentation pipeline, so they come from the
``augment-preview`` helper process (``adapters.augment_preview``): the app and the CLI never import a
framework. One blocking function runs it; the caller passes a ``cancelled`` check (the GUI's task
state, the CLI's Ctrl+C) and owns the output folder.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import platform
from core.frameworks import CatalogError, parse_helper_output
from core.launch import child_env, subcommand
from core.services import ServiceError

POLL_S = 0.1  # how often a waiting preview checks whether it was cancelled
REQUEST_FILE = "request.json"


class PreviewCancelled(Exception):
    """The caller cancelled the preview; the helper was stopped."""


@dataclass(frozen=True)
class PreviewSampleFile:
    file: Path
    caption: str
    source: str


def preview_augmentation(request: dict[str, Any], out_dir: Path, *,
                         cancelled: Callable[[], bool] = lambda: False) -> list[PreviewSampleFile]:
    """Write ``request``'s augmented samples as PNGs into ``out_dir`` and list them.

    ``request`` is an ``adapters.augment_preview.PreviewRequest`` as a dict (dataset, framework, task,
    image_size, preset, options, count, seed, split). Raises :class:`ServiceError` with the helper's
    own reason when the request cannot be previewed, :class:`PreviewCancelled` when ``cancelled()``
    turned true (the helper is killed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    request_file = out_dir / REQUEST_FILE
    request_file.write_text(json.dumps(request), encoding="utf-8")
    process = subprocess.Popen(subcommand("augment-preview", "--request", str(request_file), "--out", str(out_dir)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True,
                               encoding="utf-8", errors="replace", **platform.new_process_group_options())
    stdout, stderr = _wait(process, cancelled)
    if process.returncode != 0:
        lines = stderr.strip().splitlines()
        raise ServiceError(lines[-1] if lines else f"the augmentation preview helper exited with {process.returncode}")
    try:
        answer = parse_helper_output(stdout)
    except CatalogError:
        raise ServiceError("the augmentation preview helper gave no answer") from None
    return [PreviewSampleFile(Path(item["file"]), str(item.get("caption", "")), str(item.get("source", "")))
            for item in answer.get("samples", [])]


def _wait(process: subprocess.Popen[str], cancelled: Callable[[], bool]) -> tuple[str, str]:
    while True:
        try:
            return process.communicate(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if cancelled():
                _stop(process)
        except KeyboardInterrupt:  # the CLI's Ctrl+C: never leave the helper running
            _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    platform.kill_tree(process)
    process.communicate()
    raise PreviewCancelled()
