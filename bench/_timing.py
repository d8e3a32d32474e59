"""Timing a benchmark's child process: wall time, and the time until its ``train()`` returned.

A child prints ``TRAIN_RETURNED_AT <time.time()>`` when its training call returns, so a bench can
report the wall time without the interpreter's teardown too (the same mark for our worker and for a
framework called directly).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

TRAIN_RETURNED_MARK = "TRAIN_RETURNED_AT"


def timed_run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, seconds until train() returned, stdout); a failed child ends the bench with its output."""
    started_wall = time.time()
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    marks = [line.split()[1] for line in result.stdout.splitlines() if line.startswith(TRAIN_RETURNED_MARK)]
    return elapsed, (float(marks[-1]) - started_wall) if marks else elapsed, result.stdout
