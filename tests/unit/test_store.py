from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from core.config import config_from_dict
from core.db.engine import Store
from core.db.models import Base, Project, TrainingJob, TrainingMetric, User
from core.jobs import store as job_store
from core.migrations.runner import HEAD_REVISION, current_revision, upgrade_to_head


def test_new_store_has_default_user_and_project_and_wal(store: Store) -> None:
    with store.read() as session:
        assert session.scalars(select(User.username)).all() == ["local"]
        assert session.scalars(select(Project.name)).all() == ["Default"]
    with store.read_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    assert current_revision(store.write_engine) == HEAD_REVISION


def test_migrations_match_models(store: Store) -> None:
    """The schema Alembic builds is the schema the models describe (no forgotten migration)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.write_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # SQLite reflects no server defaults/FK names reliably; table and column sets must match exactly.
    structural = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
    assert structural == []


def test_db_at_first_revision_upgrades_with_rows_intact(tmp_path: Path) -> None:
    db_file = tmp_path / "old.db"
    old = Store(db_file)
    upgrade_to_head(old.write_engine, "0001")
    with old.write_engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username) VALUES (1, 'alice')"))
        conn.execute(text("INSERT INTO projects (id, user_id, name) VALUES (7, 1, 'Cats')"))
        conn.execute(text(
            "INSERT INTO training_jobs (id, project_id, user_id, framework, model_name, task_type, dataset_path, "
            "epochs, status, mlflow_run_id) VALUES (20, 7, 1, 'ultralytics', 'yolo11n', 'object_detection', "
            "'r2://b/datasets/1/dataset.zip', 5, 'completed', 'abc')"
        ))
        conn.execute(text(
            "INSERT INTO training_metrics (job_id, epoch, loss, accuracy, extra_metrics) VALUES (20, 1, 0.5, 0.7, '{\"val/map50\": 0.4}')"
        ))
    old.dispose()
    assert "datasets" not in inspect(Store(db_file).read_engine).get_table_names()

    upgraded = Store(db_file)
    upgraded.migrate()
    upgraded.ensure_defaults()
    assert current_revision(upgraded.write_engine) == HEAD_REVISION
    with upgraded.read() as session:
        job = session.get(TrainingJob, 20)
        assert job is not None
        assert (job.model_name, job.status, job.mlflow_run_id, job.epochs) == ("yolo11n", "completed", "abc", 5)
        assert job.cancel_requested is False
        metric = session.scalars(select(TrainingMetric)).one()
        assert (metric.loss, metric.accuracy, metric.kind) == (0.5, 0.7, "epoch")
        assert session.get(Project, 7).name == "Cats"  # type: ignore[union-attr]
        # ensure_defaults adds no second "Default" project to a DB that has projects
        assert session.scalars(select(Project.name)).all() == ["Cats"]
    assert {"datasets", "checkpoints", "uploads", "artifacts"} <= set(inspect(upgraded.read_engine).get_table_names())
    upgraded.dispose()


def test_concurrent_reads_and_writes_never_fail_with_locked(store: Store, tmp_path: Path) -> None:
    config = config_from_dict({"dataset": str(tmp_path)})
    job_id = job_store.create_job(store, config)
    errors: list[BaseException] = []
    stop = threading.Event()

    rounds = {"writer": 0, "reader": 0, "second_writer": 0}
    enough = {"writer": 200, "reader": 100, "second_writer": 100}  # every thread overlaps the others

    def count(name: str) -> None:
        rounds[name] += 1
        if all(rounds[key] >= enough[key] for key in enough):
            stop.set()

    def writer() -> None:
        try:
            while not stop.is_set():
                with store.write() as session:
                    session.add(TrainingMetric(job_id=job_id, epoch=1, step=1, loss=0.1, kind="step"))
                count("writer")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            stop.set()

    def reader() -> None:
        try:
            while not stop.is_set():
                job_store.metric_count(store, job_id)
                job_store.list_jobs(store)
                count("reader")
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
            stop.set()

    def second_writer() -> None:
        try:
            while not stop.is_set():
                job_store.update_job(store, job_id, current_step=rounds["second_writer"])
                count("second_writer")
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=t) for t in (writer, reader, reader, second_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert job_store.metric_count(store, job_id) >= enough["writer"]
    with sqlite3.connect(store.db_file) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_reconcile_marks_orphaned_running_jobs_interrupted(store: Store, tmp_path: Path) -> None:
    config = config_from_dict({"dataset": str(tmp_path)})
    job_id = job_store.create_job(store, config)
    # A runner PID that cannot exist (beyond pid_max) stands for an app that was killed.
    job_store.update_job(store, job_id, status="running", runner_pid=2**22 + 12345, runner_started=1.0)
    assert job_store.reconcile_orphaned_jobs(store) == [job_id]
    job = job_store.get_job(store, job_id)
    assert job.status == "interrupted"
    assert job.completed_at is not None


def _sleeper(*argv: str) -> subprocess.Popen[bytes]:
    """A live process whose command line is ``python -c … ARGV…`` (what psutil's cmdline shows)."""
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", *argv], stdin=subprocess.PIPE)


def test_start_up_kills_only_the_job_s_own_leftover_worker(store: Store, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "job_1"
    stranger = _sleeper("some", "other", "program")  # after a reboot the recorded PID is someone else's
    leftover = _sleeper("worker", "--run-dir", str(run_dir))  # this job's worker, outliving its runner
    try:
        jobs = []
        for pid in (stranger.pid, leftover.pid):
            job_id = job_store.create_job(store, config_from_dict({"dataset": str(tmp_path)}))
            job_store.update_job(store, job_id, status="running", runner_pid=2**22 + 12345, runner_started=1.0,
                                 worker_pid=pid, output_dir=str(run_dir))
            jobs.append(job_id)
        assert job_store.reconcile_orphaned_jobs(store) == jobs
        assert leftover.wait(60) is not None  # killed
        assert stranger.poll() is None  # untouched
    finally:
        for process in (stranger, leftover):
            process.kill()
            process.wait(60)


def test_cancel_queued_job_and_refuse_cancel_of_finished(store: Store, tmp_path: Path) -> None:
    config = config_from_dict({"dataset": str(tmp_path)})
    job_id = job_store.create_job(store, config)
    assert job_store.request_cancel(store, job_id) == "cancelled"
    assert job_store.get_job(store, job_id).status == "cancelled"
    with pytest.raises(job_store.JobError, match="only queued or running"):
        job_store.request_cancel(store, job_id)


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    from alembic.script import ScriptDirectory

    from core.migrations.runner import HEAD_REVISION, MIGRATIONS_DIR, alembic_config

    config = alembic_config(None)  # type: ignore[arg-type]
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
