"""Cancel a YOLO job mid-epoch, resume it, then extend the finished job by N epochs (real CPU training)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from core.config import config_from_dict
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from tests.conftest import network_attempts_since
from tests.e2e.test_ultralytics_network import install_network_guard
from tests.helpers.datasets_gen import make_dice_detection
from tests.helpers.holds import Holds
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.slow


def _epochs(store: Any, job_id: int) -> list[int]:
    return [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")]


def _last(store: Any, job_id: int) -> Any:
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None
    return last


def test_cancel_resume_and_extend_continue_the_epoch_count(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = install_network_guard(tmp_path, monkeypatch)
    dataset = make_dice_detection(tmp_path / "dice", n=16, size=64)
    config = config_from_dict({
        "framework": "ultralytics", "task": "detect", "model": "yolo11n", "pretrained": False,
        "dataset": str(dataset), "epochs": 3, "batch_size": 2, "image_size": 64, "workers": 0, "device": "cpu",
        "split": {"strategy": "random", "ratio": 0.8, "seed": 1},
        "framework_args": {"mosaic": 0.0, "plots": False, "warmup_epochs": 0},
    })
    job_id = job_store.create_job(store, config)

    # 12 train images at batch 2: 6 batches an epoch. The worker is held after global batch 8 (epoch 2)
    # and the cancel is asked while it waits there: it lands inside epoch 2 by construction.
    holds = Holds(tmp_path / "holds", 8)
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)

    def cancel_when_held() -> None:
        wait_until(lambda: holds.is_held(8), "the worker held in epoch 2", timeout=300)
        job_store.request_cancel(store, job_id)

    canceller = threading.Thread(target=cancel_when_held, daemon=True)
    canceller.start()
    assert JobRunner(store).run(job_id) == "cancelled"
    canceller.join(60)
    monkeypatch.delenv("VP_FAULT")
    assert _epochs(store, job_id) == [1]
    assert _last(store, job_id).epoch == 1
    steps_before = job_store.metric_rows(store, job_id, kind="step")
    assert any(row.epoch == 2 for row in steps_before), "the cancel came during epoch 2"

    # A kill while Ultralytics rewrote last.pt in place leaves a truncated file: resume must use the
    # verified copy written after the previous save.
    last_pt = Path(_last(store, job_id).path)
    last_pt.write_bytes(last_pt.read_bytes()[: last_pt.stat().st_size // 2])
    warnings: list[str] = []

    def collect(jid: int, event: dict[str, Any]) -> None:
        if event.get("type") == "warning":
            warnings.append(str(event.get("message")))

    job_store.requeue_for_resume(store, job_id)
    status = JobRunner(store, on_event=collect).run(job_id)
    job = job_store.get_job(store, job_id)
    assert status == "completed", f"{job.error_message}\n{job.error_traceback}"
    assert _epochs(store, job_id) == [1, 2, 3]
    assert any("last.pt cannot be loaded" in w for w in warnings), warnings
    assert _last(store, job_id).epoch == 3
    steps = [(row.epoch, row.step) for row in job_store.metric_rows(store, job_id, kind="step")]
    assert len(steps) == len(set(steps)), "the interrupted epoch's partial step rows were replaced, not duplicated"

    job_store.requeue_for_resume(store, job_id, extra_epochs=2)
    status = JobRunner(store).run(job_id)
    job = job_store.get_job(store, job_id)
    assert status == "completed", f"{job.error_message}\n{job.error_traceback}"
    assert _epochs(store, job_id) == [1, 2, 3, 4, 5]
    assert _last(store, job_id).epoch == 5
    from core.reporter import sha256_file

    for row in job_store.checkpoints(store, job_id):  # re-recorded after final_eval rewrote both files
        assert row.sha256 == sha256_file(Path(row.path)), row.kind
        assert 1 <= int(row.epoch) <= 5
    assert network_attempts_since(offset) == ""
