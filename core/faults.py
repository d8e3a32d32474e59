"""Fault points in core for reliability tests (``VP_FAULT``), unset in normal use.

The same variable and syntax as ``adapters/faults.py`` (a worker's fault points): comma-separated
``name=value`` items, read once per process. A test sets it on a subprocess it starts, so the fault
is a real one (a kill: no cleanup, no ``finally``, no atexit) at a named point of real code:

- ``kill_after_upload_part=N``: a multipart upload kills its own process (SIGKILL; on Windows
  TerminateProcess) once N of its parts are in the bucket and recorded (``core/storage/client.py``).

Every check is a dict lookup when the variable is unset.
"""

from __future__ import annotations

import os

from core import platform


def parse_faults(spec: str) -> dict[str, str]:
    faults: dict[str, str] = {}
    for item in spec.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            faults[key.strip()] = value.strip()
    return faults


FAULTS = parse_faults(os.environ.get("VP_FAULT", ""))


def kill_after(point: str, count: int) -> None:
    """Kill this process when fault ``point=N`` is set and ``count`` reached N."""
    limit = FAULTS.get(point)
    if limit is not None and count >= int(limit):
        platform.kill_self()
