"""``vision-platform checkpoint list|download|upload|import``: the Checkpoints tab and weight import."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.rundir import CHECKPOINT_KINDS
from core.services import checkpoints as checkpoint_service
from core.services.jobs import format_metric
from core.storage.r2url import is_r2_url


def _size(size_bytes: int | None) -> str:
    return f"{(size_bytes or 0) / 1e6:.1f} MB"


def _list_job(args: argparse.Namespace) -> int:
    rows = checkpoint_service.list_checkpoints(open_cli_store(), args.job_id)
    if args.json:
        print_json([row.as_json() for row in rows])
        return 0
    print(f"{'KIND':<5}  {'EPOCH':>5}  {'METRIC':<20}  {'SIZE':>9}  {'SYNC':<8}  PATH / R2 URL")
    for row in rows:
        path = row.path if row.exists else f"{row.path} (missing)"
        print(f"{row.kind:<5}  {'' if row.epoch is None else row.epoch:>5}  "
              f"{format_metric(row.metric_name, row.metric_value):<20}  {_size(row.size_bytes):>9}  "
              f"{row.sync_state:<8}  {path}" + (f"  {row.r2_url}" if row.r2_url else ""))
    if not rows:
        print(f"(job {args.job_id} has no checkpoints yet: the first is written after its first epoch)")
    return 0


def _list_models(args: argparse.Namespace) -> int:
    choices = checkpoint_service.model_choices(open_cli_store())
    if args.json:
        print_json([{"label": c.label, "path": c.path, "framework": c.framework, "task": c.task, "job_id": c.job_id}
                    for c in choices])
        return 0
    for choice in choices:
        print(f"{choice.label}\n    {choice.framework}  {choice.path}")
    if not choices:
        print("(no finished jobs or imported weights yet)")
    return 0


@service_command
def cmd_list(args: argparse.Namespace) -> int:
    return _list_job(args) if args.job_id is not None else _list_models(args)


@service_command
def cmd_upload(args: argparse.Namespace) -> int:
    kinds = (args.kind,) if args.kind else CHECKPOINT_KINDS
    for row in checkpoint_service.upload_checkpoints(open_cli_store(), args.job_id, kinds=kinds):
        print(f"{row.kind}: {row.sync_state}  {row.r2_url or ''}")
    return 0


@service_command
def cmd_download(args: argparse.Namespace) -> int:
    store = open_cli_store()
    if is_r2_url(args.source):
        from core.settings import Settings

        path = checkpoint_service.download_url(args.source, settings=Settings.load(store), dest=args.out)
    elif args.source.removeprefix("#").isdigit():
        path = checkpoint_service.download_checkpoint(store, int(args.source.removeprefix("#")), args.kind,
                                                      dest=args.out)
    else:
        from core.services import ServiceError

        raise ServiceError(f"{args.source} is neither a job id nor an r2:// URL")
    print(f"downloaded to {path}")
    return 0


@service_command
def cmd_import(args: argparse.Namespace) -> int:
    target = checkpoint_service.import_weights(open_cli_store(), args.file, consent=args.trust)
    print(f"imported {args.file} as {target}: use it with `weights: {target}` in a config, or `vision-platform "
          f"predict {target.name} IMAGES…`")
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("checkpoint", help="list, download, upload checkpoints; import a weights file")
    sub = group.add_subparsers(dest="checkpoint_command", required=True)

    listing = sub.add_parser("list", help="a job's checkpoints; without a job, every model `predict` can load")
    listing.add_argument("job_id", type=int, nargs="?")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_list)

    download = sub.add_parser("download", help="fetch a job's uploaded checkpoint (or an r2:// URL) into the cache")
    download.add_argument("source", help="job id, or r2://bucket/key")
    download.add_argument("--kind", choices=CHECKPOINT_KINDS, default="best")
    download.add_argument("--out", type=Path, help="also copy it into this folder")
    download.set_defaults(handler=cmd_download)

    upload = sub.add_parser("upload", help="upload a job's checkpoints to R2/S3 now")
    upload.add_argument("job_id", type=int)
    upload.add_argument("--kind", choices=CHECKPOINT_KINDS, help="only this one (default: both)")
    upload.set_defaults(handler=cmd_upload)

    imports = sub.add_parser("import", help="copy a weights file into the app's data folder")
    imports.add_argument("file", type=Path)
    imports.add_argument("--trust", action="store_true",
                         help="trust a pickle file (.pt, .pth, .bin) this app did not write: loading it can run any "
                              "code stored in it; its sha256 is recorded (safetensors need no trust)")
    imports.set_defaults(handler=cmd_import)
