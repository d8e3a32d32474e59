"""The Train page's "Import weights file…" asks before trusting a pickle, naming the file and the risk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.helpers.dialogs import answer_warnings


class _Payload:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.sentinel)!r}, 'w').write('pwned')",)


def test_import_asks_before_trusting_a_pickle(window: Any, qtbot: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """matrix row 28: No copies nothing and records nothing; Yes imports it and records its sha256."""
    import torch

    from core import paths, trust
    from core.files import sha256_file

    sentinel = tmp_path / "PWNED"
    evil = tmp_path / "yolo11n-evil.pt"
    torch.save({"model": _Payload(sentinel)}, evil)
    asked = answer_warnings(monkeypatch, QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
    page = window.train_page
    page.import_weights_file(str(evil))
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=20_000)
    assert str(evil) in asked[0] and "runs any code" in asked[0]
    assert list(paths.weights_dir().iterdir()) == [] and trust.read_manifest() == frozenset()

    page.import_weights_file(str(evil))
    qtbot.waitUntil(lambda: page.weights_edit.text() != "", timeout=20_000)
    assert Path(page.weights_edit.text()) == paths.weights_dir() / evil.name
    assert trust.read_manifest() == {sha256_file(evil)} and not sentinel.exists()
