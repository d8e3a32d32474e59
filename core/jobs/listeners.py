"""Runner listeners: how tracking (MLflow) and storage sync (R2/S3) hear about a job.

The runner calls listeners from its persistence thread, never from the worker: a listener must return
quickly (queue the work and do it on its own thread) and must never raise into the runner — a broken
tracking server or bucket may not fail or slow a training job. Failures are logged by the listener.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

log = logging.getLogger(__name__)


class JobListener(Protocol):
    def on_job_start(self, job_id: int) -> None:
        """The worker is starting (the job row is ``running``; its config is in ``config_yaml``)."""

    def on_events(self, job_id: int, events: list[dict[str, Any]]) -> None:
        """A batch of worker events (see ``core.events``), already persisted to SQLite — or, while the
        database cannot be written, waiting in the job's spool to be (``core.jobs.spool``)."""

    def on_job_end(self, job_id: int, status: str) -> None:
        """The job reached a final state: completed | failed | cancelled | interrupted."""

    def close(self, timeout: float = 10.0) -> None:
        """Flush queued work (bounded by ``timeout``) and stop background threads."""


def stop_background_thread(thread: threading.Thread | None, stopping: threading.Event, wake: threading.Event,
                           timeout: float, still_busy: str) -> None:
    """The shared ``close()`` of listeners with a worker thread: ask it to stop, wake it, wait
    (bounded), and say what is left behind if it is still busy."""
    stopping.set()
    wake.set()
    if thread is not None:
        thread.join(timeout)
        if thread.is_alive():
            log.warning(still_busy, timeout)


def call_safely(listener: object, method: str, *args: Any) -> None:
    try:
        getattr(listener, method)(*args)
    except Exception:  # a listener may never break a job
        log.exception("listener %s.%s failed", type(listener).__name__, method)
