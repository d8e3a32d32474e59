"""``vision-platform job list|show|delete|clone|cancel|resume`` on a real data dir (no training here:
the jobs are rows and run folders made through the same services; real runs are in tests/e2e)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from core.cli import main
from core.config import config_from_dict, load_config
from core.db.engine import Store
from core.jobs import store as job_store
from core.services import jobs as job_service


def _job(store: Store, tmp_path: Path, name: str = "colours", status: str = "completed") -> int:
    config = config_from_dict({"dataset": str(tmp_path / "data"), "model": "test_resnet", "epochs": 2,
                               "image_size": 32, "name": name})
    job_id = job_service.queue_job(store, config, project_id=1)
    job_store.update_job(store, job_id, status=status)
    return job_id


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.db_file) as db:  # an independent view of the file
        return db.execute(sql).fetchall()


def test_list_and_show_as_text_and_json(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _job(store, tmp_path, "first")
    second = _job(store, tmp_path, "second", status="failed")
    job_store.update_job(store, second, error_message="CUDA out of memory")

    assert main(["job", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(j["id"], j["name"], j["status"]) for j in listed] == [(second, "second", "failed"), (first, "first", "completed")]
    assert main(["jobs"]) == 0  # the older name prints the same table
    table = capsys.readouterr().out
    assert "STATUS" in table and "second" in table and "failed" in table

    assert main(["job", "show", str(second), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["error_message"] == "CUDA out of memory" and shown["epochs"] == 2
    assert yaml.safe_load(shown["config_yaml"])["name"] == "second"
    assert shown["metrics"] == [] and shown["checkpoints"] == []
    assert main(["show", str(second)]) == 0
    assert "status      failed — CUDA out of memory" in capsys.readouterr().out

    assert main(["job", "list", "--project", "No such project"]) == 2
    assert "No such project" in capsys.readouterr().err


def test_unknown_job_is_named_with_exit_code_2(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["job", "show", "42"], ["show", "42"], ["job", "cancel", "42"], ["job", "resume", "42"],
                 ["job", "delete", "42"], ["job", "clone", "42"]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.strip() == "error: no job with id 42: `vision-platform job list` shows the jobs"


def test_delete_removes_rows_and_the_run_folder(store: Store, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    done = _job(store, tmp_path)
    queued = _job(store, tmp_path, status="queued")
    run_dir = Path(job_service.job_detail(store, done).output_dir)
    (run_dir / "weights").mkdir(parents=True)
    (run_dir / "weights" / "last.pt").write_bytes(b"x" * 2_000_000)
    with store.write() as session:
        from core.db.models import Checkpoint

        session.add(Checkpoint(job_id=done, kind="last", path=str(run_dir / "weights" / "last.pt")))

    assert main(["job", "delete", str(done), str(queued)]) == 2  # the queued one is refused
    captured = capsys.readouterr()
    assert f"deleted job {done} (colours) and {run_dir} (2.0 MB)" in captured.out
    assert f"error: job {queued} is queued: cancel it first" in captured.err
    assert not run_dir.exists()
    assert _rows(store, "select id, status from training_jobs") == [(queued, "queued")]
    assert _rows(store, "select count(*) from checkpoints") == [(0,)]


def test_clone_writes_the_config_or_queues_a_copy(store: Store, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = _job(store, tmp_path)
    out = tmp_path / "copy.yaml"
    assert main(["job", "clone", str(source), "--out", str(out), "--name", "again"]) == 0
    config = load_config(out)  # what `vision-platform train` reads
    assert (config.name, config.model, config.epochs, config.image_size) == ("again", "test_resnet", 2, 32)
    assert main(["job", "clone", str(source)]) == 0
    assert yaml.safe_load(capsys.readouterr().out.split("\n", 1)[1])["model"] == "test_resnet"

    assert main(["job", "clone", str(source), "--queue"]) == 0
    rows = _rows(store, "select id, name, status, project_id, epochs from training_jobs order by id")
    assert rows[-1][1:] == ("colours", "queued", 1, 2) and rows[-1][0] != source
    assert Path(job_service.job_detail(store, int(rows[-1][0])).output_dir).is_dir()


def test_cancel_a_queued_job_and_resume_needs_last_pt(store: Store, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    queued = _job(store, tmp_path, status="queued")
    assert main(["job", "cancel", str(queued)]) == 0
    assert capsys.readouterr().out.strip() == f"job {queued} cancelled"
    assert _rows(store, f"select status, error_message from training_jobs where id = {queued}") == [
        ("cancelled", "Cancelled before it started")]
    assert main(["cancel", str(queued)]) == 2  # nothing left to cancel
    assert "only queued or running jobs can be cancelled" in capsys.readouterr().err

    assert main(["job", "resume", str(queued)]) == 2
    assert capsys.readouterr().err.strip() == f"error: job {queued} has no last.pt checkpoint to resume from"
    assert main(["job", "extend", str(queued), "--epochs", "-1"]) == 2
    assert "positive number of epochs" in capsys.readouterr().err
    assert _rows(store, f"select status from training_jobs where id = {queued}") == [("cancelled",)]
