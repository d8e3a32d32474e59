"""Render the app icon (``resources/icons/app.svg``) to the raster files packagers want:
``app.png`` (256 px: the Linux .desktop entry), ``app.ico`` (Windows exe) and ``app.icns`` (macOS .app).
Run after changing the SVG: ``QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_icons.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.resources import resource_path  # noqa: E402

SIZE = 256


def render(svg: Path, png: Path, size: int = SIZE) -> None:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    if not image.save(str(png)):
        raise SystemExit(f"could not write {png}")


if __name__ == "__main__":
    app = QGuiApplication(sys.argv[:1])
    folder = resource_path("icons")
    render(folder / "app.svg", folder / "app.png")
    with Image.open(folder / "app.png") as picture:
        picture.save(folder / "app.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
        picture.save(folder / "app.icns")
    print("wrote", *(folder / f"app.{ext}" for ext in ("png", "ico", "icns")))
