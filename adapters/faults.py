"""Fault injection for reliability tests (``VP_FAULT``), read once per worker.

Named points, comma-separated:

- ``slow_step=SECONDS`` sleeps after every training batch so a test can kill or cancel mid-epoch;
- ``exit_after_batch=N`` calls ``os._exit(137)`` after batch N (a crash without cleanup);
- ``hold_at=N+M+…`` with ``hold_dir=DIR``: after global batch N the worker writes ``DIR/held_N`` and
  waits until ``DIR/release_N`` exists. A test sees the job paused at a known point, checks what the
  app shows while it is running, then releases it: the condition is true by construction, whatever
  the machine's speed (no race between a tiny job finishing and a chart updating). A hold ends by
  itself after ``HOLD_LIMIT_S`` or when the job is asked to stop, so a failed test never leaves a
  worker waiting forever.

Unset in normal use: every check is a dict lookup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

HOLD_LIMIT_S = 600.0
HOLD_POLL_S = 0.02


def _parse() -> dict[str, str]:
    spec = os.environ.get("VP_FAULT", "")
    faults: dict[str, str] = {}
    for item in spec.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            faults[key.strip()] = value.strip()
    return faults


FAULTS = _parse()


def held_marker(hold_dir: Path, batch: int) -> Path:
    """The file a held worker writes (tests wait for it)."""
    return Path(hold_dir) / f"held_{batch}"


def release_marker(hold_dir: Path, batch: int) -> Path:
    """The file a test writes to let a held worker go on."""
    return Path(hold_dir) / f"release_{batch}"


def _hold_batches() -> set[int]:
    return {int(part) for part in FAULTS.get("hold_at", "").split("+") if part.strip()}


def hold_at_batch(batch_index: int, stop_requested: Callable[[], bool] | None = None) -> None:
    """Wait at a ``hold_at`` batch until the test releases it (or the job is asked to stop)."""
    if batch_index not in _hold_batches() or "hold_dir" not in FAULTS:
        return
    hold_dir = Path(FAULTS["hold_dir"])
    held_marker(hold_dir, batch_index).touch()
    release = release_marker(hold_dir, batch_index)
    deadline = time.monotonic() + HOLD_LIMIT_S
    while not release.exists() and time.monotonic() < deadline:
        if stop_requested is not None and stop_requested():
            return
        time.sleep(HOLD_POLL_S)


def after_batch(batch_index: int, stop_requested: Callable[[], bool] | None = None) -> None:
    if not FAULTS:
        return
    if "slow_step" in FAULTS:
        time.sleep(float(FAULTS["slow_step"]))
    if "hold_at" in FAULTS:
        hold_at_batch(batch_index, stop_requested)
    if "exit_after_batch" in FAULTS and batch_index >= int(FAULTS["exit_after_batch"]):
        os._exit(137)
