"""Who has a data store open: one desktop app per data folder, and every process's open marker.

Two mechanisms, each for one question:

- **The app lock** (``vision_platform.lock`` beside the database): the desktop app holds an OS lock
  on it for its whole life and writes its pid, create time and command line into it. A second app
  on the same folder is refused with a message naming the first. The command line (``jobs``,
  ``show``, ``train``, ``sync``) does not take it: it may run beside the app (claiming a queued job
  is one atomic UPDATE, so two runners never run the same job).
- **Open markers** (``vision_platform.db.sessions/<pid>-<create time>.json``): every process that
  opens the store writes one and removes it when it closes the store (``close_all_stores`` or at
  exit). A marker whose process is gone means that process ended without closing the store (killed,
  crashed, power cut): an *unclean shutdown*, after which the next opener runs ``PRAGMA
  quick_check`` (:mod:`core.db.recovery`). WAL-file presence is not used for this: a process that
  exits normally without disposing its connections leaves the WAL too.

The markers folder has its own short OS lock (``.lock``) so that two processes starting at once do
not both repair the same file.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.platform import FileLock, ProcessIdentity, read_lock_text

APP_LOCK_SUFFIX = ".lock"
SESSIONS_SUFFIX = ".sessions"
GUARD_FILE = ".lock"
GUARD_TIMEOUT_S = 120.0  # a repair of a large store may hold the guard this long


class DataStoreError(RuntimeError):
    """The data store cannot be used as it is; the message says why and what to do."""


class AppAlreadyRunning(DataStoreError):
    """Another desktop app holds this data folder."""


def app_lock_path(db_file: Path) -> Path:
    return db_file.with_suffix(APP_LOCK_SUFFIX)


def sessions_dir(db_file: Path) -> Path:
    return db_file.with_name(db_file.name + SESSIONS_SUFFIX)


# -- one app per data folder -----------------------------------------------------------------------
def _holder_text(path: Path) -> str:
    holder = ProcessIdentity.from_json(read_lock_text(path))
    return holder.describe() if holder else "a process that is still starting"


def acquire_app_lock(db_file: Path) -> FileLock:
    """Hold the app lock of this data folder until the process ends (or :meth:`FileLock.release`).

    Raises :class:`AppAlreadyRunning` naming the holder when another app has it.
    """
    lock = FileLock(app_lock_path(db_file))
    if not lock.try_acquire():
        raise AppAlreadyRunning(
            f"Vision Platform is already open on the data folder {db_file.parent}: {_holder_text(lock.path)}. "
            "Switch to that window, or close it and start again."
        )
    lock.write_text(ProcessIdentity.current().to_json())
    return lock


# -- open markers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OtherSessions:
    """The markers of other processes: still running, or gone without closing the store."""

    live: list[ProcessIdentity]
    dead: list[Path]

    @property
    def unclean(self) -> bool:
        return bool(self.dead)


class OpenMarker:
    """This process's marker for one store; removed by :meth:`remove` or at interpreter exit."""

    def __init__(self, db_file: Path) -> None:
        self.me = ProcessIdentity.current()
        self.path = sessions_dir(db_file) / f"{self.me.pid}-{int(self.me.create_time * 1000)}.json"

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.me.to_json(), encoding="utf-8")
        atexit.register(self.remove)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        atexit.unregister(self.remove)


def other_sessions(db_file: Path, me: ProcessIdentity) -> OtherSessions:
    live: list[ProcessIdentity] = []
    dead: list[Path] = []
    folder = sessions_dir(db_file)
    for marker in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        holder = ProcessIdentity.from_json(marker.read_text(encoding="utf-8", errors="replace"))
        if holder is not None and (holder.pid, int(holder.create_time * 1000)) == (me.pid, int(me.create_time * 1000)):
            continue
        if holder is not None and holder.alive():
            live.append(holder)
        else:
            dead.append(marker)
    return OtherSessions(live, dead)


def forget(markers: list[Path]) -> None:
    """Remove markers of processes that are gone (after the store was checked)."""
    for marker in markers:
        marker.unlink(missing_ok=True)


@contextmanager
def opening_guard(db_file: Path) -> Iterator[None]:
    """Only one process at a time checks, repairs or registers on this store."""
    guard = FileLock(sessions_dir(db_file) / GUARD_FILE)
    if not guard.acquire(GUARD_TIMEOUT_S):
        raise DataStoreError(f"Another process has been opening {db_file} for {GUARD_TIMEOUT_S:.0f} s; try again "
                             "when it is done (or end it).")
    try:
        yield
    finally:
        guard.release()
