"""The Jobs page's "Test set" strip: the selected job's best checkpoint measured on its dataset's test split.

A dataset's ``test`` images are never trained on nor used to pick best.pt; after a completed run the
worker evaluates best.pt on them once and reports the numbers as metrics of kind "test"
(``core.events``). They are the run's honest score, so they sit above the tabs, next to the job they
belong to, not among the per-epoch curves. A job without them (no test split, cancelled, still running)
shows nothing here. Read from the store in a worker thread; a live event fills it at once.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from app.look import HINT_STYLE
from app.workers import TaskSlots
from core.events import TEST_METRICS_KIND
from core.services import jobs as job_service

PREFIX = "test/"


def _is_per_class(name: str) -> bool:
    return "/" in name.removeprefix(PREFIX)  # "test/iou/cat": one class's value, listed in the tooltip


def _order(name: str) -> tuple[int, str]:
    """Scores first (mAP, accuracy, mIoU …), then losses; alphabetical within each."""
    return (1 if "loss" in name else 0, name)


def summary_text(values: dict[str, float]) -> str:
    """"map50_95 41.2 % · map50 63.0 % · …": the overall values, per-class ones left to the tooltip."""
    overall = sorted((name for name in values if not _is_per_class(name)), key=_order)
    return " · ".join(job_service.format_metric(name, values[name]) for name in overall)


def detail_text(epoch: int | None, values: dict[str, float]) -> str:
    where = f"best checkpoint (epoch {epoch})" if epoch else "best checkpoint"
    lines = [f"The {where} evaluated once, after training, on the dataset's test split.",
             "Those images were never trained on nor used to choose the best checkpoint.", ""]
    lines += [f"{name.removeprefix(PREFIX)}: {values[name]:.4g}" for name in sorted(values, key=_order)]
    return "\n".join(lines)


def _read_latest(store: Any, job_id: int) -> tuple[int | None, dict[str, float]] | None:
    """The newest test-split record of the job (a resumed run evaluates again), or None. Worker thread."""
    records = job_service.metric_records(store, job_id, kind=TEST_METRICS_KIND)
    return (records[-1].epoch, dict(records[-1].values)) if records else None


class TestSetStrip(QFrame):
    """One line: "Test set · best checkpoint, epoch 3 · accuracy 91.2 % · loss 0.21"; hidden without values."""

    __test__ = False  # a widget, not a pytest class

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job_id: int | None = None
        self.values: dict[str, float] = {}
        self.epoch: int | None = None
        self.tasks = TaskSlots(self)  # "read": the newest selection's read wins
        self.setObjectName("testMetrics")
        self.setStyleSheet("#testMetrics { border: 1px solid palette(mid); border-radius: 4px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        self.title = QLabel("<b>Test set</b>")
        self.where = QLabel()
        self.where.setStyleSheet(HINT_STYLE)
        self.numbers = QLabel()
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        layout.addWidget(self.where)
        layout.addWidget(self.numbers, 1)
        self.hide()

    def set_job(self, job_id: int | None) -> None:
        self.job_id = job_id
        self.show_values(None, {})
        self.refresh()

    def refresh(self) -> None:
        job_id = self.job_id
        if job_id is None:
            self.tasks.cancel("read")
            return
        store = self.state.store
        self.tasks.start("read", lambda _st: _read_latest(store, job_id), title="Read test metrics",
                         on_result=lambda found: self._on_read(job_id, found), on_error=lambda _info: None)

    def _on_read(self, job_id: int, found: tuple[int | None, dict[str, float]] | None) -> None:
        if job_id == self.job_id:
            self.show_values(*(found or (None, {})))

    def show_values(self, epoch: int | None, values: dict[str, float]) -> None:
        """Show a job's test numbers (from the store or a live event); none: the strip hides."""
        self.epoch, self.values = epoch, dict(values)
        if not values:
            self.hide()
            return
        self.where.setText(f"best checkpoint, epoch {epoch}" if epoch else "best checkpoint")
        self.numbers.setText(summary_text(values))
        self.setToolTip(detail_text(epoch, values))
        self.show()

    def on_event(self, job_id: int, event: dict[str, Any]) -> bool:
        """Take a live ``metrics`` event of kind "test" of the shown job; True if it was one (any job)."""
        if event.get("kind") != TEST_METRICS_KIND:
            return False
        if job_id == self.job_id:
            self.show_values(event.get("epoch"), event.get("values") or {})
        return True
