"""Rows nobody else covers, and the report machinery itself (what docs/reliability.md is made of)."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from importlib import metadata

import pytest

from tests.conftest import ROOT
from tests.reliability.matrix import COVERED_ELSEWHERE, ROWS
from tests.reliability.plugin import _docstring_rows
from tests.reliability.report import render

TRANSFORMERS_FLOOR = (5, 3, 0)  # CVE-2026-4372: config loading, fixed in 5.3.0


def _version(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


@pytest.mark.reliability(row=29, fault="a transformers release older than the CVE-2026-4372 fix")
def test_transformers_floor_is_declared_locked_and_installed() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (spec,) = [d for d in declared if d.split(">")[0].split("<")[0].split("=")[0].strip() == "transformers"]
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor and _version(floor.group(1)) >= TRANSFORMERS_FLOOR, spec
    locked = re.search(r"^transformers==(\S+)", (ROOT / "requirements.lock").read_text(encoding="utf-8"), re.M)
    assert locked and _version(locked.group(1)) >= TRANSFORMERS_FLOOR
    assert _version(metadata.version("transformers")) >= TRANSFORMERS_FLOOR


def test_docstring_rows_are_read_up_to_the_colon() -> None:
    def item(doc: str) -> object:
        def function() -> None:
            pass

        function.__doc__ = doc
        return type("Item", (), {"function": function})()

    assert _docstring_rows(item("matrix row 7 and 32: a damaged file. More.")) == [  # type: ignore[arg-type]
        (7, "a damaged file"), (32, "a damaged file")]
    assert [r for r, _ in _docstring_rows(item("matrix row 3 (and 12): x"))] == [3, 12]  # type: ignore[arg-type]
    assert _docstring_rows(item("no row here: x")) == []  # type: ignore[arg-type]


def test_mapping_names_real_rows_and_test_files() -> None:
    for nodeid, (rows, fault) in COVERED_ELSEWHERE.items():
        assert set(rows) <= set(ROWS) and fault, nodeid
        path, _, name = nodeid.partition("::")
        assert f"def {name}(" in (ROOT / path).read_text(encoding="utf-8"), f"{nodeid}: no such test"


def test_report_lists_every_row_and_says_what_is_not_covered() -> None:
    entries = [
        {"row": 12, "fault": "kill", "test": "t::a", "outcome": "passed"},
        {"row": 12, "fault": "orphans", "test": "t::b", "outcome": "failed"},
        {"row": 33, "fault": "env", "test": "t::c", "outcome": "xfailed"},
    ]
    text = render(entries, datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    table = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert [int(line.split("|")[1]) for line in table] == sorted(ROWS)
    assert "| 12 | App killed mid multipart upload |" in text and "FAILING" in text
    assert "`t::b` | orphans | ❌ failed |" in text and "known gap (xfail)" in text
    assert text.count("**NOT COVERED**") == len(ROWS) - 2
