"""CLI: ``vision-platform sync [status|retry]`` (the upload outbox) and ``vision-platform upload JOB_ID``.

``sync`` alone uploads everything pending now (failed rows included) and shows the outbox, as it
always has; ``sync status`` only shows it (``--json`` for scripts); ``sync retry [ID…]`` re-arms
failed uploads (all, or the given ones) and uploads them now. All of it goes through
:mod:`core.services.sync`, the same calls as the status bar's count.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.services import sync as sync_service
from core.services.settings import load_settings

STATE_WIDTH = 9


def _print_rows(rows: list[sync_service.UploadRow]) -> None:
    if not rows:
        print("no uploads")
        return
    print(f"{'id':>4}  {'state':<{STATE_WIDTH}} {'tries':>5}  {'next retry (UTC)':<19}  target / error")
    for row in rows:
        nxt = row.next_retry_at.strftime("%Y-%m-%d %H:%M:%S") if row.next_retry_at else "-"
        print(f"{row.id:>4}  {row.state:<{STATE_WIDTH}} {row.attempts:>5}  {nxt:<19}  {row.url}")
        if row.state == "failed" and row.last_error:
            print(f"{'':>44}{row.last_error[:200]}")


def _report(result: sync_service.SyncResult) -> int:
    if result.disabled_reason:
        print(f"sync not possible: {result.disabled_reason}", file=sys.stderr)
    elif result.stopped_early:
        print(f"endpoint problem, the remaining uploads wait for the next sync: {result.stopped_early}", file=sys.stderr)
    _print_rows(result.rows)
    return 0 if result.ok else 1


@service_command
def cmd_sync(args: argparse.Namespace) -> int:
    store = open_cli_store()
    return _report(sync_service.sync_now(store, load_settings(store)))


@service_command
def cmd_upload(args: argparse.Namespace) -> int:
    store = open_cli_store()
    settings = load_settings(store)
    sync_service.queue_job_uploads(store, settings, args.job_id)
    return _report(sync_service.sync_now(store, settings, job_ids=[args.job_id]))


@service_command
def cmd_status(args: argparse.Namespace) -> int:
    status = sync_service.sync_status(open_cli_store())
    if args.json:
        print_json({"pending": status.pending, "counts": status.counts(), "next_due_in_s": status.next_due_in_s,
                    "uploads": [row.as_json() for row in status.rows]})
        return 0
    counts = ", ".join(f"{count} {state}" for state, count in sorted(status.counts().items())) or "empty"
    print(f"{status.pending} upload{'' if status.pending == 1 else 's'} pending ({counts})")
    if status.next_due_in_s is not None:
        print(f"next automatic attempt in {status.next_due_in_s:.0f} s")
    _print_rows(status.rows)
    return 0


@service_command
def cmd_retry(args: argparse.Namespace) -> int:
    store = open_cli_store()
    return _report(sync_service.sync_now(store, load_settings(store), upload_ids=args.upload_ids or None))


def register(subparsers: Any) -> None:
    sync = subparsers.add_parser("sync", help="upload pending checkpoints to R2/S3 now and show the outbox")
    sync.set_defaults(handler=cmd_sync)
    actions = sync.add_subparsers(dest="sync_command", required=False)
    status = actions.add_parser("status", help="the outbox: pending, failed and synced uploads (uploads nothing)")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.set_defaults(handler=cmd_status)
    retry = actions.add_parser("retry", help="upload failed uploads again now (all, or the given ids)")
    retry.add_argument("upload_ids", type=int, nargs="*", metavar="UPLOAD_ID")
    retry.set_defaults(handler=cmd_retry)
    upload = subparsers.add_parser("upload", help="upload a job's best.pt and last.pt to R2/S3 now")
    upload.add_argument("job_id", type=int)
    upload.set_defaults(handler=cmd_upload)
