"""Checkpoint files written off the training thread, one adapter-independent writer.

An epoch's checkpoint is serialised on the training thread (a snapshot: the next step changes the
tensors), then hashed, written and fsynced by one background thread while training goes on. The
fsync alone took 7-22 ms a file here, twice in an epoch that improves (``last.pt`` and ``best.pt``).

What the background thread must not weaken, and how it does not:

- each file is still written atomically (``adapters.base.atomic_write_bytes``): a kill during a write
  leaves the previous generation, exactly as on the training thread;
- the ``checkpoint`` event (the DB row, the upload) is sent by the task once its file is on disk;
- tasks run one at a time in the order they were submitted (``last`` before ``best``, epoch n
  before epoch n + 1);
- a failed write (a full disk) still fails the job: :meth:`CheckpointWriter.raise_if_failed` raises it
  on the training thread at its next check (adapters call it after every batch), and leaving the
  ``with`` block waits for every write and raises the first failure; an exception already on its way
  out of the block is not masked.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any


class CheckpointWriter:
    """One background thread for an adapter's checkpoint writes; use as a context manager around training."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        """Run ``task(*args)`` after every task submitted before it (a failure of one is raised first)."""
        self.raise_if_failed()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vp-checkpoints")
        self._pending.append(self._pool.submit(task, *args))

    def raise_if_failed(self) -> None:
        """Raise the first failure among the finished tasks (cheap: adapters call it after every batch)."""
        while self._pending and self._pending[0].done():
            self._pending.pop(0).result()

    def close(self) -> None:
        """Wait for every task; raise the first failure."""
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:  # already failing: wait for the writes in flight, keep the exception that is on its way
            self._shutdown()
