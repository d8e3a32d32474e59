"""The job configuration: one typed, versioned schema for the CLI, the GUI and the worker.

Defaults live in ``resources/defaults.yaml`` (commented: the comments are the GUI's tooltips). A job
YAML is merged over those defaults and validated; unknown keys and bad types raise
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.resources import resource_path

CONFIG_VERSION = 1
Task = Literal["classify", "detect", "segment", "pose"]
DatasetFormat = Literal["auto", "dice", "yolo", "imagefolder", "coco"]
SplitStrategy = Literal["auto", "stratified", "random", "sequential", "predefined"]
Optimizer = Literal["adamw", "adam", "sgd"]
AugmentationPreset = Literal["none", "light", "standard", "heavy"]  # options per framework: core.augmentation
TASKS: tuple[Task, ...] = get_args(Task)
DETECTION_TASKS: tuple[Task, ...] = ("detect", "segment", "pose")  # tasks whose labels are shapes
DATASET_FORMATS: tuple[DatasetFormat, ...] = get_args(DatasetFormat)
SPLIT_STRATEGIES: tuple[SplitStrategy, ...] = get_args(SplitStrategy)
OPTIMIZERS: tuple[Optimizer, ...] = get_args(Optimizer)
AUGMENTATION_PRESETS: tuple[AugmentationPreset, ...] = ("none", "light", "standard", "heavy")
assert AUGMENTATION_PRESETS == get_args(AugmentationPreset), "one list of augmentation preset names"
assert set(DETECTION_TASKS) == set(TASKS) - {"classify"}, "every task but classify is a detection task"


class ConfigError(ValueError):
    """A job configuration that cannot be used; the message names the file and key."""


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: SplitStrategy = "auto"
    ratio: float = Field(0.8, ge=0.05, le=0.95)
    seed: int = 42
    file: str | None = None


class AugmentationConfig(BaseModel):
    """A preset of the job's framework plus overrides of single options by their native names; which
    keys exist is the framework's (``core.augmentation``), checked at preflight and by the adapter."""

    model_config = ConfigDict(extra="forbid")

    preset: AugmentationPreset = "light"
    options: dict[str, Any] = Field(default_factory=dict)


# The split defaults (also in defaults.yaml, which a unit test keeps equal): every other default
# ratio/seed (dataset CLI, split preview, converters) reads these.
SPLIT_DEFAULTS = SplitConfig.model_validate({})
DEFAULT_SPLIT_RATIO: float = SPLIT_DEFAULTS.ratio
DEFAULT_SPLIT_SEED: int = SPLIT_DEFAULTS.seed


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    version: Literal[1] = 1
    name: str | None = None
    project: str = "Default"
    # Which frameworks exist is the adapters' to say (``core.frameworks``): checked at preflight.
    framework: str = Field("timm", min_length=1)
    task: Task = "classify"
    model: str = Field("resnet18", min_length=1)
    pretrained: bool = False
    weights: str | None = None
    dataset: str = Field(..., min_length=1)
    dataset_format: DatasetFormat = "auto"
    split: SplitConfig = Field(default_factory=lambda: SplitConfig.model_validate({}))
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(16, ge=1, le=65_536)
    learning_rate: float = Field(0.001, gt=0, le=10)
    optimizer: Optimizer = "adamw"
    weight_decay: float = Field(0.0001, ge=0, le=1)
    image_size: int = Field(224, ge=16, le=8192)
    device: str = "auto"
    seed: int = 0
    patience: int = Field(0, ge=0)
    workers: int = Field(0, ge=0, le=64)
    amp: bool = True
    augmentation: AugmentationConfig = Field(default_factory=lambda: AugmentationConfig.model_validate({}))
    framework_args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda|cuda:\d+|mps", value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value

    def display_name(self) -> str:
        if self.name:
            return self.name
        return f"{self.model} on {Path(self.dataset).name or self.dataset}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


ALL_CONFIG_KEYS: tuple[str, ...] = tuple(JobConfig.model_fields)
# Keys a framework reads only as a file to start from: ignoring one would train something else than asked.
MISLEADING_IF_IGNORED: frozenset[str] = frozenset({"weights", "pretrained"})


@functools.cache
def _defaults_text() -> str:
    return resource_path("defaults.yaml").read_text(encoding="utf-8")


@functools.cache
def _parsed_defaults() -> dict[str, Any]:
    data = yaml.safe_load(_defaults_text())
    assert isinstance(data, dict)
    return data


def defaults() -> dict[str, Any]:
    """A fresh copy of defaults.yaml (parsed once per process; callers may modify their copy)."""
    return copy.deepcopy(_parsed_defaults())


def field_help() -> dict[str, str]:
    """Tooltips: the comment lines directly above each key in defaults.yaml ("split.ratio" for nested)."""
    help_by_key: dict[str, str] = {}
    comment: list[str] = []
    parent: str | None = None
    for line in _defaults_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*):", line)
        if not match:
            comment = []
            continue
        indent, key = match.groups()
        if not indent:
            parent = key
            full_key = key
        else:
            full_key = f"{parent}.{key}"
        if comment:
            help_by_key[full_key] = " ".join(comment)
        comment = []
    return help_by_key


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "framework_args":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"{source}: required key '{key}' is missing")
        else:
            lines.append(f"{source}: key '{key}': {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "config") -> JobConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    merged = _merge(defaults(), data)
    if merged.get("dataset") is None:
        merged.pop("dataset", None)  # defaults.yaml says null: a job must name its dataset
    try:
        return JobConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: str | Path) -> JobConfig:
    """Read a job YAML; relative dataset/weights paths are taken relative to the YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = config_from_dict(data, source=str(path))
    updates: dict[str, Any] = {}
    if not config.dataset.startswith("r2://") and not Path(config.dataset).expanduser().is_absolute():
        updates["dataset"] = str((path.parent / config.dataset).resolve())
    if config.weights and not Path(config.weights).expanduser().is_absolute():
        updates["weights"] = str((path.parent / config.weights).resolve())
    return config.model_copy(update=updates) if updates else config


def save_config(config: JobConfig, path: str | Path) -> None:
    Path(path).write_text(config.to_yaml(), encoding="utf-8")
