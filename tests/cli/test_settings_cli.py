"""``vision-platform settings show|set`` and ``settings credentials set|clear|test`` on a real data dir."""

from __future__ import annotations

import io
import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CliResult
from tests.fixtures.s3server import SeaweedFS

Cli = Callable[..., CliResult]
Rows = Callable[..., list[tuple[Any, ...]]]


def _stored(db_rows: Rows, name: str) -> Any:
    rows = db_rows("SELECT value FROM app_settings WHERE key = ?", name)
    return json.loads(rows[0][0]) if rows else None


def test_set_then_show(run_cli: Cli, db_rows: Rows) -> None:
    assert run_cli("settings", "set", "offline_mode", "false").code == 0
    assert run_cli("settings", "set", "max_concurrent_jobs", "3").code == 0
    assert run_cli("settings", "set", "r2_endpoint_url", "https://example.invalid").code == 0
    assert (_stored(db_rows, "offline_mode"), _stored(db_rows, "max_concurrent_jobs")) == (False, 3)
    shown = json.loads(run_cli("settings", "show", "--json").out)
    assert shown["offline_mode"] is False and shown["max_concurrent_jobs"] == 3
    assert shown["r2_endpoint_url"] == "https://example.invalid"
    assert shown["credentials"]["access_key_id"] is None
    text = run_cli("settings", "show").out
    assert "max_concurrent_jobs  3" in text and "none saved" in text


@pytest.mark.parametrize(("name", "value", "words"), [
    ("offline_mode", "maybe", "true or false"),
    ("max_concurrent_jobs", "two", "whole number"),
    ("max_concurrent_jobs", "0", "between 1 and 16"),
    ("r2_bucket", " ", "cannot be empty"),
    ("colour", "blue", "no setting “colour”"),
])
def test_bad_values_are_refused_and_nothing_changes(run_cli: Cli, db_rows: Rows, name: str, value: str,
                                                   words: str) -> None:
    assert run_cli("settings", "set", "max_concurrent_jobs", "2").code == 0
    before = db_rows("SELECT key, value FROM app_settings ORDER BY key")
    refused = run_cli("settings", "set", name, value)
    assert refused.code == 2 and refused.err.startswith("error: ") and words in refused.err
    assert db_rows("SELECT key, value FROM app_settings ORDER BY key") == before


def test_credentials_set_show_clear(run_cli: Cli, vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("the-secret\n"))
    saved = run_cli("settings", "credentials", "set", "AKIATEST")
    assert saved.code == 0, saved.err
    keys = vp_home / "credentials.json"  # the tests' keyring is a failing backend: the 0600 file is used
    assert json.loads(keys.read_text()) == {"access_key_id": "AKIATEST", "secret_access_key": "the-secret"}
    if sys.platform != "win32":
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    shown = run_cli("settings", "show", "--json")
    assert json.loads(shown.out)["credentials"]["access_key_id"] == "AKIATEST"
    assert "the-secret" not in shown.out + run_cli("settings", "show").out
    assert run_cli("settings", "credentials", "clear").code == 0
    assert not keys.exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    empty = run_cli("settings", "credentials", "set", "AKIATEST")
    assert empty.code == 2 and "secret" in empty.err and not keys.exists()


@pytest.mark.s3
def test_credentials_test_against_the_bucket(run_cli: Cli, s3: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert run_cli("settings", "set", "r2_endpoint_url", s3.endpoint_url).code == 0
    assert run_cli("settings", "set", "r2_bucket", s3.bucket).code == 0
    no_keys = run_cli("settings", "credentials", "test")
    assert no_keys.code == 2 and "credentials set" in no_keys.err
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong-secret\n"))
    assert run_cli("settings", "credentials", "set", s3.access_key).code == 0
    refused = run_cli("settings", "credentials", "test")
    assert refused.code == 2 and s3.bucket in refused.err
    monkeypatch.setattr(sys, "stdin", io.StringIO(s3.secret_key + "\n"))
    assert run_cli("settings", "credentials", "set", s3.access_key).code == 0
    connected = run_cli("settings", "credentials", "test")
    assert connected.code == 0, connected.err
    assert connected.out.startswith(f"Connected: bucket {s3.bucket}")
