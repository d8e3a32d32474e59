"""The test-split evaluation's plumbing without training (issue 13): ``TrainingAdapter.fit`` reports it
once, as a ``metrics`` event of kind "test", only after a completed run; the runner stores it as its
own row (the epoch rows and their original columns untouched) and a resume drops it with the epochs
it re-runs. The real adapters' evaluation is covered by tests/e2e/test_test_split.py."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from adapters.base import TrainingAdapter, TrainResult, as_test_metrics
from core.config import config_from_dict
from core.db.engine import Store
from core.events import EventWriter, decode_event, describe_event
from core.jobs import store as job_store
from core.reporter import JsonLinesReporter
from tests.fixtures.tracking import epoch_events, make_job, metrics_event, persist


class _Lifecycle(TrainingAdapter):
    """Only the lifecycle ``fit`` drives: a run that ends as told, with a best checkpoint at epoch 2."""

    framework = "lifecycle"
    tasks = ("classify",)
    default_models: dict[str, str] = {}
    honoured_keys = frozenset()

    def __init__(self, *args: Any, status: str = "completed", test: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.status, self.test, self.test_calls = status, test, 0

    @classmethod
    def all_models(cls) -> list[str]:
        return []

    def prepare_data(self) -> None:
        self.class_names = ["a", "b"]

    def prepare_model(self) -> None: ...

    def train(self) -> TrainResult:
        self.on_model_save("best", self.run_dir / "best.pt", 2)
        return TrainResult(status=self.status, epochs_completed=3)

    def validate(self) -> dict[str, float]:
        return {"val/accuracy": 0.5}

    def evaluate_test(self) -> dict[str, float]:
        self.test_calls += 1
        if isinstance(self.test, Exception):
            raise self.test
        return as_test_metrics(self.test) if self.test else {}

    def load_checkpoint(self, path: Path, *, trusted: bool = False) -> None: ...

    def run_inference(self, image: Any, **options: Any) -> Any: ...


def _fit(tmp_path: Path, **kwargs: Any) -> tuple[_Lifecycle, list[dict[str, Any]]]:
    stream = io.StringIO()
    reporter = JsonLinesReporter(EventWriter(stream))
    reporter.checkpoint = lambda *a, **k: None  # type: ignore[method-assign]  # no file to hash here
    adapter = _Lifecycle(config_from_dict({"dataset": str(tmp_path)}), tmp_path / "run", reporter, **kwargs)
    adapter.fit()
    return adapter, [decode_event(line) for line in stream.getvalue().splitlines()]


def _tested(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "metrics" and e["kind"] == "test"]


def test_validation_names_become_test_names_and_nothing_else_is_kept() -> None:
    assert as_test_metrics({"val/accuracy": 0.75, "val/iou/cat": 0.5, "train/loss": 1.0, "lr": 0.1}) == {
        "test/accuracy": 0.75, "test/iou/cat": 0.5}


def test_a_completed_run_reports_the_test_split_once_at_the_best_epoch(tmp_path: Path) -> None:
    adapter, events = _fit(tmp_path, test={"val/accuracy": 0.9, "val/loss": 0.3})
    assert adapter.test_calls == 1
    [tested] = _tested(events)
    assert tested["epoch"] == 2 and tested["values"] == {"test/accuracy": 0.9, "test/loss": 0.3}
    assert describe_event(tested) == "test split (best checkpoint, epoch 2): test/accuracy=0.9  test/loss=0.3"


def test_a_cancelled_run_is_never_evaluated_on_the_test_split(tmp_path: Path) -> None:
    adapter, events = _fit(tmp_path, status="cancelled", test={"val/accuracy": 0.9})
    assert adapter.test_calls == 0 and _tested(events) == []


def test_no_test_images_no_event_and_a_failure_is_a_warning_not_a_failed_job(tmp_path: Path) -> None:
    adapter, events = _fit(tmp_path / "none", test=None)
    assert adapter.test_calls == 1 and _tested(events) == []
    adapter, events = _fit(tmp_path / "broken", test=OSError("test image unreadable"))
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert warnings == ["the test split was not evaluated: OSError: test image unreadable"]
    assert _tested(events) == []


def test_the_runner_stores_a_test_row_apart_and_a_resume_drops_it(store: Store) -> None:
    job_id = make_job(store, epochs=3, status="completed")
    persist(store, job_id, [*epoch_events(1, 2), *epoch_events(2, 2),
                            metrics_event("test", 2, None, {"test/accuracy": 0.8, "test/loss": 0.4})])
    [row] = job_store.metric_rows(store, job_id, kind="test")  # not the step records
    assert (row.epoch, row.loss, row.accuracy, row.learning_rate) == (2, None, None, None)
    assert json.loads(row.extra_metrics or "{}") == {"test/accuracy": 0.8, "test/loss": 0.4}
    epochs = job_store.metric_rows(store, job_id, kind="epoch")
    assert [(r.epoch, r.accuracy) for r in epochs] == [(1, 0.51), (2, 0.52)]
    assert len(job_store.metric_rows(store, job_id, kind="step")) == 4

    job_store.drop_metrics_from_epoch(store, job_id, 3)  # "extend": epoch 3 on; best may change
    assert job_store.metric_rows(store, job_id, kind="test") == []
    assert [r.epoch for r in job_store.metric_rows(store, job_id, kind="epoch")] == [1, 2]
