"""``vision-platform job list|show|delete|clone|cancel|resume|extend``: the Jobs page's actions.

The top-level ``jobs``, ``show``, ``cancel``, ``resume`` and ``extend`` commands (older names, kept
as they are) run these same handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.services import Store
from core.services import jobs as job_service
from core.services.checkpoints import list_checkpoints


def job_store_for_cli() -> Store:
    """The data store, with jobs and MLflow runs a dead runner left "running" ended first."""
    store = open_cli_store()
    from core.tracking import terminate_orphaned_runs

    terminate_orphaned_runs(store)  # imports mlflow only when there are such runs
    return store


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


# -- list / show -------------------------------------------------------------------------------------
def _project_id(store: Store, project: str | None) -> int | None:
    if not project:
        return None
    from core.services.projects import find_project

    return find_project(store, project).id


@service_command
def cmd_list(args: argparse.Namespace) -> int:
    store = job_store_for_cli()
    jobs = job_service.list_jobs(store, _project_id(store, getattr(args, "project", None)))
    if args.json:
        print_json([job.as_json() for job in jobs])
        return 0
    print(f"{'ID':>4}  {'STATUS':<11}  {'EPOCH':>7}  {'BEST':>18}  {'FRAMEWORK/MODEL':<28}  NAME")
    for job in jobs:
        epoch = f"{job.epoch or 0}/{job.epochs or '?'}"
        best = f"{job.best_name}={job.best_value:.3f}" if job.best_value is not None else ""
        print(f"{job.id:>4}  {job.status:<11}  {epoch:>7}  {best:>18}  {(job.framework + '/' + job.model)[:28]:<28}  "
              f"{job.name}")
    if not jobs:
        print("(no jobs yet — run `vision-platform train CONFIG.yaml`)")
    return 0


def _print_metrics(store: Store, job_id: int) -> None:
    rows = job_service.metric_records(store, job_id, kind="epoch")
    print("\nMetrics per epoch:")
    if not rows:
        print("  (none yet)")
        return
    names = sorted({name for row in rows for name in row.values})
    print("  " + f"{'epoch':>5}  " + "  ".join(f"{n:>14}" for n in names))
    for row in rows:
        print("  " + f"{row.epoch:>5}  " + "  ".join(f"{_fmt(row.values.get(n)):>14}" for n in names))


def _print_test_metrics(store: Store, job_id: int) -> None:
    """The best checkpoint on the dataset's test split (core.events, kind "test"), when the job has one."""
    rows = job_service.metric_records(store, job_id, kind="test")
    if rows:
        values = "  ".join(f"{name}={_fmt(value)}" for name, value in sorted(rows[-1].values.items()))
        print(f"\nTest split (best checkpoint, epoch {rows[-1].epoch}; never trained on):\n  {values}")


def _print_checkpoints(store: Store, job_id: int) -> None:
    print("\nCheckpoints:")
    for ckpt in list_checkpoints(store, job_id):
        size = f"{(ckpt.size_bytes or 0) / 1e6:.1f} MB"
        print(f"  {ckpt.kind:<5} epoch {ckpt.epoch}  {ckpt.metric_name}={_fmt(ckpt.metric_value)}  {size}  "
              f"sha256 {(ckpt.sha256 or '')[:12]}  {ckpt.sync_state}  {ckpt.path}"
              + (f"  {ckpt.r2_url}" if ckpt.r2_url else ""))


@service_command
def cmd_show(args: argparse.Namespace) -> int:
    store = job_store_for_cli()
    job = job_service.job_detail(store, args.job_id)
    if getattr(args, "json", False):
        print_json({**job.as_json(),
                    "metrics": [{"epoch": r.epoch, **r.values} for r in job_service.metric_records(
                        store, job.id, kind="epoch")],
                    "test_metrics": [{"epoch": r.epoch, **r.values} for r in job_service.metric_records(
                        store, job.id, kind="test")][-1:],
                    "checkpoints": [c.as_json() for c in list_checkpoints(store, job.id)]})
        return 0
    print(f"Job {job.id}: {job.name}")
    print(f"  status      {job.status}" + (f" — {job.error_message}" if job.error_message else ""))
    print(f"  started     {job.started_at or ''}   finished {job.completed_at or ''}   duration {job.duration}")
    print(f"  run dir     {job.output_dir}")
    print(f"  mlflow run  {job.mlflow_run_id or ''}")
    print("\nConfig:")
    for line in job.config_yaml.splitlines():
        print(f"  {line}")
    _print_metrics(store, job.id)
    _print_test_metrics(store, job.id)
    _print_checkpoints(store, job.id)
    if job.error_traceback:
        print("\nError details:\n" + job.error_traceback)
    return 0


# -- delete / clone ----------------------------------------------------------------------------------
@service_command
def cmd_delete(args: argparse.Namespace) -> int:
    store = job_store_for_cli()
    previews = {p.job_id: p for p in job_service.delete_preview(store, args.job_ids)}
    problems = job_service.delete_jobs(store, args.job_ids)
    remaining = {job.id for job in job_service.list_jobs(store)}
    for job_id in args.job_ids:
        preview = previews[job_id]
        if job_id not in remaining:
            where = f" and {preview.run_dir} ({preview.size_bytes / 1e6:.1f} MB)" if preview.run_dir else ""
            print(f"deleted job {job_id} ({preview.name}){where}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


@service_command
def cmd_clone(args: argparse.Namespace) -> int:
    store = job_store_for_cli()
    if args.queue:
        new_id = job_service.clone_job(store, args.job_id, name=args.name)
        print(f"job {new_id} queued (a copy of job {args.job_id}); it runs when the app is open, "
              f"or cancel it with `vision-platform job cancel {new_id}`")
        return 0
    config = job_service.job_config(store, args.job_id)
    if args.name:
        config = config.model_copy(update={"name": args.name})
    if args.out is None:
        sys.stdout.write(config.to_yaml())
        return 0
    from core.config import save_config

    save_config(config, args.out)
    print(f"wrote {args.out}: run it with `vision-platform train {args.out}`")
    return 0


# -- cancel / resume / extend ------------------------------------------------------------------------
@service_command
def cmd_cancel(args: argparse.Namespace) -> int:
    store = job_store_for_cli()
    if job_service.cancel_job(store, args.job_id) == "cancelled":
        print(f"job {args.job_id} cancelled")
        return 0
    print(f"job {args.job_id}: stop requested; waiting for the worker to finish its batch…")
    status = job_service.wait_until_stopped(store, args.job_id, args.wait)
    if status is None:
        print("still stopping; the runner escalates to SIGTERM/SIGKILL after its grace period")
    else:
        print(f"job {args.job_id} {status}")
    return 0


@service_command
def cmd_resume(args: argparse.Namespace) -> int:
    """Resume (or with ``--epochs N`` extend) a job and run it here, showing progress."""
    from core.cli import run_and_report

    store = job_store_for_cli()
    job_service.resume_job(store, args.job_id, extra_epochs=getattr(args, "epochs", 0) or 0)
    return run_and_report(store, args.job_id)


# -- parser ------------------------------------------------------------------------------------------
def add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", type=int)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it to stop")


def add_extend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", type=int)
    parser.add_argument("--epochs", type=int, required=True, help="how many more epochs to train")


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("job", help="list, show, delete, clone, cancel, resume or extend training jobs")
    sub = group.add_subparsers(dest="job_command", required=True)

    listing = sub.add_parser("list", help="jobs with status, epoch and best metric")
    listing.add_argument("--project", help="only this project's jobs (name or id)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_list)

    show = sub.add_parser("show", help="a job's config, metrics per epoch and checkpoints")
    show.add_argument("job_id", type=int)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show)

    remove = sub.add_parser("delete", help="delete jobs, their metrics and their run folders (not while active)")
    remove.add_argument("job_ids", type=int, nargs="+", metavar="job_id")
    remove.set_defaults(handler=cmd_delete)

    clone = sub.add_parser("clone", help="a job's config as YAML (stdout or --out), or --queue a copy of the job")
    clone.add_argument("job_id", type=int)
    clone.add_argument("--name", help="name of the copy")
    what = clone.add_mutually_exclusive_group()
    what.add_argument("--out", type=Path, help="write the config YAML here (edit it, then `vision-platform train`)")
    what.add_argument("--queue", action="store_true", help="queue a new job with the same config")
    clone.set_defaults(handler=cmd_clone)

    cancel = sub.add_parser("cancel", help="stop a queued or running job (it keeps its last checkpoint)")
    add_cancel_arguments(cancel)
    cancel.set_defaults(handler=cmd_cancel)

    resume = sub.add_parser("resume", help="continue an interrupted, failed or cancelled job from last.pt, here")
    resume.add_argument("job_id", type=int)
    resume.set_defaults(handler=cmd_resume)

    extend = sub.add_parser("extend", help="train a finished job for N more epochs from last.pt, here")
    add_extend_arguments(extend)
    extend.set_defaults(handler=cmd_resume)
