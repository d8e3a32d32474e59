"""The Jobs page with 10,000 jobs in a real SQLite store (a sweep): rows arrive lazily, changes incrementally.

The first page shows before the rest; every row arrives in chunks; sorting is SQLite's; a job's
status change reaches its row as one ``dataChanged`` (no model reset); new and deleted jobs come and
go as row inserts and removals. No timing asserts: every wait is on the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt

JOBS = 10_000
STATUSES = ("completed", "failed", "queued", "cancelled")


def _make_jobs(store: Any, project_id: int, count: int) -> None:
    from sqlalchemy import text

    rows = [{"project": project_id, "name": f"sweep {i:05d}", "status": STATUSES[i % len(STATUSES)],
             "epoch": i % 10} for i in range(count)]
    with store.write() as session:
        session.execute(text(
            "INSERT INTO training_jobs (project_id, user_id, framework, model_name, task_type, dataset_path, status,"
            " name, epochs, current_epoch, cancel_requested, resume_requested, output_dir, created_at)"
            " VALUES (:project, 1, 'timm', 'resnet18', 'classification', '/d', :status, :name, 10, :epoch, 0, 0,"
            " '', '2026-01-01 00:00:00')"), rows)


@pytest.fixture
def page(qtbot: Any, store: Any, qsettings_dir: Any, monkeypatch: Any) -> Iterator[Any]:
    from app.models.app_state import AppState
    from app.pages import jobs_page as module
    from app.pages.jobs_page import JobsPage
    from core.services.projects import project_overview
    from core.services.settings import load_settings

    overview = project_overview(store)
    _make_jobs(store, overview.default_project_id, JOBS)
    jobs_page = JobsPage(AppState(store, load_settings(store), overview.default_project_id, overview))
    qtbot.addWidget(jobs_page)
    jobs_page.resize(1200, 700)
    inserts: list[int] = []  # rows per insert, from the first one on
    jobs_page.model.rowsInserted.connect(lambda _parent, first, last: inserts.append(last - first + 1))
    jobs_page.inserts = inserts  # type: ignore[attr-defined]
    # Whether the first page was shown (the reader may go on) at each insert; a long timeout: the
    # reader never goes on by itself, however slow the machine.
    monkeypatch.setattr(module, "FIRST_PAINT_WAIT_S", 60.0)
    shown: list[bool] = []
    jobs_page.model.rowsInserted.connect(lambda *_: shown.append(jobs_page._first_shown.is_set()))
    jobs_page.shown_at_insert = shown  # type: ignore[attr-defined]
    jobs_page.show()
    yield jobs_page
    jobs_page.close()


def _loaded(page: Any) -> bool:
    return page.model.rowCount() == JOBS and page._marks is not None and not page._chunks


def _ids(page: Any) -> list[int]:
    return [row.id for row in page.model.rows]


def test_first_rows_then_all_newest_first_with_counts_from_sql(page: Any, qtbot: Any) -> None:
    from app.pages.jobs_page import FIRST_PAGE_ROWS

    sizes = page.inserts
    qtbot.waitUntil(lambda: page.model.rowCount() >= FIRST_PAGE_ROWS, timeout=30_000)
    assert page.model.rows[0].name == f"sweep {JOBS - 1:05d}"  # newest first, from the first page
    qtbot.waitUntil(lambda: _loaded(page), timeout=60_000)
    assert sizes[0] == FIRST_PAGE_ROWS and len(sizes) > 2  # inserted in chunks, never 10,000 at once
    assert max(sizes) < JOBS
    assert _ids(page) == sorted(_ids(page), reverse=True) and len(set(_ids(page))) == JOBS
    assert page.model.full_reloads == 1  # the one reset: the page's first read
    assert f"{JOBS // 4} completed" in page.summary.text() and f"{JOBS // 4} queued" in page.summary.text()
    assert page.current_job_id() == page.model.rows[0].id  # the newest job is selected


def test_sorting_by_sqlite_keeps_the_selection(page: Any, qtbot: Any) -> None:
    qtbot.waitUntil(lambda: _loaded(page), timeout=60_000)
    chosen = page.model.rows[4321].id
    assert page.select_job(chosen)
    page.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # Name
    qtbot.waitUntil(lambda: _loaded(page) and page.model.order.key == "name", timeout=60_000)
    names = [row.name for row in page.model.rows]
    assert names == sorted(names)
    qtbot.waitUntil(lambda: page.current_job_id() == chosen, timeout=10_000)
    selected = [index.row() for index in page.table.selectionModel().selectedRows()]
    assert selected == [page.model.row_for(chosen)]
    page.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # Epoch
    qtbot.waitUntil(lambda: _loaded(page) and page.model.order.key == "epoch", timeout=60_000)
    epochs = [row.epoch for row in page.model.rows]
    assert epochs == sorted(epochs, reverse=True)
    qtbot.waitUntil(lambda: page.current_job_id() == chosen, timeout=10_000)
    page.table.sortByColumn(5, Qt.SortOrder.AscendingOrder)  # ETA: computed, not sorted
    assert page.model.order.key == "epoch"
    assert page.table.horizontalHeader().sortIndicatorSection() == 3


def test_changes_reach_their_rows_without_a_reload(page: Any, store: Any, qtbot: Any, tmp_path: Any) -> None:
    from core.config import config_from_dict
    from core.jobs import store as job_store
    from core.services import jobs as job_service

    qtbot.waitUntil(lambda: _loaded(page), timeout=60_000)
    resets: list[int] = []
    changed: list[tuple[int, int]] = []
    inserted: list[tuple[int, int]] = []
    removed: list[tuple[int, int]] = []
    page.model.modelReset.connect(lambda: resets.append(1))
    page.model.dataChanged.connect(lambda top, bottom, *_: changed.append((top.row(), bottom.row())))
    page.model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    page.model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))

    queued = next(row for row in page.model.rows[5000:] if row.status == "queued")
    position = page.model.row_for(queued.id)
    job_store.update_job(store, queued.id, status="running", current_epoch=4)
    qtbot.waitUntil(lambda: page.model.job(queued.id).status == "running", timeout=20_000)
    assert page.model.job(queued.id).epoch == 4 and page.model.row_for(queued.id) == position
    assert {rows for rows in changed} == {(position, position)}  # that row only, every column of it
    job_store.update_job(store, queued.id, status="completed")  # finished: seen through the watch list
    qtbot.waitUntil(lambda: page.model.job(queued.id).status == "completed", timeout=20_000)

    new_id = job_store.create_job(store, config_from_dict({"dataset": str(tmp_path), "name": "after the sweep"}),
                                  project_id=page.state.project_id)
    qtbot.waitUntil(lambda: page.model.job(new_id) is not None, timeout=20_000)
    assert page.model.row_for(new_id) == 0 and inserted == [(0, 0)]
    gone = page.model.rows[9000].id
    assert job_service.delete_jobs(store, [gone]) == []
    qtbot.waitUntil(lambda: page.model.job(gone) is None, timeout=20_000)
    assert removed == [(9000, 9000)]
    assert page.model.rowCount() == JOBS and not resets and page.model.full_reloads == 1
    counts = job_service.job_counts(store, page.state.project_id)
    assert page.model.status_counts() == counts and f"{counts['completed']} completed" in page.summary.text()
    assert page.model.index(0, 0, QModelIndex()).data() == "after the sweep"


def test_columns_fit_the_first_page_without_asking_the_delegate(page: Any, qtbot: Any) -> None:
    """Widths come from font metrics (``text_widths``), yet every text of the first page and every
    title fits: nothing is elided, as if ``resizeColumnToContents`` had measured each cell."""
    from app.models.jobs_table import COL_PROGRESS, WIDEST_TEXTS

    qtbot.waitUntil(lambda: _loaded(page), timeout=60_000)
    table, header = page.table, page.table.horizontalHeader()
    for column in range(page.model.columnCount()):
        if column in (0, COL_PROGRESS):
            continue  # Name stretches; Progress is a fixed-width bar
        cells = max(table.sizeHintForIndex(page.model.index(row, column)).width() for row in range(100))
        assert table.columnWidth(column) >= max(cells + 1, header.sectionSizeHint(column)), column
        if column in WIDEST_TEXTS:  # room for what a row may say later ("completed", "accuracy 100.0 %")
            widest = max(table.fontMetrics().horizontalAdvance(text) for text in WIDEST_TEXTS[column])
            assert table.columnWidth(column) > widest, column
        else:
            assert table.columnWidth(column) <= max(cells + 1, header.sectionSizeHint(column)) + 4, column


def test_the_rest_is_read_once_the_first_page_is_shown(store: Any) -> None:
    """The reader hands over the first page, then waits for the page to show it before it reads the
    rest (read meanwhile, it competed for the GIL with the first paint)."""
    import threading

    from app.pages.jobs_page import CHUNK_ROWS, FIRST_PAGE_ROWS, _read_all_rows
    from core.services.jobs import JobOrder
    from core.services.projects import project_overview

    project_id = project_overview(store).default_project_id
    _make_jobs(store, project_id, 1_234)
    pages: list[int] = []
    waits: list[int] = []  # how many pages were handed over when the reader waited

    class State:
        def check(self) -> None:
            pass

        def partial(self, part: tuple[Any, list[Any]]) -> None:
            pages.append(len(part[1]))

    class Shown(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(len(pages))
            return super().wait(timeout)

    shown = Shown()
    shown.set()  # the page has painted the first page
    marks = _read_all_rows(State(), store, project_id, JobOrder(), shown)  # type: ignore[arg-type]
    assert set(waits) == {1} and pages[0] == FIRST_PAGE_ROWS
    assert pages[1:] == [CHUNK_ROWS, CHUNK_ROWS, 1_234 - FIRST_PAGE_ROWS - 2 * CHUNK_ROWS]
    assert sum(marks.counts.values()) == 1_234


def test_the_page_lets_the_rest_come_after_inserting_the_first_page(page: Any, qtbot: Any) -> None:
    from app.pages.jobs_page import FIRST_PAGE_ROWS

    qtbot.waitUntil(lambda: _loaded(page), timeout=60_000)
    assert page.inserts[0] == FIRST_PAGE_ROWS and sum(page.inserts) == JOBS
    assert page.shown_at_insert[0] is False  # the first page went in while the reader waited
    assert all(page.shown_at_insert[1:]) and len(page.shown_at_insert) == len(page.inserts)


def test_a_read_cancelled_while_it_waits_for_the_first_paint_stops(store: Any) -> None:
    import threading

    from app.pages.jobs_page import FIRST_PAGE_ROWS, _read_all_rows
    from app.workers import Cancelled
    from core.services.jobs import JobOrder
    from core.services.projects import project_overview

    project_id = project_overview(store).default_project_id
    _make_jobs(store, project_id, 1_234)
    pages: list[int] = []

    class State:  # cancelled (another reload) as soon as the first page is handed over
        def check(self) -> None:
            if pages:
                raise Cancelled()

        def partial(self, part: tuple[Any, list[Any]]) -> None:
            pages.append(len(part[1]))

    with pytest.raises(Cancelled):
        _read_all_rows(State(), store, project_id, JobOrder(), threading.Event())  # type: ignore[arg-type]
    assert pages == [FIRST_PAGE_ROWS]  # never shown, never read further


def test_the_tabs_paint_after_the_list_and_also_without_jobs(page: Any, store: Any, qtbot: Any,
                                                             qsettings_dir: Any) -> None:
    """The job's tabs (the charts: the costliest paint) wait for the list's first paint, then paint;
    an empty project has no list to wait for and shows its tabs once the read is done."""
    from app.models.app_state import AppState
    from app.pages.jobs_page import JobsPage
    from core.services.projects import create_project, project_overview
    from core.services.settings import load_settings

    qtbot.waitUntil(lambda: page._first_shown.is_set() and page.tabs.updatesEnabled(), timeout=60_000)
    empty_id = create_project(store, "Empty").id
    overview = project_overview(store)
    empty = JobsPage(AppState(store, load_settings(store), empty_id, overview))
    qtbot.addWidget(empty)
    empty.show()
    qtbot.waitUntil(lambda: empty._marks is not None and empty.tabs.updatesEnabled(), timeout=60_000)
    assert empty.model.rowCount() == 0
