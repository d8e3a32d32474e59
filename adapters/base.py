"""The design document's ``TrainingAdapter`` interface, with one hook vocabulary for every framework.

An adapter runs inside a worker process. It reports only through a ``core.reporter.Reporter``
(never the DB, MLflow or Qt). Lifecycle, as Ultralytics/Lightning name it:

    prepare_data → on_dataset_ready → prepare_model → on_train_start
      → per epoch: [batches: reporter.should_stop() checked between them]
                   on_train_epoch_end → validate → on_fit_epoch_end → on_model_save
    → on_train_end → [completed: evaluate_test → a ``metrics`` event of kind "test"]

``fit()`` drives that order; subclasses implement the framework parts. A dataset's ``test`` split is
never trained on nor used to pick ``best``: once a run completes, :meth:`TrainingAdapter.evaluate_test`
runs the best checkpoint over it with the adapter's own validation routine, and the values are
reported once, named like the validation ones with ``test/`` (``val/accuracy`` → ``test/accuracy``).
"""

from __future__ import annotations

import fnmatch
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from adapters import faults
from core import files
from core.config import JobConfig
from core.contracts import InferenceResult
from core.events import TEST_METRICS_KIND
from core.files import disk_full_message, is_disk_full
from core.reporter import Reporter
from core.rundir import RunDir

__all__ = ["AdapterError", "StopTraining", "TrainResult", "TrainingAdapter", "as_test_metrics",
           "atomic_write_bytes", "sweep_stale_temp_files"]


class AdapterError(RuntimeError):
    """A problem the user can fix (bad model name, missing weights, unusable data). No traceback shown."""


class StopTraining(Exception):
    """Raised inside a training loop when the reporter asks to stop."""


@dataclass
class TrainResult:
    status: str  # "completed" | "cancelled"
    epochs_completed: int
    best_metric_name: str | None = None
    best_metric_value: float | None = None
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """``core.files.atomic_write_bytes`` for a worker: a full disk becomes an :class:`AdapterError` naming
    the file and the space left (the job fails with it; the previous file is intact), and a ``.pt``
    file's write is the ``checkpoint`` fault point (``adapters/faults.py``)."""
    point = "checkpoint" if target.suffix == ".pt" else "file"
    try:
        files.atomic_write_bytes(target, data, before_sync=lambda temp: faults.disk_write(point, temp))
    except OSError as exc:
        if is_disk_full(exc):
            raise AdapterError(disk_full_message(target)) from exc
        raise


def as_test_metrics(values: dict[str, float]) -> dict[str, float]:
    """Validation values renamed for the test split: ``val/x`` → ``test/x`` (other names are dropped:
    the test split reports what validation measures, nothing of training)."""
    return {f"test/{name.removeprefix('val/')}": float(value) for name, value in values.items()
            if name.startswith("val/")}


def sweep_stale_temp_files(folder: Path) -> None:
    """Temp files left by a kill mid-save are never valid checkpoints."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


class TrainingAdapter(ABC):
    """A framework behind one interface. The class-level declarations below are what the app knows
    about a framework (tasks, default models, honoured config keys, checkpoint names, inference
    output): :meth:`describe` sends them, with the model list, through the model-list helper."""

    framework: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]]
    default_models: ClassVar[dict[str, str]]  # task -> the model a new job of that task starts with
    # Job-config keys this adapter reads; any other key set away from its default would be ignored.
    honoured_keys: ClassVar[frozenset[str]]
    # Glob patterns (on the lower-cased path, ``/`` separators) that recognise this framework's checkpoints;
    # the most specific matching pattern of all frameworks wins.
    checkpoint_patterns: ClassVar[tuple[str, ...]] = ()
    # Task -> the ``core.contracts.InferenceResult`` fields ``run_inference`` fills for it.
    inference_output: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Task -> model families offered in pickers (e.g. from-scratch configs); sizes set by framework_args.
    model_families: ClassVar[dict[str, tuple[str, ...]]] = {}
    framework_args_defaults: ClassVar[dict[str, Any]] = {}
    # Whether ``model`` may also name a Hugging Face Hub repository id (``org/name``) or a local path.
    accepts_hub_ids: ClassVar[bool] = False
    accepts_paths: ClassVar[bool] = False
    # Suffixes a model name may carry on top of a listed name (``yolo11n.yaml``: from scratch).
    model_suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: JobConfig, run_dir: Path, reporter: Reporter, *, resume: bool = False,
                 job_id: int | None = None, project_id: int | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.files = RunDir(self.run_dir)
        self.reporter = reporter
        self.resume = resume
        self.job_id = job_id
        self.project_id = project_id
        self.class_names: list[str] = []  # set by prepare_data (training) or load_checkpoint (inference)
        self.best_epoch: int | None = None  # the epoch of best.pt, as on_model_save("best") last reported it
        self.weights_dir = self.files.wdir
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        sweep_stale_temp_files(self.weights_dir)

    # ---- registry-level information (classmethods: no model is built) ----
    @classmethod
    def list_models(cls, pattern: str = "*") -> list[str]:
        return [name for name in cls.all_models() if fnmatch.fnmatch(name, pattern)]

    @classmethod
    @abstractmethod
    def all_models(cls) -> list[str]: ...

    @classmethod
    def warm_up(cls) -> None:
        """What a standby worker (``core.jobs.spawn``) imports before its job is known: what training
        needs first (here torch; adapters add their framework and more)."""
        import torch  # noqa: F401

    @classmethod
    def pretrained_available(cls, model: str) -> bool:
        """Whether pretrained weights for ``model`` are on disk (never downloads)."""
        return False

    @classmethod
    def checkpoint_task(cls, path: Path, *, trusted: bool = False) -> str:
        """The task a checkpoint of this framework was trained for (its class names come with
        :meth:`load_checkpoint`, in ``class_names``); raises :class:`AdapterError` when it cannot tell."""
        if len(cls.tasks) == 1:
            return cls.tasks[0]
        raise AdapterError(f"{cls.framework} cannot tell the task of {path} without loading it")

    @classmethod
    def describe(cls, pattern: str | None = "*", *, pretrained_pattern: str | None = None,
                 pretrained_limit: int = 2000) -> dict[str, Any]:
        """The declarations and the model list as one JSON-safe payload (the ``models`` helper's answer).
        ``pattern=None``: the declarations only (no framework import, no model listing). Pretrained
        weights are looked up for the listed models matching ``pretrained_pattern`` (default: all)."""
        models = cls.list_models(pattern) if pattern is not None else []
        asked = [m for m in models if fnmatch.fnmatch(m, pretrained_pattern)] if pretrained_pattern else models
        return {"listed": pattern is not None,
            "framework": cls.framework, "tasks": list(cls.tasks), "default_models": dict(cls.default_models),
            "honoured_keys": sorted(cls.honoured_keys), "checkpoint_patterns": list(cls.checkpoint_patterns),
            "inference_output": {task: list(fields) for task, fields in cls.inference_output.items()},
            "model_families": {task: list(names) for task, names in cls.model_families.items()},
            "framework_args_defaults": dict(cls.framework_args_defaults), "accepts_hub_ids": cls.accepts_hub_ids,
            "accepts_paths": cls.accepts_paths, "model_suffixes": list(cls.model_suffixes),
            "models": models,
            # Which models have pretrained weights on disk (a cache look-up per model, no download).
            "pretrained": [name for name in asked[:pretrained_limit] if cls.pretrained_available(name)],
        }

    # ---- the design document's interface ----
    @abstractmethod
    def prepare_data(self) -> None: ...

    @abstractmethod
    def prepare_model(self) -> None: ...

    @abstractmethod
    def train(self) -> TrainResult: ...

    @abstractmethod
    def validate(self) -> dict[str, float]: ...

    @abstractmethod
    def load_checkpoint(self, path: Path, *, trusted: bool = False) -> None: ...

    @abstractmethod
    def run_inference(self, image: str | Path | bytes, **options: Any) -> InferenceResult: ...

    # ---- helpers shared by the adapters ----
    def read_split(self) -> tuple[Any, Any]:
        """The job's dataset index and its split, decided by ``core.datasets.split_dataset`` — the
        split the GUI preview and ``dataset inspect`` show ("auto": the dataset's own, if any). A
        dataset problem becomes an :class:`AdapterError`; the split's warnings are reported."""
        from core.datasets import DatasetError, open_dataset, split_dataset

        config = self.config
        try:
            index = open_dataset(config.dataset, config.dataset_format)
            split = split_dataset(index, config.split.strategy, config.split.ratio, config.split.seed, config.split.file)
        except DatasetError as exc:
            raise AdapterError(str(exc)) from None
        for warning in split.warnings:
            self.reporter.warning(warning)
        return index, split

    # ---- hooks: the default implementations report; adapters call them at the right moments ----
    def on_dataset_ready(self) -> None:
        """After prepare_data: the class count goes to the job row (``training_jobs.num_classes``)."""
        self.reporter.dataset(num_classes=len(self.class_names), class_names=list(self.class_names))

    def on_train_start(self) -> None:
        self.reporter.status("training", f"{self.config.model} on {self.config.dataset}")

    def on_train_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:  # noqa: B027 - optional hook
        """After the last batch of an epoch, before validation."""

    def on_fit_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """After validation: the epoch's train and val metrics together."""
        self.reporter.metrics(metrics, epoch=epoch, kind="epoch")

    def on_model_save(self, kind: str, path: Path, epoch: int, metric_name: str | None = None,
                      metric_value: float | None = None, sha256: str | None = None) -> None:
        if kind == "best":
            self.best_epoch = epoch
        self.reporter.checkpoint(kind, path, epoch=epoch, metric_name=metric_name, metric_value=metric_value,
                                 sha256=sha256)

    def on_train_end(self, result: TrainResult) -> None:  # noqa: B027 - optional hook
        """After training (completed or stopped)."""

    def evaluate_test(self) -> dict[str, float]:
        """The best checkpoint's metrics on the dataset's ``test`` split, named ``test/…`` (see
        :func:`as_test_metrics`); ``{}`` when the split has no test images. Runs once, after a completed
        run, with the adapter's own validation routine; it may set :attr:`best_epoch` from the checkpoint."""
        return {}

    def report_test_metrics(self, result: TrainResult) -> None:
        """After a completed run (early stopping included; never after a cancel): evaluate the test split
        and report it as one ``metrics`` event of kind ``"test"`` at the best checkpoint's epoch. A
        failure here costs the trained model nothing: it is reported as a warning."""
        if result.status != "completed" or self.reporter.should_stop():
            return
        try:
            values = self.evaluate_test()
        except Exception as exc:  # noqa: BLE001 - the checkpoints are safe; say why the test numbers are missing
            self.reporter.warning(f"the test split was not evaluated: {type(exc).__name__}: {exc}")
            return
        if not values:
            return
        epoch = self.best_epoch or result.epochs_completed
        self.reporter.metrics(values, epoch=epoch, kind=TEST_METRICS_KIND)

    def fit(self) -> TrainResult:
        """The lifecycle above; a full disk anywhere in it (a framework's own save, a log write) fails the
        job with :func:`core.files.disk_full_message` rather than a bare ``OSError``."""
        try:
            return self._fit()
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            where = Path(os.fsdecode(exc.filename)) if exc.filename else self.run_dir
            raise AdapterError(disk_full_message(where)) from exc

    def _fit(self) -> TrainResult:
        for stale in self.files.sweep_temp_files():  # a worker killed mid checkpoint write left it
            self.reporter.log(f"removed {stale.name}, left by an interrupted checkpoint write")
        self.reporter.status("preparing", "Reading the dataset")
        self.prepare_data()
        self.on_dataset_ready()
        self.reporter.status("preparing", "Building the model")
        self.prepare_model()
        self.on_train_start()
        faults.flood_stdout(self.reporter)
        result = self.train()
        self.on_train_end(result)
        self.report_test_metrics(result)
        return result
