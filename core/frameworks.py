"""What each framework's adapter declares, as data for core and the app.

Neither core nor the app imports an adapter (import-linter): they learn a framework's tasks, default
models, the config keys it honours, how its checkpoint files are named and what its inference returns
from the adapter's own class-level declarations (``adapters.base.TrainingAdapter.describe``), which
the ``models`` helper sub-command prints as JSON. This module parses that payload, runs the helper
when a caller has none yet (the CLI's preflight), and holds the rules that use it: a config checked
against what the adapters offer (with "did you mean"), and which framework a loose weights file
belongs to. Adding a framework changes nothing here.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import glob
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import platform
from core.config import ALL_CONFIG_KEYS, MISLEADING_IF_IGNORED, JobConfig

HELPER_TIMEOUT_S = 300  # a cold framework import on a slow disk; the helper never touches the network


class CatalogError(RuntimeError):
    """The model-list helper could not answer."""


@dataclass(frozen=True)
class FrameworkInfo:
    """One framework as its adapter declares it (``models`` is None when the list was not asked for)."""

    name: str
    tasks: tuple[str, ...] = ()
    default_models: Mapping[str, str] | None = None
    honoured_keys: frozenset[str] = frozenset()
    checkpoint_patterns: tuple[str, ...] = ()
    inference_output: Mapping[str, tuple[str, ...]] | None = None
    model_families: Mapping[str, tuple[str, ...]] | None = None
    framework_args_defaults: Mapping[str, Any] | None = None
    accepts_hub_ids: bool = False
    accepts_paths: bool = False
    model_suffixes: tuple[str, ...] = ()
    models: tuple[str, ...] | None = None
    pretrained: frozenset[str] = frozenset()
    error: str | None = None  # why this framework cannot be used here (not installed …)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FrameworkInfo:
        def tuples(value: Any) -> dict[str, tuple[str, ...]]:
            return {str(k): tuple(v) for k, v in dict(value or {}).items()}

        return cls(
            name=str(payload["framework"]), tasks=tuple(payload.get("tasks") or ()),
            default_models=dict(payload.get("default_models") or {}),
            honoured_keys=frozenset(payload.get("honoured_keys") or ALL_CONFIG_KEYS),
            checkpoint_patterns=tuple(payload.get("checkpoint_patterns") or ()),
            inference_output=tuples(payload.get("inference_output")),
            model_families=tuples(payload.get("model_families")),
            framework_args_defaults=dict(payload.get("framework_args_defaults") or {}),
            accepts_hub_ids=bool(payload.get("accepts_hub_ids")), accepts_paths=bool(payload.get("accepts_paths")),
            model_suffixes=tuple(payload.get("model_suffixes") or ()),
            models=tuple(payload.get("models") or ()) if payload.get("listed", "models" in payload) else None,
            pretrained=frozenset(payload.get("pretrained") or ()), error=payload.get("error"),
        )

    def default_model(self, task: str) -> str | None:
        return (self.default_models or {}).get(task)

    def families(self, task: str) -> tuple[str, ...]:
        return (self.model_families or {}).get(task, ())

    def offers_model(self, model: str) -> bool:
        """Whether ``model`` names one of the listed models (bare or with a declared suffix), a local
        path (when the framework reads paths) or a Hub id (when it reads those)."""
        names = set(self.models or ())
        if model in names or any(model.endswith(s) and model[: -len(s)] in names for s in self.model_suffixes):
            return True
        if self.accepts_paths and Path(model).expanduser().exists():
            return True
        return self.accepts_hub_ids and is_hub_id(model)


Catalog = Mapping[str, FrameworkInfo]


def is_hub_id(model: str) -> bool:
    """``org/name``: one slash, no path-looking start (``./x``, ``~/x``, ``C:\\x``)."""
    return model.count("/") == 1 and not model.startswith((".", "~", "/")) and "\\" not in model and ":" not in model


def catalog_from_payloads(payloads: Mapping[str, Mapping[str, Any]]) -> dict[str, FrameworkInfo]:
    return {name: FrameworkInfo.from_payload({"framework": name, **payload}) for name, payload in payloads.items()}


# -- asking the helper -------------------------------------------------------------------------------
def parse_helper_output(stdout: str) -> dict[str, Any]:
    """The last line of a helper's stdout that is a JSON object (frameworks may print banners before it)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.strip().startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise CatalogError("the model-list helper printed no JSON result")


def run_helper(*args: str) -> dict[str, Any]:
    """``vision-platform models ARGS`` in a child process (offline env); its JSON answer."""
    from core.launch import child_env, subcommand

    try:
        done = subprocess.run(subcommand("models", *args), env=child_env(), capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=HELPER_TIMEOUT_S, check=False,
                              **platform.no_console_options())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CatalogError(f"the model-list helper did not answer: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise CatalogError(lines[-1] if lines else f"the model-list helper exited with {done.returncode}")
    return parse_helper_output(done.stdout)


@functools.cache
def declared_catalog() -> dict[str, FrameworkInfo]:
    """Every framework's declarations, without model lists (one fast helper run per process)."""
    return catalog_from_payloads(run_helper("--declarations").get("frameworks") or {})


def listed_framework(framework: str, pretrained_for: str | None = None) -> FrameworkInfo:
    """One framework's declarations and models, with pretrained weights looked up for the model
    ``pretrained_for`` only (else all; imports the framework in the child)."""
    extra = ["--pretrained", glob.escape(pretrained_for)] if pretrained_for else []
    return FrameworkInfo.from_payload(run_helper(framework, "*", *extra))


def catalog_for(config: JobConfig) -> dict[str, FrameworkInfo]:
    """What preflight needs for ``config``: its framework with the model looked up exactly, else (an
    unknown framework) every framework's declarations, so the error can list them."""
    try:
        return {config.framework: listed_framework(config.framework, config.model)}
    except CatalogError:
        return declared_catalog()


# -- rules -------------------------------------------------------------------------------------------
def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _listing(choices: list[str] | tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(choices[:limit])
    return shown + (f" … ({len(choices)} in all)" if len(choices) > limit else "")


def check_config(config: JobConfig, catalog: Catalog) -> list[tuple[str, str]]:
    """(severity, message) for what no adapter offers or what the chosen adapter would ignore."""
    info = catalog.get(config.framework)
    if info is None:
        available = sorted(catalog)
        return [("error", f"framework {config.framework!r} is not offered{did_you_mean(config.framework, available)}; "
                          f"available: {', '.join(available)}")]
    if info.error:
        return [("error", f"framework {config.framework!r} cannot be used here: {info.error}")]
    if config.task not in info.tasks:
        others = sorted(name for name, other in catalog.items() if config.task in other.tasks and name != info.name)
        elsewhere = f"; {config.task} is trained by {', '.join(others)}" if others else ""
        return [("error", f"{info.name} does not train the task {config.task!r}{did_you_mean(config.task, info.tasks)}; "
                          f"it offers: {', '.join(info.tasks)}{elsewhere}")]
    return [*_model_problems(config, info), *_ignored_keys(config, info), *_augmentation_problems(config)]


def _augmentation_problems(config: JobConfig) -> list[tuple[str, str]]:
    """The job's augmentation options checked against its framework's names (with "did you mean")."""
    from core.augmentation import augmentation_options  # that module uses did_you_mean from here
    from core.config import ConfigError

    try:
        augmentation_options(config.framework, config.augmentation.preset, config.augmentation.options)
    except ConfigError as exc:
        return [("error", str(exc))]
    return []


def _model_problems(config: JobConfig, info: FrameworkInfo) -> list[tuple[str, str]]:
    if info.models is None:
        return []  # not listed: the worker checks the name
    model = config.model
    if not info.offers_model(model):
        names = list(info.models)
        return [("error", f"{info.name} offers no model {model!r}{did_you_mean(model, names)}; "
                          f"available: {_listing(names)}")]
    if config.pretrained and not config.weights and not _weights_on_disk(model, info):
        return [("error", f"the pretrained weights of {info.name} model {model!r} are not on this computer, and "
                          f"jobs never download: download them first (Weights view, or `vision-platform weights "
                          f"download {info.name} {model}`), import a weights file, or train from scratch")]
    return []


def _weights_on_disk(model: str, info: FrameworkInfo) -> bool:
    if model in info.pretrained or (info.accepts_paths and Path(model).expanduser().exists()):
        return True
    return any(model.endswith(s) and model[: -len(s)] in info.pretrained for s in info.model_suffixes)


def _ignored_keys(config: JobConfig, info: FrameworkInfo) -> list[tuple[str, str]]:
    problems = []
    for key in ALL_CONFIG_KEYS:
        value = getattr(config, key)
        if key in info.honoured_keys or value == JobConfig.model_fields[key].get_default(call_default_factory=True):
            continue
        severity = "error" if key in MISLEADING_IF_IGNORED else "warning"
        problems.append((severity, f"{info.name} ignores the config key '{key}' (set to {value!r}): "
                                   "it has no effect on this job"))
    return problems


def framework_for_file(path: str | Path, catalog: Catalog) -> str | None:
    """The framework whose most specific checkpoint pattern matches ``path`` (None: no pattern does)."""
    name = Path(path).as_posix().lower()
    best: tuple[int, str] | None = None
    for framework, info in catalog.items():
        for pattern in info.checkpoint_patterns:
            if fnmatch.fnmatchcase(name, pattern.lower()):
                specificity = len(pattern.replace("*", ""))
                if best is None or specificity > best[0]:
                    best = (specificity, framework)
    return best[1] if best else None


def frameworks_for_file(path: str | Path, catalog: Catalog) -> list[str]:
    """Every framework with a pattern matching ``path``, most specific first (the load order to try)."""
    name = Path(path).as_posix().lower()
    scored = sorted(((max((len(p.replace("*", "")) for p in info.checkpoint_patterns
                           if fnmatch.fnmatchcase(name, p.lower())), default=-1), fw) for fw, info in catalog.items()),
                    reverse=True)
    return [framework for score, framework in scored if score >= 0]
