"""Pause a real training worker at known batches (the ``hold_at`` fault in ``adapters/faults.py``).

A test that wants to see the app while a job runs holds the worker, checks, and releases it: the job
is running at that moment by construction, however fast the machine is.
"""

from __future__ import annotations

from pathlib import Path

from adapters.faults import held_marker, release_marker


class Holds:
    """``VP_FAULT`` value and the marker files for holding a worker after the given global batches."""

    def __init__(self, folder: Path, *batches: int, extra: str = "") -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.batches = batches
        self.extra = extra

    @property
    def fault_spec(self) -> str:
        spec = f"hold_at={'+'.join(str(b) for b in self.batches)},hold_dir={self.folder}"
        return f"{spec},{self.extra}" if self.extra else spec

    def is_held(self, batch: int) -> bool:
        return held_marker(self.folder, batch).exists()

    def release(self, batch: int) -> None:
        release_marker(self.folder, batch).touch()

    def release_all(self) -> None:
        for batch in self.batches:
            self.release(batch)
