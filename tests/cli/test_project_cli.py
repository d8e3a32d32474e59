"""``vision-platform project list|create|rename|delete`` on a real data dir."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli.conftest import CliResult
from tests.helpers.datasets_gen import make_dice_detection

Cli = Callable[..., CliResult]
Rows = Callable[..., list[tuple[Any, ...]]]


def test_create_list_rename_delete(run_cli: Cli, db_rows: Rows, tmp_path: Path) -> None:
    created = run_cli("project", "create", "  Cats  ")
    assert created.code == 0, created.err
    assert db_rows("SELECT name FROM projects ORDER BY id") == [("Default",), ("Cats",)]

    listed = run_cli("project", "list", "--json")
    assert [(p["name"], p["datasets"], p["jobs"]) for p in json.loads(listed.out)] == [("Default", 0, 0), ("Cats", 0, 0)]
    assert "Cats" in run_cli("project", "list").out

    renamed = run_cli("project", "rename", "Cats", "Dogs")
    assert renamed.code == 0 and "Dogs" in renamed.out
    assert db_rows("SELECT name FROM projects ORDER BY id") == [("Default",), ("Dogs",)]

    # A registered dataset goes with its project; its files stay.
    dataset = make_dice_detection(tmp_path / "dice", 4, size=32)
    assert run_cli("dataset", "register", str(dataset), "--project", "Dogs").code == 0
    project_id = db_rows("SELECT id FROM projects WHERE name = 'Dogs'")[0][0]
    assert db_rows("SELECT COUNT(*) FROM datasets WHERE project_id = ?", project_id) == [(1,)]
    deleted = run_cli("project", "delete", str(project_id))  # by id this time
    assert deleted.code == 0, deleted.err
    assert db_rows("SELECT name FROM projects") == [("Default",)]
    assert db_rows("SELECT COUNT(*) FROM datasets") == [(0,)]
    assert dataset.is_dir() and any(dataset.iterdir())


def test_refusals_say_why_and_change_nothing(run_cli: Cli, db_rows: Rows) -> None:
    assert run_cli("project", "create", "Cats").code == 0
    duplicate = run_cli("project", "create", "Cats")
    assert duplicate.code == 2
    assert duplicate.err.startswith("error: ") and "already exists" in duplicate.err
    blank = run_cli("project", "create", "   ")
    assert blank.code == 2 and "needs a name" in blank.err
    assert run_cli("project", "rename", "Default", "Main").code == 2
    assert run_cli("project", "delete", "Default").err.startswith("error: The Default project cannot be deleted")
    missing = run_cli("project", "rename", "Nope", "X")
    assert missing.code == 2 and "Nope" in missing.err
    assert db_rows("SELECT name FROM projects ORDER BY id") == [("Default",), ("Cats",)]


def test_project_with_a_queued_job_is_kept(run_cli: Cli, db_rows: Rows) -> None:
    from core.db.engine import open_store
    from core.db.models import TrainingJob

    assert run_cli("project", "create", "Busy").code == 0
    project_id = db_rows("SELECT id FROM projects WHERE name = 'Busy'")[0][0]
    with open_store().write() as session:
        session.add(TrainingJob(project_id=project_id, user_id=1, framework="timm", model_name="resnet18",
                                task_type="classify", dataset_path="d", status="queued"))
    refused = run_cli("project", "delete", "Busy")
    assert refused.code == 2 and "queued or running" in refused.err
    assert db_rows("SELECT COUNT(*) FROM projects WHERE id = ?", project_id) == [(1,)]
    listed = json.loads(run_cli("project", "list", "--json").out)
    assert [(p["jobs"], p["running"]) for p in listed if p["name"] == "Busy"] == [(1, 1)]
