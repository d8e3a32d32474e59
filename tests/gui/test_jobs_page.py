"""Jobs page with a real (tiny) timm training run from the window's job queue.

Live curves gain points while the job runs, the table reaches "completed", and a new main window
on the same store shows the same curves again (read back from SQLite).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QColor, QImage

from app.look import STATUS_COLOURS
from app.models.jobs_table import COL_STATUS
from tests.gui.conftest import make_helpers
from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.holds import Holds

pytestmark = pytest.mark.slow



def _queue_tiny_job(window: Any, store: Any, tmp_path: Path, epochs: int = 3) -> int:
    from core.config import config_from_dict
    from core.jobs.store import create_job

    data = make_imagefolder(tmp_path / "colours", classes=("red", "green", "blue"), per_class=10, size=32)
    config = config_from_dict({"dataset": str(data), "model": "test_resnet", "epochs": epochs, "batch_size": 8,
                               "image_size": 32, "name": "tiny colours"})
    job_id = create_job(store, config, project_id=window.state.project_id)
    window.state.jobs_change.emit()
    return job_id


def _status(page: Any, job_id: int) -> str:
    row = page.model.job(job_id)
    return row.status if row is not None else ""


def test_live_charts_follow_a_real_run_and_survive_a_restart(window: Any, store: Any, queue: Any, qtbot: Any,
                                                            tmp_path: Path, qsettings_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch, shots_dir: Path) -> None:
    # The worker is held after batch 1 and after batch 4 (epoch 2's first; 3 batches an epoch): the
    # job is running at both checks by construction, whatever the machine's speed.
    holds = Holds(tmp_path / "holds", 1, 4)
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    window.show_page("jobs")
    page = window.jobs_page
    qtbot.waitUntil(lambda: page.charts is not None, timeout=30_000)
    job_id = _queue_tiny_job(window, store, tmp_path)
    qtbot.waitUntil(lambda: page.model.job(job_id) is not None, timeout=10_000)
    page.select_job(job_id)

    def step_points() -> int:
        return sum(page.charts.curve_points("loss_step").values())

    # Held after batch 1: the live step-loss curve shows it while the job runs.
    qtbot.waitUntil(lambda: holds.is_held(1) and step_points() >= 1, timeout=120_000)
    assert _status(page, job_id) == "running"
    first_points = step_points()
    holds.release(1)

    # Held in epoch 2: the curve grew from live events and epoch 1's metrics are drawn.
    qtbot.waitUntil(lambda: holds.is_held(4) and step_points() > first_points
                    and bool(page.charts.curve_points("metrics_epoch")) and not page.charts.data.dirty,
                    timeout=120_000)
    assert _status(page, job_id) == "running"
    running_points = step_points()
    assert window.grab().save(str(shots_dir / "jobs_training.png"))
    holds.release(4)
    qtbot.waitUntil(lambda: _status(page, job_id) in ("completed", "failed"), timeout=120_000)
    row = page.model.job(job_id)
    assert row is not None and row.status == "completed", row
    position = page.model.row_for(job_id)
    status_index = page.model.index(position, COL_STATUS)
    assert status_index.data() == "completed"
    assert QColor(status_index.data(9)).name() == STATUS_COLOURS["completed"]  # ForegroundRole
    assert page.model.index(position, 3).data() == "3/3"

    # Final numbers: 3 epochs per epoch curve, lr curve, and the log pane shows the worker log.
    qtbot.waitUntil(lambda: page.charts.curve_points("metrics_epoch").get("val/accuracy") == 3, timeout=10_000)
    qtbot.waitUntil(lambda: not page.charts.data.dirty, timeout=5_000)
    for panel_id, panel in page.charts.panels.items():  # every curve is in view, and fills it
        (vx0, vx1), (vy0, vy1) = panel.getPlotItem().vb.viewRange()
        data = [item.getOriginalDataset() for item in panel.curves.values()]
        if not data:
            continue
        x0, x1 = min(float(x.min()) for x, _y in data), max(float(x.max()) for x, _y in data)
        y0, y1 = min(float(y.min()) for _x, y in data), max(float(y.max()) for _x, y in data)
        assert vx0 <= x0 and x1 <= vx1 and vy0 <= y0 and y1 <= vy1, panel_id
        assert vy1 - vy0 <= 5 * max(y1 - y0, abs(y1) * 0.2), (panel_id, (vy0, vy1), (y0, y1))
    final_steps = page.charts.curve_points("loss_step")["train/loss"]
    assert final_steps > running_points
    assert page.charts.curve_points("lr")
    qtbot.waitUntil(lambda: "epoch 3" in page.log.plain_text(), timeout=10_000)
    page.log.search.setText("epoch 2")
    expected = page.log.plain_text().count("epoch 2")
    assert page.log.find_next() and page.log.matches.text() == f"{expected} match{'es' if expected != 1 else ''}"
    assert page.log.text.textCursor().selectedText() == "epoch 2"

    # Checkpoints tab lists best and last with their sha256.
    qtbot.waitUntil(lambda: {r.kind for r in page.checkpoints.rows} == {"best", "last"}, timeout=10_000)
    assert all(r.sha256 and r.exists for r in page.checkpoints.rows)

    # Exports: a PNG with real pixels and a CSV with every point.
    png = tmp_path / "charts.png"
    assert page.charts.export_png(png)
    image = QImage(str(png))
    assert image.width() > 200 and len({image.pixel(x, y) for x in range(0, image.width(), 13)
                                        for y in range(0, image.height(), 11)}) > 5
    csv_path = tmp_path / "metrics.csv"
    written = page.charts.export_csv(csv_path)
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert written == len(rows) and {"kind", "x", "metric", "value"} == set(rows[0])
    assert sum(1 for r in rows if r["kind"] == "step" and r["metric"] == "train/loss") == final_steps

    # Restart: a new window on the same store reads the same curves back from SQLite.
    window.close()
    from app.main_window import MainWindow

    second = MainWindow(store, helpers=make_helpers())
    qtbot.addWidget(second)
    second.resize(1280, 800)
    second.show()
    second.show_page("jobs")
    page2 = second.jobs_page
    qtbot.waitUntil(lambda: page2.charts is not None and page2.model.job(job_id) is not None, timeout=30_000)
    page2.select_job(job_id)
    qtbot.waitUntil(lambda: page2.charts.curve_points("loss_step").get("train/loss") == final_steps, timeout=10_000)
    assert page2.charts.curve_points("metrics_epoch")["val/accuracy"] == 3
    second.close()


def test_actions_cancel_resume_extend_clone_delete(window: Any, store: Any, qtbot: Any, tmp_path: Path) -> None:
    from core.jobs.store import get_job, update_job

    window.show_page("jobs")
    page = window.jobs_page
    job_id = _queue_tiny_job(window, store, tmp_path, epochs=1)  # no queue runs: it stays queued
    qtbot.waitUntil(lambda: page.model.job(job_id) is not None, timeout=10_000)
    page.select_job(job_id)
    assert page.cancel_action.isEnabled() and not page.delete_action.isEnabled()
    page.cancel_selected()
    qtbot.waitUntil(lambda: _status(page, job_id) == "cancelled", timeout=10_000)
    assert page.resume_action.isEnabled() and page.delete_action.isEnabled()

    # Resume needs last.pt: without one the error is shown on the page, not raised.
    page.resume_selected()
    qtbot.waitUntil(lambda: "last.pt" in page.banner.text(), timeout=10_000)
    assert get_job(store, job_id).status == "cancelled"

    # Clone opens the job's settings in the configurator (Train page).
    cloned: list[Any] = []
    page.clone_requested.connect(cloned.append)
    page.clone_selected()
    assert cloned and cloned[0].model == "test_resnet" and cloned[0].epochs == 1
    assert window.current_page() == "train"
    assert window.train_page.form.widgets["image_size"].text() == "32"  # the job's values, not defaults
    assert window.train_page.form.widgets["epochs"].text() == "1"
    window.show_page("jobs")

    # A failed job shows its error on top of the log, with the traceback one click away.
    update_job(store, job_id, status="failed", error_message="CUDA out of memory", error_traceback="Traceback: boom")
    page.tabs.setCurrentWidget(page.log)
    qtbot.waitUntil(lambda: "CUDA out of memory" in page.log.banner.text(), timeout=10_000)
    assert page.log.banner._detail == "Traceback: boom"

    # Delete (confirmation skipped here) removes the row and the run folder.
    folder = Path(get_job(store, job_id).output_dir or "")
    (folder / "worker.log").write_text("log\n")
    page.delete_selected(confirm=False)
    qtbot.waitUntil(lambda: page.model.job(job_id) is None, timeout=10_000)
    assert not folder.exists()
    assert page.stack.currentWidget() is page.empty


def test_resume_extend_compare_and_mlflow_with_real_runs(window: Any, store: Any, qtbot: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """From the page: a run cancelled mid-epoch resumes to completion from last.pt, a finished run is
    extended by one epoch, two runs are overlaid in Compare, and MLflow opens the run in a real
    `mlflow ui` on this computer (tracking on: the queue has its default listeners)."""
    import urllib.request

    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtGui import QDesktopServices

    from core.jobs import store as job_store
    from core.jobs.queue import JobQueue

    job_queue = JobQueue(store, on_event=window.job_events.emit_event, poll_interval=0.2)
    window.queue = job_queue
    window.show_page("jobs")
    page = window.jobs_page
    holds = Holds(tmp_path / "holds", 4)  # held at epoch 2's first batch: the cancel lands inside epoch 2
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    job_queue.start()
    try:
        first = _queue_tiny_job(window, store, tmp_path / "a", epochs=2)
        qtbot.waitUntil(lambda: page.model.job(first) is not None, timeout=10_000)
        page.select_job(first)
        qtbot.waitUntil(lambda: holds.is_held(4) and _status(page, first) == "running"
                        and (c := job_store.latest_checkpoint(store, first, "last")) is not None and c.epoch == 1,
                        timeout=120_000)
        page.cancel_selected()
        qtbot.waitUntil(lambda: _status(page, first) == "cancelled", timeout=60_000)
        assert [r.epoch for r in job_store.metric_rows(store, first, kind="epoch")] == [1]

        monkeypatch.delenv("VP_FAULT")
        qtbot.waitUntil(lambda: page.resume_action.isEnabled(), timeout=10_000)
        page.resume_selected()
        qtbot.waitUntil(lambda: _status(page, first) == "completed", timeout=120_000)
        assert [r.epoch for r in job_store.metric_rows(store, first, kind="epoch")] == [1, 2]
        assert page.model.index(page.model.row_for(first), 3).data() == "2/2"

        qtbot.waitUntil(lambda: page.extend_action.isEnabled(), timeout=10_000)
        page.extend_selected(1)
        qtbot.waitUntil(lambda: len(job_store.metric_rows(store, first, kind="epoch")) == 3
                        and _status(page, first) == "completed", timeout=120_000)
        assert [r.epoch for r in job_store.metric_rows(store, first, kind="epoch")] == [1, 2, 3]
        assert job_store.latest_checkpoint(store, first, "last").epoch == 3  # type: ignore[union-attr]
        assert page.model.index(page.model.row_for(first), 3).data() == "3/3"

        second = _queue_tiny_job(window, store, tmp_path / "b", epochs=1)
        qtbot.waitUntil(lambda: _status(page, second) == "completed", timeout=120_000)
    finally:
        job_queue.stop()

    # Compare: both runs selected → one curve each with a legend entry; unchecking one hides it.
    qtbot.waitUntil(lambda: page.compare is not None, timeout=10_000)
    selection = page.table.selectionModel()
    for job_id in (first, second):
        selection.select(page.model.index(page.model.row_for(job_id), 0),
                         QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    page.tabs.setCurrentWidget(page.compare_holder)
    compare = page.compare
    qtbot.waitUntil(lambda: len(compare.curves) == 2, timeout=20_000)
    assert compare.select_metric("epoch", "val/accuracy"), [compare.metric_box.itemData(i) for i in range(compare.metric_box.count())]
    qtbot.waitUntil(lambda: len(compare.curves) == 2, timeout=10_000)
    lengths = {job_id: len(item.getOriginalDataset()[0]) for job_id, item in compare.curves.items()}
    assert lengths == {first: 3, second: 1}
    assert sorted(label.text for _sample, label in compare.legend.items) == sorted(
        [f"#{first} tiny colours", f"#{second} tiny colours"])
    compare.job_list.item(1).setCheckState(compare.job_list.item(1).checkState().__class__.Unchecked)
    assert len(compare.curves) == 1

    # MLflow: the button starts `mlflow ui` on our store and opens the run's page.
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()) or True)
    page.select_job(first)
    qtbot.waitUntil(lambda: page.mlflow_action.isEnabled(), timeout=20_000)
    run_id = page.detail.mlflow_run_id
    assert run_id
    page.mlflow_action.trigger()
    try:
        qtbot.waitUntil(lambda: bool(opened), timeout=120_000)
        assert opened[0].endswith(f"/#/runs/{run_id}")
        base = opened[0].split("/#/")[0]
        with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/runs/get?run_id={run_id}", timeout=10) as response:
            assert run_id in response.read().decode("utf-8")
    finally:
        page.stop_mlflow()


@pytest.mark.s3
def test_checkpoints_tab_uploads_to_a_real_bucket_and_downloads_back(
        window: Any, store: Any, qtbot: Any, tmp_path: Path, seaweedfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upload now → the object is in the bucket (SeaweedFS on 127.0.0.1) with the checkpoint's sha256
    and the row shows its r2:// URL and "synced"; Download fetches it back into the cache."""
    import hashlib
    import os

    from core.config import config_from_dict
    from core.db.models import Checkpoint
    from core.jobs.store import create_job, get_job, update_job

    seaweedfs.start()
    seaweedfs.clear_bucket()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    settings = window.state.settings
    settings.offline_mode = False
    settings.sync_enabled = True
    settings.r2_endpoint_url = seaweedfs.endpoint_url
    settings.r2_bucket = seaweedfs.bucket

    data = make_imagefolder(tmp_path / "colours", classes=("red", "green"), per_class=2, size=32)
    job_id = create_job(store, config_from_dict({"dataset": str(data), "name": "uploaded run"}),
                        project_id=window.state.project_id)
    update_job(store, job_id, status="completed")
    weights = Path(get_job(store, job_id).output_dir or "") / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    payload = os.urandom(300_000)
    (weights / "best.pt").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    with store.write() as session:
        session.add(Checkpoint(job_id=job_id, kind="best", path=str(weights / "best.pt"), sha256=digest,
                               size_bytes=len(payload), epoch=1))

    window.state.jobs_change.emit()
    window.show_page("jobs")
    page = window.jobs_page
    qtbot.waitUntil(lambda: page.model.job(job_id) is not None, timeout=10_000)
    page.select_job(job_id)
    panel = page.checkpoints
    page.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: len(panel.rows) == 1 and panel.upload_button.isEnabled(), timeout=10_000)
    assert not panel.download_button.isEnabled()  # nothing in the bucket yet

    panel.upload_selected()
    qtbot.waitUntil(lambda: panel.banner.text().startswith(("Uploaded", "Upload failed", "Not uploaded")),
                    timeout=60_000)
    assert panel.banner.text() == "Uploaded best.pt.", panel.banner.text()
    qtbot.waitUntil(lambda: panel.rows and panel.rows[0].sync_state == "synced" and bool(panel.rows[0].r2_url),
                    timeout=10_000)
    url = panel.rows[0].r2_url or ""
    bucket, _, key = url.removeprefix("r2://").partition("/")
    body = seaweedfs.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == digest
    assert panel.table.item(0, 7).text() == "synced" and panel.table.item(0, 6).text() == url

    qtbot.waitUntil(lambda: panel.download_button.isEnabled(), timeout=10_000)
    panel.download_selected()
    qtbot.waitUntil(lambda: panel.banner.text().startswith("Downloaded to") or "failed" in panel.banner.text(),
                    timeout=60_000)
    downloaded = Path(panel.banner.text().removeprefix("Downloaded to ").strip())
    assert downloaded.is_file() and hashlib.sha256(downloaded.read_bytes()).hexdigest() == digest
