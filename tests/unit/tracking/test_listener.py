"""MlflowListener against a real MLflow SQLite store, read back through MlflowClient."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.db.engine import Store
from core.db.models import TrainingJob, TrainingMetric
from core.settings import Settings
from core.tracking import (
    MlflowListener,
    MlflowTracker,
    jobs_with_metric_gaps,
    open_run_markers,
    resend_metrics,
    terminate_orphaned_runs,
)
from tests.fixtures.tracking import epoch_events, make_job, persist
from tests.helpers.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def _job(store: Store, job_id: int) -> TrainingJob:
    with store.read() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _last_metric_id(store: Store, job_id: int) -> int:
    with store.read() as session:
        return int(session.scalar(select(func.max(TrainingMetric.id)).where(TrainingMetric.job_id == job_id)) or 0)


def _finish(store: Store, job_id: int, status: str) -> None:
    with store.write() as session:
        session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(status=status))


def _run_job_through(listener: MlflowListener, store: Store, job_id: int, epochs: int, steps: int) -> None:
    listener.on_job_start(job_id)
    for epoch in range(1, epochs + 1):
        events = epoch_events(epoch, steps)
        persist(store, job_id, events)
        listener.on_events(job_id, events)


def test_completed_job_run_has_params_metrics_artifacts(mlflow_home: Path, store: Store) -> None:
    job_id = make_job(store, epochs=3, split={"ratio": 0.7})
    run_dir = Path(_job(store, job_id).output_dir or "")
    (run_dir / "args.yaml").write_text(_job(store, job_id).config_yaml or "", encoding="utf-8")
    best = run_dir / "weights" / "best.pt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"best weights")
    plot = run_dir / "results.png"
    plot.write_bytes(b"\x89PNG fake plot")

    listener = MlflowListener(store, Settings(), flush_interval=0.2, step_every=1)
    _run_job_through(listener, store, job_id, epochs=3, steps=4)
    extra = [
        {"v": 1, "type": "checkpoint", "t": 0, "kind": "best", "path": str(best), "sha256": "0" * 64, "size": 12, "epoch": 3},
        {"v": 1, "type": "artifact", "t": 0, "kind": "plot", "path": str(plot)},
    ]
    persist(store, job_id, extra)
    listener.on_events(job_id, extra)
    _finish(store, job_id, "completed")
    listener.on_job_end(job_id, "completed")
    listener.close(timeout=30)

    job = _job(store, job_id)
    assert job.mlflow_run_id
    assert job.mlflow_synced_metric_id == _last_metric_id(store, job_id)
    client = MlflowTracker().client
    run = client.get_run(job.mlflow_run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "project_1"
    assert run.info.run_name == f"job_{job_id}"
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3"
    assert run.data.params["split.ratio"] == "0.7"
    assert run.data.params["model"] == "resnet18"
    assert run.data.tags["vision_platform.job_id"] == str(job_id)

    val_acc = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert [(m.step, round(m.value, 4)) for m in val_acc] == [(1, 0.51), (2, 0.52), (3, 0.53)]
    epoch_loss = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in epoch_loss] == [1, 2, 3]
    step_loss = client.get_metric_history(run.info.run_id, "step/train/loss")
    assert sorted(m.step for m in step_loss) == list(range(1, 13))

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"args.yaml", "weights", "plots"} <= names
    assert [a.path for a in client.list_artifacts(run.info.run_id, "weights")] == ["weights/best.pt"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == ["plots/results.png"]
    local = client.download_artifacts(run.info.run_id, "weights/best.pt", str(mlflow_home / "dl"))
    assert Path(local).read_bytes() == b"best weights"
    assert open_run_markers() == []
    assert jobs_with_metric_gaps(store) == []


@pytest.mark.parametrize(("status", "expected"), [("failed", "FAILED"), ("interrupted", "KILLED"), ("cancelled", "KILLED")])
def test_terminal_status_matches_the_job(mlflow_home: Path, store: Store, status: str, expected: str) -> None:
    job_id = make_job(store)
    listener = MlflowListener(store, Settings(), flush_interval=0.2, step_every=1)
    _run_job_through(listener, store, job_id, epochs=1, steps=2)
    _finish(store, job_id, status)
    listener.on_job_end(job_id, status)
    listener.close(timeout=30)
    run = MlflowTracker().client.get_run(_job(store, job_id).mlflow_run_id or "")
    assert run.info.status == expected
    assert len(MlflowTracker().client.get_metric_history(run.info.run_id, "step/train/loss")) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recording(method: Any, threads: list[str]) -> Any:
    def record(self: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return method(self, *args, **kwargs)

    return record


def test_unreachable_server_never_blocks_and_metrics_are_resent(
    mlflow_home: Path, store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    # Every tracker call records its thread: the runner's thread (this one) must never make one.
    calling_threads: list[str] = []
    for name in ("experiment_id", "create_run", "run_exists", "run_status", "reopen", "terminate",
                 "log_params", "log_metrics", "log_artifacts", "has_artifacts"):
        method = getattr(MlflowTracker, name)
        monkeypatch.setattr(MlflowTracker, name, _recording(method, calling_threads))
    down = MlflowTracker(f"http://127.0.0.1:{_closed_port()}")
    listener = MlflowListener(store, Settings(), tracker=down, flush_interval=0.1)
    job_id = make_job(store, epochs=4)
    caplog.set_level(logging.WARNING, logger="core.tracking.listener")

    listener.on_job_start(job_id)
    for epoch in range(1, 5):
        events = epoch_events(epoch, 50)
        persist(store, job_id, events)
        listener.on_events(job_id, events)
        if epoch == 1:  # the sender hits the dead server while "training" goes on
            wait_until(lambda: listener.last_error is not None, "the sender's first failed try")
    _finish(store, job_id, "completed")
    listener.on_job_end(job_id, "completed")
    listener.close(timeout=10)

    runner_thread = threading.current_thread().name
    assert calling_threads and runner_thread not in calling_threads, "the runner thread called MLflow"
    gap_warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(gap_warnings) == 1  # one warning, not one per batch
    job = _job(store, job_id)
    assert job.mlflow_run_id is None and job.mlflow_synced_metric_id is None
    assert open_run_markers() == [job_id]
    assert jobs_with_metric_gaps(store) == [job_id]

    # The store answers again (here: the local SQLite store); start-up finishes the run from SQLite.
    assert terminate_orphaned_runs(store) == {job_id: "FINISHED"}
    job = _job(store, job_id)
    client = MlflowTracker().client
    run = client.get_run(job.mlflow_run_id or "")
    assert run.info.status == "FINISHED"
    # Every 10th global step of the 200 (STEP_LOG_EVERY); every epoch metric.
    assert [m.step for m in client.get_metric_history(run.info.run_id, "step/train/loss")] == list(range(10, 201, 10))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/accuracy")] == [1, 2, 3, 4]
    assert job.mlflow_synced_metric_id == _last_metric_id(store, job_id)
    assert open_run_markers() == [] and jobs_with_metric_gaps(store) == []


def test_locked_store_leaves_a_gap_that_is_filled_when_it_unlocks(mlflow_home: Path, store: Store) -> None:
    listener = MlflowListener(store, Settings(), flush_interval=0.1)
    job_id = make_job(store, epochs=3)
    _run_job_through(listener, store, job_id, epochs=1, steps=5)
    wait_until(lambda: _job(store, job_id).mlflow_synced_metric_id == _last_metric_id(store, job_id),
               "epoch 1 synced to MLflow")

    listener.last_error = None
    lock = sqlite3.connect(mlflow_home / "mlflow.db", timeout=1, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another process holds mlflow.db: every write fails (busy)
    try:
        for epoch in (2, 3):
            events = epoch_events(epoch, 5)
            persist(store, job_id, events)
            listener.on_events(job_id, events)
        wait_until(lambda: listener.last_error is not None, "a failed write to the locked store")
        assert (_job(store, job_id).mlflow_synced_metric_id or 0) < _last_metric_id(store, job_id)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    _finish(store, job_id, "completed")
    listener.on_job_end(job_id, "completed")  # the end retries at once
    listener.close(timeout=60)
    job = _job(store, job_id)
    assert job.mlflow_synced_metric_id == _last_metric_id(store, job_id)
    run = MlflowTracker().client.get_run(job.mlflow_run_id or "")
    assert run.info.status == "FINISHED"
    assert [m.step for m in MlflowTracker().client.get_metric_history(run.info.run_id, "val/accuracy")] == [1, 2, 3]


def test_resend_metrics_replays_only_the_missing_rows(mlflow_home: Path, store: Store) -> None:
    job_id = make_job(store, epochs=2)
    for epoch in (1, 2):
        persist(store, job_id, epoch_events(epoch, 3))
    _finish(store, job_id, "completed")
    first = resend_metrics(store, job_id)
    assert first.metric_rows_sent == 8 and first.run_status == "FINISHED"
    again = resend_metrics(store, job_id)
    assert again.metric_rows_sent == 0 and again.run_id == first.run_id
    again_all = resend_metrics(store, job_id)
    assert again_all.metric_rows_sent == 0
    history = MlflowTracker().client.get_metric_history(first.run_id or "", "val/accuracy")
    assert [m.step for m in history] == [1, 2]  # nothing logged twice


def test_resumed_job_continues_its_run_after_rows_were_dropped(mlflow_home: Path, store: Store) -> None:
    from core.jobs import store as job_store

    job_id = make_job(store, epochs=3)
    listener = MlflowListener(store, Settings(), flush_interval=0.1)
    _run_job_through(listener, store, job_id, epochs=2, steps=2)
    _finish(store, job_id, "interrupted")
    listener.on_job_end(job_id, "interrupted")
    listener.close(timeout=30)
    run_id = _job(store, job_id).mlflow_run_id
    assert MlflowTracker().client.get_run(run_id or "").info.status == "KILLED"

    # Resume from epoch 2: the runner drops epoch 2's rows (their ids are reused by SQLite).
    job_store.drop_metrics_from_epoch(store, job_id, 2)
    _finish(store, job_id, "running")
    listener = MlflowListener(store, Settings(), flush_interval=0.1)
    listener.on_job_start(job_id)
    for epoch in (2, 3):
        events = epoch_events(epoch, 2)
        persist(store, job_id, events)
        listener.on_events(job_id, events)
    _finish(store, job_id, "completed")
    listener.on_job_end(job_id, "completed")
    listener.close(timeout=30)
    job = _job(store, job_id)
    assert job.mlflow_run_id == run_id
    run = MlflowTracker().client.get_run(run_id or "")
    assert run.info.status == "FINISHED"
    epochs = [m.step for m in MlflowTracker().client.get_metric_history(run_id or "", "val/accuracy")]
    assert sorted(set(epochs)) == [1, 2, 3]
    assert job.mlflow_synced_metric_id == _last_metric_id(store, job_id)


_KILLED_RUNNER = """
import json, sys, time
from sqlalchemy import text
from core.db.engine import open_store
from core.settings import Settings
from core.tracking import MlflowListener
from tests.fixtures.tracking import epoch_events, persist

store = open_store()
job_id = int(sys.argv[1])
listener = MlflowListener(store, Settings(), flush_interval=0.1)
listener.on_job_start(job_id)
events = epoch_events(1, 3)
persist(store, job_id, events)
listener.on_events(job_id, events)
while True:
    with store.read() as session:
        synced = session.execute(
            text("select mlflow_synced_metric_id from training_jobs where id = :i"), {"i": job_id}
        ).scalar()
    if synced:
        print("ready", flush=True)
        break
    time.sleep(0.05)
time.sleep(600)
"""


def test_killed_runner_leaves_run_that_startup_ends_killed(mlflow_home: Path, store: Store) -> None:
    job_id = make_job(store, epochs=5)
    env = dict(os.environ)  # PYTHONPATH: the repo and the network guard (conftest)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUNNER, str(job_id)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    run_id = _job(store, job_id).mlflow_run_id
    client = MlflowTracker().client
    assert client.get_run(run_id or "").info.status == "RUNNING"
    marker = json.loads((mlflow_home / "mlflow" / "open_runs" / f"job_{job_id}.json").read_text())
    assert marker["run_id"] == run_id

    # A job still marked running is not touched (a live runner may own it) ...
    assert terminate_orphaned_runs(store) == {}
    # ... once start-up reconciliation marks it interrupted, its run ends KILLED.
    _finish(store, job_id, "interrupted")
    assert terminate_orphaned_runs(store) == {job_id: "KILLED"}
    assert client.get_run(run_id or "").info.status == "KILLED"
    assert open_run_markers() == []


def test_startup_check_without_open_runs_does_not_import_mlflow(vp_home: Path, store: Store) -> None:
    code = (
        "import sys; from core.db.engine import open_store; from core.tracking import terminate_orphaned_runs;"
        "print(terminate_orphaned_runs(open_store())); sys.exit(1 if 'mlflow' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "{}"
