"""Run blocking work off the GUI thread (like superqt's ``thread_worker``, in ~100 lines).

``run_task(fn, ...)`` runs ``fn(state)`` in a QThreadPool. ``state`` (a :class:`TaskState`) is the one
small object a task uses to report progress, hand over partial results and notice cancellation.
Results, progress and errors come back as queued signals, so callbacks always run on the GUI thread.
Errors without an ``on_error`` callback go to the single :func:`notifier`, which the main window shows
in place (status bar) with the traceback one click away.

Every task has an owner (the widget its callbacks touch): results for a deleted widget are dropped.
A widget that reloads something (a job's details, a list) starts it through its :class:`TaskSlots`
(Orange3's ``ConcurrentMixin`` pattern): one task per slot, a new start cancels the old one, and only
the newest task's callbacks run, so no widget compares ids by hand to drop a stale result.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class Cancelled(Exception):
    """Raised by :meth:`TaskState.check` when the user cancelled the task."""


@dataclass
class ErrorInfo:
    title: str
    message: str  # a sentence for the user
    detail: str  # the traceback, shown on request


class TaskState:
    """Shared between the GUI (cancel) and the task (progress, partial results, cancellation checks)."""

    def __init__(self, signals: _TaskSignals) -> None:
        self._signals = signals
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, done: int, total: int, message: str = "") -> None:
        self._signals.progress.emit(int(done), int(total), message)

    def partial(self, value: Any) -> None:
        self._signals.partial.emit(value)


class _TaskSignals(QObject):
    result = Signal(object)
    error = Signal(object)  # ErrorInfo
    progress = Signal(int, int, str)
    partial = Signal(object)
    cancelled = Signal()
    finished = Signal()


class _Notifier(QObject):
    error = Signal(object)  # ErrorInfo
    message = Signal(str)  # a one-line announcement (toast)


_notifier: _Notifier | None = None


def notifier() -> _Notifier:
    """The app-wide sink for task errors nobody else handled and for announcements."""
    global _notifier
    if _notifier is None:
        _notifier = _Notifier()
    return _notifier


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[TaskState], Any], state: TaskState, signals: _TaskSignals, title: str) -> None:
        super().__init__()
        self._fn = fn
        self._state = state
        self._signals = signals
        self._title = title

    def run(self) -> None:
        try:
            value = self._fn(self._state)
        except Cancelled:
            self._signals.cancelled.emit()
        except Exception as exc:  # every failure is reported, never swallowed
            self._signals.error.emit(ErrorInfo(self._title, str(exc) or type(exc).__name__, traceback.format_exc()))
        else:
            if self._state.cancelled:
                self._signals.cancelled.emit()
            else:
                self._signals.result.emit(value)
        finally:
            self._signals.finished.emit()


class _OwnerGuard:
    def __init__(self, owner: QObject, state: TaskState) -> None:
        self._owner = owner
        owner.destroyed.connect(state.cancel)

    def wrap(self, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            if shiboken6.isValid(self._owner):
                callback(*args)

        return guarded


class TaskHandle:
    def __init__(self, state: TaskState, signals: _TaskSignals) -> None:
        self.state = state
        self.signals = signals
        self.done = False

    def cancel(self) -> None:
        self.state.cancel()


_live: set[TaskHandle] = set()  # keeps signal objects alive until their task finished


def task_pool() -> QThreadPool:
    return QThreadPool.globalInstance()


def run_task(
    fn: Callable[[TaskState], Any],
    *,
    title: str = "Background task",
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[ErrorInfo], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    on_partial: Callable[[Any], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    owner: QObject,
    pool: QThreadPool | None = None,
) -> TaskHandle:
    """Start ``fn(state)`` in a worker thread; callbacks run on the thread that called this (the GUI).

    ``owner`` (required): the widget the callbacks touch. If it is destroyed before the task ends (a window
    closed while a dataset was still loading), the task is asked to cancel and no callback runs, so
    a late result never reaches a deleted widget.
    """
    signals = _TaskSignals()
    state = TaskState(signals)
    handle = TaskHandle(state, signals)
    guard = _OwnerGuard(owner, state)
    on_result, on_error, on_progress, on_partial, on_cancelled = (
        guard.wrap(cb) if cb is not None else None
        for cb in (on_result, on_error, on_progress, on_partial, on_cancelled)
    )
    if on_result is not None:
        signals.result.connect(on_result)
    signals.error.connect(on_error if on_error is not None else notifier().error.emit)
    if on_progress is not None:
        signals.progress.connect(on_progress)
    if on_partial is not None:
        signals.partial.connect(on_partial)
    if on_cancelled is not None:
        signals.cancelled.connect(on_cancelled)

    def _finished() -> None:
        handle.done = True
        _live.discard(handle)
        if on_finished is not None:
            on_finished()

    signals.finished.connect(_finished)
    _live.add(handle)
    (pool or task_pool()).start(_Runnable(fn, state, signals, title))
    return handle


class TaskSlots:
    """Named slots of background work for one widget: one task per slot, the newest wins.

    ``slots.start("detail", fn, on_result=…)`` cancels the task still running in ``"detail"`` and
    starts ``fn``; callbacks of a superseded task never run (its result is dropped, even if it
    finished first). The owner is always the widget, so nothing reaches it after it is deleted.
    """

    def __init__(self, owner: QObject) -> None:
        self.owner = owner
        self._current: dict[str, TaskHandle] = {}

    def start(self, slot: str, fn: Callable[[TaskState], Any], **options: Any) -> TaskHandle:
        """``options``: ``run_task``'s (title, pool, on_result, …) except ``owner``."""
        self.cancel(slot)
        box: list[TaskHandle] = []

        def current(callback: Callable[..., None] | None) -> Callable[..., None] | None:
            if callback is None:
                return None
            return lambda *args: callback(*args) if box and self._current.get(slot) is box[0] else None

        wrapped: dict[str, Any] = {
            name: current(value) if name.startswith("on_") and name != "on_finished" else value
            for name, value in options.items()
        }
        handle = run_task(fn, owner=self.owner, **wrapped)
        box.append(handle)
        self._current[slot] = handle
        return handle

    def running(self, slot: str) -> bool:
        handle = self._current.get(slot)
        return handle is not None and not handle.done

    def cancel(self, slot: str) -> None:
        handle = self._current.pop(slot, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for slot in list(self._current):
            self.cancel(slot)
