"""Scripted answers for the app's question boxes: a test says what the user clicks, in order, and
reads back the texts the user was shown."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox


def answer_warnings(monkeypatch: pytest.MonkeyPatch, *clicks: QMessageBox.StandardButton) -> list[str]:
    """``QMessageBox.warning`` answers ``clicks`` one by one; the returned list collects each text shown."""
    asked: list[str] = []

    def answer(_parent: Any, _title: str, text: str, *_args: Any) -> QMessageBox.StandardButton:
        asked.append(text)
        return clicks[len(asked) - 1]

    monkeypatch.setattr(QMessageBox, "warning", answer)
    return asked
