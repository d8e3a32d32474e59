"""Issue 13: a dataset's own ``test`` split is never trained on nor used to pick best.pt; after the run
the best checkpoint is evaluated on it once, and the numbers are ``test/*`` metrics in SQLite (a row of
kind "test") and in the job's MLflow run. Real tiny runs (CPU, 32-64 px, from-scratch models)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.datasets import open_dataset
from core.db.engine import Store, open_store
from core.jobs import store as job_store
from core.rundir import RunDir
from core.services import datasets as datasets_service
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("red", "green", "blue")


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VP_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "vision_platform", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=str(ROOT))


def imagefolder_three_splits(root: Path) -> Path:
    """root/{train,val,test}/<class>/: 9 train, 3 val and 4 test images per class."""
    make_imagefolder(root, classes=CLASSES, per_class=12, size=32, splits=("train", "val"))
    extra = make_imagefolder(root.parent / "extra", classes=CLASSES, per_class=4, size=32, seed=7)
    (root / "test").mkdir()
    for folder in extra.iterdir():
        shutil.move(str(folder), str(root / "test" / folder.name))
    return root


def _files(folder: Path) -> set[str]:
    return {str(p.resolve()) for p in folder.rglob("*.png")}


def _test_row(store: Store, job_id: int) -> tuple[int, dict[str, float]]:
    rows = job_store.metric_rows(store, job_id, kind="test")
    assert len(rows) == 1, [(r.kind, r.extra_metrics) for r in rows]
    assert rows[0].loss is None and rows[0].accuracy is None  # the epoch columns are not test numbers
    return rows[0].epoch, job_store.metric_values(rows[0])


def _mlflow_history(job_id: int, store: Store, name: str) -> list[tuple[int, float]]:
    from core.tracking import MlflowTracker

    run_id = job_store.get_job(store, job_id).mlflow_run_id
    assert run_id, "the job has no MLflow run"
    return [(m.step, m.value) for m in MlflowTracker().client.get_metric_history(run_id, name)]


def _accuracy_of_best(best: Path, images: list[Path], scratch: Path) -> float:
    """best.pt's top-1 accuracy on ``images``, computed apart from the worker (its inference path)."""
    from adapters.timm_adapter import TimmAdapter
    from core.config import config_from_dict
    from core.reporter import NullReporter

    adapter = TimmAdapter(config_from_dict({"dataset": str(scratch), "device": "cpu"}), scratch, NullReporter())
    adapter.load_checkpoint(best)
    right = sum(adapter.run_inference(path)["top_k"][0]["label"] == path.parent.name for path in images)
    return right / len(images)


def test_timm_imagefolder_test_split_is_evaluated_once_with_the_best_checkpoint(vp_home: Path, tmp_path: Path) -> None:
    data = imagefolder_three_splits(tmp_path / "data")
    preview = datasets_service.preview_split(open_dataset(data), datasets_service.split_choice())
    shown = {side: sum(c.get(side, 0) for c in preview.counts.values()) for side in ("train", "val", "test")}
    assert shown == {"train": 27, "val": 9, "test": 12}  # what the Datasets page's split panel shows

    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": str(data), "model": "test_resnet", "epochs": 2, "batch_size": 8,
                                   "image_size": 32, "learning_rate": 0.005, "seed": 1, "device": "cpu"}))
    result = run_cli("train", str(job), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test split (best checkpoint, epoch" in result.stdout  # the CLI prints the test numbers

    store = open_store()
    run = RunDir(Path(job_store.get_job(store, 1).output_dir or ""))
    log = run.log.read_text(encoding="utf-8", errors="replace")
    assert f"{shown['train']} training and {shown['val']} validation images" in log, log[-1500:]
    assert f"{shown['test']} test images" in log
    # Validation (and so the choice of best.pt) saw exactly the val folder: its per-image predictions.
    predictions = json.loads(run.val_predictions.read_text(encoding="utf-8"))
    assert {str(Path(item["path"]).resolve()) for item in predictions["items"]} == _files(data / "val")

    epoch, values = _test_row(store, 1)
    assert set(values) == {"test/loss", "test/accuracy"}  # val's names (top-5 needs 5 classes)
    best = job_store.latest_checkpoint(store, 1, "best")
    assert best is not None and epoch == best.epoch
    test_images = sorted((data / "test").rglob("*.png"))
    assert values["test/accuracy"] == pytest.approx(_accuracy_of_best(Path(best.path), test_images, tmp_path / "check"))
    assert _mlflow_history(1, store, "test/accuracy") == [(epoch, pytest.approx(values["test/accuracy"]))]
    assert _mlflow_history(1, store, "test/loss") == [(epoch, pytest.approx(values["test/loss"]))]
    shown_json = json.loads(run_cli("job", "show", "1", "--json", home=vp_home).stdout)  # the Jobs page's twin
    assert shown_json["test_metrics"] == [{"epoch": epoch, **{k: pytest.approx(v) for k, v in values.items()}}]
    assert "Test split (best checkpoint, epoch" in run_cli("job", "show", "1", home=vp_home).stdout


def test_a_run_without_a_test_split_reports_no_test_metrics(vp_home: Path, tmp_path: Path) -> None:
    data = make_imagefolder(tmp_path / "data", classes=("red", "blue"), per_class=8, size=32, splits=("train", "val"))
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": str(data), "model": "test_resnet", "epochs": 1, "batch_size": 8,
                                   "image_size": 32, "device": "cpu"}))
    result = run_cli("train", str(job), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store()
    assert job_store.metric_rows(store, 1, kind="epoch")
    assert job_store.metric_rows(store, 1, kind="test") == []
    assert "test split" not in result.stdout


def _yolo_job(store: Store, source: Path, events: list[dict[str, Any]]) -> int:
    from core.config import config_from_dict
    from core.jobs.queue import default_listeners
    from core.jobs.runner import JobRunner

    config = config_from_dict({
        "framework": "ultralytics", "task": "detect", "model": "yolo11n.yaml", "pretrained": False,
        "dataset": str(source), "epochs": 1, "batch_size": 4, "image_size": 64, "workers": 0, "device": "cpu",
        "framework_args": {"mosaic": 0.0, "plots": False, "warmup_epochs": 0},
    })
    job_id = job_store.create_job(store, config)
    listeners = default_listeners(store)
    JobRunner(store, listeners=listeners, on_event=lambda _job, event: events.append(event)).run(job_id)
    for listener in listeners:
        listener.close(timeout=60)
    return job_id


def test_yolo_test_split_metrics_reach_sqlite_and_mlflow(store: Store, tmp_path: Path) -> None:
    from tests.unit.datasets.test_auto_split_and_groups import yolo_three_splits

    source = yolo_three_splits(tmp_path / "yolo")
    preview = datasets_service.preview_split(open_dataset(source), datasets_service.split_choice())
    assert (len(preview.result.train), len(preview.result.val), len(preview.result.test)) == (8, 4, 4)

    events: list[dict[str, Any]] = []
    job_id = _yolo_job(store, source, events)
    job = job_store.get_job(store, job_id)
    assert job.status == "completed", f"{job.error_message}\n{job.error_traceback}"
    data_dir = Path(job.output_dir or "") / "data"
    data = yaml.safe_load((data_dir / "data.yaml").read_text(encoding="utf-8"))
    stems = {side: {p.stem for p in (data_dir / data[side]).iterdir()} for side in ("train", "val", "test")}
    assert stems == {side: {r.path.stem for r in records} for side, records in preview.result.sides()}

    epoch, values = _test_row(store, job_id)
    assert {"test/map50", "test/map50_95", "test/precision", "test/recall"} <= set(values)
    assert not any(name.startswith(("val/", "train/")) for name in values)
    assert epoch == 1
    tested = [e for e in events if e.get("type") == "metrics" and e.get("kind") == "test"]
    assert len(tested) == 1 and tested[0]["values"] == pytest.approx(values)
    # Ultralytics' validator counted exactly the test split's labelled objects (not val's).
    objects = sum(len(f.read_text().split("\n")) - 1 for f in (source / "labels" / "test").glob("*.txt"))
    log = RunDir(Path(job.output_dir or "")).log.read_text(encoding="utf-8", errors="replace")
    assert f"test split: {objects} labelled objects evaluated" in log
    assert _mlflow_history(job_id, store, "test/map50_95") == [(1, pytest.approx(values["test/map50_95"]))]


def test_transformers_classifier_test_split_is_evaluated_with_its_best_folder(store: Store, tmp_path: Path) -> None:
    from core.config import config_from_dict
    from core.jobs.runner import JobRunner

    data = imagefolder_three_splits(tmp_path / "data")
    config = config_from_dict({
        "framework": "transformers", "task": "classify", "model": "vit-scratch", "dataset": str(data), "epochs": 2,
        "batch_size": 8, "image_size": 32, "learning_rate": 0.003, "device": "cpu", "seed": 1,
        "framework_args": {"layers": 2, "hidden_size": 32},
    })
    job_id = job_store.create_job(store, config)
    events: list[dict[str, Any]] = []
    status = JobRunner(store, on_event=lambda _job, event: events.append(event)).run(job_id)
    job = job_store.get_job(store, job_id)
    assert status == "completed", f"{job.error_message}\n{job.error_traceback}"
    log = RunDir(Path(job.output_dir or "")).log.read_text(encoding="utf-8", errors="replace")
    assert "27 training and 9 validation images" in log and "12 test images" in log

    epoch, values = _test_row(store, job_id)
    assert set(values) == {"test/loss", "test/accuracy"}
    best = job_store.latest_checkpoint(store, job_id, "best")
    assert best is not None and epoch == best.epoch
    assert 0.0 <= values["test/accuracy"] <= 1.0 and values["test/loss"] > 0
    # The status line said how many images the best checkpoint was evaluated on.
    assert any(e.get("type") == "status" and "on 12 test images" in str(e.get("message")) for e in events)
