"""Worker events that could not be written to SQLite yet, kept until a write succeeds: nothing lost.

The runner persists events in batches. When a batch's transaction fails (the database locked past
its busy timeout by another process, a full disk, an I/O error), the batch's events wait here — in
memory and appended to ``events.spool.jsonl`` in the job's run directory — and are written, in order,
in the same transaction as the next batch that succeeds; then the file is removed. A runner that
dies with events spooled leaves the file: the next run of that job (a resume) writes it first.

Only the event types the runner turns into rows are spooled (metrics, progress, checkpoints,
artifacts, …): a log line is already in ``worker.log``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from core.files import atomic_write_bytes

log = logging.getLogger(__name__)

SPOOL_FILE = "events.spool.jsonl"
PERSISTED_TYPES = frozenset({"hello", "dataset", "progress", "metrics", "checkpoint", "artifact", "done"})


class EventSpool:
    """The events of one job waiting to be written, oldest first (``events``), mirrored to a file."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / SPOOL_FILE
        self.events: list[dict[str, Any]] = read_spool(self.path)
        self._file_complete = True  # False after a failed append: the file is rewritten whole next time

    def keep(self, events: list[dict[str, Any]]) -> None:
        """Add a batch that could not be written. In memory whatever happens; raises ``OSError`` if
        the file could not take it (the events stay queued in this process)."""
        kept = [event for event in events if event.get("type") in PERSISTED_TYPES]
        if not kept:
            return
        self.events.extend(kept)
        self._file_complete, complete = False, self._file_complete
        if complete:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(_lines(kept))
        else:
            atomic_write_bytes(self.path, _lines(self.events).encode("utf-8"))
        self._file_complete = True

    def clear(self) -> None:
        """Everything spooled is in the database now."""
        self.events = []
        self._file_complete = True
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:  # left behind, a resume would write these events a second time
            log.warning("could not remove %s: %s", self.path, exc)


def _lines(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events)


def read_spool(path: Path) -> list[dict[str, Any]]:
    """The events in a spool file; a line cut short by a kill mid-append is skipped (never written)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("skipping a truncated line of %s", path)
    return events
