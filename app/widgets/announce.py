"""One-line announcements ("Job 3: completed", "Saved overlay.png") in the window's status bar.

Shown once, never as a dialog (ui-guide). Goes to the status bar of the widget's own window, so a
closed window never receives announcements from a later one.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow, QWidget

ANNOUNCE_MS = 8000


def announce(widget: QWidget, text: str) -> bool:
    window = widget.window()
    if isinstance(window, QMainWindow):
        window.statusBar().showMessage(text, ANNOUNCE_MS)
        return True
    return False
