"""File helpers every layer shares: the atomic write and the sha256 of a file.

Checkpoints, ``val_predictions.json`` and DICE exports are written with :func:`atomic_write_bytes`
so a kill mid-write never leaves a truncated file under the final name; :func:`sha256_file` is the
one digest recorded for a checkpoint, verified before an upload and after a download.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

READ_CHUNK = 1 << 20


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, fsync, then ``os.replace`` (like timm's CheckpointSaver)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_size: int = READ_CHUNK) -> str:
    """Hex sha256 of a file, read in chunks (a checkpoint never has to fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
