"""The macOS .app and the Windows build come from the same build.spec: what can be checked without
building on those systems — the Qt platform plugin each system needs is kept (without it the frozen
app cannot open a window), the .app's Info.plist keys, and its icon is a real .icns."""

from __future__ import annotations

import runpy
from importlib.metadata import version
from typing import Any

import pytest
from PIL import Image

from tests.conftest import ROOT

pytest.importorskip("PyInstaller", reason="the `package` extra is not installed")

PLUGIN = "PySide6/Qt/plugins/platforms/{}"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "build.spec"), init_globals={"SPECPATH": str(ROOT)}, run_name="build_spec_check")


@pytest.mark.parametrize(("system", "kept", "dropped"), [
    ("darwin", ["libqcocoa.dylib", "libqoffscreen.dylib"], ["libqminimal.dylib", "libqxcb.so"]),
    ("win32", ["qwindows.dll", "qoffscreen.dll"], ["qminimal.dll", "qdirect2d.dll"]),
    ("linux", ["libqxcb.so", "libqwayland-egl.so", "libqoffscreen.so"], ["libqvnc.so", "libqeglfs.so"]),
])
def test_each_system_keeps_its_own_qt_platform_plugin(spec: dict[str, Any], system: str, kept: list[str],
                                                      dropped: list[str]) -> None:
    unused, platforms = spec["_is_unused_qt_platform"], spec["qt_platforms"](system)
    assert [name for name in kept if unused((PLUGIN.format(name), "x", "BINARY"), platforms)] == []
    assert [name for name in dropped if not unused((PLUGIN.format(name), "x", "BINARY"), platforms)] == []


def test_the_app_bundle_describes_itself(spec: dict[str, Any]) -> None:
    plist = spec["mac_info_plist"]()
    assert plist["CFBundleShortVersionString"] == version("vision-platform")
    assert plist["NSHighResolutionCapable"] is True and plist["LSMinimumSystemVersion"] == "12.3"
    assert spec["MAC_BUNDLE_NAME"].endswith(".app") and spec["MAC_BUNDLE_ID"].count(".") >= 2


def test_the_app_icon_is_an_icns_with_retina_sizes() -> None:
    with Image.open(ROOT / "resources" / "icons" / "app.icns") as icon:
        assert icon.format == "ICNS"
        assert (512, 512, 2) in icon.info["sizes"] and (16, 16, 2) in icon.info["sizes"]
