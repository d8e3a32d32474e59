"""A job run by another process (the ``vision-platform train`` CLI) grows live in an open window.

Live events reach only the process that runs a job; the Jobs page follows the store for the rest.
The CLI's worker is held after batches 1 and 4 (tests/helpers/holds.py): the job is running at both
checks by construction, whatever the machine's speed.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.holds import Holds

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _start_cli_training(home: Path, tmp_path: Path, holds: Holds) -> subprocess.Popen[str]:
    data = make_imagefolder(tmp_path / "colours", classes=("red", "green", "blue"), per_class=10, size=32)
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({"dataset": str(data), "model": "test_resnet", "epochs": 2, "batch_size": 8,
                                   "image_size": 32, "seed": 1, "name": "from the cli"}))
    env = {**os.environ, "VP_HOME": str(home), "VP_FAULT": holds.fault_spec}
    return subprocess.Popen([sys.executable, "-m", "vision_platform", "train", str(job)], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _step_records(home: Path) -> int:
    with sqlite3.connect(home / "vision_platform.db") as db:
        return int(db.execute("SELECT coalesce(sum(n), 0) FROM step_chunks").fetchone()[0])


def test_curves_of_a_cli_job_grow_in_the_open_window(window: Any, vp_home: Path, qtbot: Any, tmp_path: Path) -> None:
    window.show_page("jobs")
    page = window.jobs_page
    qtbot.waitUntil(lambda: page.charts is not None, timeout=30_000)
    holds = Holds(tmp_path / "holds", 1, 4)
    cli = _start_cli_training(vp_home, tmp_path, holds)
    try:
        qtbot.waitUntil(lambda: bool(page.model.rows), timeout=120_000)
        job_id = page.model.rows[0].id
        page.select_job(job_id)

        def step_points() -> int:
            return sum(page.charts.curve_points("loss_step").values()) if page.charts.job_id == job_id else 0

        qtbot.waitUntil(lambda: holds.is_held(1) and step_points() >= 1, timeout=120_000)
        assert page.model.job(job_id).status == "running"
        first = step_points()
        holds.release(1)
        qtbot.waitUntil(lambda: holds.is_held(4) and step_points() > first
                        and bool(page.charts.curve_points("metrics_epoch")), timeout=120_000)
        assert page.model.job(job_id).status == "running"  # grew while it ran, not from a reload at the end
        holds.release(4)
        assert cli.wait(300) == 0, cli.stdout.read() if cli.stdout else ""
        qtbot.waitUntil(lambda: page.model.job(job_id).status == "completed", timeout=30_000)
        total = _step_records(vp_home)
        qtbot.waitUntil(lambda: step_points() == total, timeout=30_000)  # complete when it ends
        assert page.charts.curve_points("metrics_epoch")["val/accuracy"] == 2
        assert "No metrics yet" not in page.chart_note.text()
    finally:
        holds.release_all()
        if cli.poll() is None:
            cli.kill()
            cli.wait(60)
