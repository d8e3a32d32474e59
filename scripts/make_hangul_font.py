"""Make the Hangul font the app ships (``resources/fonts/VPHangulGothic.ttf``) from NanumGothic (OFL-1.1).

Without a CJK font installed, Qt draws Korean dataset and class names as empty boxes. The app bundles
a subset of NanumGothic: every precomposed Hangul syllable (U+AC00–U+D7A3), the Hangul Jamo and
compatibility Jamo, and Latin-1, without hinting (~1.3 MB instead of 4.7 MB).

The OFL forbids a modified version (a subset is one) to carry the Reserved Font Names ("Nanum",
"NanumGothic"…), so the subset is renamed "VP Hangul Gothic"; the copyright notice and the licence
ship beside it (``OFL.txt``). Input: NanumGothic.ttf from Debian's ``fonts-nanum`` package
(``apt-get download fonts-nanum && dpkg-deb -x fonts-nanum_*.deb x``):

    .venv/bin/python scripts/make_hangul_font.py x/usr/share/fonts/truetype/nanum/NanumGothic.ttf \\
        x/usr/share/doc/fonts-nanum/copyright
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.resources import HANGUL_FONT, resource_path  # noqa: E402

FAMILY = "VP Hangul Gothic"
POSTSCRIPT = "VPHangulGothic-Regular"
UNICODES = "U+0020-007E,U+00A0-00FF,U+1100-11FF,U+3130-318F,U+AC00-D7A3"
# nameID → value (1 family, 3 unique id, 4 full name, 6 PostScript name, 16/17 typographic names).
NAMES = {1: FAMILY, 3: f"{POSTSCRIPT};subset of NanumGothic", 4: f"{FAMILY} Regular", 6: POSTSCRIPT,
         16: FAMILY, 17: "Regular"}
NOTICE = ("VP Hangul Gothic is a subset (Hangul syllables, Jamo, Latin-1; hinting removed) of NanumGothic,\n"
          "renamed as the SIL Open Font License 1.1 requires for a Modified Version.\n\n")


def make_subset(source: Path, target: Path) -> None:
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = True
    options.name_languages = ["*"]
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=subset.parse_unicodes(UNICODES))
    subsetter.subset(font)
    names = font["name"]
    for record in list(names.names):
        if record.nameID in NAMES or record.nameID in (16, 17, 21, 22):
            names.removeNames(nameID=record.nameID)
    for name_id, value in NAMES.items():
        names.setName(value, name_id, 3, 1, 0x409)
        names.setName(value, name_id, 1, 0, 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    font.save(target)


def write_licence(copyright_file: Path, target: Path) -> None:
    """The font's copyright and OFL text from Debian's machine-readable copyright file (stanza 1)."""
    lines = copyright_file.read_text(encoding="utf-8").split("\n\nFiles: debian/")[0].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("License: OFL"))
    body = [line[1:] if line.startswith(" ") else line for line in lines[start + 1:]]
    text = "\n".join("" if line.strip() == "." else line for line in body)
    target.write_text(NOTICE + text.strip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    font_file = resource_path(*HANGUL_FONT)
    make_subset(Path(sys.argv[1]), font_file)
    write_licence(Path(sys.argv[2]), font_file.with_name("OFL.txt"))
    print(f"{font_file}: {font_file.stat().st_size / 1024:.0f} KB")
