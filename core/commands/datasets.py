"""``vision-platform dataset register|list|remove|split-preview|augment-preview``: the datasets page's
and the Train page's augmentation preview's twin.

Added to the ``dataset`` group that ``core.datasets.cli`` creates (next to ``inspect`` and ``convert``).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from core.augmentation import AUGMENTATION_PRESETS
from core.commands import fail, open_cli_store, print_json, print_warning, service_command
from core.config import SPLIT_STRATEGIES, ConfigError, defaults, load_config
from core.dataset_store import DatasetInfo
from core.datasets.reader import FORMATS
from core.services import ServiceError, Store
from core.services import datasets as datasets_service
from core.services.augmentation import PreviewCancelled, preview_augmentation
from core.services.projects import find_project, project_overview
from core.services.settings import load_settings


def add_commands(commands: Any) -> None:
    """Add the registry commands to the ``dataset`` group's sub-parsers."""
    register = commands.add_parser("register", help="index, check and add a folder, .zip or r2:// URL to a project")
    register.add_argument("path", help="dataset folder, .zip, data.yaml or r2://bucket/key.zip")
    register.add_argument("--project", help="project name or id (default: the Default project)")
    register.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    register.add_argument("--name", help="the name shown in the app (default: the folder name)")
    register.set_defaults(handler=cmd_register, func=cmd_register)
    listing = commands.add_parser("list", help="registered datasets")
    listing.add_argument("--project", help="only this project's (name or id)")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=cmd_list, func=cmd_list)
    remove = commands.add_parser("remove", help="forget a registered dataset (its files stay)")
    remove.add_argument("dataset_id", type=int)
    remove.add_argument("--force", action="store_true", help="also when jobs were trained on it")
    remove.set_defaults(handler=cmd_remove, func=cmd_remove)
    preview = commands.add_parser("split-preview", help="train/val images per class for a split, without training")
    preview.add_argument("dataset", help="a registered dataset's id, or a dataset path")
    preview.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    preview.add_argument("--strategy", choices=SPLIT_STRATEGIES, help="default: the saved split, else auto (the dataset's own, else stratified)")
    preview.add_argument("--ratio", type=float, help="train fraction (default: the saved one, else the config default)")
    preview.add_argument("--seed", type=int)
    preview.add_argument("--split-file", help="a train.txt listing the training images")
    preview.add_argument("--save", action="store_true", help="keep this split with the registered dataset")
    preview.add_argument("--json", action="store_true", help="print JSON for scripts")
    preview.set_defaults(handler=cmd_split_preview, func=cmd_split_preview)
    _add_augment_preview(commands)


def _add_augment_preview(commands: Any) -> None:
    augment = commands.add_parser("augment-preview",
                                  help="augmented training samples as PNGs, drawn by the framework's own pipeline")
    augment.add_argument("dataset", help="dataset folder, .zip or data.yaml")
    augment.add_argument("--config", help="a job YAML: framework, task, image size, split and augmentation from it")
    augment.add_argument("--framework", help="default: the job YAML's, else the config default")
    augment.add_argument("--task", help="default: the job YAML's, else the config default")
    augment.add_argument("--image-size", type=int, help="default: the job YAML's, else the config default")
    augment.add_argument("--preset", choices=AUGMENTATION_PRESETS, help="default: the job YAML's, else light")
    augment.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="override one of the framework's augmentation options (repeatable; YAML values)")
    augment.add_argument("--count", type=int, default=12, help="how many samples (8-16 in the app)")
    augment.add_argument("--seed", type=int, default=0)
    augment.add_argument("--out", required=True, help="folder for sample_NN.png")
    augment.add_argument("--json", action="store_true", help="print JSON for scripts")
    augment.set_defaults(handler=cmd_augment_preview, func=cmd_augment_preview)


def _project_id(store: Store, name_or_id: str | None) -> int:
    if name_or_id is None:
        return project_overview(store).default_project_id
    return find_project(store, name_or_id).id


def _describe(info: DatasetInfo) -> str:
    return f"{info.name} ({info.format}, {info.num_images} images, {info.num_classes} classes)"


@service_command
def cmd_register(args: argparse.Namespace) -> int:
    store = open_cli_store()
    project_id = _project_id(store, args.project)
    opened = datasets_service.register_dataset(store, project_id, args.path, args.format, name=args.name,
                                               settings=load_settings(store), notice=print_warning)
    assert opened.info is not None
    errors = sum(1 for f in opened.findings if f.severity == "error")
    warnings = sum(1 for f in opened.findings if f.severity == "warning")
    print(f"dataset {opened.info.id} registered in project {project_id}: {_describe(opened.info)}; "
          f"{errors} error(s), {warnings} warning(s) — `vision-platform dataset inspect {opened.info.path}` lists them")
    return 0


@service_command
def cmd_list(args: argparse.Namespace) -> int:
    store = open_cli_store()
    project_id = None if args.project is None else _project_id(store, args.project)
    rows = datasets_service.list_datasets(store, project_id)
    if args.json:
        print_json([dataclasses.asdict(row) for row in rows])
        return 0
    print(f"{'ID':>4}  {'PROJECT':>7}  {'FORMAT':<11}  {'IMAGES':>7}  {'CLASSES':>7}  NAME / PATH")
    for row in rows:
        print(f"{row.id:>4}  {row.project_id:>7}  {row.format or '?':<11}  {row.num_images or 0:>7}  "
              f"{row.num_classes or 0:>7}  {row.name}  {row.source_url or row.path}")
    if not rows:
        print("(no datasets yet — `vision-platform dataset register PATH`)")
    return 0


@service_command
def cmd_remove(args: argparse.Namespace) -> int:
    removed = datasets_service.remove_dataset(open_cli_store(), args.dataset_id, force=args.force)
    print(f"dataset {removed.id} removed: {removed.name} (its files at {removed.path} were kept)")
    return 0


def _target(args: argparse.Namespace) -> tuple[datasets_service.OpenedDataset, Store | None]:
    """The dataset to split: a registered one (by id) or a path read in place."""
    if not Path(args.dataset).exists() and args.dataset.isdigit():
        store = open_cli_store()
        info = datasets_service.get_dataset(store, int(args.dataset))
        fmt = None if args.format == "auto" else args.format
        return datasets_service.reopen_dataset(info, fmt), store
    if args.save:
        raise ServiceError("--save needs a registered dataset: give its id (`vision-platform dataset list`).")
    return datasets_service.read_dataset(args.dataset, args.format), None


@service_command
def cmd_split_preview(args: argparse.Namespace) -> int:
    opened, store = _target(args)
    saved = opened.info.split_config if opened.info is not None else None
    choice = datasets_service.split_choice(args.strategy, args.ratio, args.seed, args.split_file, saved=saved)
    preview = datasets_service.preview_split(opened.index, choice)
    if args.save and store is not None and opened.info is not None:
        datasets_service.save_split(store, opened.info.id, preview.choice)
    if args.json:
        print_json({"choice": preview.choice, "strategy": preview.result.strategy, "train": len(preview.result.train),
                    "val": len(preview.result.val), "test": len(preview.result.test), "counts": preview.counts,
                    "warnings": preview.warnings, "saved": bool(args.save)})
        return 0
    _print_preview(preview)
    if args.save and opened.info is not None:
        print(f"saved with dataset {opened.info.id}")
    return 0


def _print_preview(preview: datasets_service.SplitPreview) -> None:
    choice = ", ".join(f"{key} {value}" for key, value in preview.choice.items())
    result = preview.result
    resolved = f" (uses {result.strategy})" if result.strategy != preview.choice["strategy"] else ""
    print(f"split: {choice}{resolved}")
    sides = [name for name, _ in result.sides()]
    width = max([len("class"), *(len(name) for name in preview.counts)])
    print(f"  {'class':<{width}}  " + "".join(f"{side:>7}  " for side in sides) + f"{'total':>7}")
    for name, counts in preview.counts.items():
        values = [counts.get(side, 0) for side in sides]
        print(f"  {name:<{width}}  " + "".join(f"{value:>7}  " for value in values) + f"{sum(values):>7}")
    test = f", {len(result.test):,} test images (never trained on)" if result.test else ""
    print(f"{len(result.train):,} training images, {len(result.val):,} validation images{test}")
    for warning in preview.warnings:
        print(f"  warning: {warning}")


def _augment_request(args: argparse.Namespace) -> dict[str, Any]:
    """The preview request: the job YAML's settings (or the defaults), then the command-line overrides."""
    data = load_config(args.config).model_dump(mode="json") if args.config else {**defaults(), "dataset": args.dataset}
    augmentation = data.get("augmentation") or {}
    options = dict(augmentation.get("options") or {})
    options.update(_parse_options(args.option))
    return {"dataset": str(args.dataset), "framework": args.framework or data["framework"],
            "task": args.task or data["task"], "image_size": args.image_size or data["image_size"],
            "preset": args.preset or augmentation.get("preset", "light"), "options": options,
            "dataset_format": data.get("dataset_format", "auto"), "count": args.count, "seed": args.seed,
            "split": data.get("split") or {}}


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ServiceError(f"--option {pair!r}: write KEY=VALUE, e.g. --option fliplr=0.0")
        options[key.strip()] = yaml.safe_load(value)
    return options


@service_command
def cmd_augment_preview(args: argparse.Namespace) -> int:
    try:
        samples = preview_augmentation(_augment_request(args), Path(args.out))
    except PreviewCancelled:
        return fail("cancelled")
    except ConfigError as exc:
        return fail(str(exc))
    if args.json:
        print_json([{"file": str(sample.file), "caption": sample.caption, "source": sample.source}
                    for sample in samples])
        return 0
    for sample in samples:
        print(f"{sample.file}  {sample.caption}")
    return 0
