"""`vision-platform train` says "completed" when the job is, not when its uploads and MLflow are done.

Upload time is not job time (issue 11): the job's row reads ``completed`` and the CLI prints
``job N completed`` while the checkpoint uploads and MLflow's final sync are still held at a gate;
only then does the CLI wait for them, and it says how long that took.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest

from core import cli
from core.config import config_from_dict
from core.db.engine import Store
from core.jobs import store as job_store
from core.settings import Settings
from core.storage.outbox import list_uploads, pending_count, run_outbox
from core.tracking.listener import sync_job
from tests.fixtures.s3server import SeaweedFS
from tests.fixtures.tracking import mlflow_db_template, mlflow_home  # noqa: F401
from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.waiting import wait_until

pytestmark = [pytest.mark.s3, pytest.mark.slow]


class _Gate:
    """Holds every call of a background step until the test opens it; records that one was held."""

    def __init__(self) -> None:
        self.open, self.entered = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.entered.set()
        assert self.open.wait(120), "the test never opened the gate"


def test_train_reports_completed_while_uploads_and_mlflow_are_held(
    s3_env: SeaweedFS, mlflow_home: Path, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    settings = Settings.load(store)
    settings.tracking_enabled, settings.sync_enabled = True, True
    settings.save(store)
    uploads, final_sync = _Gate(), _Gate()

    def gated_run_outbox(store: Store, *args: Any, **kwargs: Any) -> Any:
        if pending_count(store):  # only a completed job's checkpoints are ever pending here
            uploads.hold()
        return run_outbox(store, *args, **kwargs)

    def gated_sync_job(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("final_status") is not None:  # the run's end: last metrics, artifacts, status
            final_sync.hold()
        return sync_job(*args, **kwargs)

    monkeypatch.setattr("core.storage.listener.run_outbox", gated_run_outbox)
    monkeypatch.setattr("core.tracking.listener.sync_job", gated_sync_job)
    data = tmp_path / "data"
    make_imagefolder(data, classes=("red", "green"), per_class=8, size=32)
    config = config_from_dict({"dataset": str(data), "model": "test_resnet", "epochs": 1, "batch_size": 8,
                               "image_size": 32, "seed": 1})
    job_id = job_store.create_job(store, config)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    seen: dict[str, Any] = {}

    def look_while_held() -> None:  # the CLI runs on the main thread (it installs a SIGINT handler)
        try:
            wait_until(lambda: f"job {job_id} completed" in out.getvalue(), "the CLI's completed line", timeout=300)
            seen["held"] = uploads.entered.wait(120) and final_sync.entered.wait(120)
            seen["status"] = job_store.get_job(store, job_id).status
            seen["uploads"] = {row.state for row in list_uploads(store)}
            seen["waiting"] = "done in" not in out.getvalue()
        finally:
            uploads.open.set()
            final_sync.open.set()

    watcher = threading.Thread(target=look_while_held, name="watcher")
    watcher.start()
    code = cli.run_and_report(store, job_id)
    watcher.join(10)
    # While both were held, what the user read and the job's row already said "completed".
    assert seen == {"held": True, "status": "completed", "uploads": {"pending"}, "waiting": True}
    assert code == 0
    text = out.getvalue()
    assert text.index(f"job {job_id} completed") < text.index("finishing MLflow tracking and checkpoint uploads… done in")
    assert {row.state for row in list_uploads(store)} == {"synced"}
    keys = {o["Key"] for o in s3_env.client().list_objects_v2(Bucket=s3_env.bucket)["Contents"]}
    assert {f"checkpoints/projects/1/jobs/{job_id}/best.pt", f"checkpoints/projects/1/jobs/{job_id}/last.pt"} <= keys
