"""Issue 13, a real tiny Ultralytics run (CPU, 64 px, 1 epoch): a YOLO dataset with train/val/test
folders and one corrupt JPEG trains on exactly its train images, validates on its val images, and the
corrupt file is skipped and named in a warning instead of refusing the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import config_from_dict
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from tests.unit.datasets.test_auto_split_and_groups import yolo_three_splits

pytestmark = pytest.mark.slow


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.iterdir()} if folder.is_dir() else set()


def test_corrupt_jpeg_is_skipped_by_name_and_test_images_are_never_trained_on(store: Any, tmp_path: Path) -> None:
    source = yolo_three_splits(tmp_path / "yolo")
    corrupt = sorted((source / "images" / "train").glob("*.jpg"))[0]
    corrupt.write_bytes(b"\xff\xd8 this is not a JPEG any more")
    config = config_from_dict({
        "framework": "ultralytics", "task": "detect", "model": "yolo11n.yaml", "pretrained": False,
        "dataset": str(source), "epochs": 1, "batch_size": 4, "image_size": 64, "workers": 0, "device": "cpu",
        "framework_args": {"mosaic": 0.0, "plots": False, "warmup_epochs": 0},
    })
    events: list[dict[str, Any]] = []
    job_id = job_store.create_job(store, config)
    status = JobRunner(store, on_event=lambda _job, event: events.append(event)).run(job_id)
    job = job_store.get_job(store, job_id)
    assert status == "completed", f"{job.status}: {job.error_message}\n{job.error_traceback}"

    warnings = [str(e.get("message")) for e in events if e.get("type") == "warning"]
    assert any(corrupt.name in w for w in warnings), warnings
    data_dir = Path(job.output_dir) / "data"
    data = yaml.safe_load((data_dir / "data.yaml").read_text(encoding="utf-8"))
    assert _stems(data_dir / data["train"]) == _stems(source / "images" / "train") - {corrupt.stem}
    assert _stems(data_dir / data["val"]) == _stems(source / "images" / "val")
    assert _stems(data_dir / "images" / "test") == _stems(source / "images" / "test")
    assert [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")] == [1]
