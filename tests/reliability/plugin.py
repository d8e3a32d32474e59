"""Pytest plugin: which test covers which matrix row, and how it ended (for docs/reliability.md).

With ``VP_RELIABILITY_REPORT=PATH`` set, the session writes ``PATH`` (JSON): one entry per
(row, test) with the fault it injects and its outcome — ``passed``, ``failed``, ``error``,
``skipped``, ``xfailed`` (a known gap, documented by the test), ``xpassed``. Rows come from the
``reliability`` marker, from ``matrix row N`` in a docstring, or from ``matrix.COVERED_ELSEWHERE``
(see ``tests/reliability/matrix.py``). ``python -m tests.reliability.report PATH`` renders the doc.
Without the variable the plugin only collects (a dict per test) and writes nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from tests.reliability.matrix import COVERED_ELSEWHERE, ROWS

REPORT_ENV = "VP_RELIABILITY_REPORT"
_DOC_ROWS = re.compile(r"matrix row ([^:]*):\s*(.*)", re.S)


@dataclass
class Coverage:
    row: int
    fault: str
    test: str
    outcome: str = "not run"


def _docstring_rows(item: pytest.Item) -> list[tuple[int, str]]:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    match = _DOC_ROWS.search(" ".join(doc.split()))
    if not match:
        return []
    fault = match.group(2).split(". ")[0].strip()
    rows = [int(n) for n in re.findall(r"\d+", match.group(1)) if int(n) in ROWS]
    return [(row, fault) for row in rows]


def rows_of(item: pytest.Item) -> list[tuple[int, str]]:
    """(row, fault) pairs a test covers: marker first, then docstring, then the mapping."""
    found = [(int(m.kwargs["row"]), str(m.kwargs.get("fault", ""))) for m in item.iter_markers("reliability")]
    found += [pair for pair in _docstring_rows(item) if pair[0] not in {r for r, _ in found}]
    if not found:
        rows, fault = COVERED_ELSEWHERE.get(item.nodeid.split("[")[0], ((), ""))
        found = [(row, fault) for row in rows]
    return found


class ReliabilityRecorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.by_test: dict[str, list[Coverage]] = {}

    @pytest.hookimpl(tryfirst=True)  # before -m/-k deselect: a deselected test shows as not run
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            entries = [Coverage(row, fault, item.nodeid) for row, fault in rows_of(item)]
            if entries:
                self.by_test[item.nodeid] = entries

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entries = self.by_test.get(report.nodeid)
        if not entries:
            return
        outcome = _outcome(report)
        if outcome is None:
            return
        for entry in entries:
            entry.outcome = _worse(entry.outcome, outcome)

    def pytest_sessionfinish(self) -> None:
        entries = [asdict(e) for tests in self.by_test.values() for e in tests]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"entries": entries}, indent=1), encoding="utf-8")


_RANK = ["not run", "passed", "xfailed", "skipped", "xpassed", "failed", "error"]


def _outcome(report: pytest.TestReport) -> str | None:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None  # a passing setup or teardown says nothing yet


def _worse(old: str, new: str) -> str:
    return new if old == "not run" or _RANK.index(new) > _RANK.index(old) else old


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        config.pluginmanager.register(ReliabilityRecorder(Path(path)), "vp-reliability-recorder")
