"""Korean names render as Hangul, not boxes, with the bundled font on a machine without CJK fonts.

A missing glyph is drawn as the same box whatever the character, so two different syllables that
render to identical pixels are boxes; real glyphs differ. Two private-use characters (no font has
them) are the control: they must render identically, which shows the comparison detects boxes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QImage, QRawFont
from PySide6.QtWidgets import QLabel

from app.look import register_bundled_fonts
from core.resources import HANGUL_FONT, resource_path


def _label_pixels(qtbot: Any, text: str) -> QImage:
    label = QLabel(text)
    label.setStyleSheet("background: white; color: black;")
    qtbot.addWidget(label)
    label.resize(label.sizeHint())
    return label.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def _ink(image: QImage) -> int:
    return sum(1 for y in range(image.height()) for x in range(image.width()) if image.pixelColor(x, y).lightness() < 128)


def test_bundled_font_has_every_hangul_syllable(qapp: Any) -> None:
    family = register_bundled_fonts(qapp.font().family())
    assert family == "VP Hangul Gothic"
    raw = QRawFont(str(resource_path(*HANGUL_FONT)), 16)
    assert all(raw.supportsCharacter(code) for code in (0xAC00, 0xC190, 0xAE00, 0xC528, 0xD7A3))
    assert resource_path(*HANGUL_FONT).with_name("OFL.txt").read_text(encoding="utf-8").count("SIL OPEN FONT LICENSE")


def test_hangul_label_is_not_drawn_as_boxes(qapp: Any, qtbot: Any) -> None:
    register_bundled_fonts(qapp.font().family())
    syllables = [_label_pixels(qtbot, text) for text in ("손", "글", "씨")]
    assert all(_ink(image) > 10 for image in syllables)
    assert syllables[0] != syllables[1] and syllables[1] != syllables[2] and syllables[0] != syllables[2]
    # Control: characters no font has are all drawn as the same box.
    assert _label_pixels(qtbot, "\ue000") == _label_pixels(qtbot, "\ue001")
    name = _label_pixels(qtbot, "손글씨 digits")
    assert _ink(name) > _ink(_label_pixels(qtbot, "digits"))
