"""Job revisions (migration 0005) and ``job_changes``: a jobs list reads only the rows that changed,
whoever wrote them, and nothing when nothing changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from core.config import config_from_dict
from core.db.engine import Store
from core.jobs import store as job_store
from core.migrations.runner import upgrade_to_head
from core.services import jobs as job_service


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "jobs.db")
    store.migrate()
    store.ensure_defaults()
    return store


def _changed_ids(store: Store, marks: job_service.ListMarks) -> tuple[list[int], job_service.JobChanges]:
    changes = job_service.job_changes(store, None, after_id=marks.max_id, after_revision=marks.revision,
                                      checkpoint_mark=marks.checkpoint_mark, known_total=sum(marks.counts.values()))
    return sorted(row.id for row in changes.rows), changes


def _marks_after(changes: job_service.JobChanges) -> job_service.ListMarks:
    return job_service.ListMarks(changes.max_id, changes.checkpoint_mark, changes.counts, changes.revision)


def test_only_the_changed_jobs_are_read_and_none_when_nothing_changed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    config = config_from_dict({"dataset": str(tmp_path)})
    ids = [job_store.create_job(store, config) for _ in range(4)]  # queued: unfinished, as a sweep leaves them
    marks = job_service.list_marks(store)
    assert _changed_ids(store, marks)[0] == []  # four unfinished jobs, nothing read

    job_store.update_job(store, ids[1], current_step=7)  # progress, through the ORM
    changed, changes = _changed_ids(store, marks)
    assert changed == [ids[1]] and changes.revision > marks.revision
    marks = _marks_after(changes)
    assert _changed_ids(store, marks)[0] == []

    with sqlite3.connect(store.db_file) as raw:  # another process, raw SQL: a job finishes
        raw.execute("UPDATE training_jobs SET status = 'completed' WHERE id = ?", (ids[2],))
    new = job_store.create_job(store, config)
    changed, changes = _changed_ids(store, marks)
    assert changed == [ids[2], new] and changes.counts == {"queued": 4, "completed": 1}
    assert changes.max_id == new and changes.ids is None


def test_a_deleted_job_brings_every_id(tmp_path: Path) -> None:
    store = _store(tmp_path)
    config = config_from_dict({"dataset": str(tmp_path)})
    ids = [job_store.create_job(store, config) for _ in range(3)]
    marks = job_service.list_marks(store)
    with sqlite3.connect(store.db_file) as raw:
        raw.execute("DELETE FROM training_jobs WHERE id = ?", (ids[0],))
    changed, changes = _changed_ids(store, marks)
    assert changed == [] and changes.ids == frozenset(ids[1:])


def test_db_at_revision_0004_upgrades_with_a_revision_per_job_and_the_triggers(tmp_path: Path) -> None:
    old = Store(tmp_path / "old.db")
    upgrade_to_head(old.write_engine, "0004")
    with old.write_engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username) VALUES (1, 'local')"))
        conn.execute(text("INSERT INTO projects (id, user_id, name) VALUES (1, 1, 'P')"))
        for job_id in (3, 5, 9):
            conn.execute(text(
                "INSERT INTO training_jobs (id, project_id, user_id, framework, model_name, task_type, dataset_path,"
                " status, cancel_requested, resume_requested) VALUES (:j, 1, 1, 'timm', 'm', 'classification', 'd',"
                " 'queued', 0, 0)"), {"j": job_id})
    old.dispose()
    upgraded = Store(tmp_path / "old.db")
    upgraded.migrate()
    with sqlite3.connect(upgraded.db_file) as raw:
        assert raw.execute("SELECT id, revision FROM training_jobs ORDER BY id").fetchall() == [(3, 3), (5, 5), (9, 9)]
        raw.execute("UPDATE training_jobs SET current_epoch = 1 WHERE id = 3")
        raw.execute("INSERT INTO training_jobs (id, project_id, user_id, framework, model_name, task_type, dataset_path,"
                    " status, cancel_requested, resume_requested) VALUES (10, 1, 1, 'timm', 'm', 'classification', 'd',"
                    " 'queued', 0, 0)")
        assert raw.execute("SELECT id, revision FROM training_jobs ORDER BY id").fetchall() == [
            (3, 10), (5, 5), (9, 9), (10, 11)]
    upgraded.dispose()
