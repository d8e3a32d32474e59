"""Help → About lists the bundled packages with versions and licences and shows a package's licence text."""

from __future__ import annotations

from typing import Any


def test_about_lists_packages_with_versions_and_licences(window: Any, qtbot: Any) -> None:
    import importlib.metadata

    dialog = window.open_about()
    qtbot.waitUntil(lambda: dialog.table.rowCount() > 5, timeout=20_000)
    rows = {dialog.table.item(row, 0).text(): row for row in range(dialog.table.rowCount())}
    for package in ("torch", "ultralytics", "PySide6_Essentials", "timm"):
        name = next(name for name in rows if name.lower().replace("-", "_") == package.lower())
        assert dialog.table.item(rows[name], 1).text() == importlib.metadata.version(name)
    ultralytics = rows[next(name for name in rows if name.lower() == "ultralytics")]
    assert "AGPL" in dialog.table.item(ultralytics, 2).text()
    dialog.table.setCurrentCell(ultralytics, 0)
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in dialog.text.toPlainText()
    dialog.close()
