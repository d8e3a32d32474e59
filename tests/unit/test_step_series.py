"""Step metrics in ``core.jobs.series``: decimation exact against numpy, spikes kept at every zoom,
raw points when zoomed in, nothing lost or doubled by resumes, migrations, restarts or replays."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from core.config import config_from_dict
from core.db.engine import Store
from core.jobs import series
from core.jobs import store as job_store
from core.jobs.runner import _EventBatch
from core.migrations.runner import upgrade_to_head
from core.services import metrics

MILLION = 1_000_000
SPIKE_AT = 654_321


def _job(store: Store, tmp_path: Path) -> int:
    return job_store.create_job(store, config_from_dict({"dataset": str(tmp_path)}))


def _fill(store: Store, job_id: int, losses: np.ndarray, batch: int = 50_000, epoch_every: int = 10_000) -> None:
    lrs = np.linspace(1e-3, 1e-5, len(losses))
    for start in range(0, len(losses), batch):
        records = [(1 + i // epoch_every, i + 1, 1_700_000_000.0 + i * 0.1,
                    {"train/loss": float(losses[i]), "lr": float(lrs[i])})
                   for i in range(start, min(start + batch, len(losses)))]
        with store.write() as session:
            series.append(session.connection(), job_id, records)


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int, np.ndarray]:
    """One job with 1M steps of a noisy falling loss and one spike 100x the others."""
    folder = tmp_path_factory.mktemp("million")
    store = Store(folder / "vp.db")
    store.migrate()
    store.ensure_defaults()
    with store.write() as session:
        session.execute(text("INSERT INTO training_jobs (id, project_id, user_id, framework, model_name, task_type,"
                             " dataset_path, status) VALUES (1, 1, 1, 'timm', 'm', 'classification', 'd', 'completed')"))
    rng = np.random.default_rng(7)
    losses = (1.0 + rng.random(MILLION) * 0.5).astype(np.float32)
    losses[SPIKE_AT] = losses.max() * 100
    _fill(store, 1, losses)
    yield store, 1, losses
    store.dispose()


def _window(store: Store, job_id: int, a: float, b: float, width: int = 800) -> series.SeriesWindow:
    return metrics.window(store, job_id, ["train/loss"], a, b, width)["train/loss"]


def test_spike_is_visible_at_every_zoom_level(million: tuple[Store, int, np.ndarray]) -> None:
    store, job_id, losses = million
    spike = float(losses[SPIKE_AT])
    step = SPIKE_AT + 1
    levels = set()
    for width in (40, 800):
        span = 2.0 * MILLION
        while span >= 50:
            view = _window(store, job_id, step - span / 3, step + span * 2 / 3, width)
            assert view.y.max() == pytest.approx(spike), (span, width)
            assert len(view.x) <= 2 * width  # at most one min/max pair per pixel column
            levels.add(view.level)
            span /= 4
    assert levels == {1, *series.LEVELS}  # every decimation level and the raw points were read


def test_bucket_min_max_last_equal_numpy_over_the_raw_points(million: tuple[Store, int, np.ndarray]) -> None:
    store, job_id, losses = million
    with sqlite3.connect(store.db_file) as raw:
        for level in series.LEVELS:
            rows = np.array(raw.execute(
                "SELECT bucket, vmin, vmax, vlast FROM step_buckets WHERE job_id = ? AND name = 'train/loss'"
                " AND level = ? ORDER BY bucket", (job_id, level)).fetchall())
            count = -(-MILLION // level)
            assert len(rows) == count and (rows[:, 0] == np.arange(count)).all()
            padded = np.full(count * level, np.nan, dtype=np.float32)
            padded[:MILLION] = losses
            grid = padded.reshape(count, level)
            assert (rows[:, 1] == np.nanmin(grid, axis=1)).all()
            assert (rows[:, 2] == np.nanmax(grid, axis=1)).all()
            assert (rows[:, 3] == losses[np.minimum(np.arange(1, count + 1) * level, MILLION) - 1]).all()


def test_zoom_to_100_steps_returns_the_raw_values(million: tuple[Store, int, np.ndarray]) -> None:
    store, job_id, losses = million
    view = _window(store, job_id, 500_001, 500_100)
    assert view.raw and view.level == 1
    assert view.x.tolist() == list(range(500_001, 500_101))
    assert view.y.tolist() == losses[500_000:500_100].astype(np.float64).tolist()


def test_overview_and_updates_cover_the_whole_run(million: tuple[Store, int, np.ndarray]) -> None:
    store, job_id, losses = million
    view = metrics.overview(store, job_id, width=1000)
    assert view.step_range == (1, MILLION) and view.step_records == MILLION
    assert set(view.steps) == {"train/loss", "lr"}
    assert view.steps["train/loss"].y.max() == pytest.approx(float(losses[SPIKE_AT]))
    assert view.cursor.step_seq == MILLION - 1
    tail = metrics.updates(store, job_id, metrics.MetricCursor(MILLION - 11, 0))
    assert [r.step for r in tail.records] == list(range(MILLION - 9, MILLION + 1))
    assert tail.cursor.step_seq == MILLION - 1


def test_storage_costs_at_most_16_bytes_per_step_point(million: tuple[Store, int, np.ndarray]) -> None:
    store, _job_id, _losses = million
    with sqlite3.connect(store.db_file) as raw:
        used = sum(raw.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'step_%' OR name LIKE"
                               " 'sqlite_autoindex_step_%'").fetchone())
    assert used / (2 * MILLION) <= 16


def test_csv_export_streams_every_point_and_can_be_cancelled(store: Store, tmp_path: Path) -> None:
    job_id = _job(store, tmp_path)
    _fill(store, job_id, np.arange(10_000, dtype=np.float32) / 7, batch=3_000)
    seen: list[tuple[int, int]] = []
    target = tmp_path / "m.csv"
    written = metrics.export_csv(store, job_id, target, progress=lambda d, t: seen.append((d, t)))
    lines = target.read_text().splitlines()
    assert written == 20_000 == len(lines) - 1
    assert seen[-1] == (10_000, 10_000) and len(seen) == 3
    assert lines[1] == "step,1,lr,0.001"  # float32's shortest text, read back to the same float32
    assert np.float32(lines[2].split(",")[3]) == np.float32(np.linspace(1e-3, 1e-5, 10_000)[1])
    with pytest.raises(InterruptedError):
        metrics.export_csv(store, job_id, target, cancelled=lambda: True)
    assert not target.exists()


def test_resume_drops_the_epochs_it_redoes_and_rebuilds_their_buckets(store: Store, tmp_path: Path) -> None:
    job_id = _job(store, tmp_path)
    losses = np.arange(30_000, dtype=np.float32)
    _fill(store, job_id, losses, batch=7_000)  # epochs of 10,000 steps
    job_store.drop_metrics_from_epoch(store, job_id, 2)
    _fill(store, job_id, losses[:12_345] * -1, batch=5_000)  # a re-run: steps start again at 1
    with store.read() as session:
        records = list(series.iter_records(session.connection(), job_id))
    assert [r.seq for r in records] == list(range(10_000 + 12_345))
    assert [r.values["train/loss"] for r in records[:10_000]] == losses[:10_000].tolist()
    with sqlite3.connect(store.db_file) as raw:
        for level in series.LEVELS:
            lows = raw.execute("SELECT bucket, vmin FROM step_buckets WHERE job_id = ? AND name = 'train/loss'"
                               " AND level = ? ORDER BY bucket", (job_id, level)).fetchall()
            every = np.array([r.values["train/loss"] for r in records], dtype=np.float32)
            expected = [float(np.min(every[b * level:(b + 1) * level])) for b in range(-(-len(every) // level))]
            assert [v for _b, v in lows] == expected


def test_runner_batches_put_steps_in_the_series_and_epochs_in_training_metrics(store: Store, tmp_path: Path) -> None:
    job_id = _job(store, tmp_path)
    batch = _EventBatch(job_id)
    events = [{"type": "metrics", "kind": "step", "epoch": 1, "step": s, "t": 1.0 + s,
               "values": {"train/loss": 1.0 / s}} for s in range(1, 6)]
    events.append({"type": "metrics", "kind": "epoch", "epoch": 1, "values": {"val/accuracy": 0.5}})
    batch.persist(store, events)
    batch.persist(store, [{**events[0], "step": 6}])
    rows = job_store.metric_rows(store, job_id)
    assert [(r.kind, r.step) for r in rows] == [("step", s) for s in range(1, 7)] + [("epoch", None)]
    with sqlite3.connect(store.db_file) as raw:
        assert raw.execute("SELECT count(*) FROM training_metrics WHERE kind = 'step'").fetchone()[0] == 0


def test_db_at_revision_0003_with_step_rows_upgrades_without_losing_a_point(tmp_path: Path) -> None:
    db_file = tmp_path / "old.db"
    old = Store(db_file)
    upgrade_to_head(old.write_engine, "0003")
    with old.write_engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username) VALUES (1, 'local')"))
        conn.execute(text("INSERT INTO projects (id, user_id, name) VALUES (1, 1, 'P')"))
        for job_id in (1, 2):
            conn.execute(text(
                "INSERT INTO training_jobs (id, project_id, user_id, framework, model_name, task_type, dataset_path,"
                " status, cancel_requested, resume_requested) VALUES (:j, 1, 1, 'timm', 'm', 'classification', 'd',"
                " 'completed', 0, 0)"), {"j": job_id})
        rows = []
        for step in range(1, 9_001):  # more than two chunks for job 1, interleaved with job 2's rows
            job_id = 1 if step % 3 else 2
            rows.append({"j": job_id, "e": 1 + step // 3000, "s": step, "l": 1.0 / step,
                         "x": f'{{"train/loss": {1.0 / step!r}, "lr": 0.01}}'})
        conn.execute(text("INSERT INTO training_metrics (job_id, epoch, step, kind, loss, extra_metrics, created_at)"
                          " VALUES (:j, :e, :s, 'step', :l, :x, '2026-01-02 03:04:05.250000')"), rows)
        conn.execute(text("INSERT INTO training_metrics (job_id, epoch, step, kind, loss) VALUES (1, 1, NULL, 'step',"
                          " 0.25)"))  # written by the original code: no JSON, no step
        conn.execute(text("INSERT INTO training_metrics (job_id, epoch, kind, accuracy, extra_metrics) VALUES"
                          " (1, 1, 'epoch', 0.5, '{\"val/accuracy\": 0.5}')"))
        conn.execute(text("UPDATE training_jobs SET mlflow_synced_metric_id = 30 WHERE id = 1"))
    old.dispose()

    upgraded = Store(db_file)
    upgraded.migrate()
    for job_id in (1, 2):
        steps = [r for r in job_store.metric_rows(upgraded, job_id, kind="step")]
        expected = [s for s in range(1, 9_001) if (s % 3 != 0) == (job_id == 1)]
        got = [r.step for r in steps]
        if job_id == 1:
            assert got[:-1] == expected and got[-1] == len(expected) + 1  # the step-less row: its position
            assert job_store.metric_values(steps[-1]) == {"loss": 0.25}
        else:
            assert got == expected
        values = [job_store.metric_values(r)["train/loss"] for r in steps[: len(expected)]]
        assert values == [float(np.float32(1.0 / s)) for s in expected]
    assert [r.epoch for r in job_store.metric_rows(upgraded, 1, kind="epoch")] == [1]
    with sqlite3.connect(db_file) as raw:
        assert raw.execute("SELECT count(*) FROM training_metrics WHERE kind = 'step'").fetchone()[0] == 0
        # rows 1..30 were sent: 20 of them were job 1's step rows
        assert raw.execute("SELECT mlflow_synced_step_seq FROM training_jobs WHERE id = 1").fetchone()[0] == 19
        stamp = raw.execute("SELECT t0 FROM step_chunks WHERE job_id = 1 ORDER BY seq0").fetchone()[0]
    assert stamp == pytest.approx(1767323045.25)
    upgraded.dispose()
