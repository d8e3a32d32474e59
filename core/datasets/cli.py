"""``vision-platform dataset inspect|convert|register|list|remove|split-preview`` (wired into core/cli.py by ``register``).

Run standalone as ``python -m core.datasets.cli dataset inspect PATH``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from core.config import DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED, TASKS
from core.datasets.convert import CONVERTERS, read_conversion_report
from core.datasets.errors import DatasetError
from core.datasets.health import summarize
from core.datasets.model import DatasetIndex
from core.datasets.reader import FORMATS, open_dataset
from core.datasets.splits import STRATEGIES, SplitResult, split_dataset

_MAX_FINDINGS_SHOWN = 200


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dataset`` command to an argparse sub-parsers object; handlers return an exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser("dataset", help="inspect, convert, register, list or remove datasets")
    commands = parser.add_subparsers(dest="dataset_command", required=True)

    inspect = commands.add_parser("inspect", help="format, counts per class and split, health findings")
    inspect.add_argument("path", help="dataset folder, .zip, data.yaml or COCO JSON")
    inspect.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    inspect.add_argument("--deep", action="store_true", help="decode every image (finds truncated files)")
    inspect.add_argument("--duplicates", action="store_true", help="hash files to find duplicate images")
    inspect.set_defaults(func=cmd_inspect, handler=cmd_inspect)

    convert = commands.add_parser("convert", help="convert to a framework format (images are linked)")
    convert.add_argument("path")
    convert.add_argument("--to", required=True, choices=tuple(CONVERTERS))
    convert.add_argument("out", help="output folder (must be new, empty, or a previous conversion)")
    convert.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    convert.add_argument("--task", choices=TASKS, help="YOLO task (default: guessed)")
    convert.add_argument("--split-ratio", type=float, default=DEFAULT_SPLIT_RATIO,
                         help=f"train fraction (default {DEFAULT_SPLIT_RATIO})")
    convert.add_argument("--seed", type=int, default=DEFAULT_SPLIT_SEED, help=f"split seed (default {DEFAULT_SPLIT_SEED})")
    convert.add_argument("--strategy", choices=STRATEGIES, default=None, help="default: auto (the dataset's own split, else stratified)")
    convert.add_argument("--split-file", help="a train.txt listing the training images")
    convert.add_argument("--copy", action="store_true", help="copy images instead of linking them")
    convert.set_defaults(func=cmd_convert, handler=cmd_convert)

    from core.commands.datasets import add_commands  # register, list, remove, split-preview

    add_commands(commands)
    return parser


def _table(index: DatasetIndex, out: TextIO) -> None:
    """Images per class and folder split, and objects per class when there are shapes (an object
    drawn in several parts, a labelme group, counts once)."""
    splits = ["train", "val", "test"] if index.has_predefined_split else []
    counts = {split: index.class_counts(split) for split in splits}
    total = index.class_counts()
    objects = index.object_counts() if any(record.shapes for record in index.images) else None
    width = max([len("class"), *(len(name) for name in total)])
    header = f"  {'class':<{width}}  " + "".join(f"{s:>8}" for s in splits) + f"{'total':>8}"
    out.write(header + (f"{'objects':>9}" if objects is not None else "") + "\n")
    for name, count in total.items():
        row = f"  {name:<{width}}  " + "".join(f"{counts[s].get(name, 0):>8}" for s in splits) + f"{count:>8}"
        out.write(row + (f"{objects.get(name, 0):>9}" if objects is not None else "") + "\n")
    images_row = "".join(f"{sum(1 for r in index.images if r.split == s):>8}" for s in splits)
    out.write(f"  {'(images)':<{width}}  {images_row}{len(index.images):>8}\n")


def _split_line(index: DatasetIndex) -> str:
    """The split a job with the default split settings trains on (the one ``split_dataset`` decides)."""
    try:
        split = split_dataset(index)
    except DatasetError as exc:
        return f"split (auto): cannot split: {exc}"
    how = "the dataset's own" if split.strategy == "predefined" else f"{split.strategy}, ratio {DEFAULT_SPLIT_RATIO}, seed {DEFAULT_SPLIT_SEED}"
    test = f", {len(split.test)} test (never trained on)" if split.test else ""
    return f"split (auto: {how}): {len(split.train)} train, {len(split.val)} val{test}"


def cmd_inspect(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from core.services import ServiceError
    from core.services.datasets import inspect_dataset

    try:
        opened = inspect_dataset(args.path, args.format, deep=args.deep, duplicates=getattr(args, "duplicates", False))
    except ServiceError as exc:
        out.write(f"error: {exc}\n")
        return 2
    index, findings = opened.index, opened.findings
    out.write(f"dataset: {index.root}\nformat: {index.format}   task: {index.task_hint or 'unknown'}   ")
    out.write(f"images: {len(index.images)}   classes: {len(index.class_names)}\n")
    if index.keypoint_names:
        out.write(f"keypoints: {', '.join(index.keypoint_names)}\n")
    _table(index, out)
    out.write(_split_line(index) + "\n")
    summary = summarize(findings)
    out.write(f"findings: {summary['error']} error(s), {summary['warning']} warning(s), {summary['info']} info\n")
    order = {"error": 0, "warning": 1, "info": 2}
    for finding in sorted(findings, key=lambda f: order[f.severity])[:_MAX_FINDINGS_SHOWN]:
        out.write(f"  {finding}\n")
    if len(findings) > _MAX_FINDINGS_SHOWN:
        out.write(f"  ... and {len(findings) - _MAX_FINDINGS_SHOWN} more\n")
    return 1 if summary["error"] else 0


def cmd_convert(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    link = not args.copy
    converter = CONVERTERS[args.to]
    try:
        index = open_dataset(args.path, args.format)
        split: SplitResult | None = None
        if args.split_file or args.strategy:
            split = split_dataset(
                index, strategy=args.strategy or "auto", ratio=args.split_ratio, seed=args.seed, split_file=args.split_file
            )
        elif converter.needs_split:
            split = split_dataset(index, ratio=args.split_ratio, seed=args.seed)
        result = converter.write(index, Path(args.out), split, link, getattr(args, "task", None))
    except DatasetError as exc:
        out.write(f"error: {exc}\n")
        return 2
    report = read_conversion_report(result)
    out.write(f"wrote {args.to} dataset: {result}\n")
    out.write(f"images: {report['images']}   placed by: {report['link_methods']}\n")
    for warning in report["warnings"]:
        out.write(f"  warning: {warning}\n")
    for skipped in report["skipped"][:_MAX_FINDINGS_SHOWN]:
        out.write(f"  skipped: {skipped}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vision-platform")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
