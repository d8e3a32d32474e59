"""Icons, colours and number formatting shared by every view (one place, so views stay consistent)."""

from __future__ import annotations

import colorsys
import functools

from PySide6.QtGui import QColor, QFont, QFontDatabase, QIcon

from core.resources import HANGUL_FONT, resource_path

ORG_NAME = "VisionPlatform"
APP_NAME = "Vision Platform"

# Status colours (ui-guide): running blue, completed green, failed red, interrupted amber, queued grey.
STATUS_COLOURS = {
    "running": "#2f6fd0",
    "completed": "#2e9e4f",
    "failed": "#c0392b",
    "interrupted": "#d68910",
    "cancelled": "#7f8c8d",
    "queued": "#8e9399",
    "pending": "#8e9399",
}
ERROR_COLOUR = "#c0392b"
WARNING_COLOUR = "#d68910"
HINT_COLOUR = "palette(placeholder-text)"  # secondary text: hints, notes, "nothing here yet"
HINT_STYLE = f"color: {HINT_COLOUR};"


# Families Qt falls back from when a glyph is missing; the bundled Hangul font is substituted into
# each, so Korean names render on machines without a CJK font.
FALLBACK_FAMILIES = ("Sans Serif", "sans-serif", "Helvetica", "Arial", "DejaVu Sans", "Segoe UI", ".AppleSystemUIFont")


def register_bundled_fonts(default_family: str) -> str | None:
    """Register ``resources/fonts`` with Qt (source and frozen) and make the Hangul font a fallback of
    the app's default family; returns the registered family (None if the file is missing or unreadable)."""
    font_id = QFontDatabase.addApplicationFont(str(resource_path(*HANGUL_FONT)))
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        return None
    for family in dict.fromkeys((default_family, *FALLBACK_FAMILIES)):
        if families[0] not in QFont.substitutes(family):
            QFont.insertSubstitution(family, families[0])
    return families[0]


@functools.cache
def icon(name: str) -> QIcon:
    """An icon from ``resources/icons/<name>.svg`` (empty icon if the file is missing)."""
    path = resource_path("icons", f"{name}.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


def class_colour(index: int) -> QColor:
    """A stable colour per class index: golden-ratio hue steps keep neighbours far apart."""
    hue = (index * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return QColor(int(red * 255), int(green * 255), int(blue * 255))


def format_count(value: int) -> str:
    """12 → "12", 12400 → "12.4k", 3_200_000 → "3.2M"."""
    if value < 1000:
        return str(value)
    if value < 1_000_000:
        text = f"{value / 1000:.1f}".rstrip("0").rstrip(".")
        return f"{text}k"
    text = f"{value / 1_000_000:.1f}".rstrip("0").rstrip(".")
    return f"{text}M"


def format_bytes(value: int | float | None) -> str:
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def plural(count: int, word: str) -> str:
    return f"{format_count(count)} {word}{'' if count == 1 else 's'}"
