"""Locate files the app ships — ``resources/`` and the Alembic migrations — from a checkout and inside
a frozen (PyInstaller) app, through one helper each, so no module guesses paths of its own.

Frozen, PyInstaller unpacks data files under ``sys._MEIPASS``; ``build.spec`` puts ``resources/`` and
``core/migrations`` there under the same relative paths as in the source tree.
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
# Relative paths of shipped things, under resources/ (the spec and the scripts that make them use these).
SAMPLE_DATASET = ("sample_data", "shapes")
HANGUL_FONT = ("fonts", "VPHangulGothic.ttf")
BUNDLED_LICENSES = "licenses"  # written by build.spec into a frozen app only


def app_root() -> Path:
    """The folder that holds ``resources/`` and ``core/``: the checkout, or the frozen app's data root."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    return Path(frozen_root) if frozen_root else SOURCE_ROOT


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def resources_dir() -> Path:
    return app_root() / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def migrations_dir() -> Path:
    """Alembic's script location (``core/migrations``)."""
    return app_root() / "core" / "migrations"


def licenses_dir() -> Path:
    """Licence texts of bundled packages (frozen app); empty or absent when run from source."""
    return app_root() / BUNDLED_LICENSES
