"""``mlflow-ui`` starts a real MLflow server on our store; ``mlflow-sync`` re-sends gaps."""

from __future__ import annotations

import argparse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import update

from core.db.engine import Store
from core.db.models import TrainingJob
from core.tracking.cli import register, start_mlflow_ui, wait_until_listening
from core.tracking.mlflow_logger import MlflowTracker
from tests.fixtures.tracking import epoch_events, make_job, persist


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.mark.slow  # starts a real MLflow server: 10-60 s on 2 busy cores
def test_mlflow_ui_serves_our_store_on_loopback(mlflow_home: Path, store: Store) -> None:
    process, url = start_mlflow_ui()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert wait_until_listening(int(url.rsplit(":", 1)[1]), process, timeout=90)
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(20)


def test_mlflow_sync_command_resends_finished_jobs(
    mlflow_home: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = make_job(store, epochs=1)
    persist(store, job_id, epoch_events(1, 3))
    with store.write() as session:
        session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(status="completed"))
    args = _parser().parse_args(["mlflow-sync"])
    assert args.handler(args) == 0
    assert f"job {job_id}: 4 metric rows re-sent" in capsys.readouterr().out
    with store.read() as session:
        run_id = session.get(TrainingJob, job_id).mlflow_run_id  # type: ignore[union-attr]
    assert MlflowTracker().client.get_run(run_id or "").info.status == "FINISHED"
    args = _parser().parse_args(["mlflow-sync"])
    assert args.handler(args) == 0
    assert "up to date" in capsys.readouterr().out
