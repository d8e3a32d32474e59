"""Long runs: charts of a 1M-step job, Compare of 10 such runs, the jobs list with 10,000 jobs.

Generated data only (no training): one job with 1M step records × 3 metrics written through the
runner's own batch persistence (``core.jobs.runner._EventBatch``), nine more 1M-step runs for Compare,
and 10,000 job rows. Baselines in the same run: a raw ``sqlite3`` ``executemany`` of the same rows in
the original one-row-per-step layout, and a raw fetch of those rows (what a chart read before).
The machine is shared: every timing is repeated and printed as median [min–max].

    .venv/bin/python -m bench.bench_long_runs [--steps N] [--repeat K] [--compare-runs R] [--jobs-only]
        [--before CHECKOUT]

The jobs list is the real Jobs page (offscreen) over a store of generated jobs, after the start-up
freeze of long-lived objects the main window does (``core.gc_policy.freeze_long_lived``): time to the first rows
painted, to every row, and the longest gap of a 10 ms QTimer probe (as ``bench/bench_gui.py``), with
the GUI thread's own CPU time for each (load-insensitive), and that CPU time in the costliest gap
(a lower bound of the longest stall, whatever the load). ``--before`` runs the same measurement on
another checkout, same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._table import print_table

WIDTH = 1200  # pixel columns of a chart on a typical window
METRICS = ("train/loss", "train/accuracy", "lr")


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} ms [{min(times) * 1000:.0f}–{max(times) * 1000:.0f}]"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _events(steps: int, start: int = 0, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    loss = (2.0 / np.sqrt(np.arange(start, start + steps) + 10) + rng.random(steps) * 0.1).tolist()
    acc = rng.random(steps).tolist()
    lr = np.linspace(1e-3, 1e-5, steps).tolist()
    return [{"type": "metrics", "kind": "step", "epoch": 1 + (start + i) // 10_000, "step": start + i + 1,
             "t": 1_700_000_000.0 + (start + i) * 0.1,
             "values": {"train/loss": loss[i], "train/accuracy": acc[i], "lr": lr[i]}} for i in range(steps)]


def _ingest(store: Any, job_id: int, steps: int, seed: int = 1) -> float:
    """Step events through the runner's batch persistence; returns seconds spent persisting."""
    from core.jobs.runner import FLUSH_MAX_EVENTS, _EventBatch

    batch, spent = _EventBatch(job_id), 0.0
    for start in range(0, steps, 100_000):
        events = _events(min(100_000, steps - start), start, seed)
        started = time.perf_counter()
        for offset in range(0, len(events), FLUSH_MAX_EVENTS):
            batch.persist(store, events[offset:offset + FLUSH_MAX_EVENTS])
        spent += time.perf_counter() - started
    return spent


def _raw_layout(path: Path, steps: int) -> tuple[sqlite3.Connection, float]:
    """The original layout (one training_metrics-like row a step), written with raw executemany."""
    from core.jobs.runner import FLUSH_MAX_EVENTS

    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE TABLE training_metrics (id INTEGER PRIMARY KEY, job_id INTEGER, epoch INTEGER, step INTEGER,"
                " kind TEXT, loss REAL, accuracy REAL, learning_rate REAL, extra_metrics TEXT, created_at TEXT)")
    raw.execute("CREATE INDEX ix_job_epoch ON training_metrics (job_id, epoch)")
    spent = 0.0
    for start in range(0, steps, 100_000):
        rows = [(1, e["epoch"], e["step"], "step", e["values"]["train/loss"], e["values"]["train/accuracy"],
                 e["values"]["lr"], json.dumps(e["values"]), "2026-01-01 00:00:00.000000")
                for e in _events(min(100_000, steps - start), start)]
        started = time.perf_counter()
        for offset in range(0, len(rows), FLUSH_MAX_EVENTS):
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany("INSERT INTO training_metrics (job_id, epoch, step, kind, loss, accuracy, learning_rate,"
                            " extra_metrics, created_at) VALUES (?,?,?,?,?,?,?,?,?)", rows[offset:offset + FLUSH_MAX_EVENTS])
            raw.execute("COMMIT")
        spent += time.perf_counter() - started
    return raw, spent


def _step_bytes(db_file: Path) -> int:
    with sqlite3.connect(db_file) as conn:
        return int(conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name IN ('step_chunks', 'step_buckets')"
                                ).fetchone()[0] or 0)


def bench_charts(work: Path, steps: int, repeat: int, compare_runs: int) -> list[tuple[str, str, str, str]]:
    from app.models.chart_data import load_chart_data
    from core.config import config_from_dict
    from core.db.engine import Store
    from core.jobs import store as job_store
    from core.services import metrics

    store = Store(work / "vp.db")
    store.migrate()
    store.ensure_defaults()
    job_id = job_store.create_job(store, config_from_dict({"dataset": str(work)}))
    ours_s = _ingest(store, job_id, steps)
    raw, raw_s = _raw_layout(work / "raw.db", steps)
    points = steps * len(METRICS)
    ingest_ratio = raw_s / ours_s
    per_point = _step_bytes(store.db_file) / points

    raw_times, _ = _timed(lambda: raw.execute("SELECT step, loss, accuracy, learning_rate FROM training_metrics"
                                              " WHERE job_id = 1 AND kind = 'step' ORDER BY id").fetchall(), repeat)
    open_times, data = _timed(lambda: load_chart_data(store, job_id, WIDTH), repeat)
    assert data.step_records == steps, data.step_records
    middle = steps // 2
    zoom_times, _ = _timed(lambda: metrics.window(store, job_id, list(METRICS), middle, middle + steps // 100, WIDTH),
                           repeat)
    raw_zoom_times, zoomed = _timed(lambda: metrics.window(store, job_id, list(METRICS), middle, middle + 99, WIDTH),
                                    repeat)
    assert all(window.raw and len(window.x) == 100 for window in zoomed.values())

    compared = [job_id]
    for run in range(1, compare_runs):
        other = job_store.create_job(store, config_from_dict({"dataset": str(work)}))
        _ingest(store, other, steps, seed=run + 1)
        compared.append(other)
    compare_times, _ = _timed(lambda: [load_chart_data(store, j, WIDTH) for j in compared], repeat)
    store.dispose()

    open_median, raw_median = statistics.median(open_times), statistics.median(raw_times)
    return [
        (f"raw sqlite3 fetch of the {steps:,} step rows (original layout)", _ms(raw_times), "baseline", ""),
        (f"chart open, {steps:,} steps × {len(METRICS)} metrics (load_chart_data, {WIDTH} px)", _ms(open_times),
         "≤ 200 ms and ≤ 0.2× raw", _verdict(open_median <= 0.2 and open_median <= 0.2 * raw_median)),
        ("  ratio chart open / raw fetch", f"{open_median / raw_median:.3f}×", "≤ 0.2", _verdict(open_median <= 0.2 * raw_median)),
        (f"zoom-in fetch, {steps // 100:,}-step range × 3 metrics", _ms(zoom_times), "≤ 50 ms",
         _verdict(statistics.median(zoom_times) <= 0.05)),
        ("zoom-in fetch, 100-step range × 3 metrics (raw points)", _ms(raw_zoom_times), "≤ 50 ms",
         _verdict(statistics.median(raw_zoom_times) <= 0.05)),
        (f"Compare: {len(compared)} runs of {steps:,} steps, sequential reads", _ms(compare_times), "≤ 1 s",
         _verdict(statistics.median(compare_times) <= 1.0)),
        ("DB bytes per step point (chunks + buckets, dbstat)", f"{per_point:.2f} B", "≤ 16", _verdict(per_point <= 16)),
        ("metric ingest, runner batches (events → series)", f"{steps / ours_s:,.0f} steps/s", "", ""),
        ("metric ingest, raw executemany (original layout)", f"{steps / raw_s:,.0f} rows/s", "baseline", ""),
        ("  ratio ingest / raw executemany", f"{ingest_ratio:.2f}×", "≥ 0.5", _verdict(ingest_ratio >= 0.5)),
    ]


def _make_jobs(store: Any, count: int) -> None:
    from sqlalchemy import text

    rows = [{"name": f"sweep {i}", "status": ("completed", "failed", "queued", "cancelled")[i % 4]}
            for i in range(count)]
    with store.write() as session:
        session.execute(text(
            "INSERT INTO training_jobs (project_id, user_id, framework, model_name, task_type, dataset_path, status,"
            " name, epochs, current_epoch, cancel_requested, resume_requested, output_dir, created_at)"
            " VALUES (1, 1, 'timm', 'resnet18', 'classification', '/d', :status, :name, 10, 3, 0, 0, '/runs/x',"
            " '2026-01-01 00:00:00')"), rows)


FLOOR_JOBS = 10
PAGE_MEASURES = {"first rows painted": "painted", "every row in the model": "all", "longest GUI stall": "stall",
                 "  GUI-thread CPU to the first rows": "painted_cpu", "  GUI-thread CPU in the longest stall": "stall_cpu",
                 "  GUI-thread CPU of the costliest turn": "turn_cpu"}


def _page_run(store: Any, count: int) -> dict[str, float]:
    """One open of the real Jobs page (offscreen): seconds to the first rows painted, to every row in
    the model, and the longest gap of a 10 ms QTimer probe meanwhile (a GUI-thread stall). The GUI
    thread's own CPU time (``time.thread_time``) to the first rows and inside the longest gap is
    reported too: it hardly moves with the load that other work puts on a shared machine."""
    from PySide6.QtCore import QElapsedTimer, QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from app.models.app_state import AppState
    from app.pages.jobs_page import JobsPage
    from core.services.projects import project_overview
    from core.services.settings import load_settings

    app = QApplication.instance()
    overview = project_overview(store)
    page = JobsPage(AppState(store, load_settings(store), overview.default_project_id, overview))
    page.resize(1280, 800)
    page._build_charts()  # pyqtgraph's widgets, built before the clock: this measures the list
    clock, marks, gaps, last = QElapsedTimer(), {}, [], [0.0, 0.0]

    class PaintWatch(QObject):
        def eventFilter(self, _obj: Any, event: Any) -> bool:
            if event.type() == QEvent.Type.Paint and page.model.rowCount() and "painted" not in marks:
                marks["painted"] = clock.nsecsElapsed() / 1e9
                marks["painted_cpu"] = time.thread_time() - marks["cpu"]
            return False

    def tick() -> None:
        now, cpu = clock.nsecsElapsed() / 1e6, time.thread_time()
        gaps.append((now - last[0], cpu - last[1]))
        last[:] = [now, cpu]

    watch = PaintWatch()
    page.table.viewport().installEventFilter(watch)
    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(tick)
    marks["cpu"] = last[1] = time.thread_time()
    clock.start()
    probe.start()
    page.show()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ("painted" in marks and page.model.rowCount() == count):
        app.processEvents()  # type: ignore[union-attr]
        time.sleep(0.001)
    marks["all"] = clock.nsecsElapsed() / 1e9
    settle = time.monotonic()
    while time.monotonic() - settle < 1.2:  # one refresh tick after the load (changes only, now)
        app.processEvents()  # type: ignore[union-attr]
        time.sleep(0.001)
    probe.stop()
    assert page.model.rowCount() == count, page.model.rowCount()
    page.close()
    page.deleteLater()
    app.processEvents()  # type: ignore[union-attr]
    stall, stall_cpu = max(gaps)
    return {"painted": marks["painted"], "all": marks["all"], "stall": stall / 1000,
            "painted_cpu": marks["painted_cpu"], "stall_cpu": stall_cpu, "turn_cpu": max(cpu for _gap, cpu in gaps)}


def _changes(job_service: Any, store: Any, marks: Any) -> Any:
    """One refresh after one queued job changed (a quarter of the 10,000 are queued). A checkout
    without change revisions re-reads every unfinished job it watches instead."""
    import inspect

    from sqlalchemy import text

    with store.write() as session:
        session.execute(text("UPDATE training_jobs SET current_step = COALESCE(current_step, 0) + 1 "
                             "WHERE id = (SELECT MAX(id) FROM training_jobs WHERE status = 'queued')"))
    total = sum(marks.counts.values())
    if "after_revision" in inspect.signature(job_service.job_changes).parameters:
        return job_service.job_changes(store, None, after_id=marks.max_id, after_revision=marks.revision,
                                       checkpoint_mark=marks.checkpoint_mark, known_total=total)
    return job_service.job_changes(store, None, after_id=marks.max_id, watch=frozenset(range(1, 2500)),
                                   checkpoint_mark=marks.checkpoint_mark, known_total=total)


def _service_times(store: Any, repeat: int) -> dict[str, list[float]]:
    """The reads behind the status counts, the queue's next job and one change refresh, with 10,000 jobs."""
    from core.jobs import store as job_store
    from core.services import jobs as job_service

    out: dict[str, list[float]] = {}
    out["queue: next queued job"], _ = _timed(lambda: job_store.next_queued_job(store), repeat)
    if hasattr(job_service, "job_counts"):
        out["status counts (SQL GROUP BY)"], _ = _timed(lambda: job_service.job_counts(store, None), repeat)
        marks = job_service.list_marks(store, None)
        out["refresh: changes since the last read"], _ = _timed(lambda: _changes(job_service, store, marks), repeat)
    else:
        out["refresh: every row (list_jobs)"], _ = _timed(lambda: job_service.list_jobs(store, None), repeat)
    return out


def measure_jobs_list(work: Path, count: int, repeat: int) -> dict[str, list[float]]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from core.db.engine import Store

    QApplication.instance() or QApplication(sys.argv[:1])
    import app.pages.jobs_page  # noqa: F401  (loaded at start-up in the app)

    # As the main window does once start-up is done (core.gc_policy.freeze_long_lived; app.gc_policy in
    # older checkouts, which --before runs this file against).
    gc.freeze()
    few = Store(work / "few_jobs.db")  # the floor: the same page with 10 jobs (charts painting, layout)
    few.migrate()
    few.ensure_defaults()
    _make_jobs(few, FLOOR_JOBS)
    store = Store(work / "jobs.db")
    store.migrate()
    store.ensure_defaults()
    _make_jobs(store, count)
    floor, runs = [], []
    for _ in range(repeat):  # interleaved: a burst of load elsewhere hits both alike
        floor.append(_page_run(few, FLOOR_JOBS))
        runs.append(_page_run(store, count))
    few.dispose()
    out = {name: [run[key] for run in runs] for name, key in PAGE_MEASURES.items()}
    out.update({f"floor, {FLOOR_JOBS} jobs: {name}": [run[key] for run in floor]
                for name, key in PAGE_MEASURES.items() if key != "all"})
    out.update(_service_times(store, repeat))
    store.dispose()
    return out


def _before(tree: str, count: int, repeat: int) -> dict[str, list[float]]:
    """The same measurement on another checkout (``git worktree add``: the code before this change)."""
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run([sys.executable, __file__, "--jobs-only", "--json", "--jobs", str(count),
                           "--repeat", str(repeat)], cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the before run in {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_jobs_list(work: Path, count: int, repeat: int, before: str | None) -> list[tuple[str, str, str, str]]:
    """The real Jobs page with ``count`` jobs in the store; ``before``: a checkout to compare with."""
    now = measure_jobs_list(work, count, repeat)
    then = _before(before, count, repeat) if before else {}
    targets = {"first rows painted": 0.1, "longest GUI stall": 0.05}
    rows = []
    for name, times in now.items():
        limit = targets.get(name)
        rows.append((f"jobs page, {count:,} jobs: {name}", _ms(times), f"≤ {limit * 1000:.0f} ms" if limit else "",
                     _verdict(statistics.median(times) <= limit) if limit else ""))
        if name in then:
            rows.append(("  before this change", _ms(then[name]), "", ""))
    rows += [(f"  before: {name}", _ms(times), "", "") for name, times in then.items() if name not in now]
    return rows


def _load_average() -> str:
    loadavg = Path("/proc/loadavg")
    return " ".join(loadavg.read_text().split()[:3]) if loadavg.exists() else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare-runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--jobs-only", action="store_true", help="only the jobs list (no 1M-step runs)")
    parser.add_argument("--before", metavar="CHECKOUT", help="also measure the jobs list in this checkout "
                        "(e.g. `git worktree add /tmp/base HEAD`), same run")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the --before child's output
    args = parser.parse_args(argv)
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="vp-bench-long-") as folder:
        work = Path(folder)
        os.environ["VP_HOME"] = str(work / "home")
        if args.json:
            print(json.dumps(measure_jobs_list(work, args.jobs, args.repeat)))
            return 0
        rows = [] if args.jobs_only else bench_charts(work, args.steps, args.repeat, args.compare_runs)
        rows += bench_jobs_list(work, args.jobs, args.repeat, args.before)
    print_table(f"Long runs (median [min–max] of {args.repeat}; machine shared with other work; load average"
                f" {load_before} before, {_load_average()} after)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
