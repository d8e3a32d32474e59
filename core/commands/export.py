"""``vision-platform export JOB_OR_CHECKPOINT --format onnx|torchscript|…``, ``export-formats``,
``export-check`` and ``model-register``.

The Export dialog, headless: the same service (``core.services.export``), the same worker, the same
parity numbers. Exit code 0 for a verified export, 1 when it was kept unverified (the warning says
why), 2 for an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.rundir import CHECKPOINT_KINDS

EXIT_UNVERIFIED = 1


def _progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


@service_command
def cmd_export(args: argparse.Namespace) -> int:
    from core.services import export as export_service
    from core.services.export import parity_lines

    store = open_cli_store()
    source = export_service.resolve_source(store, args.source, kind=args.kind, trusted=args.trust,
                                           framework=args.framework, task=args.task)
    outcome = export_service.export_model(store, source, args.format, dynamic_batch=args.dynamic_batch,
                                          half=args.half, imgsz=args.imgsz, images=args.images,
                                          on_progress=_progress, fault=args.fault)
    if args.json:
        print_json({"file": str(outcome.file), "card": str(outcome.card), "parity": outcome.parity,
                    "artifact_ids": outcome.artifact_ids, "upload_ids": outcome.upload_ids,
                    "mlflow_artifacts": outcome.mlflow_artifacts, "warnings": outcome.warnings})
    else:
        print(f"exported {source.checkpoint} to {outcome.file}\nmodel card: {outcome.card}")
        print("\n".join(parity_lines(outcome.parity)))
        for warning in outcome.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0 if outcome.verified else EXIT_UNVERIFIED


@service_command
def cmd_formats(args: argparse.Namespace) -> int:
    from core.services.export import list_formats

    choices = list_formats(args.framework)
    if args.json:
        print_json([choice.__dict__ for choice in choices])
        return 0
    for choice in choices:
        state = "available" if choice.available else f"unavailable: {choice.reason}"
        print(f"{choice.name:<12} {choice.label:<24} {state}" + ("  (parity checked)" if choice.verified else ""))
    return 0


@service_command
def cmd_check(args: argparse.Namespace) -> int:
    from core.services.export import check_exported

    card = check_exported(args.file, trusted=args.trust)
    print(f"{args.file}: matches its model card ({card['framework']} {card['task']}, input "
          f"{card['input']['shape']}); parity at export: {'verified' if card['parity']['verified'] else 'NOT verified'}")
    return 0


@service_command
def cmd_register(args: argparse.Namespace) -> int:
    from core.services.export import register_model

    version = register_model(open_cli_store(), args.job_id, on_progress=_progress)
    print(f"registered job {args.job_id} as {version.model_uri} (run {version.run_id}); verified ONNX "
          f"{'attached' if version.onnx_attached else 'not attached (parity not verified)'}")
    return 0


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="JOB_OR_CHECKPOINT", help="job id (its best checkpoint) or a checkpoint file")
    parser.add_argument("--format", required=True, help="onnx, torchscript, or an Ultralytics format "
                                                        "(`vision-platform export formats FRAMEWORK`)")
    parser.add_argument("--kind", choices=CHECKPOINT_KINDS, help="which checkpoint of a job (default: best)")
    parser.add_argument("--dynamic-batch", action="store_true", help="any batch size (the first axis is dynamic)")
    parser.add_argument("--half", action="store_true", help="float16 (needs a CUDA GPU)")
    parser.add_argument("--imgsz", type=int, help="input size in pixels (default: the training size)")
    parser.add_argument("--images", type=Path, nargs="+", help="images for the parity check (default: the job's "
                                                               "validation images)")
    parser.add_argument("--framework", choices=("timm", "ultralytics", "transformers"),
                        help="of a weights file from elsewhere (default: guessed from its name)")
    parser.add_argument("--task", help="of a weights file from elsewhere")
    parser.add_argument("--trust", action="store_true", help="load a pickle weights file not written by this app")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--fault", help=argparse.SUPPRESS)  # test hook: "after_export"
    parser.set_defaults(handler=cmd_export)


def register(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="export a job's model to ONNX/TorchScript/… with a parity check")
    _add_export_options(export)
    formats = subparsers.add_parser("export-formats", help="formats a framework exports to, and which are available")
    formats.add_argument("framework", choices=("timm", "ultralytics", "transformers"))
    formats.add_argument("--json", action="store_true")
    formats.set_defaults(handler=cmd_formats)
    check = subparsers.add_parser("export-check", help="check an exported file against its model card")
    check.add_argument("file", type=Path)
    check.add_argument("--trust", action="store_true", help="load a TorchScript file not written by this app")
    check.set_defaults(handler=cmd_check)
    registered = subparsers.add_parser("model-register", help="log a completed job's best checkpoint as an MLflow "
                                                              "model and register it under the project's name")
    registered.add_argument("job_id", type=int)
    registered.set_defaults(handler=cmd_register)
