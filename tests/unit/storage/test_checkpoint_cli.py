"""``vision-platform checkpoint list|upload|download|import`` on a real data dir and a real bucket (SeaweedFS)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from core import paths
from core.cli import main
from core.config import config_from_dict
from core.db.engine import Store
from core.db.models import Checkpoint
from core.jobs import store as job_store
from core.services import jobs as job_service
from tests.fixtures.s3server import SeaweedFS


def _job_with_best(store: Store, tmp_path: Path, size: int = 200_000) -> tuple[int, bytes]:
    config = config_from_dict({"dataset": str(tmp_path / "data"), "model": "test_resnet", "name": "synced run"})
    job_id = job_service.queue_job(store, config, project_id=1)
    job_store.update_job(store, job_id, status="completed")
    weights = Path(job_service.job_detail(store, job_id).output_dir) / "weights"
    weights.mkdir(parents=True)
    payload = os.urandom(size)
    (weights / "best.pt").write_bytes(payload)
    with store.write() as session:
        session.add(Checkpoint(job_id=job_id, kind="best", path=str(weights / "best.pt"), epoch=2, size_bytes=size,
                               sha256=hashlib.sha256(payload).hexdigest(), metric_name="val/accuracy",
                               metric_value=0.75))
    return job_id, payload


@pytest.mark.s3
def test_upload_then_download_through_the_bucket(s3_env: SeaweedFS, store: Store, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    job_id, payload = _job_with_best(store, tmp_path)
    digest = hashlib.sha256(payload).hexdigest()
    assert main(["checkpoint", "download", str(job_id)]) == 2  # nothing uploaded yet
    assert f"upload it first (`vision-platform checkpoint upload {job_id}`)" in capsys.readouterr().err

    assert main(["checkpoint", "upload", str(job_id)]) == 0
    key = f"checkpoints/projects/1/jobs/{job_id}/best.pt"
    assert capsys.readouterr().out.strip() == f"best: synced  r2://{s3_env.bucket}/{key}"
    body = s3_env.client().get_object(Bucket=s3_env.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == digest
    with sqlite3.connect(store.db_file) as db:
        assert db.execute("select sync_state, r2_url from checkpoints").fetchall() == [("synced", f"r2://{s3_env.bucket}/{key}")]

    assert main(["checkpoint", "list", str(job_id), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["kind"], row["sync_state"], row["exists"], row["sha256"]) == ("best", "synced", True, digest)

    out = tmp_path / "fetched"
    assert main(["checkpoint", "download", str(job_id), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"downloaded to {out / 'best.pt'}"
    assert (out / "best.pt").read_bytes() == payload
    assert (paths.cache_dir() / "objects" / digest).read_bytes() == payload  # verified cache entry

    # The same object by URL, and a URL that does not exist.
    assert main(["checkpoint", "download", f"r2://{s3_env.bucket}/{key}"]) == 0
    assert capsys.readouterr().out.strip().endswith(digest)
    assert main(["checkpoint", "download", f"r2://{s3_env.bucket}/nothing/here.pt"]) == 2
    assert "no such object" in capsys.readouterr().err


def test_upload_needs_sync_settings(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    job_id, _payload = _job_with_best(store, tmp_path, size=1000)
    assert main(["checkpoint", "upload", str(job_id), "--kind", "last"]) == 2
    assert capsys.readouterr().err.strip() == f"error: job {job_id} has no last checkpoint to upload"
    assert main(["checkpoint", "upload", str(job_id)]) == 2
    assert "not uploaded: no R2/S3 credentials" in capsys.readouterr().err


def test_import_copies_reuses_and_never_overwrites(store: Store, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "resnet_weights.safetensors"
    source.write_bytes(b"first weights")
    assert main(["checkpoint", "import", str(source)]) == 0
    target = paths.weights_dir() / source.name
    assert target.read_bytes() == b"first weights"
    assert main(["checkpoint", "import", str(source)]) == 0  # the same file again: reused, no copy
    assert sorted(p.name for p in paths.weights_dir().iterdir()) == [source.name]

    other = tmp_path / "other" / source.name
    other.parent.mkdir()
    other.write_bytes(b"different weights, same name")
    assert main(["checkpoint", "import", str(other)]) == 0
    assert target.read_bytes() == b"first weights"  # the first import is kept
    numbered = paths.weights_dir() / "resnet_weights-1.safetensors"
    assert numbered.read_bytes() == b"different weights, same name"
    capsys.readouterr()

    assert main(["checkpoint", "list", "--json"]) == 0  # what `predict` can load
    choices = json.loads(capsys.readouterr().out)
    assert [(c["label"], c["framework"]) for c in choices] == [
        ("Imported: resnet_weights-1.safetensors", "timm"), ("Imported: resnet_weights.safetensors", "timm")]

    assert main(["checkpoint", "import", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt: no such weights file" in capsys.readouterr().err
