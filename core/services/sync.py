"""Cloud sync: what is waiting in the upload outbox, and uploading it now.

The status bar's "N uploads pending", ``vision-platform sync status`` and ``vision-platform sync retry``
all read the outbox through here, so "pending" means one thing: a row of ``uploads`` that is not
``synced`` (see :mod:`core.storage.outbox` for the states and the retry schedule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update

from core.db.models import Upload
from core.rundir import CHECKPOINT_KINDS
from core.services import ServiceError, Store
from core.settings import Settings
from core.storage import outbox
from core.storage.r2url import make_r2_url


@dataclass(frozen=True)
class UploadRow:
    """One outbox row, as plain values (safe to pass between threads, printable as JSON)."""

    id: int
    job_id: int | None
    state: str  # pending | uploading | synced | failed
    attempts: int
    url: str  # r2://bucket/key
    local_path: str
    next_retry_at: datetime | None
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["next_retry_at"] = self.next_retry_at.isoformat() if self.next_retry_at else None
        return values


@dataclass
class SyncStatus:
    rows: list[UploadRow]
    next_due_in_s: float | None  # seconds until the next automatic attempt; None: nothing scheduled

    @property
    def pending(self) -> int:
        return sum(1 for row in self.rows if row.state != "synced")

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for row in self.rows:
            result[row.state] = result.get(row.state, 0) + 1
        return result


@dataclass
class SyncResult:
    """What one "sync now" did: rows it handled, and why it could not run or stopped early."""

    rows: list[UploadRow] = field(default_factory=list)
    uploaded: int = 0
    failed: int = 0
    disabled_reason: str | None = None
    stopped_early: str | None = None

    @property
    def ok(self) -> bool:
        return self.disabled_reason is None and not any(row.state == "failed" for row in self.rows)


def _row(upload: Upload) -> UploadRow:
    return UploadRow(upload.id, upload.job_id, upload.state, upload.attempts or 0, make_r2_url(upload.bucket, upload.key),
                     upload.local_path, upload.next_retry_at, upload.last_error)


def pending_uploads(store: Store) -> int:
    """Uploads not synced yet (pending, uploading or failed): the status bar's number."""
    return outbox.pending_count(store)


def list_outbox(store: Store, job_id: int | None = None) -> list[UploadRow]:
    rows = [_row(upload) for upload in outbox.list_uploads(store)]
    return [row for row in rows if job_id is None or row.job_id == job_id]


def sync_status(store: Store) -> SyncStatus:
    return SyncStatus(list_outbox(store), outbox.next_due_in(store))


def _rearm_failed(store: Store, upload_ids: list[int] | None) -> int:
    """Failed rows (or the given ones) become pending and due now; returns how many."""
    known = {row.id: row for row in list_outbox(store)}
    for upload_id in upload_ids or []:
        if upload_id not in known:
            raise ServiceError(f"There is no upload with id {upload_id} (`vision-platform sync status` lists them).")
        if known[upload_id].state == "synced":
            raise ServiceError(f"Upload {upload_id} is already synced: there is nothing to retry.")
    query = update(Upload).where(Upload.state == "failed")
    if upload_ids:
        query = update(Upload).where(Upload.id.in_(upload_ids), Upload.state != "synced", Upload.state != "uploading")
    with store.write() as session:
        changed = session.execute(query.values(state="pending", next_retry_at=None))
        return int(getattr(changed, "rowcount", 0) or 0)


def queue_job_uploads(store: Store, settings: Settings, job_id: int,
                      kinds: tuple[str, ...] = CHECKPOINT_KINDS) -> list[int]:
    """Put a job's checkpoints of ``kinds`` (best and last) in the outbox; returns the upload ids."""
    try:
        ids = outbox.enqueue_job_checkpoints(store, settings, job_id, kinds=kinds)
    except KeyError:
        raise ServiceError(f"There is no training job {job_id} (`vision-platform jobs` lists them).") from None
    if not ids:
        raise ServiceError(f"Job {job_id} has no checkpoints to upload yet.")
    return ids


def sync_now(store: Store, settings: Settings, *, retry: bool = True, upload_ids: list[int] | None = None,
             job_ids: list[int] | None = None) -> SyncResult:
    """Upload what the outbox holds now. ``retry``: failed rows too (re-armed first; only ``upload_ids``
    when given). Never raises for a transfer problem: it is recorded on the row and in the result."""
    if retry:
        _rearm_failed(store, upload_ids)
    report = outbox.run_outbox(store, settings, retry_failed=retry and not upload_ids)
    rows = list_outbox(store)
    if job_ids:
        rows = [row for row in rows if row.job_id in job_ids]
    elif upload_ids:
        rows = [row for row in rows if row.id in upload_ids]
    return SyncResult(rows, report.synced, report.failed, report.disabled_reason, report.stopped_early)
