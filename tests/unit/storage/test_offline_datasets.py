"""An ``r2://`` dataset already downloaded whole is used from the cache, with a warning that it may be
out of date, when offline mode is on (no network call at all) or the endpoint cannot be reached (a
closed loopback port); an answer from the bucket (no such prefix) is never a reason to fall back, and
nothing partial is ever used. Against a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import dataclasses
import io
import logging
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.db.engine import open_store
from core.services import ServiceError
from core.services import datasets as datasets_service
from core.settings import Settings
from core.staging import make_staging_dir
from core.storage import client as storage_client
from core.storage.client import objects_dir
from tests.fixtures.s3server import SeaweedFS
from tests.helpers.staging import exited_owner, staging_folder

pytestmark = pytest.mark.s3
PREFIX = "datasets/colours/"
FILES = {"red/a.png": b"red pixels", "blue/b.png": b"blue pixels", "green/c.png": b"green pixels"}


@pytest.fixture(scope="module")
def dead_owner() -> str:
    return exited_owner()


def upload(s3: SeaweedFS, files: dict[str, bytes], prefix: str = PREFIX) -> str:
    client = s3.client()
    for relative, data in files.items():
        client.put_object(Bucket=s3.bucket, Key=prefix + relative, Body=data)
    return f"r2://{s3.bucket}/{prefix}"


def online() -> Settings:
    return dataclasses.replace(Settings.load(open_store()), offline_mode=False)


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("offline mode made an S3 client")

    monkeypatch.setattr(storage_client, "client_from_settings", refuse)


def test_offline_mode_uses_the_complete_cached_copy_without_any_network_call(
        s3_env: SeaweedFS, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    url = upload(s3_env, FILES)
    local, downloaded = datasets_service.fetch_r2_dataset(url, online())
    assert downloaded and contents(local) == FILES
    offline = dataclasses.replace(online(), offline_mode=True)
    assert datasets_service.r2_download_problem(offline, url) is None  # the GUI's check lets it through
    no_network(monkeypatch)
    notices: list[str] = []

    again = datasets_service.fetch_r2_dataset(url.rstrip("/"), offline, notice=notices.append)

    assert again == (local, False) and contents(local) == FILES
    assert len(notices) == 1 and "Offline mode is on" in notices[0] and str(local) in notices[0]
    assert "may be out of date" in notices[0]
    with caplog.at_level(logging.WARNING, logger="core.services.datasets"):  # the default: a logged warning
        assert datasets_service.fetch_r2_dataset(url, offline) == (local, False)
    assert f"cached in {local}" in caplog.text


def test_offline_with_nothing_cached_is_the_clear_error(s3_env: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> None:
    url = upload(s3_env, FILES)
    offline = dataclasses.replace(online(), offline_mode=True)
    no_network(monkeypatch)
    assert datasets_service.r2_download_problem(offline, url) is not None

    with pytest.raises(ServiceError, match="Offline mode is on.*No complete copy of r2://"):
        datasets_service.fetch_r2_dataset(url, offline)


def test_an_unreachable_endpoint_falls_back_to_the_cached_copy_with_a_warning(s3_env: SeaweedFS) -> None:
    url = upload(s3_env, FILES)
    local, _ = datasets_service.fetch_r2_dataset(url, online())
    unreachable = dataclasses.replace(online(), r2_endpoint_url=closed_port_endpoint())
    notices: list[str] = []

    assert datasets_service.fetch_r2_dataset(url, unreachable, notice=notices.append) == (local, False)
    assert len(notices) == 1 and "is unreachable" in notices[0] and str(local) in notices[0]

    other = upload(s3_env, FILES, "datasets/never-downloaded/")
    with pytest.raises(ServiceError, match="unreachable.*No complete copy of r2://"):
        datasets_service.fetch_r2_dataset(other, unreachable)


def test_an_answer_from_the_bucket_is_no_reason_to_fall_back(s3_env: SeaweedFS) -> None:
    url = upload(s3_env, FILES)
    datasets_service.fetch_r2_dataset(url, online())
    for relative in FILES:
        s3_env.client().delete_object(Bucket=s3_env.bucket, Key=PREFIX + relative)
    notices: list[str] = []

    with pytest.raises(ServiceError, match="no objects under this prefix"):
        datasets_service.fetch_r2_dataset(url, online(), notice=notices.append)
    assert notices == []


def test_a_partial_download_is_never_used_offline(s3_env: SeaweedFS, dead_owner: str) -> None:
    url = upload(s3_env, FILES)
    first, _ = datasets_service.fetch_r2_dataset(url, online())
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=PREFIX + "red/d.png", Body=b"a new image")

    def cancel(received: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the changed dataset's download stops midway
        datasets_service.fetch_r2_dataset(url, online(), progress=cancel)
    offline = dataclasses.replace(online(), offline_mode=True)
    assert datasets_service.fetch_r2_dataset(url, offline, notice=lambda _text: None) == (first, False)

    never = upload(s3_env, FILES, "datasets/killed/")  # a download killed midway: only its staging folder
    staging_folder(datasets_service.download_dir(), f".r2-000000000000000000000000.partial-{dead_owner}-k1ll3d00")
    with pytest.raises(ServiceError, match="No complete copy"):
        datasets_service.fetch_r2_dataset(never, offline)


def test_using_the_caches_sweeps_what_killed_downloads_left(s3_env: SeaweedFS, dead_owner: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("colours/red/a.png", b"a")
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="datasets/colours.zip", Body=buffer.getvalue())
    downloads = datasets_service.download_dir()
    killed_folder = staging_folder(downloads, f".r2-111111111111111111111111.partial-{dead_owner}-k1ll3d00")
    killed_object = objects_dir() / f".object.partial-{dead_owner}-k1ll3d00"
    killed_object.write_bytes(b"half a zip")
    live = make_staging_dir(downloads / "r2-live")  # this process is downloading it

    local, downloaded = datasets_service.fetch_r2_dataset(f"r2://{s3_env.bucket}/datasets/colours.zip", online())

    assert downloaded and contents(local) == {"colours/red/a.png": b"a"}
    assert not killed_folder.exists() and not killed_object.exists() and live.is_dir()
    assert list(objects_dir().iterdir()) == []
    assert sorted(p.name for p in downloads.iterdir()) == sorted([".sources", local.name, live.name])
