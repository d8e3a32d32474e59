"""The one module that calls an operating system's own API (POSIX or Windows).

Users run Windows, Linux and macOS, so nothing else in the code base calls ``fcntl``, ``msvcrt`` or
another single-OS function: it asks here. Today that is the advisory file lock (``flock`` on POSIX,
``msvcrt.locking`` on Windows) behind one :class:`FileLock`, and the identity of a process (pid,
create time, command line) that a lock holder or an open-store marker records, so that a recycled pid
after a reboot is never mistaken for the process that wrote it.

Why an OS lock and not a pid file alone: the OS drops the lock when its process dies, however it
dies (``kill -9``, a crash, a power cut), so a lock is never "stale"; the pid and command written
into the locked file only say *who* holds it.

Child processes too: a worker starts in its own process group (:func:`new_process_group_options`), is
asked to stop (:func:`ask_to_stop`: SIGTERM on POSIX, CTRL_BREAK_EVENT on Windows) and, if it does not,
killed with everything under it (:func:`kill_tree`); :func:`replace_file` retries while Windows'
scanners hold a file. Each Windows decision takes a ``windows`` flag so tests exercise it on Linux
with the OS calls faked.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

# Windows locks a byte range, and a locked range cannot be read by others: lock one byte far past
# the text, so the holder's description stays readable.
_WINDOWS_LOCK_OFFSET = 1 << 30
_WAIT_POLL_S = 0.05
CREATE_TIME_TOLERANCE_S = 1.0  # create times read twice differ by rounding only

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


# -- processes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessIdentity:
    """A process as it can be recognised later: a pid alone may be reused after the process ends."""

    pid: int
    create_time: float
    command: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        me = psutil.Process(os.getpid())
        try:
            command = " ".join(me.cmdline())
        except (psutil.AccessDenied, psutil.ZombieProcess):
            command = " ".join(sys.argv)
        return cls(me.pid, me.create_time(), command or sys.executable)

    @classmethod
    def from_json(cls, text: str) -> ProcessIdentity | None:
        """The identity written by :meth:`to_json`; None for an empty or unreadable text."""
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(int(data["pid"]), float(data["create_time"]), str(data.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def alive(self) -> bool:
        return process_alive(self.pid, self.create_time)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.create_time))
        return f"process {self.pid} ({self.command}), started {started}"


def process_alive(pid: int | None, create_time: float | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``create_time`` (None: any start time)."""
    if not pid:
        return False
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return create_time is None or abs(started - create_time) < CREATE_TIME_TOLERANCE_S


# -- file locks ----------------------------------------------------------------------------------
class FileLock:
    """An exclusive advisory lock on ``path``, released by the OS when this process ends.

    The locked file may hold a text (the holder's :class:`ProcessIdentity`) that others can read
    with :func:`read_lock_text` while the lock is held. A lock is per open file: a second
    :class:`FileLock` on the same path in the same process is refused like another process's.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False at once if another holder has it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lock (used around short critical sections only)."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_WAIT_POLL_S)
        return True

    def write_text(self, text: str) -> None:
        """Replace the file's text (the lock must be held)."""
        assert self._fd is not None, "write_text needs the lock"
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, text.encode("utf-8"))
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def read_lock_text(path: Path) -> str:
    """The text a lock holder wrote into its file ('' when there is none yet)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(64 * 1024).rstrip("\x00")
    except OSError:
        return ""


# -- child processes: start in their own group, stop gracefully, kill the whole tree --------------
# Windows constants (subprocess has them only on Windows; the values are the Win32 API's).
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000
IS_WINDOWS = sys.platform == "win32"


def new_process_group_options(windows: bool = IS_WINDOWS) -> dict[str, Any]:
    """``subprocess.Popen`` options that start a child in its own process group (a stop reaches its
    data-loader children too, and a Ctrl+C in the app's terminal does not): a new session on POSIX;
    a new process group without a console window on Windows (the frozen app is windowed)."""
    if windows:
        return {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW}
    return {"start_new_session": True}


def no_console_options(windows: bool = IS_WINDOWS) -> dict[str, Any]:
    """``subprocess`` options for a helper child (inference worker, ``mlflow ui``, model lists): on
    Windows no console window pops up beside the windowed app; nothing on POSIX."""
    return {"creationflags": CREATE_NO_WINDOW} if windows else {}


def ask_to_stop(process: Any, windows: bool = IS_WINDOWS) -> None:
    """The graceful stop: SIGTERM to the child's group on POSIX, CTRL_BREAK_EVENT to its group on
    Windows (the worker's handler finishes the batch and saves last.pt)."""
    if windows:
        _send(process, getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
        return
    _signal_group(process, signal.SIGTERM)


def kill_tree(process: Any, windows: bool = IS_WINDOWS) -> None:
    """Kill the child and every process under it at once (no cleanup): SIGKILL to its group on POSIX;
    on Windows each descendant (psutil) and then the child (TerminateProcess)."""
    if not windows:
        _signal_group(process, signal.SIGKILL)  # type: ignore[attr-defined, unused-ignore]
        return
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    for child in descendants:
        with _quiet():
            child.kill()
    with _quiet():
        process.kill()


def kill_self() -> None:
    """End this process at once, as ``kill -9`` would (fault injection: no cleanup, no atexit)."""
    if IS_WINDOWS:
        os.kill(os.getpid(), signal.SIGTERM)  # TerminateProcess
        return
    os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[attr-defined, unused-ignore]


def killed_by_kill_signal(exit_code: int | None) -> bool:
    """Whether a child's exit status says it was killed outright (POSIX SIGKILL: out of memory, or
    someone's ``kill -9``). Windows has no signal in an exit status."""
    kill = getattr(signal, "SIGKILL", None)
    return exit_code is not None and kill is not None and exit_code == -int(kill)


def parent_identity() -> ProcessIdentity | None:
    """The process that started this one, as it can be recognised later (None if it is already gone)."""
    try:
        parent = psutil.Process(os.getppid())
        return ProcessIdentity(parent.pid, parent.create_time(), "")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def parent_alive(parent: ProcessIdentity | None) -> bool:
    """Whether the process that started us is still there. ``os.getppid()`` changing is not enough:
    on Windows a dead parent's pid is not replaced by an adopter, and pids are recycled; the pid
    with its create time is."""
    return parent is not None and parent.alive()


def _signal_group(process: Any, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # type: ignore[attr-defined, unused-ignore]
    except (ProcessLookupError, PermissionError):
        _send(process, sig)


def _send(process: Any, sig: int) -> None:
    with _quiet():
        process.send_signal(sig)


class _quiet:
    """Ignore "the process is already gone" while stopping one."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> bool:
        return kind is not None and issubclass(kind, (ProcessLookupError, psutil.NoSuchProcess, OSError))


def replace_file(source: Path, target: Path, *, attempts: int = 20, pause_s: float = 0.05) -> None:
    """``os.replace`` that retries briefly while another process holds ``target`` open (on Windows
    a virus scanner or an indexer does, and the replace fails with PermissionError meanwhile)."""
    for attempt in range(attempts):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)
