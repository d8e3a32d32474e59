"""URLs, credentials and limits: no server needed."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from core.settings import Settings
from core.storage import (
    MAX_CHECKPOINT_BYTES,
    StorageError,
    checkpoint_key,
    dataset_key,
    make_r2_url,
    parse_r2_url,
)
from core.storage.client import digest_file, make_s3_client, upload_file
from core.storage.credentials import (
    Credentials,
    credentials_backend_notice,
    credentials_file,
    get_credentials,
    save_credentials,
)


def test_r2_urls_round_trip_and_reject_bad_input() -> None:
    url = make_r2_url("vision-platform-prod", checkpoint_key(2, 20, "best.pt"))
    assert url == "r2://vision-platform-prod/checkpoints/projects/2/jobs/20/best.pt"
    assert parse_r2_url(url) == ("vision-platform-prod", "checkpoints/projects/2/jobs/20/best.pt")
    assert parse_r2_url("s3://b/k") == ("b", "k")
    assert dataset_key(7) == "datasets/7/dataset.zip"
    for bad in ("http://b/k", "r2://", "r2://bucket", "r2://bucket/", "r2:///key"):
        with pytest.raises(ValueError):
            parse_r2_url(bad)


def test_credentials_from_env_when_nothing_saved(vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert get_credentials() is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    creds = get_credentials()
    assert creds == Credentials("AKIAENV", "env-secret", "env")
    assert "env-secret" not in repr(creds)


def test_without_keyring_keys_go_to_a_0600_file_and_the_user_is_told(vp_home: Path) -> None:
    notice = save_credentials("AKIAFILE", "file-secret")
    target = credentials_file()
    assert str(target) in notice and "No system keyring" in notice
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    creds = get_credentials()
    assert creds is not None and (creds.access_key_id, creds.secret_access_key, creds.source) == (
        "AKIAFILE",
        "file-secret",
        "file",
    )
    assert "No system keyring" in credentials_backend_notice()
    # The secret is nowhere else in the data dir (not in the DB, settings or logs).
    for path in vp_home.rglob("*"):
        if path.is_file() and path != target:
            assert b"file-secret" not in path.read_bytes(), path


def test_with_a_keyring_keys_go_there_and_not_to_disk(vp_home: Path) -> None:
    import keyring

    from tests.fixtures.memkeyring import MemoryKeyring

    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    notice = save_credentials("AKIAKR", "kr-secret")
    assert "keyring" in notice
    assert not credentials_file().exists()
    assert backend.store[("vision-platform", "r2_secret_access_key")] == "kr-secret"
    creds = get_credentials()
    assert creds is not None and creds.source == "keyring" and creds.access_key_id == "AKIAKR"


def test_missing_settings_give_clear_errors() -> None:
    with pytest.raises(StorageError, match="credentials"):
        make_s3_client(Settings(r2_endpoint_url="http://127.0.0.1:1"), None)
    with pytest.raises(StorageError, match="endpoint"):
        make_s3_client(Settings(r2_endpoint_url=""), Credentials("a", "b", "env"))


def test_checkpoint_over_the_limit_is_refused_before_any_transfer(tmp_path: Path) -> None:
    big = tmp_path / "huge.pt"
    with open(big, "wb") as handle:  # sparse: no disk used
        handle.truncate(MAX_CHECKPOINT_BYTES + 1)
    with socket.socket() as server:  # listens, and must see no connection: refused before any transfer
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        server.setblocking(False)
        port = server.getsockname()[1]
        client = make_s3_client(Settings(r2_endpoint_url=f"http://127.0.0.1:{port}"), Credentials("a", "b", "env"))
        with pytest.raises(StorageError, match="over the 500.0 MB limit") as info:
            upload_file(client, big, "bucket", "k")
        assert info.value.retryable is False
        with pytest.raises(BlockingIOError):
            server.accept()


def test_digest_parts_are_equal_except_the_last(tmp_path: Path) -> None:
    data = os.urandom(12 * 1024 * 1024 + 123)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    digest = digest_file(path, 5 * 1024 * 1024)
    assert digest.multipart and len(digest.part_md5s) == 3
    assert digest.expected_etag().endswith("-3")
    small = digest_file(path, 16 * 1024 * 1024)
    assert not small.multipart and len(small.part_md5s) == 1
