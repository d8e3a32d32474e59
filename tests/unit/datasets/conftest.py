from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the zip/embedded-image cache inside the test's tmp dir."""
    home = tmp_path / "vp_home"
    monkeypatch.setenv("VP_HOME", str(home))
    return home


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def codes(findings: list[Any]) -> dict[str, list[str]]:
    """{code: [paths]} for asserting on findings."""
    result: dict[str, list[str]] = {}
    for finding in findings:
        result.setdefault(finding.code, []).append(finding.path)
    return result
