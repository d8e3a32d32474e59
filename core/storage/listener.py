"""The job runner's sync listener: completed jobs' checkpoints go to the outbox and up to R2.

Everything happens on the listener's own thread; the runner's callbacks only hand over a job id.
The same thread retries due outbox rows (backoff per row) while the process lives, so uploads that
were pending when the app last stopped, or when the endpoint was down, go out once it answers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from core.jobs.listeners import stop_background_thread
from core.storage.outbox import OutboxReport, enqueue_job_checkpoints, next_due_in, pending_count, run_outbox

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.db.engine import Store
    from core.settings import Settings

log = logging.getLogger(__name__)

IDLE_POLL_S = 300.0  # nothing due: look again this often (rows may be added by another process)
MIN_WAIT_S = 1.0


class SyncListener:
    """``core.jobs.listeners.JobListener`` that uploads best.pt and last.pt of completed jobs."""

    work_name = "checkpoint uploads"  # what close() finishes, as the CLI names it

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        client_factory: Callable[[], Any] | None = None,
        part_size: int | None = None,
        idle_poll: float = IDLE_POLL_S,
    ) -> None:
        self.store = store
        self.settings = settings
        self.client_factory = client_factory
        self.part_size = part_size
        self.idle_poll = idle_poll
        self._new_jobs: list[int] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Jobs handed over by on_job_end, and how many of them have had their upload pass.
        self._jobs_handed = self._jobs_passed = 0
        self._passed = threading.Condition(self._lock)
        self._told_disabled: str | None = None
        self.last_report: OutboxReport | None = None
        self.passes = 0

    # JobListener --------------------------------------------------------------------------------
    def on_job_start(self, job_id: int) -> None:
        self.start()  # retries left from earlier runs go out while this job trains

    def on_events(self, job_id: int, events: list[dict[str, Any]]) -> None:
        return None  # checkpoints are uploaded when the job has completed (design document: not per epoch)

    def on_job_end(self, job_id: int, status: str) -> None:
        if status != "completed" or not self.settings.sync_enabled:
            return
        with self._lock:
            self._new_jobs.append(job_id)
            self._jobs_handed += 1
        self.start()
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        """Let the upload pass of the jobs completed so far finish, for at most ``timeout`` seconds in
        all, then stop; what is left stays in the outbox for the next start."""
        deadline = time.monotonic() + timeout
        with self._passed:
            self._passed.wait_for(self._handed_jobs_passed, timeout)
        timeout = max(0.0, deadline - time.monotonic())
        stop_background_thread(self._thread, self._stopping, self._wake, timeout,
                               "sync thread still uploading after %.1f s; the row is resumed at next start")

    # control --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (idempotent); the app may call it at start-up."""
        if self._stopping.is_set():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="r2-sync", daemon=True)
            self._thread.start()

    def sync_now(self) -> None:
        self.start()
        self._wake.set()

    # thread ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        # After close(), one more pass if a job completed meanwhile: its checkpoints are not left behind.
        while not self._stopping.is_set() or self._new_jobs:
            try:
                self._pass()
            except Exception:  # never let the thread die: the next pass may work
                log.exception("sync pass failed")
            if self._stopping.is_set():
                continue
            try:
                due = next_due_in(self.store)
            except Exception:
                due = None
            wait = self.idle_poll if due is None else max(MIN_WAIT_S, min(due, self.idle_poll))
            self._wake.wait(wait)
            self._wake.clear()

    def _handed_jobs_passed(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive()
        return self._jobs_passed >= self._jobs_handed or not alive

    def _pass(self) -> None:
        with self._lock:
            jobs, self._new_jobs = self._new_jobs, []
        for job_id in jobs:
            try:
                ids = enqueue_job_checkpoints(self.store, self.settings, job_id)
                log.info("job %s: %d checkpoint upload(s) queued", job_id, len(ids))
            except Exception:
                log.exception("could not queue the checkpoints of job %s", job_id)
        # Nothing due now: no client either (importing boto3 is seconds of CPU next to a training job).
        try:
            if next_due_in(self.store) == 0.0:
                self._upload_due()
        finally:
            self.passes += 1
            with self._passed:
                self._jobs_passed += len(jobs)
                self._passed.notify_all()

    def _upload_due(self) -> None:
        client = None
        if self.client_factory is not None:
            client = self.client_factory()
        report = run_outbox(
            self.store,
            self.settings,
            client=client,
            part_size=self.part_size,
            should_stop=self._stopping.is_set,
        )
        self.last_report = report
        if report.disabled_reason:
            if self._told_disabled != report.disabled_reason:
                self._told_disabled = report.disabled_reason
                log.warning(
                    "cloud sync disabled: %s; %d upload(s) stay pending", report.disabled_reason, pending_count(self.store)
                )
        else:
            self._told_disabled = None
