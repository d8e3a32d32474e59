"""Folder checkpoints (transformers ``save_pretrained``: ``weights/best/``) through the outbox and back,
against a real S3 server (SeaweedFS): every file under the checkpoint's prefix, verified, resumable and
idempotent like a single file; downloading restores the whole folder or nothing."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from core.cli import main
from core.config import config_from_dict
from core.db.engine import Store
from core.db.models import Checkpoint
from core.jobs import store as job_store
from core.rundir import RunDir, checkpoint_folder_of
from core.services import ServiceError
from core.services import checkpoints as checkpoint_service
from core.services import jobs as job_service
from core.settings import Settings
from core.storage.client import make_s3_client
from core.storage.credentials import get_credentials
from core.storage.folders import checkpoints_cache, relative_path
from core.storage.outbox import enqueue_job_checkpoints, list_uploads, run_outbox
from core.storage.r2url import checkpoint_key
from tests.fixtures.s3server import SeaweedFS

MiB = 1024 * 1024
pytestmark = pytest.mark.s3


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _job_with_best_folder(store: Store, tmp_path: Path, weights_size: int = 50_000) -> tuple[int, dict[str, bytes]]:
    """A completed job whose best checkpoint is a model folder, recorded as the runner records it."""
    config = config_from_dict({"dataset": str(tmp_path / "data"), "framework": "transformers",
                               "model": "vit-scratch", "name": "folder run"})
    job_id = job_service.queue_job(store, config, project_id=1)
    job_store.update_job(store, job_id, status="completed")
    folder = RunDir(Path(job_service.job_detail(store, job_id).output_dir or "")).checkpoint_dir("best")
    files = {"model.safetensors": os.urandom(weights_size), "config.json": b'{"model_type": "vit"}',
             "preprocessor_config.json": b"{}", "sub/notes.txt": b"nested files keep their place"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    with store.write() as session:
        session.add(Checkpoint(job_id=job_id, kind="best", path=str(folder / "model.safetensors"), epoch=2,
                               sha256=_sha(files["model.safetensors"]), size_bytes=weights_size))
    return job_id, files


def _bucket_files(s3: SeaweedFS, prefix: str) -> dict[str, tuple[bytes, str]]:
    client = s3.client()
    found = {}
    for item in client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", []):
        obj = client.get_object(Bucket=s3.bucket, Key=item["Key"])
        found[item["Key"].removeprefix(prefix)] = (obj["Body"].read(), obj["Metadata"].get("sha256", ""))
    return found


def test_a_folder_checkpoint_is_named_by_its_run_dir(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "job_1")
    assert checkpoint_folder_of(run.checkpoint_dir("best") / "model.safetensors") == run.checkpoint_dir("best")
    assert checkpoint_folder_of(run.best) is None  # weights/best.pt: a single file
    assert run.checkpoint_dir_swap("last") == (run.wdir / ".last.saving", run.wdir / ".last.old")
    with pytest.raises(Exception, match="not a safe file name"):
        relative_path("checkpoints/x/../../etc/passwd", "checkpoints/x/")


def test_folder_upload_lands_every_file_then_downloads_as_the_same_folder(
        s3_env: SeaweedFS, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job_id, files = _job_with_best_folder(store, tmp_path)
    assert main(["checkpoint", "upload", str(job_id)]) == 0
    prefix = checkpoint_key(1, job_id, "best/")
    url = f"r2://{s3_env.bucket}/{prefix}"
    assert capsys.readouterr().out.strip() == f"best: synced  {url}"
    in_bucket = _bucket_files(s3_env, prefix)
    assert sorted(in_bucket) == sorted(files)
    for name, data in files.items():
        assert in_bucket[name] == (data, _sha(data))
    with sqlite3.connect(store.db_file) as db:
        assert db.execute("select sync_state, r2_url from checkpoints").fetchall() == [("synced", url)]
    assert {row.state for row in list_uploads(store)} == {"synced"} and len(list_uploads(store)) == len(files)

    # The folder is gone from this computer: downloading by job id restores all of it, verified.
    best = checkpoint_folder_of(job_store.checkpoints(store, job_id)[0].path)
    assert best is not None
    for file in best.rglob("*"):
        file.unlink() if file.is_file() else None
    with pytest.raises(ServiceError, match="not on this computer"):
        checkpoint_service.job_model(store, job_id)
    assert main(["checkpoint", "download", str(job_id)]) == 0
    restored = Path(capsys.readouterr().out.strip().removeprefix("downloaded to "))
    assert restored == checkpoints_cache() / _sha(files["model.safetensors"])
    assert {f.relative_to(restored).as_posix(): f.read_bytes() for f in restored.rglob("*") if f.is_file()} == files
    model = checkpoint_service.job_model(store, job_id)
    assert model.path == str(restored / "model.safetensors") and model.trusted

    # Copied to a folder of the user's choice, as a folder named after the checkpoint.
    out = tmp_path / "fetched"
    assert main(["checkpoint", "download", str(job_id), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"downloaded to {out / 'best'}"
    assert (out / "best" / "sub" / "notes.txt").read_bytes() == files["sub/notes.txt"]


def test_big_folder_files_go_multipart_and_a_second_pass_sends_nothing(s3_env: SeaweedFS, store: Store,
                                                                     tmp_path: Path) -> None:
    job_id, files = _job_with_best_folder(store, tmp_path, weights_size=11 * MiB)
    settings = Settings(r2_endpoint_url=s3_env.endpoint_url, r2_bucket=s3_env.bucket)
    enqueue_job_checkpoints(store, settings, job_id)
    report = run_outbox(store, settings, part_size=5 * MiB)
    assert report.synced == len(files) and report.failed == 0
    head = s3_env.client().head_object(Bucket=s3_env.bucket, Key=checkpoint_key(1, job_id, "best/model.safetensors"))
    assert head["ETag"].strip('"').endswith("-3")  # 11 MiB in 5 MiB parts

    # Queued again (the user presses Upload twice): verified in the bucket, not sent again.
    enqueue_job_checkpoints(store, settings, job_id)
    again = run_outbox(store, settings, part_size=5 * MiB)
    assert again.synced == len(files) and all(outcome.skipped for outcome in again.outcomes)


def test_a_tampered_object_fails_the_download_and_leaves_no_folder(s3_env: SeaweedFS, store: Store,
                                                                  tmp_path: Path) -> None:
    job_id, files = _job_with_best_folder(store, tmp_path)
    settings = Settings(r2_endpoint_url=s3_env.endpoint_url, r2_bucket=s3_env.bucket)
    checkpoint_service.upload_checkpoints(store, job_id, settings=settings)
    key = checkpoint_key(1, job_id, "best/config.json")
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=key, Body=b'{"model_type": "bad"}',
                               Metadata={"sha256": _sha(files["config.json"])})
    with pytest.raises(ServiceError, match="does not match"):
        checkpoint_service.download_checkpoint(store, job_id, settings=settings)
    assert list(checkpoints_cache().iterdir()) == []  # neither the folder nor a partial staging copy


def test_a_folder_with_a_missing_file_never_marks_the_checkpoint_synced(s3_env: SeaweedFS, store: Store,
                                                                       tmp_path: Path) -> None:
    job_id, _files = _job_with_best_folder(store, tmp_path)
    settings = Settings(r2_endpoint_url=s3_env.endpoint_url, r2_bucket=s3_env.bucket)
    enqueue_job_checkpoints(store, settings, job_id)
    best = checkpoint_folder_of(job_store.checkpoints(store, job_id)[0].path)
    assert best is not None
    (best / "preprocessor_config.json").unlink()  # gone before the pass: that row fails by name
    client = make_s3_client(settings, get_credentials())
    report = run_outbox(store, settings, client=client)
    assert report.failed == 1 and report.synced == 3
    (row,) = job_store.checkpoints(store, job_id)
    assert (row.sync_state, row.r2_url) == ("failed", None)
    failed = [upload for upload in list_uploads(store) if upload.state == "failed"]
    assert json.dumps([u.local_path for u in failed]).count("preprocessor_config.json") == 1
