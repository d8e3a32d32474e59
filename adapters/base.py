"""The design document's ``TrainingAdapter`` interface, with one hook vocabulary for every framework.

An adapter runs inside a worker process. It reports only through a ``core.reporter.Reporter``
(never the DB, MLflow or Qt). Lifecycle, as Ultralytics/Lightning name it:

    prepare_data → on_dataset_ready → prepare_model → on_train_start
      → per epoch: [batches: reporter.should_stop() checked between them]
                   on_train_epoch_end → validate → on_fit_epoch_end → on_model_save
    → on_train_end

``fit()`` drives that order; subclasses implement the framework parts.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.config import JobConfig
from core.contracts import InferenceResult
from core.files import atomic_write_bytes
from core.reporter import Reporter
from core.rundir import RunDir

__all__ = ["AdapterError", "StopTraining", "TrainResult", "TrainingAdapter", "atomic_write_bytes",
           "sweep_stale_temp_files"]


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


def sweep_stale_temp_files(folder: Path) -> None:
    """Temp files left by a kill mid-save are never valid checkpoints."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


class TrainingAdapter(ABC):
    framework: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]]

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
    def pretrained_available(cls, model: str) -> bool:
        """Whether pretrained weights for ``model`` are on disk (never downloads)."""
        return False

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
        self.reporter.checkpoint(kind, path, epoch=epoch, metric_name=metric_name, metric_value=metric_value,
                                 sha256=sha256)

    def on_train_end(self, result: TrainResult) -> None:  # noqa: B027 - optional hook
        """After training (completed or stopped)."""

    def fit(self) -> TrainResult:
        self.reporter.status("preparing", "Reading the dataset")
        self.prepare_data()
        self.on_dataset_ready()
        self.reporter.status("preparing", "Building the model")
        self.prepare_model()
        self.on_train_start()
        result = self.train()
        self.on_train_end(result)
        return result
