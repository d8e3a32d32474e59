"""Small building blocks: empty-state invitations, inline message banners, busy rows."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.look import ERROR_COLOUR, HINT_STYLE, WARNING_COLOUR


class EmptyState(QWidget):
    """A centred invitation: icon, headline, one sentence, the buttons that do it."""

    def __init__(self, icon: QIcon, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        picture = QLabel()
        picture.setPixmap(icon.pixmap(72, 72))
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(picture)
        self.title = QLabel(title)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.title)
        self.text = QLabel(text)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.text.setStyleSheet(HINT_STYLE)
        layout.addWidget(self.text)
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        self.buttons.addStretch(1)
        layout.addSpacing(12)
        layout.addLayout(self.buttons)
        layout.addStretch(2)

    def add_button(self, text: str, icon: QIcon, slot: Callable[[], None], *, primary: bool = False) -> QPushButton:
        button = QPushButton(icon, text)
        button.setMinimumHeight(32)
        if primary:
            button.setDefault(True)
        button.clicked.connect(slot)
        # Between the two stretches: the buttons stay centred.
        self.buttons.insertWidget(self.buttons.count() - 1, button)
        return button


class Banner(QFrame):
    """An inline message where the problem happened, with the technical detail one click away."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.label, 1)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self._show_details)
        layout.addWidget(self.details_button)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.clear)
        layout.addWidget(close)
        self._detail = ""
        self.hide()

    def show_message(self, text: str, *, level: str = "error", detail: str = "") -> None:
        colour = ERROR_COLOUR if level == "error" else WARNING_COLOUR if level == "warning" else "#2f6fd0"
        self.setStyleSheet(
            f"#banner {{ border: 1px solid {colour}; border-left: 5px solid {colour}; border-radius: 4px; }}"
        )
        self.label.setText(text)
        self._detail = detail
        self.details_button.setVisible(bool(detail))
        self.show()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def clear(self) -> None:
        self.hide()
        self.label.clear()
        self._detail = ""
        self.dismissed.emit()

    def _show_details(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Details", self.label.text(), parent=self)
        box.setDetailedText(self._detail)
        box.open()


class BusyRow(QWidget):
    """"Opening dataset…  [=====    ]  Cancel" shown in place while work runs."""

    cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        layout.addWidget(self.label)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.bar.setRange(0, 0)
        layout.addWidget(self.bar)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_clicked.emit)
        layout.addWidget(self.cancel)
        layout.addStretch(1)
        self.hide()

    def start(self, text: str) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.show()

    def progress(self, done: int, total: int, text: str = "") -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        if text:
            self.label.setText(text)

    def stop(self) -> None:
        self.hide()


def confirm_pickle_import(parent: QWidget, path: str, *, title: str = "Trust this weights file?",
                          situation: str = "This file was not written by this app.", action: str = "Import it") -> bool:
    """Ask before trusting a pickle this app did not write: the dialog names the file and the risk
    (importing a weights file; loading a checkpoint that was never imported says so and "Load it")."""
    answer = QMessageBox.warning(
        parent, title,
        f"{path}\n\n{situation} It is a pickle: loading it (for training or inference) runs any code stored in "
        f"the file, with your user's rights. {action} only if you trust where it came from.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
