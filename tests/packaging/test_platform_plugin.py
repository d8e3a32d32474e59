"""The platform-plugin check names a missing X11 library and its packages, and the GUI launch exits with
that message (non-zero) before Qt is loaded, instead of Qt's abort."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.platform_plugin import EXIT_MISSING_LIBRARIES, XCB_LIBRARIES, check_platform_plugin, qt_platform

ROOT = Path(__file__).resolve().parents[2]
X11 = {"DISPLAY": ":0"}


def _loader_without(*missing: str):
    def load(name: str) -> object:
        if Path(name).name in missing:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return object()

    return load


def test_one_missing_library_is_named_with_its_packages() -> None:
    result = check_platform_plugin(X11, "linux", loader=_loader_without("libxcb-cursor.so.0"))
    assert result.platform == "xcb" and result.missing == ("libxcb-cursor.so.0",)
    text = result.message()
    assert "libxcb-cursor.so.0" in text
    assert "sudo apt install libxcb-cursor0\n" in text
    assert "sudo dnf install xcb-util-cursor\n" in text


def test_packages_are_listed_once() -> None:
    result = check_platform_plugin(X11, "linux", loader=_loader_without("libxcb-xkb.so.1", "libxcb-shape.so.0"))
    assert result.dnf_packages() == ["libxcb"]
    assert result.apt_packages() == ["libxcb-xkb1", "libxcb-shape0"]


def test_nothing_missing_passes() -> None:
    assert check_platform_plugin(X11, "linux", loader=lambda _name: object()).ok


@pytest.mark.parametrize(("environ", "system", "expected"), [
    ({"DISPLAY": ":0"}, "linux", "xcb"),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", "offscreen"),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen:configfile=x.json"}, "linux", "offscreen"),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux", "wayland"),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", "xcb"),
    ({"DISPLAY": ":0"}, "win32", "native"),
    ({}, "linux", "none"),
])
def test_which_platform_qt_will_use(environ: dict[str, str], system: str, expected: str) -> None:
    assert qt_platform(environ, system) == expected


def test_other_platforms_need_no_libraries() -> None:
    never = _loader_without(*XCB_LIBRARIES)
    assert check_platform_plugin({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", loader=never).ok
    assert check_platform_plugin({}, "darwin", loader=never).ok


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin exists on Linux only")
def test_gui_launch_exits_with_the_install_command_before_qt_loads() -> None:
    """A real `vision-platform` GUI start on X11 with one library made unloadable."""
    script = (
        "import ctypes, sys\n"
        "real = ctypes.CDLL\n"
        "class Missing(real):\n"
        "    def __init__(self, name, *a, **k):\n"
        "        if 'libxcb-icccm.so.4' in str(name): raise OSError(name + ': cannot open shared object file')\n"
        "        super().__init__(name, *a, **k)\n"
        "ctypes.CDLL = Missing\n"
        "import core.platform_plugin as check\n"
        "check.check_platform_plugin.__defaults__ = (None, None, Missing)\n"
        "from vision_platform.launcher import main\n"
        "try:\n"
        "    code = main([])\n"
        "finally:\n"
        "    print('qt loaded' if 'PySide6.QtWidgets' in sys.modules else 'qt not loaded', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": ":99", "PYTHONPATH": str(ROOT), "VP_HOME": str(ROOT / "nonexistent")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_MISSING_LIBRARIES, done.stderr
    assert "libxcb-icccm.so.4" in done.stderr
    assert "sudo apt install libxcb-icccm4" in done.stderr and "sudo dnf install xcb-util-wm" in done.stderr
    assert "qt not loaded" in done.stderr
