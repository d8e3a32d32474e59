"""The Jobs page's "Test set" strip: a job's best checkpoint on its dataset's test split (issue 13).

Rows are written exactly as the runner writes them (``_EventBatch``), live events go through the
window's job-event signal; the strip shows the selected job's numbers, hides for a job without them,
and test numbers never become a point of the per-epoch curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.tracking import epoch_events, make_job, metrics_event, persist

TESTED = {"test/accuracy": 0.8333, "test/loss": 0.4321, "test/top5": 1.0}


def _job_with_epochs(store: Any, *, tested: dict[str, float] | None) -> int:
    job_id = make_job(store, epochs=2, status="completed")
    events = [event for epoch in (1, 2) for event in epoch_events(epoch, 3)]
    if tested is not None:
        events.append(metrics_event("test", 2, None, tested))
    persist(store, job_id, events)
    return job_id


def _open_jobs_page(window: Any, qtbot: Any) -> Any:
    window.show_page("jobs")
    page = window.jobs_page
    qtbot.waitUntil(lambda: page.charts is not None, timeout=30_000)
    return page


def _select(page: Any, qtbot: Any, job_id: int) -> None:
    qtbot.waitUntil(lambda: page.model.job(job_id) is not None, timeout=10_000)
    assert page.select_job(job_id)
    qtbot.waitUntil(lambda: page.charts.job_id == job_id and page._loading_job is None, timeout=10_000)


def test_the_strip_shows_the_selected_jobs_test_numbers_and_hides_without_them(
        window: Any, store: Any, qtbot: Any, shots_dir: Path) -> None:
    tested = _job_with_epochs(store, tested=TESTED)
    untested = _job_with_epochs(store, tested=None)
    window.state.jobs_change.emit()
    page = _open_jobs_page(window, qtbot)
    strip = page.test_set

    _select(page, qtbot, tested)
    qtbot.waitUntil(lambda: strip.isVisible(), timeout=10_000)
    assert strip.where.text() == "best checkpoint, epoch 2"
    assert strip.numbers.text() == "accuracy 83.3 % · top5 100.0 % · loss 0.4321"
    assert "never trained on" in strip.toolTip()
    # The curves hold the two epochs, and no test value became a point of them.
    qtbot.waitUntil(lambda: page.charts.curve_points("metrics_epoch").get("val/accuracy") == 2, timeout=10_000)
    assert not any(kind == "test" or name.startswith("test/") for kind, name in page.charts.data.series)
    assert window.grab().save(str(shots_dir / "jobs_test_set.png"))
    picture = strip.grab().toImage()
    assert picture.width() > 300 and picture.height() > 10
    colours = {picture.pixel(x, picture.height() // 2) for x in range(picture.width())}
    assert len(colours) > 3  # text was drawn, not an empty frame

    _select(page, qtbot, untested)
    qtbot.waitUntil(lambda: not strip.isVisible(), timeout=10_000)
    assert strip.values == {}


def test_a_live_test_event_fills_the_strip_and_stays_off_the_charts(window: Any, store: Any, qtbot: Any) -> None:
    job_id = _job_with_epochs(store, tested=None)
    other = _job_with_epochs(store, tested=None)
    window.state.jobs_change.emit()
    page = _open_jobs_page(window, qtbot)
    _select(page, qtbot, job_id)
    strip = page.test_set
    qtbot.waitUntil(lambda: page.charts.curve_points("metrics_epoch").get("val/accuracy") == 2, timeout=10_000)
    assert not strip.isVisible()

    window.job_events.emit_event(other, metrics_event("test", 1, None, {"test/accuracy": 0.1}))  # not the shown job
    window.job_events.emit_event(job_id, metrics_event("test", 2, None, {"test/map50_95": 0.412, "test/map50": 0.63,
                                                                        "test/iou/cat": 0.5}))
    qtbot.waitUntil(lambda: strip.isVisible(), timeout=10_000)
    assert strip.numbers.text() == "map50 63.0 % · map50_95 41.2 %"  # per-class values only in the tooltip
    assert "iou/cat: 0.5" in strip.toolTip()
    assert not any(name.startswith("test/") for _kind, name in page.charts.data.series)
