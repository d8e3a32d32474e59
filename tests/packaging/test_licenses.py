"""Licence texts of bundled packages come from their metadata (or, for a package that ships none, the
system's copy of the standard licence its metadata names), with an index of names and versions."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from core.licenses import INDEX_FILE, collect_licenses, standard_texts


def test_collect_copies_licence_files_and_writes_the_index(tmp_path: Path) -> None:
    packages = collect_licenses(["ultralytics", "torch", "yaml"], tmp_path)
    names = {package.name.lower(): package for package in packages}
    assert {"ultralytics", "torch", "pyyaml"} <= set(names)
    ultralytics = names["ultralytics"]
    assert ultralytics.version == importlib.metadata.version("ultralytics") and "AGPL" in ultralytics.license
    text = "".join((tmp_path / file).read_text(encoding="utf-8") for file in ultralytics.files)
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in text
    index = json.loads((tmp_path / INDEX_FILE).read_text(encoding="utf-8"))
    assert {row["name"].lower() for row in index} == set(names)


@pytest.mark.skipif(not Path("/usr/share/common-licenses/LGPL-3").is_file(), reason="no common-licenses here")
def test_pyside6_gets_the_lgpl_text_its_metadata_names(tmp_path: Path) -> None:
    assert [path.name for path in standard_texts("LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only")] == \
        ["LGPL-3", "GPL-2", "GPL-3"]
    (pyside,) = [p for p in collect_licenses(["PySide6"], tmp_path) if p.name.startswith("PySide6")]
    assert any(file.endswith("/LGPL-3") for file in pyside.files)
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in (tmp_path / pyside.name / "LGPL-3").read_text(encoding="utf-8")
