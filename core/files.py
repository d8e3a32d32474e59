"""File helpers every layer shares: the atomic write and the sha256 of a file.

Checkpoints, ``val_predictions.json`` and DICE exports are written with :func:`atomic_write_bytes`
so a kill mid-write never leaves a truncated file under the final name; :func:`sha256_file` is the
one digest recorded for a checkpoint, verified before an upload and after a download.

A full disk is one failure however it surfaces (``OSError`` ENOSPC/EDQUOT from a write, SQLite's
``database or disk is full``): :func:`is_disk_full` recognises it and :func:`disk_full_message` is the
one sentence the user reads, naming the file and the space left. :func:`inject_disk_full` is the
``enospc_at`` fault point (``VP_FAULT``) that reliability tests use to raise it at a real write.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

READ_CHUNK = 1 << 20
MB = 1 << 20
_DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"


def atomic_write_bytes(target: Path, data: bytes, *, before_sync: Callable[[Path], None] | None = None) -> None:
    """Write via a temp file in the same folder, fsync, then ``os.replace`` (like timm's CheckpointSaver).

    Whatever fails (a full disk included), ``target`` keeps its previous content and the temp file is
    removed. ``before_sync`` is called with the temp file once the data is written, where a full disk's
    error surfaces (write, flush, fsync): the worker's ``checkpoint`` fault point.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if before_sync is not None:
                before_sync(Path(tmp_name))
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def is_disk_full(exc: BaseException) -> bool:
    """True for a full disk or quota, from a file write or from SQLite (also wrapped by SQLAlchemy)."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, OSError):
        return cause.errno in _DISK_FULL_ERRNOS
    if isinstance(cause, sqlite3.Error):
        return getattr(cause, "sqlite_errorcode", None) == _SQLITE_FULL or "database or disk is full" in str(cause)
    return False


def free_space_mb(path: Path) -> int:
    """Free space, in whole MB, of the volume holding ``path`` (its nearest existing folder); -1 if unknown."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free // MB
    except OSError:
        return -1


def disk_full_message(path: Path) -> str:
    """The one message a full disk gives the user: which file could not be written, and what is left."""
    free = free_space_mb(path)
    return f"disk full ({path}, {free if free >= 0 else 'unknown'} MB free)"


def inject_disk_full(point: str, path: Path, faults: Mapping[str, str]) -> None:
    """The ``enospc_at=POINT+POINT`` fault: raise a full disk's ``OSError`` at a write point
    (``checkpoint``, ``log``, ``metrics``), only while the file ``enospc_while`` names exists when it is set
    (a test turns the disk "full" at a moment it chooses). A dict lookup when no fault is set."""
    if not faults or point not in faults.get("enospc_at", "").split("+"):
        return
    gate = faults.get("enospc_while")
    if gate and not os.path.exists(gate):
        return
    raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected: VP_FAULT enospc_at={point})", str(path))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_size: int = READ_CHUNK) -> str:
    """Hex sha256 of a file, read in chunks (a checkpoint never has to fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
