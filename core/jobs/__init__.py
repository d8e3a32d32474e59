"""Job lifecycle: store functions, the runner that supervises worker processes, and the queue."""

from __future__ import annotations

ACTIVE_STATES = frozenset({"queued", "running"})
FINAL_STATES = frozenset({"completed", "failed", "cancelled", "interrupted"})
ALL_STATES = ("pending", "queued", "running", "completed", "failed", "cancelled", "interrupted")
