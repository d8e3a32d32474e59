"""Inference page: an empty-state invitation until part 2 adds trying a trained model on images."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.look import icon
from app.models.app_state import AppState
from app.widgets.common import EmptyState


class InferencePage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty = EmptyState(
            icon("inference"),
            "Try a trained model",
            "Once a job has finished, pick its checkpoint here and drop images on this page to see "
            "its predictions. No finished jobs yet — start by training one.",
        )
        self.empty.add_button("Go to jobs", icon("jobs"), lambda: state.page_request.emit("jobs"), primary=True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
