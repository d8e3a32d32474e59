"""MLflow bookkeeping: one experiment per project, one run per job, in the spirit of Lightning's MLFlowLogger.

Why an ``MlflowClient`` with explicit run ids and not the fluent ``mlflow.start_run`` API: the fluent
API keeps a per-thread "active run" stack, and our sender thread serves several jobs at once. Every
call here names its run.

Why everything is batched: one ``log_metric`` is a round trip (about 3 ms on SQLite, more over
HTTP); ``log_batch`` carries up to 1000 metrics or 100 params in one call (MLflow's limits).

``mlflow`` is imported inside :class:`MlflowTracker` only: importing it takes seconds, and the GUI
imports ``core.tracking`` at start-up.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from core import paths
from core.launch import disable_telemetry
from core.storage.credentials import (
    ENV_TRACKING_PASSWORD,
    ENV_TRACKING_URI,
    ENV_TRACKING_USERNAME,
    mask_uri,
    tracking_login,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from core.settings import Settings

log = logging.getLogger(__name__)

# MLflow's own batch limits (mlflow.utils.validation); restated so this module does not import mlflow.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_VALUE_LENGTH = 6000
MAX_KEY_LENGTH = 250

# Job status (our DB) -> MLflow RunStatus name.
RUN_STATUS_FOR_JOB = {
    "completed": "FINISHED",
    "failed": "FAILED",
    "cancelled": "KILLED",
    "interrupted": "KILLED",
}
FINAL_JOB_STATUSES = frozenset(RUN_STATUS_FOR_JOB)

# Per-step metrics get this prefix, always (not only when the same name also comes per epoch):
# an MLflow metric series is plotted against its step, and a name logged at global steps 1..N and
# again at epochs 1..E would interleave two x axes in one series. Always prefixing keeps the rule
# stateless, so a metric replayed later from SQLite lands under the same key as when sent live.
STEP_METRIC_PREFIX = "step/"

# The original schema's columns of ``training_metrics`` -> metric name they were filled from (see core.events).
ORIGINAL_METRIC_COLUMNS = {"loss": "loss", "accuracy": "accuracy", "learning_rate": "lr"}

_REMOTE_HTTP_DEFAULTS = {
    # MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) can keep one call busy for
    # minutes; our sender retries on its own schedule, so each call should fail fast.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def default_tracking_uri() -> str:
    return f"sqlite:///{paths.data_dir() / 'mlflow.db'}"


def tracking_uri(settings: Settings | None = None) -> str:
    """Settings first, then ``MLFLOW_TRACKING_URI``, then our SQLite file in the data dir; a password
    in it is masked (``user:***@``): this is the URI to store, log and show, never to connect with."""
    if settings is not None and settings.mlflow_tracking_uri:
        return mask_uri(settings.mlflow_tracking_uri)
    return mask_uri(os.environ.get(ENV_TRACKING_URI) or default_tracking_uri())


def _log_in(uri: str) -> str:
    """The URI MLflow connects to (no credentials); its login goes to MLflow's own environment
    variables of this process, the one that talks to MLflow (``child_env`` keeps them from children)."""
    login = tracking_login(uri)
    for name, value in ((ENV_TRACKING_USERNAME, login.username), (ENV_TRACKING_PASSWORD, login.password)):
        if value:
            os.environ[name] = value
    return login.uri


def artifact_root() -> str:
    """File URI under which local stores keep artifacts (one folder per experiment)."""
    root = paths.mlflow_dir() / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    return root.as_uri()


def is_local_store(uri: str) -> bool:
    """A database or file URI (we choose the artifact location); otherwise a tracking server."""
    return not uri.startswith(("http://", "https://", "databricks"))


def experiment_name(project_id: int) -> str:
    return f"project_{project_id}"


def run_name(job_id: int) -> str:
    return f"job_{job_id}"


def flatten_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"split.ratio": "0.8"}; values rendered as MLflow shows them, capped in length."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, prefix=f"{name}."))
            continue
        if isinstance(value, list | tuple | Mapping):
            text = json.dumps(value, default=str)
        else:
            text = "" if value is None else str(value)
        flat[name[:MAX_KEY_LENGTH]] = text[:MAX_PARAM_VALUE_LENGTH]
    return flat


def params_from_config_yaml(config_yaml: str | None) -> dict[str, str]:
    if not config_yaml:
        return {}
    try:
        data = yaml.safe_load(config_yaml)
    except yaml.YAMLError:
        log.warning("job config is not valid YAML; logging no params from it")
        return {}
    return flatten_params(data) if isinstance(data, Mapping) else {}


def metric_values_from_row(
    loss: float | None, accuracy: float | None, learning_rate: float | None, extra_metrics: str | None
) -> dict[str, float]:
    """Rebuild a metrics event's ``values`` from a ``training_metrics`` row.

    The runner stores every value of the event in ``extra_metrics`` (JSON) and copies some of them
    into the original schema's columns (loss <- "train/loss" or "loss", …); the JSON is therefore the
    whole truth. Only rows without it (written by the original code) are rebuilt from the columns.
    """
    if extra_metrics:
        try:
            extra = json.loads(extra_metrics)
        except json.JSONDecodeError:
            extra = None
        if isinstance(extra, dict):
            return {
                str(name): float(value)
                for name, value in extra.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            }
    values: dict[str, float] = {}
    for column, value in (("loss", loss), ("accuracy", accuracy), ("learning_rate", learning_rate)):
        if value is not None:
            values[ORIGINAL_METRIC_COLUMNS[column]] = float(value)
    return values


def metric_key(name: str, kind: str) -> str:
    return f"{STEP_METRIC_PREFIX}{name}" if kind == "step" else name


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp_ms: int


class MlflowTracker:
    """A thin, explicit-run-id wrapper around ``MlflowClient``."""

    def __init__(self, uri: str | None = None, *, settings: Settings | None = None) -> None:
        # Read when mlflow is first imported (every mlflow import of this process goes through here).
        disable_telemetry(os.environ)
        given = uri or tracking_uri(settings)
        self.uri = mask_uri(given)  # what markers and messages say
        self._connect_uri = _log_in(given)
        self.local = is_local_store(self.uri)
        if not self.local:
            for name, value in _REMOTE_HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
        self._client: MlflowClient | None = None
        self._experiments: dict[int, str] = {}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self._connect_uri)
        return self._client

    # -- experiments and runs -------------------------------------------------------------------
    def experiment_id(self, project_id: int) -> str:
        cached = self._experiments.get(project_id)
        if cached is not None:
            return cached
        from mlflow.exceptions import MlflowException

        name = experiment_name(project_id)
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = f"{artifact_root()}/{name}" if self.local else None
            try:
                exp_id = self.client.create_experiment(name, artifact_location=location)
            except MlflowException:
                # Another process created it between our lookup and create.
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                exp_id = experiment.experiment_id
        else:
            exp_id = experiment.experiment_id
        self._experiments[project_id] = exp_id
        return exp_id

    def create_run(self, project_id: int, job_id: int, tags: Mapping[str, str] | None = None) -> str:
        run_tags = {
            "vision_platform.job_id": str(job_id),
            "vision_platform.project_id": str(project_id),
            **(tags or {}),
        }
        run = self.client.create_run(self.experiment_id(project_id), run_name=run_name(job_id), tags=run_tags)
        return str(run.info.run_id)

    def run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        return True

    def run_status(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).info.status)

    def reopen(self, run_id: str) -> None:
        """A resumed job continues its run."""
        self.client.update_run(run_id, status="RUNNING")

    def terminate(self, run_id: str, job_status: str) -> str:
        status = RUN_STATUS_FOR_JOB.get(job_status, "KILLED")
        self.client.set_terminated(run_id, status=status)
        return status

    # -- data -----------------------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=items[start : start + MAX_PARAMS_PER_BATCH], synchronous=True)

    def log_metrics(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points]
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH], synchronous=True)

    def log_artifacts(self, run_id: str, files: Iterable[tuple[Path, str | None]]) -> list[str]:
        """Log (file, artifact sub-folder) pairs; returns the artifact paths logged."""
        logged: list[str] = []
        for path, folder in files:
            self.client.log_artifact(run_id, str(path), artifact_path=folder)
            logged.append(f"{folder}/{path.name}" if folder else path.name)
        return logged

    def has_artifacts(self, run_id: str) -> bool:
        return bool(self.client.list_artifacts(run_id))
