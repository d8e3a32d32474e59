"""Job lifecycle: store functions, the runner that supervises worker processes, and the queue.

The job states are one ``Literal``; the groups below are derived from it and checked against it.
"""

from __future__ import annotations

from typing import Literal, get_args

JobState = Literal["pending", "queued", "running", "completed", "failed", "cancelled", "interrupted"]
ALL_STATES: tuple[JobState, ...] = get_args(JobState)
NOT_STARTED_STATES: tuple[JobState, ...] = ("pending", "queued")
ACTIVE_STATES: tuple[JobState, ...] = ("queued", "running")  # holds a queue slot or a worker: stop first
FINAL_STATES: tuple[JobState, ...] = ("completed", "failed", "cancelled", "interrupted")
RESUMABLE_STATES: tuple[JobState, ...] = ("failed", "cancelled", "interrupted")  # stopped before its last epoch
assert set(ALL_STATES) == {*NOT_STARTED_STATES, *ACTIVE_STATES, *FINAL_STATES}, "every state is in a group"
assert not set(ACTIVE_STATES) & set(FINAL_STATES), "a final state is never active"
assert set(RESUMABLE_STATES) <= set(FINAL_STATES), "only a finished job can be resumed"
