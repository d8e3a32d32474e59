"""The upload outbox: every file that must reach R2 is a row in ``uploads`` that survives restarts.

States (``core.storage.states.UploadState``): ``pending`` → ``uploading`` → ``synced`` | ``failed``.
A failed row has ``last_error``, ``attempts`` and ``next_retry_at`` (30 s × 2^(attempts-1), capped
at one hour); a failure that retrying cannot fix (file gone, over the size limit) has no
``next_retry_at`` and waits for the user (``vision-platform sync`` retries every failed row).
A row is ``synced`` only after the bucket answered with the object's size, our sha256 metadata and
the content ETag matching the local file.

Why a row goes back from ``uploading`` to ``pending``: a process that dies mid-upload cannot say so.
The uploading process touches ``updated_at`` at least every ``HEARTBEAT_S``; a row whose heartbeat
is older than ``STALE_AFTER_S`` belonged to a dead process and is taken over.

A multipart upload killed half-way is resumed, not restarted: the row records its upload id, part
size, the file's sha256 and each finished part's ETag as the parts land (``save_progress``); the
next attempt sends only the missing parts, with the same part size, or aborts the upload when the
file changed. Multipart uploads under our key prefixes that no row records (a kill between starting
one and recording it, an abort that failed with the endpoint gone) are aborted at the end of every
pass (``abort_orphaned_uploads``), so the bucket never bills for parts nobody will complete.

A folder checkpoint (transformers' ``weights/best/``, see ``core.rundir``) is one row per file, keyed
under the checkpoint's prefix (``…/jobs/{job}/best/config.json``): each file resumes, skips and is
verified as any file does, and the checkpoint is ``synced`` (its URL the prefix, ``…/best/``) once the
last of its files is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update

from core.db.models import Checkpoint, TrainingJob, TrainingMetric, Upload, utcnow
from core.rundir import CHECKPOINT_KINDS, checkpoint_file_name, checkpoint_folder_of
from core.storage.errors import MAX_CHECKPOINT_BYTES, StorageError
from core.storage.folders import folder_files, prefix_url
from core.storage.r2url import KEY_PREFIXES, checkpoint_key, make_r2_url
from core.storage.states import UploadState

if TYPE_CHECKING:
    from core.db.engine import Store
    from core.settings import Settings
    from core.storage.client import MultipartProgress
    from core.storage.credentials import Credentials

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0
ERROR_TEXT_MAX = 1000

_run_lock = threading.Lock()  # one outbox pass at a time per process


def backoff_delay(attempts: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


# -- enqueue ------------------------------------------------------------------------------------------
def enqueue_upload(
    store: Store, *, job_id: int | None, checkpoint_id: int | None, local_path: str | Path, bucket: str, key: str
) -> int:
    """Add (or re-arm) the upload of ``local_path`` to ``bucket/key``; returns the row id.

    A row for the same bucket/key that is not synced yet is reused, so asking twice uploads once.
    """
    with store.write() as session:
        row = session.scalars(
            select(Upload).where(Upload.bucket == bucket, Upload.key == key, Upload.state != "synced").order_by(Upload.id)
        ).first()
        if row is None:
            row = Upload(job_id=job_id, checkpoint_id=checkpoint_id, local_path=str(local_path), bucket=bucket, key=key)
            session.add(row)
        elif row.state != "uploading":
            row.local_path = str(local_path)
            row.checkpoint_id = checkpoint_id
            row.state = "pending"
            row.next_retry_at = None
        if checkpoint_id is not None:
            session.execute(
                update(Checkpoint)
                .where(Checkpoint.id == checkpoint_id, Checkpoint.sync_state != "synced")
                .values(sync_state="pending")
            )
        session.flush()
        return int(row.id)


def enqueue_job_checkpoints(store: Store, settings: Settings, job_id: int,
                            kinds: tuple[str, ...] = CHECKPOINT_KINDS) -> list[int]:
    """Queue the job's checkpoints under the design document's key layout; returns the upload row ids."""
    with store.read() as session:
        project_id = session.scalar(select(TrainingJob.project_id).where(TrainingJob.id == job_id))
        if project_id is None:
            raise KeyError(f"no training job {job_id}")
        rows = session.execute(
            select(Checkpoint.id, Checkpoint.kind, Checkpoint.path)
            .where(Checkpoint.job_id == job_id, Checkpoint.kind.in_(kinds))
            .order_by(Checkpoint.id)
        ).all()
    ids = []
    for checkpoint_id, kind, path in rows:
        for local, name in checkpoint_upload_files(kind, path):
            ids.append(enqueue_upload(store, job_id=job_id, checkpoint_id=checkpoint_id, local_path=local,
                                      bucket=settings.r2_bucket, key=checkpoint_key(project_id, job_id, name)))
    return ids


def checkpoint_upload_files(kind: str, path: str | Path) -> list[tuple[Path, str]]:
    """(local file, name under the job's key prefix) for each file of a checkpoint: ``best.pt`` for a
    file; ``best/<relative path>`` for every file of a folder checkpoint (``weights/best/``)."""
    folder = checkpoint_folder_of(path)
    if folder is None:
        return [(Path(path), checkpoint_file_name(kind) if kind in CHECKPOINT_KINDS else Path(path).name)]
    files = folder_files(folder) if folder.is_dir() else [(Path(path), Path(path).name)]  # gone: fails by name
    return [(file, f"{folder.name}/{relative}") for file, relative in files]


# -- run ----------------------------------------------------------------------------------------------
@dataclass
class UploadOutcome:
    upload_id: int
    key: str
    state: UploadState
    error: str | None = None
    skipped: bool = False


@dataclass
class OutboxReport:
    outcomes: list[UploadOutcome] = field(default_factory=list)
    disabled_reason: str | None = None  # no credentials / endpoint / sync disabled
    stopped_early: str | None = None  # the endpoint failed: the remaining rows were left for later
    orphans_aborted: list[str] = field(default_factory=list)  # keys of multipart uploads nobody recorded

    @property
    def synced(self) -> int:
        return sum(1 for o in self.outcomes if o.state == "synced")

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.state == "failed")


def _due_clause(now: datetime, retry_failed: bool) -> Any:
    stale = now - timedelta(seconds=STALE_AFTER_S)
    failed_due = (
        Upload.state == "failed"
        if retry_failed
        else and_(Upload.state == "failed", Upload.next_retry_at.is_not(None), Upload.next_retry_at <= now)
    )
    return or_(
        and_(Upload.state == "pending", or_(Upload.next_retry_at.is_(None), Upload.next_retry_at <= now)),
        failed_due,
        and_(Upload.state == "uploading", Upload.updated_at < stale),
    )


def _claim(store: Store, now: datetime, retry_failed: bool, skip: set[int]) -> Upload | None:
    with store.write() as session:
        query = select(Upload).where(_due_clause(now, retry_failed)).order_by(Upload.id).limit(1)
        if skip:
            query = query.where(Upload.id.not_in(skip))
        row = session.scalars(query).first()
        if row is None:
            return None
        if row.state == "uploading":
            log.info("upload %s was left 'uploading' by a process that stopped; taking it over", row.id)
        row.state = "uploading"
        row.attempts = (row.attempts or 0) + 1
        row.updated_at = utcnow()
        session.flush()
        session.expunge(row)
        return row


def _classify(exc: BaseException) -> tuple[bool, bool]:
    """(retryable, endpoint_problem). An endpoint problem stops the pass: the next rows would fail too."""
    if isinstance(exc, StorageError):
        return exc.retryable, False
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return True, True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(exc.response.get("Error", {}).get("Code", ""))
        # 5xx / throttling (after botocore's retries) and auth/bucket problems affect every row.
        endpoint = status >= 500 or status in (401, 403, 429) or code in ("NoSuchBucket", "SlowDown")
        return True, endpoint
    if isinstance(exc, BotoCoreError | OSError | TimeoutError):
        return True, True
    return True, False


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:ERROR_TEXT_MAX]


def _finish(store: Store, row: Upload, outcome: UploadOutcome, **values: Any) -> None:
    with store.write() as session:
        session.execute(update(Upload).where(Upload.id == row.id).values(updated_at=utcnow(), **values))
        if row.checkpoint_id is not None:
            if values.get("state") == "synced":
                _mark_checkpoint_synced(session, row, values.get("sha256"))
            elif values.get("state") == "failed":
                session.execute(
                    update(Checkpoint)
                    .where(Checkpoint.id == row.checkpoint_id, Checkpoint.sync_state != "synced")
                    .values(sync_state="failed")
                )


def _mark_checkpoint_synced(session: Any, row: Upload, sha256: str | None) -> None:
    """The checkpoint is synced once all of it is in the bucket: its file, or every file of its folder
    (a folder checkpoint's URL is then the folder's prefix, ``r2://…/jobs/7/best/``). Only if the row
    still describes the bytes sent: it is updated in place when training writes a newer last."""
    checkpoint = session.get(Checkpoint, row.checkpoint_id)
    if checkpoint is None:
        return
    folder = checkpoint_folder_of(checkpoint.path)
    main: Upload | None = row
    if folder is not None:
        unsynced = session.scalar(select(func.count(Upload.id)).where(Upload.checkpoint_id == checkpoint.id,
                                                                      Upload.state != "synced"))
        main = None if unsynced else session.scalars(
            select(Upload).where(Upload.checkpoint_id == checkpoint.id, Upload.local_path == checkpoint.path,
                                 Upload.state == "synced").order_by(Upload.id.desc())).first()
        sha256 = main.sha256 if main is not None else None
    if main is None or checkpoint.sha256 not in (None, sha256):
        return
    url = make_r2_url(main.bucket, main.key)
    if folder is not None:
        url = prefix_url(main.bucket, main.key.removesuffix(Path(checkpoint.path).relative_to(folder).as_posix()))
    session.execute(update(Checkpoint).where(Checkpoint.id == checkpoint.id).values(r2_url=url, sync_state="synced"))
    _record_epoch_checkpoint(session, checkpoint.id, url)


def _record_epoch_checkpoint(session: Any, checkpoint_id: int, url: str) -> None:
    """``training_metrics.checkpoint_path`` of the checkpoint's epoch: the R2 URL it now has.

    best.pt wins over last.pt when both hold the same epoch (it is the file a user picks)."""
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.epoch is None:
        return
    query = update(TrainingMetric).where(
        TrainingMetric.job_id == checkpoint.job_id, TrainingMetric.epoch == checkpoint.epoch,
        TrainingMetric.kind == "epoch",
    )
    if checkpoint.kind != "best":
        query = query.where(TrainingMetric.checkpoint_path.is_(None))
    session.execute(query.values(checkpoint_path=url))


def _expected_sha(store: Store, row: Upload) -> str | None:
    if row.checkpoint_id is None:
        return None
    with store.read() as session:
        found = session.execute(select(Checkpoint.sha256, Checkpoint.path)
                                .where(Checkpoint.id == row.checkpoint_id)).first()
    # The row records one file's sha256: a folder checkpoint's other files have none to compare with.
    return found.sha256 if found is not None and found.path == row.local_path else None


# -- multipart resume and orphans --------------------------------------------------------------------
NO_MULTIPART: dict[str, Any] = {
    "multipart_upload_id": None, "multipart_part_size": None, "multipart_sha256": None, "multipart_etags": None,
}


def saved_progress(row: Upload) -> MultipartProgress | None:
    """The multipart upload a killed process left on this row, if any (to resume or abort)."""
    from core.storage.client import MultipartProgress

    if not (row.multipart_upload_id and row.multipart_part_size and row.multipart_sha256):
        return None
    etags = {int(number): str(etag) for number, etag in json.loads(row.multipart_etags or "{}").items()}
    return MultipartProgress(row.multipart_upload_id, row.multipart_part_size, row.multipart_sha256, etags)


def save_progress(store: Store, upload_id: int, progress: MultipartProgress) -> None:
    """Record the upload id and every finished part: a kill after this loses no part already sent."""
    with store.write() as session:
        session.execute(update(Upload).where(Upload.id == upload_id).values(
            multipart_upload_id=progress.upload_id,
            multipart_part_size=progress.part_size,
            multipart_sha256=progress.sha256,
            multipart_etags=json.dumps({str(n): etag for n, etag in sorted(progress.etags.items())}),
            updated_at=utcnow(),
        ))


def _clear_multipart(store: Store, upload_id: int) -> None:
    with store.write() as session:
        session.execute(update(Upload).where(Upload.id == upload_id).values(**NO_MULTIPART))


def abort_orphaned_uploads(store: Store, client: Any, bucket: str, *, now: datetime | None = None,
                           min_age_s: float = STALE_AFTER_S) -> list[str]:
    """Abort the unfinished multipart uploads under our key prefixes that no upload row records.

    A bucket bills parts of uploads nobody will complete (R2 aborts them only after 7 days). Only
    uploads started over ``min_age_s`` ago count: a live uploader records its id right after
    starting, and one that stopped heartbeating that long ago is taken over anyway. Returns the
    keys whose uploads were aborted.
    """
    from core.storage.client import abort_multipart, list_multipart_uploads

    with store.read() as session:
        known = set(session.scalars(select(Upload.multipart_upload_id).where(Upload.multipart_upload_id.is_not(None))))
    cutoff = (now or utcnow()) - timedelta(seconds=min_age_s)
    aborted = []
    for prefix in KEY_PREFIXES:
        for pending in list_multipart_uploads(client, bucket, prefix):
            if pending.upload_id in known or pending.initiated is None or pending.initiated > cutoff:
                continue
            abort_multipart(client, bucket, pending.key, pending.upload_id)
            aborted.append(pending.key)
    if aborted:
        log.info("aborted %d orphaned multipart upload(s) in %s: %s", len(aborted), bucket, aborted[:10])
    return aborted


def _sweep_orphans(store: Store, client: Any, bucket: str, now: datetime | None) -> list[str]:
    """The sweep at the end of a pass; a failure is logged, never raised (it is housekeeping)."""
    if not bucket:
        return []
    try:
        return abort_orphaned_uploads(store, client, bucket, now=now)
    except Exception as exc:
        log.warning("could not list or abort orphaned multipart uploads in %s: %s", bucket, _short(exc))
        return []


def _process(
    store: Store,
    client: Any,
    row: Upload,
    now: datetime,
    *,
    part_size: int,
    should_stop: Callable[[], bool] | None,
) -> tuple[UploadOutcome, bool]:
    from core.storage.client import abort_multipart, upload_file

    outcome = UploadOutcome(row.id, row.key, "uploading")
    last_beat = [time.monotonic()]

    def heartbeat(_done: int, _total: int) -> None:
        if time.monotonic() - last_beat[0] >= HEARTBEAT_S:
            last_beat[0] = time.monotonic()
            with store.write() as session:
                session.execute(update(Upload).where(Upload.id == row.id).values(updated_at=utcnow()))

    try:
        resume = saved_progress(row)
        if row.multipart_upload_id and resume is None:  # recorded without its parts: only abortable
            abort_multipart(client, row.bucket, row.key, row.multipart_upload_id)
            _clear_multipart(store, row.id)
        result = upload_file(
            client,
            row.local_path,
            row.bucket,
            row.key,
            part_size=part_size,
            max_bytes=MAX_CHECKPOINT_BYTES,
            expected_sha256=_expected_sha(store, row),
            resume=resume,
            on_multipart_progress=lambda progress: save_progress(store, row.id, progress),
            on_part_done=heartbeat,
            should_stop=should_stop,
        )
    except Exception as exc:
        retryable, endpoint_problem = _classify(exc)
        outcome.state, outcome.error = "failed", _short(exc)
        next_retry = now + timedelta(seconds=backoff_delay(row.attempts)) if retryable else None
        # The client aborted the multipart upload (or, endpoint gone, the orphan sweep will): a failure
        # in this process never leaves an upload to resume, only a kill does.
        _finish(store, row, outcome, state="failed", last_error=outcome.error, next_retry_at=next_retry,
                **NO_MULTIPART)
        log.warning("upload of %s failed (attempt %d): %s", row.key, row.attempts, outcome.error)
        return outcome, endpoint_problem
    outcome.state, outcome.skipped = "synced", result.skipped
    _finish(
        store,
        row,
        outcome,
        state="synced",
        sha256=result.sha256,
        size_bytes=result.size,
        last_error=None,
        next_retry_at=None,
        synced_at=utcnow(),
        **NO_MULTIPART,
    )
    log.info("uploaded %s (%d bytes, sha256 %s…)", result.url, result.size, result.sha256[:12])
    return outcome, False


def run_outbox(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    max_items: int | None = None,
    client: Any | None = None,
    creds: Credentials | None = None,
    retry_failed: bool = False,
    part_size: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> OutboxReport:
    """Upload every due row now. Never raises for a transfer problem: it is recorded on the row.

    ``retry_failed``: also rows that are not due yet or were given up (the "sync now" button).
    """
    from core.storage.client import DEFAULT_PART_SIZE

    report = OutboxReport()
    if not settings.sync_enabled:
        report.disabled_reason = "cloud sync is turned off in Settings"
        return report
    if client is None:
        if creds is None:
            from core.storage.credentials import get_credentials

            creds = get_credentials()
        if creds is None:
            report.disabled_reason = "no R2/S3 credentials (Settings, keyring or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            return report
        if not settings.r2_endpoint_url:
            report.disabled_reason = "no R2/S3 endpoint URL (Settings or AWS_S3_ENDPOINT_URL)"
            return report
        from core.storage.client import make_s3_client

        client = make_s3_client(settings, creds)
    with _run_lock:
        skip: set[int] = set()
        while max_items is None or len(report.outcomes) < max_items:
            if should_stop is not None and should_stop():
                break
            moment = now or utcnow()
            row = _claim(store, moment, retry_failed, skip)
            if row is None:
                break
            skip.add(row.id)
            outcome, endpoint_problem = _process(
                store, client, row, moment, part_size=part_size or DEFAULT_PART_SIZE, should_stop=should_stop
            )
            report.outcomes.append(outcome)
            if endpoint_problem:
                report.stopped_early = outcome.error
                break
        if report.stopped_early is None and not (should_stop is not None and should_stop()):
            report.orphans_aborted = _sweep_orphans(store, client, settings.r2_bucket, now)
    return report


def list_uploads(store: Store, states: tuple[UploadState, ...] | None = None) -> list[Upload]:
    with store.read() as session:
        query = select(Upload).order_by(Upload.id)
        if states:
            query = query.where(Upload.state.in_(states))
        rows = list(session.scalars(query))
        for row in rows:
            session.expunge(row)
        return rows


def pending_count(store: Store) -> int:
    from sqlalchemy import func

    with store.read() as session:
        return int(session.scalar(select(func.count(Upload.id)).where(Upload.state != "synced")) or 0)


def next_due_in(store: Store, now: datetime | None = None) -> float | None:
    """Seconds until the next row is due (0 when one is due now), None when nothing will be."""
    from sqlalchemy import func

    moment = now or utcnow()
    with store.read() as session:
        pending = session.scalar(
            select(func.count(Upload.id)).where(
                Upload.state == "pending", or_(Upload.next_retry_at.is_(None), Upload.next_retry_at <= moment)
            )
        )
        if pending:
            return 0.0
        nxt = session.scalar(
            select(func.min(Upload.next_retry_at)).where(
                Upload.state.in_(("pending", "failed")), Upload.next_retry_at.is_not(None)
            )
        )
        stale = session.scalar(select(func.min(Upload.updated_at)).where(Upload.state == "uploading"))
    candidates = []
    if nxt is not None:
        candidates.append(max(0.0, (nxt - moment).total_seconds()))
    if stale is not None:
        candidates.append(max(0.0, (stale + timedelta(seconds=STALE_AFTER_S) - moment).total_seconds()))
    return min(candidates) if candidates else None
