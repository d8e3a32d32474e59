"""The platform module owns every single-OS call; its Windows decisions are tested here with fakes.

- An AST scan fails if code outside ``core/platform.py`` uses ``os.killpg``, ``os.setsid``,
  ``os.fork``, ``signal.SIGKILL``, ``fcntl``, ``msvcrt``, ``win32*``, ``preexec_fn`` or
  ``start_new_session``.
- Windows: the creation flags, the graceful stop (CTRL_BREAK_EVENT), the tree kill (descendants, then
  the process) and the replace retry, with the OS calls faked; POSIX: the same functions for real on
  a process group of real processes.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from core import platform
from tests.conftest import ROOT

PACKAGES = ("app", "core", "adapters", "vision_platform")
FORBIDDEN_ATTRIBUTES = {("os", "killpg"), ("os", "setsid"), ("os", "fork"), ("os", "getpgid"), ("signal", "SIGKILL")}
FORBIDDEN_MODULES = ("fcntl", "msvcrt", "win32api", "win32con", "win32job", "win32process", "_winapi")
FORBIDDEN_KEYWORDS = ("preexec_fn", "start_new_session")


def _scan(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in FORBIDDEN_ATTRIBUTES:
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [n for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.keyword) and node.arg in FORBIDDEN_KEYWORDS:
            found.append(f"{node.arg}=")
    return found


def _single_os_uses(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{path.relative_to(root)}:{use}" for use in _scan(tree)]


def test_no_single_os_call_outside_the_platform_module() -> None:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if p != ROOT / "core" / "platform.py"]
    uses = [use for path in files for use in _single_os_uses(path)]
    assert uses == [], f"single-OS calls outside core/platform.py: {uses}"


def test_the_scan_finds_each_kind_of_use(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os, signal, fcntl\nos.killpg(1, signal.SIGKILL)\nPopen(x, start_new_session=True)\n")
    assert sorted(u.split(":")[-1] for u in _single_os_uses(sample, tmp_path)) == [
        "fcntl", "os.killpg", "signal.SIGKILL", "start_new_session="]


# -- Windows decisions, OS calls faked ------------------------------------------------------------
class FakeProcess:
    def __init__(self, pid: int = 4242) -> None:
        self.pid = pid
        self.calls: list[tuple[str, Any]] = []

    def send_signal(self, sig: int) -> None:
        self.calls.append(("send_signal", sig))

    def kill(self) -> None:
        self.calls.append(("kill", None))


def test_windows_children_get_a_process_group_and_no_console() -> None:
    flags = platform.new_process_group_options(windows=True)["creationflags"]
    assert flags & platform.CREATE_NEW_PROCESS_GROUP and flags & platform.CREATE_NO_WINDOW
    assert platform.no_console_options(windows=True) == {"creationflags": platform.CREATE_NO_WINDOW}
    assert platform.new_process_group_options(windows=False) == {"start_new_session": True}
    assert platform.no_console_options(windows=False) == {}


def test_windows_graceful_stop_is_ctrl_break_to_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "CTRL_BREAK_EVENT", 1, raising=False)
    process = FakeProcess()
    platform.ask_to_stop(process, windows=True)
    assert process.calls == [("send_signal", 1)]


def test_windows_kill_tree_kills_descendants_then_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    killed: list[int] = []

    class Child:
        def __init__(self, pid: int) -> None:
            self.pid = pid

        def kill(self) -> None:
            killed.append(self.pid)

    class Parent:
        def __init__(self, pid: int) -> None:
            assert pid == 4242

        def children(self, recursive: bool) -> list[Child]:
            assert recursive
            return [Child(7), Child(8)]

    monkeypatch.setattr(platform.psutil, "Process", Parent)
    process = FakeProcess()
    platform.kill_tree(process, windows=True)
    assert killed == [7, 8] and process.calls == [("kill", None)]


def test_replace_retries_while_another_process_holds_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source, target = tmp_path / "new", tmp_path / "old"
    source.write_text("new")
    target.write_text("old")
    real_replace, attempts = os.replace, []

    def busy_twice(src: Any, dst: Any) -> None:
        attempts.append(1)
        if len(attempts) <= 2:
            raise PermissionError(13, "in use by another process")
        real_replace(src, dst)

    monkeypatch.setattr(platform.os, "replace", busy_twice)
    platform.replace_file(source, target, pause_s=0)
    assert target.read_text() == "new" and len(attempts) == 3
    monkeypatch.setattr(platform.os, "replace", lambda *_: (_ for _ in ()).throw(PermissionError(13, "busy")))
    with pytest.raises(PermissionError):
        platform.replace_file(source, target, attempts=3, pause_s=0)


# -- POSIX, for real --------------------------------------------------------------------------------
GROUP = "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'], stdin=subprocess.PIPE); print(c.pid, flush=True); sys.stdin.read()"


@pytest.mark.skipif(platform.IS_WINDOWS, reason="the POSIX implementation")
def test_posix_kill_tree_ends_the_child_and_its_own_children() -> None:
    process = subprocess.Popen([sys.executable, "-c", GROUP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               **platform.new_process_group_options())
    try:
        grandchild = int((process.stdout.readline() if process.stdout else "").strip())
        platform.kill_tree(process)
        assert process.wait(60) == -9
        psutil.wait_procs([psutil.Process(grandchild)], timeout=60)
        assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
        assert platform.killed_by_kill_signal(process.returncode)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.skipif(platform.IS_WINDOWS, reason="the POSIX implementation")
def test_parent_identity_survives_only_as_long_as_the_parent() -> None:
    me = platform.parent_identity()
    assert me is not None and platform.parent_alive(me)
    gone = platform.ProcessIdentity(me.pid, me.create_time - 1000.0, "")  # a recycled pid: other start time
    assert not platform.parent_alive(gone) and not platform.parent_alive(None)
