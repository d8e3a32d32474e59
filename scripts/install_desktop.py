"""``make install-desktop``: put Vision Platform in this user's Linux application launcher.

Writes ``~/.local/share/applications/vision-platform.desktop`` (freedesktop.org desktop entry) and the
icon into ``~/.local/share/icons/hicolor``. The entry starts the packaged app when ``dist/`` holds one
(``make package``), else this checkout's venv; image files dropped on the launcher icon (or opened
with "Open with") arrive as ``%F`` and open on the Inference page. ``--uninstall`` removes both.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.resources import resource_path  # noqa: E402

APP_ID = "vision-platform"  # also QGuiApplication.desktopFileName, so the window matches the entry
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/webp", "image/tiff")


def executable() -> Path:
    frozen = ROOT / "dist" / APP_ID / APP_ID
    return frozen if frozen.is_file() else ROOT / ".venv" / "bin" / APP_ID


def desktop_entry(command: Path) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=Vision Platform",
        "GenericName=Vision model trainer",
        "Comment=Train and test computer-vision models on your own computer",
        f"Exec=\"{command}\" %F",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Development;Science;Graphics;",
        f"MimeType={';'.join(IMAGE_TYPES)};",
        f"StartupWMClass={APP_ID}",
        "",
    ])


def targets(home: Path) -> tuple[Path, Path, Path]:
    share = home / ".local" / "share"
    return (share / "applications" / f"{APP_ID}.desktop",
            share / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png",
            share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg")


def install(home: Path, command: Path) -> list[Path]:
    entry, png, svg = targets(home)
    for path in (entry, png, svg):
        path.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(desktop_entry(command), encoding="utf-8")
    shutil.copyfile(resource_path("icons", "app.png"), png)
    shutil.copyfile(resource_path("icons", "app.svg"), svg)
    if shutil.which("update-desktop-database"):
        subprocess.run(["update-desktop-database", str(entry.parent)], check=False)
    return [entry, png, svg]


def uninstall(home: Path) -> None:
    for path in targets(home):
        path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uninstall", action="store_true")
    parser.add_argument("--home", type=Path, default=Path.home(), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.uninstall:
        uninstall(args.home)
        print("removed the Vision Platform launcher entry")
        return 0
    command = executable()
    if not command.is_file():
        print(f"error: {command} does not exist: run `make setup` or `make package` first", file=sys.stderr)
        return 1
    for path in install(args.home, command):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
