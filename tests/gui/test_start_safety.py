"""The desktop app's start through ``app.main.main``: a damaged database, a second instance, and the
work an earlier (killed) run of the app left unfinished: MLflow runs left RUNNING, pending uploads.

Each test runs the real entry point with a real data folder; a QTimer polls the window until what the
test waits for is on screen (a generous bound closes the window and fails the test if never).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.tracking import make_job, mlflow_db_template  # noqa: F401
from tests.unit.test_data_dir_lock import start_app_holder
from tests.unit.test_db_recovery import CORRUPT_NAME, make_run

ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 240.0  # only a broken build gets here

# As in tests/unit/tracking: a runner that opened an MLflow run for its job, then is killed.
_KILLED_RUNNER = """
import sys, threading
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
        synced = session.execute(text("select mlflow_synced_metric_id from training_jobs where id = :i"),
                                 {"i": job_id}).scalar()
    if synced:
        print("ready", flush=True)
        break
    threading.Event().wait(0.05)
sys.stdin.readline()
"""


def run_app_until(done: Callable[[Any], bool]) -> dict[str, Any]:
    """Run ``app.main.main`` until ``done(window)``; returns what the poll saw (``window``'s texts)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main import main
    from app.main_window import MainWindow

    seen: dict[str, Any] = {"timed_out": False}
    deadline = time.monotonic() + BOUND_S

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and (done(windows[0]) or time.monotonic() > deadline):
            window = windows[0]
            loading = window._loading.text() if window.state is None else ""  # replaced by the pages
            seen.update(timed_out=not done(window), loading=loading, state=window.state,
                        notice=getattr(window, "start_notice", None) and window.start_notice.text(),
                        status=window.statusBar().currentMessage())
            window.close()
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)
    assert main([]) == 0
    assert not seen["timed_out"], f"the window never got there: {seen}"
    return seen


@pytest.fixture
def home(vp_home: Path, qsettings_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    vp_home.mkdir(parents=True, exist_ok=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return vp_home


@pytest.mark.reliability(row=7, fault="garbage database file when the desktop app starts")
def test_damaged_database_is_reported_in_the_window_and_rebuilt(qapp: Any, home: Path) -> None:
    """matrix row 7: the app does not hang on "Opening your projects…": it shows what was rebuilt and
    where the damaged file went, then opens the rebuilt projects."""
    from core.db.engine import close_all_stores, open_store

    job_id, _digests = make_run(open_store(home / "vision_platform.db"), project="Birds")
    close_all_stores()
    (home / "vision_platform.db").write_bytes(b"\x00garbage" * 4096)

    seen = run_app_until(lambda w: w.state is not None and getattr(w, "start_notice", None) is not None)
    moved = [p for p in home.iterdir() if CORRUPT_NAME.match(p.name)]
    assert len(moved) == 1
    assert str(moved[0]) in seen["notice"]
    assert "1 job(s) and 2 checkpoint(s)" in seen["notice"]
    with closing(sqlite3.connect(home / "vision_platform.db")) as connection:
        assert list(connection.execute("select id, status from training_jobs")) == [(job_id, "interrupted")]


@pytest.mark.reliability(row=32, fault="a second desktop app on the same data folder")
def test_second_app_shows_who_holds_the_data_folder(qapp: Any, home: Path) -> None:
    """matrix row 32: the second instance says which process (pid, command) has the folder; no pages,
    no crash, and it never opens the store."""
    holder = start_app_holder(home)
    try:
        seen = run_app_until(lambda w: w.state is None and "already open" in w._loading.text())
    finally:
        holder.kill()
        holder.wait(30)
    assert f"process {holder.pid} ({sys.executable} -c" in seen["loading"]
    assert seen["state"] is None
    assert not (home / "vision_platform.db").exists()


def _upload_state(db_file: Path, upload_id: int) -> str:
    with closing(sqlite3.connect(db_file)) as connection:
        return str(connection.execute("select state from uploads where id = ?", (upload_id,)).fetchone()[0])


@pytest.mark.s3
@pytest.mark.reliability(row=3, fault="app killed with an MLflow run open and an upload pending; the app starts")
def test_start_ends_orphaned_mlflow_runs_and_sends_pending_uploads(
    qapp: Any, home: Path, s3: Any, mlflow_db_template: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """matrix row 3 (and 12): at start-up, in the background, the app ends the MLflow run a killed runner
    left RUNNING (KILLED, its job interrupted) and uploads the checkpoint an earlier run left pending."""
    from core.db.engine import close_all_stores, open_store
    from core.settings import Settings
    from core.storage.outbox import enqueue_job_checkpoints
    from core.tracking import MlflowTracker, open_run_markers

    for name, value in (("AWS_S3_ENDPOINT_URL", s3.endpoint_url), ("AWS_ACCESS_KEY_ID", s3.access_key),
                        ("AWS_SECRET_ACCESS_KEY", s3.secret_key), ("R2_BUCKET", s3.bucket)):
        monkeypatch.setenv(name, value)
    shutil.copy(mlflow_db_template, home / "mlflow.db")
    db_file = home / "vision_platform.db"
    store = open_store(db_file)
    uploaded_job, _digests = make_run(store, kinds=("best",))
    [upload_id] = enqueue_job_checkpoints(store, Settings.load(store), uploaded_job, kinds=("best",))
    killed_job = make_job(store, epochs=3)
    runner = subprocess.Popen([sys.executable, "-c", _KILLED_RUNNER, str(killed_job)], cwd=ROOT,
                              env={**os.environ, "VP_HOME": str(home)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert runner.stdout is not None and runner.stdout.readline().strip() == "ready"
    runner.kill()
    runner.wait(30)
    close_all_stores()
    assert open_run_markers() == [killed_job] and _upload_state(db_file, upload_id) == "pending"

    run_app_until(lambda _w: not open_run_markers() and _upload_state(db_file, upload_id) == "synced")
    with closing(sqlite3.connect(db_file)) as connection:
        status, run_id = connection.execute("select status, mlflow_run_id from training_jobs where id = ?",
                                            (killed_job,)).fetchone()
        key, local = connection.execute("select key, local_path from uploads where id = ?", (upload_id,)).fetchone()
    assert status == "interrupted"
    assert MlflowTracker().client.get_run(run_id).info.status == "KILLED"
    body = s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert body == Path(local).read_bytes()


def test_a_data_folder_on_a_network_drive_is_named_in_the_window(qapp: Any, home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's WAL does not work on NFS/SMB: the app opens (a lab's NFS home must stay usable) and says
    why its data folder is at risk. The mount table is faked: /proc/mounts with the folder on nfs4."""
    from core import platform

    mounts = f"server:/export {home} nfs4 rw,relatime 0 0\n"
    real = platform.network_filesystem
    monkeypatch.setattr(platform, "network_filesystem",
                        lambda path, **kwargs: real(path, system="linux", mounts_text=mounts))
    seen = run_app_until(lambda w: w.state is not None and getattr(w, "start_notice", None) is not None)
    assert str(home) in seen["notice"] and "nfs4" in seen["notice"] and "WAL" in seen["notice"]
