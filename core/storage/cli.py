"""CLI: ``vision-platform sync`` (run the upload outbox now) and ``vision-platform upload JOB_ID``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _print_rows(rows: list[Any]) -> None:
    if not rows:
        print("no uploads")
        return
    print(f"{'id':>4}  {'state':<9} {'tries':>5}  {'next retry (UTC)':<19}  target / error")
    for row in rows:
        nxt = row.next_retry_at.strftime("%Y-%m-%d %H:%M:%S") if row.next_retry_at else "-"
        print(f"{row.id:>4}  {row.state:<9} {row.attempts:>5}  {nxt:<19}  r2://{row.bucket}/{row.key}")
        if row.state == "failed" and row.last_error:
            print(f"{'':>44}{row.last_error[:200]}")


def _run(job_ids: list[int] | None) -> int:
    from core.db.engine import open_store
    from core.settings import Settings
    from core.storage.outbox import enqueue_job_checkpoints, list_uploads, run_outbox

    store = open_store()
    settings = Settings.load(store)
    for job_id in job_ids or []:
        try:
            ids = enqueue_job_checkpoints(store, settings, job_id)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        if not ids:
            print(f"job {job_id} has no checkpoints to upload", file=sys.stderr)
            return 2
    report = run_outbox(store, settings, retry_failed=True)
    if report.disabled_reason:
        print(f"sync not possible: {report.disabled_reason}", file=sys.stderr)
    elif report.stopped_early:
        print(f"endpoint problem, the remaining uploads wait for the next sync: {report.stopped_early}", file=sys.stderr)
    rows = list_uploads(store)
    if job_ids:
        rows = [row for row in rows if row.job_id in job_ids]
    _print_rows(rows)
    if report.disabled_reason:
        return 1
    return 1 if any(row.state == "failed" for row in rows) else 0


def cmd_sync(args: argparse.Namespace) -> int:
    return _run(None)


def cmd_upload(args: argparse.Namespace) -> int:
    return _run([args.job_id])


def register(subparsers: Any) -> None:
    sync = subparsers.add_parser("sync", help="upload pending checkpoints to R2/S3 now and show the outbox")
    sync.set_defaults(handler=cmd_sync)
    upload = subparsers.add_parser("upload", help="upload a job's best.pt and last.pt to R2/S3 now")
    upload.add_argument("job_id", type=int)
    upload.set_defaults(handler=cmd_upload)
