"""Background tasks: every task has an owner, one task per slot, the newest result wins.

Ordering is made by construction with events (a task waits at a gate the test opens), never by timing.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtWidgets import QWidget

from app.workers import TaskSlots, TaskState, run_task


def _gated(gate: threading.Event, value: str) -> Any:
    def work(state: TaskState) -> str:
        assert gate.wait(60)
        return value

    return work


def test_a_new_start_cancels_the_old_and_its_late_result_is_dropped(qtbot: Any) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    slots = TaskSlots(widget)
    results: list[str] = []
    first_gate, second_gate = threading.Event(), threading.Event()
    first = slots.start("detail", _gated(first_gate, "old"), title="old", on_result=results.append)
    second = slots.start("detail", _gated(second_gate, "new"), title="new", on_result=results.append)
    assert first.state.cancelled and not second.state.cancelled
    first_gate.set()  # the superseded task finishes first: its result must not arrive
    qtbot.waitUntil(lambda: first.done, timeout=10_000)
    assert results == []
    second_gate.set()
    qtbot.waitUntil(lambda: second.done, timeout=10_000)
    assert results == ["new"] and not slots.running("detail")


def test_slots_are_independent(qtbot: Any) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    slots = TaskSlots(widget)
    results: list[str] = []
    slots.start("a", lambda _st: "a", on_result=results.append)
    slots.start("b", lambda _st: "b", on_result=results.append)
    qtbot.waitUntil(lambda: sorted(results) == ["a", "b"], timeout=10_000)


def test_no_callback_reaches_a_deleted_owner(qtbot: Any) -> None:
    widget = QWidget()
    gate = threading.Event()
    results: list[str] = []
    finished = threading.Event()
    handle = run_task(_gated(gate, "late"), owner=widget, on_result=results.append, on_finished=finished.set)
    widget.deleteLater()
    qtbot.waitUntil(lambda: handle.state.cancelled, timeout=10_000)  # deleting the owner cancels the task
    gate.set()
    qtbot.waitUntil(lambda: handle.done, timeout=10_000)
    assert results == []
