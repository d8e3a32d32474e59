"""``vision-platform weights list|import|download``: the Weights view's twin (``core.services.weights``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.commands import open_cli_store, print_json, service_command
from core.services import weights as weights_service
from core.services.checkpoints import ConsentRequired


@service_command
def cmd_list(args: argparse.Namespace) -> int:
    found = weights_service.list_weights(args.framework)
    if args.json:
        print_json([w.as_json() for w in found])
        return 0
    print(f"{'FRAMEWORK':<13}  {'SIZE':>10}  NAME  (PATH)")
    for item in found:
        print(f"{item.framework:<13}  {item.size_bytes / 1e6:>7.1f} MB  {item.name}  ({item.path})")
    if not found:
        print("(no pretrained weights on this computer yet: `vision-platform weights download` or `weights import`)")
    return 0


@service_command
def cmd_import(args: argparse.Namespace) -> int:
    try:
        target = weights_service.import_file(open_cli_store(), args.file, consent=args.trust)
    except ConsentRequired as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    print(f"imported {args.file} as {target}")
    return 0


@service_command
def cmd_download(args: argparse.Namespace) -> int:
    def progress(done: int, total: int, name: str) -> None:
        print(f"[{done}/{total}] {name}" if name else f"[{done}/{total}] done", file=sys.stderr, flush=True)

    result = weights_service.download(open_cli_store(), args.framework, args.model, progress=progress)
    for name, sha256 in result.files.items():
        print(f"{sha256}  {name}")
    print(f"downloaded {result.repo_id} into {result.folder}")
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("weights", help="pretrained weights on this computer: list, import, download")
    sub = group.add_subparsers(dest="weights_command", required=True)
    listing = sub.add_parser("list", help="what each framework has cached, with sizes")
    listing.add_argument("framework", nargs="?")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    importing = sub.add_parser("import", help="copy a weights file in (safetensors; a pickle needs --trust)")
    importing.add_argument("file")
    importing.add_argument("--trust", action="store_true", help="consent to a pickle-based file (it can run code)")
    importing.set_defaults(handler=cmd_import)
    download = sub.add_parser("download", help="fetch a Hub model's safetensors weights (needs downloads allowed)")
    download.add_argument("framework")
    download.add_argument("model", help="a Hub repository id, e.g. google/vit-base-patch16-224 or timm/resnet18.a1_in1k")
    download.set_defaults(handler=cmd_download)
