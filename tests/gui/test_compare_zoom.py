"""Compare view over long runs: the whole run at one min/max pair per pixel column, zoom reads finer data.

Two jobs of 200,000 steps each in a real SQLite store (``core.jobs.series``); zooming the Compare plot
to a 100-step range reads that range again for each job, down to the raw values written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

STEPS = 200_000


def _fill(store: Any, job_id: int, losses: np.ndarray, batch: int = 50_000) -> None:
    from core.jobs import series

    for start in range(0, len(losses), batch):
        records = [(1 + i // 10_000, i + 1, 1_700_000_000.0 + i * 0.1, {"train/loss": float(losses[i])})
                   for i in range(start, min(start + batch, len(losses)))]
        with store.write() as session:
            series.append(session.connection(), job_id, records)


@pytest.fixture
def compare(qtbot: Any, store: Any, tmp_path: Path) -> Any:
    from app.models.app_state import AppState
    from app.widgets.compare_view import CompareView
    from core.config import config_from_dict
    from core.jobs import store as job_store
    from core.services.projects import project_overview
    from core.services.settings import load_settings

    losses = {}
    for seed in (1, 2):
        job_id = job_store.create_job(store, config_from_dict({"dataset": str(tmp_path), "name": f"run {seed}"}))
        losses[job_id] = np.random.default_rng(seed).random(STEPS).astype(np.float32) + seed
        _fill(store, job_id, losses[job_id])
    overview = project_overview(store)
    view = CompareView(AppState(store, load_settings(store), overview.default_project_id, overview))
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    qtbot.waitExposed(view)
    view.set_jobs([(job_id, f"run {job_id}") for job_id in losses])
    view.losses = losses
    return view


def test_compare_reads_the_zoomed_range_down_to_raw_points(compare: Any, qtbot: Any) -> None:
    ids = list(compare.losses)
    qtbot.waitUntil(lambda: all(j in compare.data for j in ids), timeout=30_000)
    assert compare.select_metric("step", "train/loss")
    qtbot.waitUntil(lambda: set(compare.curves) == set(ids), timeout=10_000)
    for job_id in ids:  # the whole run, decimated: a few thousand points, not 200,000
        x, _y = compare.curves[job_id].getOriginalDataset()
        assert 0 < len(x) <= 2 * 3 * compare.plot_width()  # pairs at bucket centres over the whole run
        assert x[0] < STEPS / 100 and x[-1] > STEPS * 0.99
    compare.plot.getPlotItem().vb.setXRange(100_000, 100_099, padding=0)
    qtbot.waitUntil(lambda: compare.window_reads >= len(ids) and all(j in compare.zoomed for j in ids),
                    timeout=30_000)
    for job_id in ids:
        _key, window = compare.zoomed[job_id]
        assert window.raw
        x, y = compare.curves[job_id].getOriginalDataset()
        inside = (x >= 100_000) & (x <= 100_099)
        assert x[inside].tolist() == list(range(100_000, 100_100))  # every step: the raw points
        np.testing.assert_array_equal(y[inside].astype(np.float32), compare.losses[job_id][99_999:100_099])
    compare.plot.getPlotItem().enableAutoRange()  # "A": the whole run again
    qtbot.waitUntil(lambda: not compare.zoomed, timeout=10_000)
    x, _y = compare.curves[ids[0]].getOriginalDataset()
    assert len(x) < 20_000 and x[0] < STEPS / 100 and x[-1] > STEPS * 0.99
