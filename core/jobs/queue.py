"""The job queue: starts queued jobs, ``max_concurrent`` at a time (one by default), each in a thread.

Used by the GUI (which hosts the queue while open) and by ``vision-platform train``. Claiming a job is
an atomic UPDATE, so two processes with a queue never run the same job twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from core.db.engine import Store
from core.jobs import store as job_store
from core.jobs.listeners import JobListener
from core.jobs.runner import EventCallback, JobRunner

log = logging.getLogger(__name__)


def default_listeners(store: Store) -> list[JobListener]:
    """Tracking (MLflow) and checkpoint sync (R2/S3) as the settings ask. Imports stay lazy."""
    from core.settings import Settings

    settings = Settings.load(store)
    listeners: list[JobListener] = []
    if settings.tracking_enabled:
        try:
            from core.tracking.listener import MlflowListener

            listeners.append(MlflowListener(store, settings))
        except Exception as exc:  # tracking must never keep a job from running
            log.warning("MLflow tracking is unavailable; jobs run without it: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
    if settings.sync_enabled:
        try:
            from core.storage.listener import SyncListener

            listeners.append(SyncListener(store, settings))
        except Exception as exc:
            log.warning("checkpoint sync is unavailable; checkpoints stay local: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
    return listeners


class JobQueue:
    def __init__(
        self,
        store: Store,
        *,
        max_concurrent: int = 1,
        on_event: EventCallback | None = None,
        listeners_factory: Callable[[Store], Iterable[JobListener]] = default_listeners,
        poll_interval: float = 0.5,
    ) -> None:
        self.store = store
        self.max_concurrent = max(1, max_concurrent)
        self.on_event = on_event
        self.listeners_factory = listeners_factory
        self.poll_interval = poll_interval
        self._running: dict[int, threading.Thread] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._listeners: list[JobListener] | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="job-queue")
            self._thread.start()

    def wake(self) -> None:
        """Call after queueing a job so it starts without waiting for the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for listener in self._listeners or []:
            try:
                listener.close(timeout)
            except Exception:
                log.exception("closing listener failed")

    def running_jobs(self) -> list[int]:
        with self._lock:
            return [job_id for job_id, thread in self._running.items() if thread.is_alive()]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._start_due_jobs()
            except Exception:
                log.exception("job queue iteration failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _start_due_jobs(self) -> None:
        with self._lock:
            self._running = {k: t for k, t in self._running.items() if t.is_alive()}
            free = self.max_concurrent - len(self._running)
        while free > 0 and not self._stop.is_set():
            job_id = job_store.next_queued_job(self.store)
            if job_id is None or not job_store.claim_job(self.store, job_id):
                return
            if self._listeners is None:
                self._listeners = list(self.listeners_factory(self.store))
            runner = JobRunner(self.store, listeners=self._listeners, on_event=self.on_event)
            thread = threading.Thread(target=self._run_one, args=(runner, job_id), daemon=True, name=f"job-{job_id}")
            with self._lock:
                self._running[job_id] = thread
            thread.start()
            free -= 1

    def _run_one(self, runner: JobRunner, job_id: int) -> None:
        try:
            runner.run(job_id, claimed=True)
        except Exception as exc:
            log.exception("runner for job %d failed", job_id)
            job_store.finish_job(self.store, job_id, "failed", error=f"internal error in the job runner: {exc}")
        finally:
            self._wake.set()
