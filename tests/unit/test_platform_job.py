"""Workers die with the app: on Windows the app's Job Object with kill-on-close, kernel32 faked.

What is checked: the job is created once per app process with ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`` in
a JOBOBJECT_EXTENDED_LIMIT_INFORMATION laid out as Windows' (144 bytes on 64-bit), each child is
opened with the rights AssignProcessToJobObject needs and assigned, its handle closed and the job's
kept; every failure is a reason returned (and logged by the worker start), never an exception; and
on POSIX nothing is called. The POSIX "app killed → worker exits" is tests/e2e/test_runner_faults.py.
"""

from __future__ import annotations

import ctypes
import logging
import subprocess
import sys
from typing import Any

import pytest

from core import platform
from core.jobs import spawn

JOB, KILL_ON_CLOSE = 0x77, platform.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE


class FakeKernel32:
    """The five kernel32 calls, recorded; ``failing`` names the ones that return 0 (failure)."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.calls: list[tuple[Any, ...]] = []
        self.limits: platform.JobExtendedLimitInformation | None = None

    def _result(self, name: str, value: int, *args: Any) -> int:
        self.calls.append((name, *args))
        return 0 if name in self.failing else value

    def CreateJobObjectW(self, attributes: Any, name: Any) -> int:  # noqa: N802 (the Win32 name)
        return self._result("CreateJobObjectW", JOB, attributes, name)

    def SetInformationJobObject(self, job: int, info_class: int, info: Any, size: int) -> int:  # noqa: N802
        self.limits = platform.JobExtendedLimitInformation.from_buffer_copy(info.contents)
        return self._result("SetInformationJobObject", 1, job, info_class, size)

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:  # noqa: N802
        return self._result("OpenProcess", 0x1000 + pid, access, inherit, pid)

    def AssignProcessToJobObject(self, job: int, process: int) -> int:  # noqa: N802
        return self._result("AssignProcessToJobObject", 1, job, process)

    def CloseHandle(self, handle: int) -> int:  # noqa: N802
        return self._result("CloseHandle", 1, handle)

    def last_error(self) -> int:
        return 5  # ERROR_ACCESS_DENIED

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


class Child:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def test_the_limit_structure_has_windows_layout() -> None:
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(platform.JobExtendedLimitInformation) == 144
    assert platform.JobExtendedLimitInformation.BasicLimitInformation.offset == 0
    assert platform._BasicLimitInformation.LimitFlags.offset == 16


def test_a_child_joins_a_kill_on_close_job_right_away() -> None:
    kernel32 = FakeKernel32()
    job = platform.AppJob(kernel32)
    assert platform.bind_child_to_app(Child(42), windows=True, job=job) is None
    assert kernel32.named("CreateJobObjectW") == [("CreateJobObjectW", None, None)]
    (_, handle, info_class, size), = kernel32.named("SetInformationJobObject")
    assert (handle, info_class, size) == (JOB, 9, ctypes.sizeof(platform.JobExtendedLimitInformation))
    assert kernel32.limits is not None and kernel32.limits.BasicLimitInformation.LimitFlags == KILL_ON_CLOSE
    assert kernel32.named("OpenProcess") == [("OpenProcess", platform.PROCESS_SET_QUOTA | platform.PROCESS_TERMINATE, False, 42)]
    assert kernel32.named("AssignProcessToJobObject") == [("AssignProcessToJobObject", JOB, 0x1000 + 42)]
    assert kernel32.named("CloseHandle") == [("CloseHandle", 0x1000 + 42)]  # the job's own handle stays open


def test_the_job_is_created_once_for_every_child() -> None:
    kernel32 = FakeKernel32()
    job = platform.AppJob(kernel32)
    for pid in (1, 2, 3):
        assert platform.bind_child_to_app(Child(pid), windows=True, job=job) is None
    assert len(kernel32.named("CreateJobObjectW")) == 1
    assert [call[2] for call in kernel32.named("AssignProcessToJobObject")] == [0x1001, 0x1002, 0x1003]


def test_the_app_has_one_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "_app_job", None)
    assert platform.app_job() is platform.app_job()


@pytest.mark.parametrize(("failing", "reason"), [
    ("CreateJobObjectW", "CreateJobObjectW failed (Windows error 5)"),
    ("SetInformationJobObject", "SetInformationJobObject failed (Windows error 5)"),
])
def test_a_job_that_cannot_be_set_up_is_reported_once_and_not_retried(failing: str, reason: str) -> None:
    kernel32 = FakeKernel32(failing)
    job = platform.AppJob(kernel32)
    assert platform.bind_child_to_app(Child(1), windows=True, job=job) == reason
    assert platform.bind_child_to_app(Child(2), windows=True, job=job) == reason
    assert len(kernel32.named("CreateJobObjectW")) == 1 and kernel32.named("AssignProcessToJobObject") == []
    if failing == "SetInformationJobObject":  # a job without kill-on-close is useless: not kept
        assert kernel32.named("CloseHandle") == [("CloseHandle", JOB)]


@pytest.mark.parametrize(("failing", "reason"), [
    ("OpenProcess", "OpenProcess(7) failed (Windows error 5)"),
    ("AssignProcessToJobObject", "AssignProcessToJobObject(7) failed (Windows error 5)"),
])
def test_a_child_that_cannot_join_is_reported_not_fatal(failing: str, reason: str) -> None:
    kernel32 = FakeKernel32(failing)
    assert platform.bind_child_to_app(Child(7), windows=True, job=platform.AppJob(kernel32)) == reason
    if failing == "AssignProcessToJobObject":
        assert kernel32.named("CloseHandle") == [("CloseHandle", 0x1000 + 7)]  # no handle leaks


def test_posix_binds_nothing() -> None:
    class NoKernel32:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"kernel32.{name} called on POSIX")

    assert platform.bind_child_to_app(Child(1), windows=False, job=platform.AppJob(NoKernel32())) is None


def test_no_win32_api_is_a_reason_not_a_crash() -> None:
    if sys.platform == "win32":
        pytest.skip("kernel32 exists here")
    assert platform.AppJob().assign(1) == "the Win32 API could not be loaded (kernel32 exists on Windows only)"


def test_every_worker_start_binds_the_child_and_logs_a_failure(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    bound: list[int] = []

    def refuse(process: Any) -> str:
        bound.append(process.pid)
        return "AssignProcessToJobObject(1) failed (Windows error 5)"

    monkeypatch.setattr(platform, "bind_child_to_app", refuse)
    with caplog.at_level(logging.WARNING, logger="core.jobs.spawn"):
        process = spawn.start_worker_process([sys.executable, "-c", "print('ok')"], stdin=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, cwd=None)
        out, _ = process.communicate(timeout=120)
    assert out.strip() == "ok" and bound == [process.pid]
    assert f"worker {process.pid} may outlive the app: AssignProcessToJobObject(1) failed" in caplog.text
