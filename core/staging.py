"""Staging entries: where a download or an extraction is written before it is renamed into place.

A cache entry (a downloaded dataset, a folder checkpoint, a verified object, an extracted .zip) is
written into a hidden staging entry beside its destination and renamed into place only when it is
complete, so nothing half-written ever looks like a cache entry. Cancel and errors remove the staging
entry, but a process killed mid-download (``kill -9``, a power cut) cannot: each cache sweeps its stale
staging entries when it is next used (:func:`sweep_staging`).

Ownership is in the name, ``.{name}.partial-{pid}-{start}-{random}`` (the writer's pid and start
time), so no marker file can end up inside the finished entry and a single file is owned the same
way as a folder. A sweep removes an entry only when its writer no longer runs; a recycled pid has a
different start time. An entry a live process is writing (this one, or the GUI while the CLI sweeps
the same cache) is never removed, however old. Entries in the unowned form earlier versions wrote
(``.{name}.partial-{8 random characters}``) are removed once untouched for a day.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

STAGING_MARK = ".partial-"
UNOWNED_STALE_AFTER_S = 24 * 3600
_OWNED = re.compile(r"^\..*\.partial-(\d+)-(\d+)-[a-z0-9_]+$")
_UNOWNED = re.compile(r"^(\..*)?\.partial-[a-z0-9_]{8}$")


def _owner() -> str:
    return _owner_part(os.getpid())  # looked up by pid: a forked child is an owner of its own


@functools.cache
def _owner_part(pid: int) -> str:
    import psutil

    return f"{pid}-{int(psutil.Process(pid).create_time())}"


def staging_prefix(name: str) -> str:
    """The start of a staging entry's name for the destination ``name``, owned by this process."""
    return f".{name}{STAGING_MARK}{_owner()}-"


def make_staging_dir(dest: Path) -> Path:
    """A new empty staging folder beside ``dest`` (created, with its parent), owned by this process."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=staging_prefix(dest.name), dir=dest.parent))


def make_staging_file(folder: Path, name: str = "download") -> tuple[int, Path]:
    """A new empty staging file in ``folder`` (open file descriptor, path), owned by this process."""
    fd, path = tempfile.mkstemp(prefix=staging_prefix(name), dir=folder)
    return fd, Path(path)


def is_stale(path: Path, *, now: float | None = None) -> bool:
    """Whether ``path`` is a staging entry nobody writes any more (not a staging entry: False)."""
    from core.platform import process_alive

    owned = _OWNED.match(path.name)
    if owned is not None:
        return not process_alive(int(owned[1]), float(owned[2]))
    if _UNOWNED.match(path.name) is None:
        return False
    return (time.time() if now is None else now) - _last_change(path) > UNOWNED_STALE_AFTER_S


def sweep_staging(folder: Path) -> list[Path]:
    """Remove the stale staging entries directly in ``folder`` (a cache being used); returns them.
    Anything else in ``folder`` is left as it is; a missing folder has none."""
    try:
        candidates = [Path(entry.path) for entry in os.scandir(folder) if STAGING_MARK in entry.name]
    except FileNotFoundError:
        return []
    removed = [path for path in candidates if is_stale(path)]
    for path in removed:
        _remove(path)
    return removed


def _last_change(path: Path) -> float:
    """The newest modification time in ``path`` (a folder's own mtime misses writes deeper down)."""
    try:
        newest = path.lstat().st_mtime
    except FileNotFoundError:
        return time.time()  # gone meanwhile (its owner finished): nothing to remove
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
