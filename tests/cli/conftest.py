"""CLI twin tests: the real ``vision-platform`` parser and handlers, in-process, on a private data dir.

``run_cli`` calls ``core.cli.main`` as the console script does and returns the exit code with what
was printed; ``db_rows`` reads the SQLite file with the standard library, so what a test asserts is
what is on disk, not what the code under test believes it wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(vp_home: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    from core.cli import main

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def db_rows(vp_home: Path) -> Callable[..., list[tuple[Any, ...]]]:
    def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(vp_home / "vision_platform.db")) as connection:
            return list(connection.execute(sql, params))

    return query
