"""Where the app keeps its data.

Everything lives under one data directory: the platform's user data dir, or ``VP_HOME`` when set
(tests and portable installs). Paths are computed on each call so a test can change ``VP_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "VisionPlatform"


def data_dir() -> Path:
    override = os.environ.get("VP_HOME")
    root = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def db_path() -> Path:
    return data_dir() / "vision_platform.db"


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
