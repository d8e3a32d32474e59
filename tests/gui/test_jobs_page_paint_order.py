"""The Jobs page paints in short turns: the list first, then the job's tabs, then one chart at a time,
and only then reads the rest of the rows (a reader holding the GIL made each paint wait for it).

Painted in one event-loop turn with the list, the four pyqtgraph charts held the window 75-80 ms
(bench/bench_long_runs.py, issue 17). The order is asserted on the widgets' own state at each step
(never on timings), and the charts held back still end up showing the selected job's curves in pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QObject

from tests.fixtures.tracking import epoch_events, make_job, persist


class FirstPaint(QObject):
    """Records, at the list's first paint with rows, which of ``held`` may paint already."""

    def __init__(self, page: Any) -> None:
        super().__init__()
        self.page = page
        self.enabled_then: list[bool] | None = None

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.page.model.rowCount() and self.enabled_then is None:
            self.enabled_then = [widget.updatesEnabled() for widget in _held(self.page)]
        return False


def _held(page: Any) -> list[Any]:
    return [page.tabs, *page._chart_panels()]


@pytest.fixture
def job_id(store: Any) -> int:
    job = make_job(store, epochs=2, status="completed")
    persist(store, job, [event for epoch in (1, 2) for event in epoch_events(epoch, 3)])
    return job


@pytest.fixture
def page(qtbot: Any, store: Any, qsettings_dir: Any, job_id: int) -> Iterator[Any]:
    from app.models.app_state import AppState
    from app.pages.jobs_page import JobsPage
    from core.services.projects import project_overview
    from core.services.settings import load_settings

    overview = project_overview(store)
    jobs_page = JobsPage(AppState(store, load_settings(store), overview.default_project_id, overview))
    qtbot.addWidget(jobs_page)
    jobs_page.resize(1200, 800)
    yield jobs_page
    jobs_page.close()


def test_the_list_paints_first_then_the_tabs_then_one_chart_a_step(page: Any, store: Any, qtbot: Any,
                                                                  job_id: int, monkeypatch: Any) -> None:
    from app.pages import jobs_page as module

    for _ in range(2):
        make_job(store, epochs=2, status="completed")
    monkeypatch.setattr(module, "FIRST_PAGE_ROWS", 1)  # three jobs: a first page and a chunk after it
    monkeypatch.setattr(module, "FIRST_PAINT_WAIT_S", 60.0)  # the reader never goes on by itself
    painted_at_insert: list[bool] = []  # whether the tabs and charts could paint at each insert of rows
    page.model.rowsInserted.connect(lambda *_: painted_at_insert.append(all(w.updatesEnabled() for w in _held(page))))
    page._build_charts()  # as once the app is up (pyqtgraph loaded): built before the page shows
    watch = FirstPaint(page)
    page.table.viewport().installEventFilter(watch)
    steps: list[int] = []  # how many of the held widgets may paint, after each step of the paint timer
    page._paint_timer.timeout.connect(lambda: steps.append(sum(w.updatesEnabled() for w in _held(page))))
    page.show()
    qtbot.waitUntil(lambda: watch.enabled_then is not None and all(w.updatesEnabled() for w in _held(page))
                    and not page._paint_timer.isActive() and page.model.rowCount() == 3, timeout=30_000)

    assert watch.enabled_then == [False] * 5  # the list painted alone: tabs and the four charts held
    assert steps == [1, 2, 3, 4, 5, 5]  # then the tabs, then one chart per step (the last step stops)
    assert painted_at_insert == [False, True]  # the rest of the rows came once all of it had painted


def test_the_charts_held_back_show_the_selected_jobs_curves(page: Any, qtbot: Any, job_id: int) -> None:
    from app.widgets.live_charts import series_colour

    page.show()
    qtbot.waitUntil(lambda: page._first_shown.is_set() and page.tabs.updatesEnabled(), timeout=30_000)
    page._build_charts()  # as when pyqtgraph's import ends after the list painted: the charts are held too
    qtbot.waitUntil(lambda: page.current_job_id() == job_id
                    and page.charts.job_id == job_id and page._loading_job is None
                    and all(w.updatesEnabled() for w in _held(page)), timeout=30_000)
    qtbot.waitUntil(lambda: page.charts.curve_points("loss_epoch") == {"train/loss": 2, "val/loss": 2},
                    timeout=10_000)
    panel = page.charts.panels["loss_step"]
    picture = panel.grab().toImage()
    pen = series_colour("train/loss", ["train/loss"]).rgb()
    drawn = sum(picture.pixel(x, y) == pen for x in range(0, picture.width()) for y in range(0, picture.height(), 2))
    assert drawn > 20, "the loss curve's colour is not in the chart's pixels"


def test_an_empty_project_shown_again_paints_its_tabs(store: Any, qsettings_dir: Any, qtbot: Any) -> None:
    """Nothing to paint first: the tabs paint once the read is done, and are not held again when the
    page shows again (a job created later must not land in tabs that never paint)."""
    from app.models.app_state import AppState
    from app.pages.jobs_page import JobsPage
    from core.services.projects import create_project, project_overview
    from core.services.settings import load_settings

    empty_id = create_project(store, "Empty").id
    page = JobsPage(AppState(store, load_settings(store), empty_id, project_overview(store)))
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page._marks is not None and page._first_shown.is_set(), timeout=30_000)
    page.hide()
    page.show()
    assert page.tabs.updatesEnabled() and page.model.rowCount() == 0
