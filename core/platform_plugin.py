"""Check the libraries of Qt's X11 platform plugin before Qt loads it.

On a fresh Linux desktop Qt's xcb plugin needs a handful of X11/xcb libraries that many base
images lack (``libxcb-cursor0`` since Qt 6.5, ``libxcb-icccm4``, ``libxcb-keysyms1``…). Without them
Qt prints "could not load the Qt platform plugin" and aborts the process (SIGABRT) before any window:
a desktop user sees a crash. This module finds the missing libraries first, with ``ctypes`` (no Qt,
no subprocess) and names the packages to install, so the launcher can exit with a clear message.

The check only applies where Qt will pick xcb: Linux with an X display, and ``QT_QPA_PLATFORM`` unset
(outside a Wayland session) or naming xcb. Offscreen, Wayland, Windows and macOS have nothing to check.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# The shared libraries Qt 6.11's libqxcb.so / libQt6XcbQpa.so.6 link that are not part of Qt itself
# (``ldd`` on the plugin), with the package that ships each on Debian/Ubuntu (apt) and Fedora (dnf).
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
}
EXIT_MISSING_LIBRARIES = 3

Loader = Callable[[str], object]


@dataclass(frozen=True)
class PluginCheck:
    """What the check found: the platform Qt will use and the libraries it lacks (empty: all good)."""

    platform: str
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def apt_packages(self) -> list[str]:
        return _unique(XCB_LIBRARIES[name][0] for name in self.missing)

    def dnf_packages(self) -> list[str]:
        return _unique(XCB_LIBRARIES[name][1] for name in self.missing)

    def message(self) -> str:
        """What a user reads: what is missing and the exact command that installs it."""
        return (
            f"Vision Platform cannot open its window: Qt's X11 (xcb) platform plugin needs "
            f"{', '.join(self.missing)}, which {'is' if len(self.missing) == 1 else 'are'} not installed.\n"
            f"Install with:\n"
            f"  Debian/Ubuntu:  sudo apt install {' '.join(self.apt_packages())}\n"
            f"  Fedora:         sudo dnf install {' '.join(self.dnf_packages())}\n"
            f"(or run it on Wayland with QT_QPA_PLATFORM=wayland, or headless with QT_QPA_PLATFORM=offscreen)"
        )


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def qt_platform(environ: Mapping[str, str] | None = None, system: str | None = None) -> str:
    """The platform plugin Qt will load here: "xcb", "wayland", "offscreen"…, or "native" off Linux."""
    env = os.environ if environ is None else environ
    if not (system or sys.platform).startswith("linux"):
        return "native"
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return "wayland"
    return "xcb" if env.get("DISPLAY") else "none"


def _bundled_dirs() -> list[Path]:
    """Where a frozen app keeps shared libraries it ships (PyInstaller's _MEIPASS)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    return [Path(frozen_root)] if frozen_root else []


def _loads(name: str, loader: Loader) -> bool:
    for candidate in [name, *(str(folder / name) for folder in _bundled_dirs())]:
        try:
            loader(candidate)
            return True
        except OSError:
            continue
    return False


def check_platform_plugin(environ: Mapping[str, str] | None = None, system: str | None = None,
                          loader: Loader = ctypes.CDLL) -> PluginCheck:
    """Try to load each library the xcb plugin needs (only when Qt will use xcb)."""
    platform = qt_platform(environ, system)
    if platform != "xcb":
        return PluginCheck(platform, ())
    missing = tuple(name for name in XCB_LIBRARIES if not _loads(name, loader))
    return PluginCheck(platform, missing)


def require_platform_plugin(stream: TextIO | None = None) -> None:
    """Exit with :data:`EXIT_MISSING_LIBRARIES` and the install command when xcb cannot load."""
    result = check_platform_plugin()
    if result.ok:
        return
    print(result.message(), file=stream or sys.stderr)
    raise SystemExit(EXIT_MISSING_LIBRARIES)
