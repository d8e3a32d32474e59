"""Start-up pauses Python's garbage collector until the pages are built, and always turns it back on.

The collections that start-up's imports trigger freed nothing and cost about a tenth of the start
(bench/bench_gui.py); a collector left off for the session would let cyclic garbage pile up.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any


def test_start_pauses_gc_until_the_pages_are_built(qapp: Any, qsettings_dir: Path, vp_home: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main import main
    from app.main_window import MainWindow

    assert gc.isenabled()
    seen: dict[str, Any] = {}

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].state is None:
            seen.setdefault("enabled_while_opening", gc.isenabled())
        if windows and windows[0].state is not None:
            seen["enabled_with_pages"] = gc.isenabled()
            seen["projects"] = windows[0].sidebar.project_names()
            windows[0].close()
        else:
            QTimer.singleShot(5, poll)

    QTimer.singleShot(0, poll)
    assert main([]) == 0
    assert seen["projects"] == ["Default"]
    assert seen["enabled_while_opening"] is False
    assert seen["enabled_with_pages"] is True
    assert gc.isenabled()


def test_a_failed_window_build_turns_gc_back_on(qapp: Any, qsettings_dir: Path, vp_home: Path,
                                               monkeypatch: Any) -> None:
    import pytest

    import app.main_window
    from app.main import main

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("no window today")

    monkeypatch.setattr(app.main_window, "MainWindow", broken)
    with pytest.raises(RuntimeError, match="no window today"):
        main([])
    assert gc.isenabled()
