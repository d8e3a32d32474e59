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
- ``enospc_at=checkpoint`` (with ``enospc_while=FILE``: only while FILE exists): a checkpoint's atomic
  write fails as on a full disk, after its data is in the temp file (``core.files.inject_disk_full``;
  the runner reads the same variable for its ``log`` and ``metrics`` points);
- ``flood_stdout_mb=N`` writes N MB of lines that are not events on the event stream before training,
  as a chatty library would: the runner must bound what it buffers and still finish the job.

Unset in normal use: every check is a dict lookup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from core.faults import parse_faults
from core.files import MB, inject_disk_full

HOLD_LIMIT_S = 600.0
HOLD_POLL_S = 0.02
FLOOD_LINE = "this line is not an event: a library printing on stdout " + "x" * 64 + "\n"


FAULTS = parse_faults(os.environ.get("VP_FAULT", ""))  # one syntax for core's and the worker's fault points


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


def disk_write(point: str, path: Path) -> None:
    """At a worker's write ``point`` (the data is in the temp file, not yet synced or renamed): raise
    ENOSPC when ``enospc_at`` names it; ``exit_in_checkpoint_write=N`` kills the worker there (no
    cleanup, the temp file stays) from the Nth checkpoint write on — a kill while a checkpoint is
    being written."""
    inject_disk_full(point, path, FAULTS)
    if point == "checkpoint" and "exit_in_checkpoint_write" in FAULTS:
        _CHECKPOINT_WRITES.append(path.name)
        if len(_CHECKPOINT_WRITES) >= int(FAULTS["exit_in_checkpoint_write"]):
            os._exit(137)


_CHECKPOINT_WRITES: list[str] = []


def flood_stdout(reporter: object) -> None:
    """``flood_stdout_mb=N``: N MB of non-event lines on the worker's event stream (the stream of its
    ``JsonLinesReporter``'s writer: the pipe the runner reads, not stderr)."""
    if "flood_stdout_mb" not in FAULTS:
        return
    stream: IO[str] | None = getattr(getattr(reporter, "writer", None), "_stream", None)
    if stream is None:
        return
    block = FLOOD_LINE * 1024
    for _ in range(int(float(FAULTS["flood_stdout_mb"]) * MB) // len(block) + 1):
        stream.write(block)
    stream.flush()
