"""``training_metrics.checkpoint_path`` (a column of the original schema): the R2 URL of the epoch's
checkpoint, filled when its upload is verified in the bucket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.engine import Store
from core.db.models import Checkpoint, TrainingJob, TrainingMetric
from core.files import sha256_bytes
from core.settings import Settings
from core.storage.outbox import enqueue_job_checkpoints, run_outbox
from tests.fixtures.s3server import SeaweedFS

pytestmark = pytest.mark.s3


def _job_with_epochs(store: Store, tmp_path: Path, epochs: int, checkpoint_epochs: dict[str, int]) -> int:
    """A completed job with epoch and step metric rows, and best/last checkpoints of given epochs."""
    with store.write() as session:
        job = TrainingJob(project_id=1, user_id=1, framework="timm", model_name="resnet18", task_type="classify",
                          dataset_path=str(tmp_path / "ds"), status="completed")
        session.add(job)
        session.flush()
        for epoch in range(1, epochs + 1):
            session.add(TrainingMetric(job_id=job.id, epoch=epoch, step=epoch * 10, kind="step", loss=1.0))
            session.add(TrainingMetric(job_id=job.id, epoch=epoch, kind="epoch", loss=1.0, accuracy=0.5))
        for kind, epoch in checkpoint_epochs.items():
            data = os.urandom(20_000)
            path = tmp_path / f"job{job.id}_{kind}.pt"
            path.write_bytes(data)
            session.add(Checkpoint(job_id=job.id, kind=kind, path=str(path), sha256=sha256_bytes(data),
                                   size_bytes=len(data), epoch=epoch))
        return int(job.id)


def _paths_by_epoch(store: Store, job_id: int, kind: str) -> dict[int, str | None]:
    with store.read() as session:
        rows = session.execute(select(TrainingMetric.epoch, TrainingMetric.checkpoint_path)
                               .where(TrainingMetric.job_id == job_id, TrainingMetric.kind == kind)).all()
    return {epoch: path for epoch, path in rows}


def _upload(store: Store, job_id: int) -> None:
    settings = Settings.load(store)  # env: AWS_S3_ENDPOINT_URL, R2_BUCKET (the s3_env fixture)
    enqueue_job_checkpoints(store, settings, job_id)
    report = run_outbox(store, settings)
    assert report.synced == 2 and not report.failed, report


def test_synced_checkpoints_fill_their_epochs_checkpoint_path(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    job_id = _job_with_epochs(store, tmp_path, epochs=3, checkpoint_epochs={"best": 2, "last": 3})
    assert set(_paths_by_epoch(store, job_id, "epoch").values()) == {None}  # nothing before the upload
    _upload(store, job_id)
    prefix = f"r2://{s3_env.bucket}/checkpoints/projects/1/jobs/{job_id}"
    assert _paths_by_epoch(store, job_id, "epoch") == {1: None, 2: f"{prefix}/best.pt", 3: f"{prefix}/last.pt"}
    assert set(_paths_by_epoch(store, job_id, "step").values()) == {None}  # step rows hold no checkpoint
    keys = {o["Key"] for o in s3_env.client().list_objects_v2(Bucket=s3_env.bucket)["Contents"]}
    assert {f"checkpoints/projects/1/jobs/{job_id}/best.pt", f"checkpoints/projects/1/jobs/{job_id}/last.pt"} <= keys


@pytest.mark.parametrize("upload_order", [("last", "best"), ("best", "last")])
def test_best_wins_when_best_and_last_hold_the_same_epoch(
    s3_env: SeaweedFS, store: Store, tmp_path: Path, upload_order: tuple[str, str]
) -> None:
    job_id = _job_with_epochs(store, tmp_path, epochs=2, checkpoint_epochs=dict.fromkeys(upload_order, 2))
    _upload(store, job_id)
    prefix = f"r2://{s3_env.bucket}/checkpoints/projects/1/jobs/{job_id}"
    assert _paths_by_epoch(store, job_id, "epoch") == {1: None, 2: f"{prefix}/best.pt"}
