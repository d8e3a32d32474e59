"""Fault injection for reliability tests (``VP_FAULT``), read once per worker.

Named points, comma-separated: ``slow_step=SECONDS`` sleeps after every training batch so a test can
kill or cancel mid-epoch deterministically; ``exit_after_batch=N`` calls ``os._exit(137)`` after batch
N (a crash without cleanup). Unset in normal use: every check is a dict lookup.
"""

from __future__ import annotations

import os
import time


def _parse() -> dict[str, str]:
    spec = os.environ.get("VP_FAULT", "")
    faults: dict[str, str] = {}
    for item in spec.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            faults[key.strip()] = value.strip()
    return faults


FAULTS = _parse()


def after_batch(batch_index: int) -> None:
    if not FAULTS:
        return
    if "slow_step" in FAULTS:
        time.sleep(float(FAULTS["slow_step"]))
    if "exit_after_batch" in FAULTS and batch_index >= int(FAULTS["exit_after_batch"]):
        os._exit(137)
