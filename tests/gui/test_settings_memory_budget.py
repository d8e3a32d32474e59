"""The Settings dialog's memory budget: automatic by default, a size in GB when set, kept exact when untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.services import settings as settings_service


def test_the_memory_budget_is_set_in_the_settings_dialog(window: Any, qtbot: Any, store: Any, tmp_path: Path) -> None:
    from app.settings_dialog import SettingsDialog

    dialog = window.open_settings()
    assert isinstance(dialog, SettingsDialog)
    field = dialog.memory_budget
    assert field.value() == 0 and field.text().startswith("Automatic")
    dialog.grab().save(str(Path("/tmp/vp") / "h7_settings_memory_budget.png"))
    field.setValue(6.0)
    assert field.text() == "6.0 GB"
    dialog.accept()
    qtbot.waitUntil(lambda: window.state.settings.memory_budget_mb == 6 * 1024, timeout=20_000)
    assert settings_service.load_settings(store).memory_budget_mb == 6 * 1024


def test_a_budget_finer_than_the_field_survives_a_save(window: Any, qtbot: Any, store: Any) -> None:
    """1 MB (set with the CLI) shows as 0.0 GB, yet saving the dialog for another reason keeps it."""
    settings_service.update_settings(store, {"memory_budget_mb": "1"})
    window.state.set_settings(settings_service.load_settings(store))
    dialog = window.open_settings()
    dialog.max_jobs.setValue(2)
    dialog.accept()
    qtbot.waitUntil(lambda: window.state.settings.max_concurrent_jobs == 2, timeout=20_000)
    assert settings_service.load_settings(store).memory_budget_mb == 1
