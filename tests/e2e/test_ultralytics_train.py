"""Tiny real Ultralytics trainings through the runner and a worker process (CPU, 64 px, 2 epochs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import config_from_dict
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from core.reporter import NullReporter
from tests.helpers.datasets_gen import make_dice_detection, make_dice_pose, make_imagefolder

pytestmark = pytest.mark.slow

FAST_ARGS = {"mosaic": 0.0, "plots": False, "warmup_epochs": 0, "val": True}


def _config(dataset: Path, task: str, model: str, **overrides: Any) -> Any:
    data: dict[str, Any] = {
        "framework": "ultralytics",
        "task": task,
        "model": model,
        "pretrained": False,
        "dataset": str(dataset),
        "epochs": 2,
        "batch_size": 8,
        "image_size": 64,
        "workers": 0,
        "device": "cpu",
        "split": {"strategy": "random", "ratio": 0.75, "seed": 1},
        "framework_args": dict(FAST_ARGS),
    }
    data.update(overrides)
    return config_from_dict(data)


def _run(store: Any, config: Any) -> tuple[int, str]:
    job_id = job_store.create_job(store, config)
    status = JobRunner(store).run(job_id)
    return job_id, status


def _explain(store: Any, job_id: int) -> str:
    job = job_store.get_job(store, job_id)
    return f"{job.status}: {job.error_message}\n{job.error_traceback}"


def test_detect_trains_and_records_epochs_checkpoints_and_predicts(store: Any, tmp_path: Path) -> None:
    dataset = make_dice_detection(tmp_path / "dice", n=20, size=64)
    job_id, status = _run(store, _config(dataset, "detect", "yolo11n"))
    assert status == "completed", _explain(store, job_id)

    epochs = job_store.metric_rows(store, job_id, kind="epoch")
    assert [row.epoch for row in epochs] == [1, 2]
    for row in epochs:
        values = job_store.metric_values(row)
        for name in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "train/loss", "val/precision",
                     "val/recall", "val/map50", "val/map50_95", "lr"):
            assert name in values, (name, values)
    steps = job_store.metric_rows(store, job_id, kind="step")
    assert steps and all("train/box_loss" in job_store.metric_values(r) for r in steps)
    assert sorted({r.step for r in steps}) == [r.step for r in steps]  # global steps increase

    by_kind = {c.kind: c for c in job_store.checkpoints(store, job_id)}
    assert set(by_kind) == {"best", "last"}
    from core.reporter import sha256_file

    for row in by_kind.values():
        assert Path(row.path).is_file() and row.sha256 == sha256_file(Path(row.path))
    assert by_kind["last"].epoch == 2
    assert by_kind["best"].metric_name == "val/map50_95"
    assert (Path(by_kind["last"].path).parent / "last.verified.pt").is_file()

    from adapters.ultralytics_adapter import UltralyticsAdapter, checkpoint_task

    assert checkpoint_task(by_kind["best"].path, trusted=True) == "detect"
    job = job_store.get_job(store, job_id)
    adapter = UltralyticsAdapter(job_store.job_config(job), tmp_path / "infer", NullReporter())
    adapter.load_checkpoint(Path(by_kind["best"].path), trusted=True)  # core vouches: its DB row has this sha256
    image = sorted((Path(job.output_dir) / "data" / "images" / "train").iterdir())[0]
    out = adapter.run_inference(image, conf=0.0, iou=0.7)
    assert out["task"] == "detect" and out["image_size"] == [64, 64] and out["inference_time_ms"] > 0
    assert out["boxes"], "a freshly trained model returns candidate boxes at conf=0"
    box = out["boxes"][0]
    assert set(box) == {"x1", "y1", "x2", "y2", "confidence", "class_id", "label"}
    assert box["label"] in ("circle", "square")
    strict = adapter.run_inference(image.read_bytes(), conf=0.99)
    assert all(b["confidence"] >= 0.99 for b in strict["boxes"])

    # Per-image validation predictions of best.pt for the interactive confusion matrix.
    from sqlalchemy import select

    from core.db.models import Artifact
    from core.evaluation import DetectionValPredictions, ValPredictions

    with store.read() as session:
        recorded = session.scalars(select(Artifact.path).where(Artifact.job_id == job_id,
                                                               Artifact.kind == "val_predictions")).all()
    assert len(recorded) == 1
    predictions = ValPredictions.load(recorded[0])
    assert isinstance(predictions, DetectionValPredictions)
    assert predictions.matrix_labels == ["circle", "square", "background"]
    val_dir = Path(job.output_dir) / "data" / "labels" / "val"
    truth_boxes = sum(len(f.read_text().splitlines()) for f in val_dir.iterdir())
    assert len(predictions.items) == len(list(val_dir.iterdir())) and truth_boxes > 0
    matrix = predictions.confusion()
    assert matrix[:-1].sum() == truth_boxes  # every ground-truth box is in exactly one row cell
    first = predictions.items[0]
    assert Path(first["path"]).is_file() and all(0 <= b[1] <= b[3] <= 64 for b in first["truth"])


def test_classify_trains_on_imagefolder_and_returns_top_k(store: Any, tmp_path: Path) -> None:
    dataset = make_imagefolder(tmp_path / "folder", classes=("red", "green", "blue"), per_class=8, size=32)
    config = _config(dataset, "classify", "yolo11n-cls", image_size=32, framework_args={"plots": False})
    job_id, status = _run(store, config)
    assert status == "completed", _explain(store, job_id)
    epochs = job_store.metric_rows(store, job_id, kind="epoch")
    assert [row.epoch for row in epochs] == [1, 2]
    values = job_store.metric_values(epochs[-1])
    assert {"train/loss", "val/accuracy", "val/top5", "lr"} <= set(values), values
    assert epochs[-1].accuracy == values["val/accuracy"]

    from adapters.ultralytics_adapter import UltralyticsAdapter

    best = job_store.latest_checkpoint(store, job_id, "best")
    assert best is not None and best.metric_name == "val/accuracy"
    adapter = UltralyticsAdapter(config, tmp_path / "infer", NullReporter())
    adapter.load_checkpoint(Path(best.path), trusted=True)  # core vouches: its DB row has this sha256
    image = next((dataset / "red").iterdir())
    out = adapter.run_inference(image.read_bytes(), top_k=2)
    assert out["task"] == "classify" and len(out["top_k"]) == 2
    assert {item["label"] for item in out["top_k"]} <= {"red", "green", "blue"}
    assert out["top_k"][0]["confidence"] >= out["top_k"][1]["confidence"]

    from sqlalchemy import select

    from core.db.models import Artifact
    from core.evaluation import ValPredictions

    with store.read() as session:
        recorded = session.scalars(select(Artifact.path).where(Artifact.job_id == job_id,
                                                               Artifact.kind == "val_predictions")).one()
    predictions = ValPredictions.load(recorded)
    assert type(predictions) is ValPredictions and predictions.matrix_labels == ["blue", "green", "red"]
    assert predictions.confusion().sum() == len(predictions.items) > 0
    assert all(len(item["scores"]) == 3 for item in predictions.items)


def test_pose_trains_from_dice_grouped_points(store: Any, tmp_path: Path) -> None:
    dataset = make_dice_pose(tmp_path / "pose", n=12, size=64)
    config = _config(dataset, "pose", "yolo11n-pose", epochs=1, framework_args={**FAST_ARGS, "fliplr": 0.0})
    job_id, status = _run(store, config)
    assert status == "completed", _explain(store, job_id)
    values = job_store.metric_values(job_store.metric_rows(store, job_id, kind="epoch")[-1])
    assert {"train/pose_loss", "val/pose_map50", "val/map50"} <= set(values), values


