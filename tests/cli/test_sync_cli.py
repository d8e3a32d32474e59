"""``vision-platform sync status|retry`` (and bare ``sync``) against the SeaweedFS bucket."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CliResult
from tests.fixtures.s3server import SeaweedFS

Cli = Callable[..., CliResult]
Rows = Callable[..., list[tuple[Any, ...]]]
pytestmark = pytest.mark.s3


@pytest.fixture
def bucket_env(s3: SeaweedFS, vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("R2_BUCKET", s3.bucket)
    return s3


def _job_with_checkpoint(path: Path) -> int:
    from core.db.engine import open_store
    from core.db.models import Checkpoint, TrainingJob

    with open_store().write() as session:
        job = TrainingJob(project_id=1, user_id=1, framework="timm", model_name="resnet18", task_type="classify",
                          dataset_path="d", status="completed")
        session.add(job)
        session.flush()
        session.add(Checkpoint(job_id=job.id, kind="best", path=str(path)))
        return int(job.id)


def test_status_then_retry_a_failed_upload(run_cli: Cli, db_rows: Rows, bucket_env: SeaweedFS, tmp_path: Path) -> None:
    best = tmp_path / "best.pt"  # not written yet: the first attempt fails for good (file not found)
    job_id = _job_with_checkpoint(best)
    key = f"checkpoints/projects/1/jobs/{job_id}/best.pt"
    first = run_cli("upload", str(job_id))
    assert first.code == 1 and "file not found" in first.out
    status = json.loads(run_cli("sync", "status", "--json").out)
    assert status["pending"] == 1 and status["counts"] == {"failed": 1}
    (row,) = status["uploads"]
    assert (row["state"], row["attempts"], row["url"]) == ("failed", 1, f"r2://{bucket_env.bucket}/{key}")
    assert "1 upload pending (1 failed)" in run_cli("sync", "status").out

    best.write_bytes(b"weights" * 5000)
    assert run_cli("sync", "retry", "999").code == 2
    retried = run_cli("sync", "retry", str(row["id"]))
    assert retried.code == 0, retried.err + retried.out
    assert db_rows("SELECT state, attempts, sha256 FROM uploads") == [
        ("synced", 2, hashlib.sha256(best.read_bytes()).hexdigest())]
    head = bucket_env.client().head_object(Bucket=bucket_env.bucket, Key=key)
    assert head["ContentLength"] == best.stat().st_size
    assert json.loads(run_cli("sync", "status", "--json").out)["pending"] == 0
    again = run_cli("sync", "retry", str(row["id"]))
    assert again.code == 2 and "already synced" in again.err


def test_bare_sync_uploads_what_is_pending(run_cli: Cli, db_rows: Rows, bucket_env: SeaweedFS, tmp_path: Path) -> None:
    from core.db.engine import open_store
    from core.storage.outbox import enqueue_upload

    local = tmp_path / "last.pt"
    local.write_bytes(b"last" * 1000)
    enqueue_upload(open_store(), job_id=None, checkpoint_id=None, local_path=local, bucket=bucket_env.bucket,
                   key="checkpoints/extra/last.pt")
    assert json.loads(run_cli("sync", "status", "--json").out)["counts"] == {"pending": 1}
    synced = run_cli("sync")
    assert synced.code == 0 and "synced" in synced.out
    assert db_rows("SELECT state FROM uploads") == [("synced",)]
    body = bucket_env.client().get_object(Bucket=bucket_env.bucket, Key="checkpoints/extra/last.pt")["Body"].read()
    assert body == local.read_bytes()


def test_status_without_a_bucket_and_retry_without_keys(run_cli: Cli, vp_home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert json.loads(run_cli("sync", "status", "--json").out) == {
        "pending": 0, "counts": {}, "next_due_in_s": None, "uploads": []}
    result = run_cli("sync", "retry")
    assert result.code == 1 and "no R2/S3 credentials" in result.err
