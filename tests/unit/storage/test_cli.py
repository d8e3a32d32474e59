"""``vision-platform upload JOB_ID`` and ``vision-platform sync`` against the test server."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pytest

from core.db.engine import Store
from core.db.models import Checkpoint, TrainingJob
from core.storage.cli import register
from tests.fixtures.s3server import SeaweedFS

pytestmark = pytest.mark.s3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_upload_then_sync_commands(s3_env: SeaweedFS, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    best = tmp_path / "best.pt"
    best.write_bytes(b"weights" * 1000)
    with store.write() as session:
        job = TrainingJob(project_id=1, user_id=1, framework="timm", model_name="resnet18", task_type="classify",
                          dataset_path="d", status="completed")
        session.add(job)
        session.flush()
        job_id = job.id
        session.add(Checkpoint(job_id=job_id, kind="best", path=str(best),
                               sha256=hashlib.sha256(best.read_bytes()).hexdigest()))
    args = _parser().parse_args(["upload", str(job_id)])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "synced" in out and f"checkpoints/projects/1/jobs/{job_id}/best.pt" in out
    head = s3_env.client().head_object(Bucket=s3_env.bucket, Key=f"checkpoints/projects/1/jobs/{job_id}/best.pt")
    assert head["Metadata"]["sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()

    # A row that cannot succeed (file deleted) makes `sync` exit 1 and show the reason.
    best.unlink()
    with store.write() as session:
        session.add(Checkpoint(job_id=job_id, kind="last", path=str(best)))
    args = _parser().parse_args(["upload", str(job_id)])
    assert args.handler(args) == 1
    args = _parser().parse_args(["sync"])
    assert args.handler(args) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "file not found" in out


def test_unknown_job(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["upload", "999"])
    assert args.handler(args) == 2
