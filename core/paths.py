"""Where the app keeps its data.

Everything lives under one data directory: the platform's user data dir (Linux
``~/.local/share/VisionPlatform``, macOS ``~/Library/Application Support/VisionPlatform``, Windows
``%LOCALAPPDATA%\\VisionPlatform``), or ``VP_HOME`` when set (tests and portable installs). Paths are
computed on each call so a test can change ``VP_HOME``.

The database runs in SQLite's WAL mode, which needs a local disk: its shared-memory index and locks do
not work over a network file system (NFS, SMB/CIFS, a mapped network drive), and the database can be
damaged there. A data folder on one is warned about, once per process, naming the file system and the
fix (:func:`network_drive_warning`); the warning is a log record the CLI prints and the app can show.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from platformdirs.api import PlatformDirsABC
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from core import platform

APP_NAME = "VisionPlatform"
_DIRS_BY_SYSTEM: dict[str, type[PlatformDirsABC]] = {"darwin": MacOS, "win32": Windows}
_log = logging.getLogger(__name__)
_warned: dict[Path, str | None] = {}


def default_data_dir(system: str = sys.platform) -> Path:
    """The data folder when ``VP_HOME`` is not set, for ``system`` (a ``sys.platform`` value)."""
    dirs = _DIRS_BY_SYSTEM.get(system, Unix)(APP_NAME, appauthor=False)
    return Path(dirs.user_data_dir)


def data_dir() -> Path:
    override = os.environ.get("VP_HOME")
    root = Path(override).expanduser() if override else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root


def db_path() -> Path:
    root = data_dir()
    if root not in _warned:
        _warned[root] = network_drive_warning(root)
        if _warned[root]:
            _log.warning(_warned[root])
    return root / "vision_platform.db"


def network_drive_warning(root: Path) -> str | None:
    """Why the data folder ``root`` is unsafe for the database (it is on a network file system), or None."""
    kind = platform.network_filesystem(root)
    if kind is None:
        return None
    where = kind if kind.startswith("a ") else f"a network file system ({kind})"
    return (f"The data folder {root} is on {where}. Its database uses SQLite's WAL mode, which does not work "
            "over a network file system: the database can be damaged. Choose a folder on a local disk "
            "(Settings > Data folder, or the VP_HOME environment variable).")


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_dir(job_id: int) -> Path:
    return runs_dir() / f"job_{job_id}"


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_dir() -> Path:
    """User-imported weight files live here (copied in, never referenced in place)."""
    path = data_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def mlflow_dir() -> Path:
    path = data_dir() / "mlflow"
    path.mkdir(parents=True, exist_ok=True)
    return path
