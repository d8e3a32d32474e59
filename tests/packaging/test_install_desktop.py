"""`make install-desktop` writes a valid launcher entry that opens image files (%F) and the icon;
`scripts/preflight.py` names the install command for a missing venv module or too old a Python."""

from __future__ import annotations

import configparser
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_desktop_entry_and_icon_are_installed(tmp_path: Path) -> None:
    installer = _script("install_desktop")
    written = installer.install(tmp_path, Path("/opt/Vision Platform/vision-platform"))
    entry, png, svg = written
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(entry, encoding="utf-8")
    section = parser["Desktop Entry"]
    assert section["Exec"] == '"/opt/Vision Platform/vision-platform" %F'
    assert section["Icon"] == "vision-platform" and section["Type"] == "Application"
    assert "image/png" in section["MimeType"].split(";")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and svg.read_text().startswith("<svg")
    installer.uninstall(tmp_path)
    assert not any(path.exists() for path in written)


def test_preflight_names_the_venv_package(monkeypatch: pytest.MonkeyPatch) -> None:
    preflight = _script("preflight")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ensurepip" else real(name, *a))
    problem = preflight.venv_problem()
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert "ensurepip is not available" in problem and f"sudo apt install python{minor}-venv" in problem
    assert preflight.main([]) == 1


def test_preflight_names_a_newer_python(monkeypatch: pytest.MonkeyPatch) -> None:
    preflight = _script("preflight")
    monkeypatch.setattr(preflight, "MINIMUM", (99, 0))
    assert "Python 99.0 or newer is needed" in preflight.python_problem()
    monkeypatch.setattr(preflight, "MINIMUM", (3, 11))
    assert preflight.python_problem() is None
