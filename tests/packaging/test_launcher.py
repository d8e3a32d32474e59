"""The launcher (`vision-platform`): files on its command line open in the GUI (the .desktop entry's %F),
and frozen, `sys.executable -m MODULE` runs the bundled module (how `mlflow ui` is started)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from vision_platform import launcher


def test_launcher_opens_files_in_the_gui(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    seen: list[Any] = []
    monkeypatch.setattr(launcher, "_gui", lambda argv: seen.append(argv) or 0)
    assert launcher.main([str(image)]) == 0
    assert seen == [[str(image)]]


def test_frozen_app_runs_python_dash_m(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert launcher.main(["-m", "calendar", "2026", "1"]) == 0
    assert "January 2026" in capsys.readouterr().out
