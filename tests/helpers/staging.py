"""Staging entries as a killed download leaves them: owned by a process that really exited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil


def exited_owner() -> str:
    """``pid-start`` of a process that has exited (the owner part of a killed download's staging name)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    started = int(psutil.Process(child.pid).create_time())
    child.communicate(b"")
    assert child.returncode == 0
    return f"{child.pid}-{started}"


def staging_folder(cache: Path, name: str, files: dict[str, bytes] | None = None) -> Path:
    """A staging folder ``cache/name`` holding ``files`` (by default half an image)."""
    folder = cache / name
    for relative, data in (files or {"red/a.png": b"half an image"}).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    return folder
