"""The outbox against a real server that goes away, comes back, and misbehaves behind a fault proxy."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from core.db.engine import Store
from core.db.models import Checkpoint, TrainingJob, Upload, utcnow
from core.settings import Settings
from core.storage.client import make_s3_client
from core.storage.credentials import get_credentials
from core.storage.listener import SyncListener
from core.storage.outbox import enqueue_job_checkpoints, enqueue_upload, list_uploads, run_outbox
from tests.fixtures.faultproxy import FaultProxy
from tests.fixtures.s3server import SeaweedFS
from tests.helpers.waiting import wait_until

MiB = 1024 * 1024
pytestmark = pytest.mark.s3


def _completed_job_with_checkpoints(store: Store, tmp_path: Path, sizes: dict[str, int]) -> int:
    """A finished job whose runner recorded best/last checkpoints (rows as the runner writes them)."""
    with store.write() as session:
        job = TrainingJob(
            project_id=1, user_id=1, framework="timm", model_name="resnet18", task_type="classify",
            dataset_path=str(tmp_path / "ds"), status="completed",
        )
        session.add(job)
        session.flush()
        job_id = job.id
        for kind, size in sizes.items():
            path = tmp_path / f"job{job_id}_{kind}.pt"
            data = os.urandom(size)
            path.write_bytes(data)
            session.add(Checkpoint(job_id=job_id, kind=kind, path=str(path), sha256=hashlib.sha256(data).hexdigest(),
                                   size_bytes=size, epoch=1))
    return job_id


def _settings(endpoint: str, bucket: str) -> Settings:
    return Settings(r2_endpoint_url=endpoint, r2_bucket=bucket)


def assert_synced_rows_are_really_in_the_bucket(store: Store, s3: SeaweedFS) -> None:
    """The invariant: nothing is marked synced that the bucket does not hold with the right hash."""
    client = s3.client()
    for row in list_uploads(store, ("synced",)):
        body = client.get_object(Bucket=row.bucket, Key=row.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == row.sha256 == hashlib.sha256(Path(row.local_path).read_bytes()).hexdigest()


def test_completed_job_checkpoints_land_under_the_design_key_layout(
    s3_env: SeaweedFS, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 50_000, "last": 60_000})
    settings = Settings.load(store)  # env: AWS_S3_ENDPOINT_URL, R2_BUCKET
    # Uploads wait at a gate: the runner's on_job_end returns while they cannot have started, so it
    # does not wait for them (it would block on the gate); they run on the listener's own thread.
    gate, entered = threading.Event(), threading.Event()
    upload_threads: list[str] = []

    def gated_run_outbox(*args: Any, **kwargs: Any) -> Any:
        upload_threads.append(threading.current_thread().name)
        entered.set()
        assert gate.wait(60), "the test never opened the gate"
        return run_outbox(*args, **kwargs)

    monkeypatch.setattr("core.storage.listener.run_outbox", gated_run_outbox)
    listener = SyncListener(store, settings)
    listener.on_job_end(job_id, "completed")
    assert entered.wait(60) and not gate.is_set()
    assert threading.current_thread().name not in upload_threads and upload_threads[0] == "r2-sync"
    gate.set()
    wait_until(lambda: sum(r.state == "synced" for r in list_uploads(store)) == 2, "both uploads synced")
    listener.close(5)
    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket=s3_env.bucket)["Contents"])
    assert keys == [f"checkpoints/projects/1/jobs/{job_id}/best.pt", f"checkpoints/projects/1/jobs/{job_id}/last.pt"]
    with store.read() as session:
        rows = {c.kind: (c.sync_state, c.r2_url) for c in session.scalars(select(Checkpoint))}
    assert rows["best"] == ("synced", f"r2://{s3_env.bucket}/checkpoints/projects/1/jobs/{job_id}/best.pt")
    assert rows["last"][0] == "synced"
    assert_synced_rows_are_really_in_the_bucket(store, s3_env)


def test_endpoint_down_job_completes_then_sync_uploads_when_back(
    s3_env: SeaweedFS, store: Store, tmp_path: Path
) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 40_000, "last": 40_000})
    settings = Settings.load(store)
    s3_env.stop()
    listener = SyncListener(store, settings)
    listener.on_job_end(job_id, "completed")
    wait_until(lambda: listener.passes >= 1, "the first sync pass")
    listener.close(5)
    rows = list_uploads(store)
    assert len(rows) == 2
    # Endpoint down: the first row failed with the reason and a retry time, the second was not tried.
    failed = [r for r in rows if r.state == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 1
    assert failed[0].next_retry_at is not None and failed[0].next_retry_at > utcnow()
    assert "Connect" in (failed[0].last_error or "")
    assert [r.state for r in rows if r is not failed[0]] == ["pending"]

    # Nothing is due yet: a plain pass leaves the failed row alone (backoff) ...
    s3_env.start()
    report = run_outbox(store, settings)
    assert [o.state for o in report.outcomes] == ["synced"]
    # ... and once its retry time has come it goes too.
    later = utcnow() + timedelta(hours=2)
    report = run_outbox(store, settings, now=later)
    assert [o.state for o in report.outcomes] == ["synced"]
    assert {r.state for r in list_uploads(store)} == {"synced"}
    assert_synced_rows_are_really_in_the_bucket(store, s3_env)


def test_no_credentials_rows_stay_pending(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 1000})
    settings = Settings(r2_endpoint_url="http://127.0.0.1:9")
    enqueue_job_checkpoints(store, settings, job_id)
    report = run_outbox(store, settings)
    assert report.disabled_reason and "credentials" in report.disabled_reason
    assert [(r.state, r.attempts) for r in list_uploads(store)] == [("pending", 0)]


def test_row_left_uploading_by_a_dead_process_is_taken_over(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 1000})
    settings = Settings.load(store)
    (upload_id,) = enqueue_job_checkpoints(store, settings, job_id)
    with store.write() as session:  # a crashed uploader: state uploading, heartbeat long ago
        session.execute(update(Upload).where(Upload.id == upload_id).values(
            state="uploading", attempts=1, updated_at=utcnow() - timedelta(hours=1)))
    report = run_outbox(store, settings)
    assert [o.state for o in report.outcomes] == ["synced"]
    assert list_uploads(store)[0].attempts == 2


def _proxy_client(proxy: FaultProxy, s3: SeaweedFS, **options: Any) -> Any:
    return make_s3_client(_settings(proxy.endpoint_url, s3.bucket), get_credentials(), **options)


def test_503s_are_retried_and_the_object_verified(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 200_000})
    settings = _settings(s3_env.endpoint_url, s3_env.bucket)
    enqueue_job_checkpoints(store, settings, job_id)
    with FaultProxy(s3_env.port, "503", count=2) as proxy:
        report = run_outbox(store, settings, client=_proxy_client(proxy, s3_env))
        assert proxy.faults_done == 2
    assert [o.state for o in report.outcomes] == ["synced"]
    assert_synced_rows_are_really_in_the_bucket(store, s3_env)


def test_503s_beyond_the_retry_budget_fail_cleanly(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 10_000})
    settings = _settings(s3_env.endpoint_url, s3_env.bucket)
    enqueue_job_checkpoints(store, settings, job_id)
    with FaultProxy(s3_env.port, "503", count=100) as proxy:
        report = run_outbox(store, settings, client=_proxy_client(proxy, s3_env))
    (row,) = list_uploads(store)
    assert row.state == "failed" and "503" in (row.last_error or "") or "SlowDown" in (row.last_error or "")
    assert row.next_retry_at is not None
    assert report.stopped_early
    assert s3_env.client().list_objects_v2(Bucket=s3_env.bucket).get("KeyCount", 0) == 0


def test_connection_reset_mid_multipart_upload(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"last": 12 * MiB})
    settings = _settings(s3_env.endpoint_url, s3_env.bucket)
    enqueue_job_checkpoints(store, settings, job_id)
    with FaultProxy(s3_env.port, "reset", count=1, after_bytes=3 * MiB) as proxy:
        report = run_outbox(store, settings, client=_proxy_client(proxy, s3_env), part_size=5 * MiB)
        assert proxy.faults_done == 1
    # botocore retried the reset part (standard mode), or the row is failed for a later pass; either
    # way the invariant holds and a second pass completes it.
    if report.outcomes[0].state != "synced":
        report = run_outbox(store, settings, retry_failed=True)
    assert {r.state for r in list_uploads(store)} == {"synced"}
    assert_synced_rows_are_really_in_the_bucket(store, s3_env)
    assert s3_env.client().list_multipart_uploads(Bucket=s3_env.bucket).get("Uploads", []) == []


def test_slow_endpoint_times_out_within_its_attempts(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    job_id = _completed_job_with_checkpoints(store, tmp_path, {"best": 10_000})
    settings = _settings(s3_env.endpoint_url, s3_env.bucket)
    enqueue_job_checkpoints(store, settings, job_id)
    with FaultProxy(s3_env.port, "stall") as proxy:
        client = _proxy_client(proxy, s3_env, connect_timeout=1, read_timeout=1, max_attempts=2)
        run_outbox(store, settings, client=client)
    # Bounded: a stalled endpoint costs the configured attempts (each a read timeout) of the upload's
    # two requests (HEAD to skip an existing object, then PUT), no more.
    assert 1 <= proxy.connections <= 2 * 2, proxy.connections
    (row,) = list_uploads(store)
    assert row.state == "failed" and "timeout" in (row.last_error or "").lower()
    assert s3_env.client().list_objects_v2(Bucket=s3_env.bucket).get("KeyCount", 0) == 0


def test_enqueue_twice_uploads_once(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(b"x" * 100)
    first = enqueue_upload(store, job_id=None, checkpoint_id=None, local_path=path, bucket=s3_env.bucket, key="x.pt")
    second = enqueue_upload(store, job_id=None, checkpoint_id=None, local_path=path, bucket=s3_env.bucket, key="x.pt")
    assert first == second
    report = run_outbox(store, _settings(s3_env.endpoint_url, s3_env.bucket))
    assert [o.state for o in report.outcomes] == ["synced"]
