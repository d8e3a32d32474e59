"""Export staging folders: a killed export's leftovers are swept, a concurrent export's are not."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.export import STAGING_PREFIX, _staging


def test_staging_sweeps_only_folders_whose_process_is_gone(tmp_path: Path) -> None:
    concurrent = tmp_path / f"{STAGING_PREFIX}{os.getppid()}-abc"  # a live process (pytest's parent)
    killed = tmp_path / f"{STAGING_PREFIX}{2**22 + 12345}-def"  # beyond pid_max: no such process
    unnamed = tmp_path / f"{STAGING_PREFIX}xyz"  # written before folders carried their pid
    for folder in (concurrent, killed, unnamed):
        folder.mkdir()
        (folder / "partial.onnx").write_bytes(b"half")
    mine = _staging(tmp_path)
    assert mine.name.startswith(f"{STAGING_PREFIX}{os.getpid()}-") and mine.is_dir()
    assert concurrent.is_dir() and not killed.exists() and not unnamed.exists()
