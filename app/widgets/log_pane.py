"""The worker log of one job, tailing live, searchable; a failed job's error and traceback on top.

A 500 ms timer reads only the bytes appended since the last read (a seek and a small read), in a
background task: a log on a slow or busy disk never stalls the window. Opening a job shows the last
``INITIAL_TAIL_BYTES`` of its log, not a 100 MB file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QKeySequence,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.widgets.common import Banner
from app.workers import TaskSlots

TAIL_INTERVAL_MS = 500
INITIAL_TAIL_BYTES = 512 * 1024
MAX_READ_PER_TICK = 256 * 1024
MAX_LINES = 20_000


@dataclass(frozen=True)
class LogChunk:
    """Bytes read from a log: from ``start``; ``restarted`` when the file shrank (a re-run)."""

    start: int
    data: bytes
    restarted: bool = False
    mid_file: bool = False  # started inside the file: the first line is a fragment


def read_appended(path: Path, offset: int | None, limit: int) -> LogChunk | None:
    """What was appended to ``path`` after ``offset`` (None: the last ``limit`` bytes), at most ``limit``."""
    try:
        size = path.stat().st_size
        restarted = offset is not None and size < offset
        start = max(0, size - limit) if offset is None else (0 if restarted else offset)
        if size == start:
            return LogChunk(start, b"", restarted)
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(limit)
    except OSError:
        return None
    return LogChunk(start, data, restarted, mid_file=offset is None and start > 0)


class LogPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.banner = Banner()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the log (Enter: next, Shift+Enter: previous)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._highlight_all)
        self.search.returnPressed.connect(lambda: self.find_next())
        QShortcut(QKeySequence("Shift+Return"), self.search, lambda: self.find_next(backward=True))
        self.matches = QLabel("")
        previous_button = QPushButton("Previous")
        previous_button.clicked.connect(lambda: self.find_next(backward=True))
        next_button = QPushButton("Next")
        next_button.clicked.connect(lambda: self.find_next())
        self.follow = QPushButton("Follow")
        self.follow.setCheckable(True)
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the newest lines in view")
        bar = QHBoxLayout()
        bar.addWidget(self.search, 1)
        bar.addWidget(self.matches)
        bar.addWidget(previous_button)
        bar.addWidget(next_button)
        bar.addWidget(self.follow)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("The worker's log appears here once the job starts.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)
        self.path: Path | None = None
        self._offset: int | None = None  # None: not read yet (start from the tail)
        self._partial = b""
        self.tasks = TaskSlots(self)
        self.timer = QTimer(self)
        self.timer.setInterval(TAIL_INTERVAL_MS)
        self.timer.timeout.connect(self.poll)

    def set_log(self, path: Path | None) -> None:
        """Show ``path`` (a job's worker.log) from its tail and keep following it."""
        if path == self.path:
            self.poll()
            return
        self.tasks.cancel("tail")
        self.path = path
        self.text.clear()
        self._partial = b""
        self._offset = None
        self.poll(limit=INITIAL_TAIL_BYTES)
        if path is None:
            self.timer.stop()
        else:
            self.timer.start()

    def set_error(self, message: str | None, traceback: str | None) -> None:
        if message:
            first = f"This job failed: {message}"
            self.banner.show_message(first, detail=traceback or "")
        else:
            self.banner.clear()

    def poll(self, limit: int = MAX_READ_PER_TICK) -> None:
        """Read what the log gained since the last read, off the GUI thread (one read at a time)."""
        path, offset = self.path, self._offset
        if path is None or self.tasks.running("tail"):
            return
        self.tasks.start("tail", lambda _st: read_appended(path, offset, limit), title="Read the job log",
                         on_result=lambda chunk: self._on_read(path, chunk))

    def _on_read(self, path: Path, chunk: LogChunk | None) -> None:
        if chunk is None or path != self.path:
            return
        if chunk.restarted:
            self.text.clear()
            self._partial = b""
        self._offset = chunk.start + len(chunk.data)
        data = self._partial + chunk.data
        if chunk.mid_file:  # started mid-file: the first line is a fragment
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        complete, newline, rest = data.rpartition(b"\n")
        if not newline:  # no full line yet: wait for the rest
            self._partial = data
            return
        self._partial = rest
        self._append(complete.decode("utf-8", errors="replace"))

    def _append(self, text: str) -> None:
        scrollbar = self.text.verticalScrollBar()
        at_bottom = scrollbar.value() >= scrollbar.maximum() - 2
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.text.document().isEmpty():
            cursor.insertText("\n")
        cursor.insertText(text)
        if self.follow.isChecked() and at_bottom:
            scrollbar.setValue(scrollbar.maximum())
        if self.search.text():
            self._highlight_all(self.search.text())

    def plain_text(self) -> str:
        return self.text.toPlainText()

    # -- search -----------------------------------------------------------------------------------
    def find_next(self, backward: bool = False) -> bool:
        needle = self.search.text()
        if not needle:
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = self.text.find(needle, flags)
        if not found:  # wrap around
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start)
            self.text.setTextCursor(cursor)
            found = self.text.find(needle, flags)
        if found:
            self.follow.setChecked(False)  # the user is reading: stop jumping to the end
        return found

    def _highlight_all(self, needle: str) -> None:
        selections: list[QTextEdit.ExtraSelection] = []
        if needle:
            highlight = QTextCharFormat()
            highlight.setBackground(QColor(255, 214, 0, 150))
            highlight.setFontWeight(QFont.Weight.Bold)
            document = self.text.document()
            cursor = document.find(needle, 0)
            while not cursor.isNull() and len(selections) < 5000:
                selection = QTextEdit.ExtraSelection()
                selection.cursor = cursor  # type: ignore[attr-defined]
                selection.format = highlight  # type: ignore[attr-defined]
                selections.append(selection)
                cursor = document.find(needle, cursor)
        self.text.setExtraSelections(selections)
        self.matches.setText(f"{len(selections)} match{'es' if len(selections) != 1 else ''}" if needle else "")
        self.matches.setAlignment(Qt.AlignmentFlag.AlignVCenter)
