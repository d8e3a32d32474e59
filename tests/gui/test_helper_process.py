"""The real helper subprocess (imports torch in the child, never in the GUI process)."""

from __future__ import annotations

import sys
from typing import Any

from app.helper_process import HelperService, helper_command
from core.frameworks import parse_helper_output


def test_helper_command_uses_module_entry_point() -> None:
    program, args = helper_command("sysinfo")
    assert program == sys.executable
    assert args == ["-m", "vision_platform", "sysinfo"]


def test_parse_helper_output_takes_last_json_line() -> None:
    assert parse_helper_output('banner\n{"a": 1}\n') == {"a": 1}


def test_sysinfo_from_subprocess_is_cached(qtbot: Any, qapp: Any) -> None:
    service = HelperService()
    with qtbot.waitSignal(service.sysinfo_ready, timeout=90_000) as blocker:
        service.request_sysinfo()
    info = blocker.args[0]
    assert info["devices"][0]["id"] == "cpu"
    # torch was imported by the helper process, not here ("no ML import in the GUI process" is proven
    # in a fresh interpreter by test_main_window; this pytest process may have imported torch elsewhere).
    assert info["versions"].get("torch")
    with qtbot.waitSignal(service.sysinfo_ready, timeout=1000):  # answered from the cache
        service.request_sysinfo()


def test_unknown_framework_fails_cleanly(qtbot: Any, qapp: Any) -> None:
    service = HelperService()
    with qtbot.waitSignal(service.models_failed, timeout=90_000) as blocker:
        service.request_models("no_such_framework")
    assert blocker.args[0] == "no_such_framework"
    assert blocker.args[1]
