"""Uploads and downloads against a real S3 server (SeaweedFS), with R2's rules checked on the wire."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from core.storage import StorageError
from core.storage.client import (
    download_checkpoint,
    download_file,
    make_s3_client,
    objects_dir,
    upload_file,
)
from core.storage.credentials import get_credentials
from core.storage.folders import fetch_dataset
from tests.fixtures.s3server import SeaweedFS

MiB = 1024 * 1024
pytestmark = pytest.mark.s3


class WireLog:
    """Records what the client sends (a botocore event hook, the mechanism R2's docs use)."""

    def __init__(self, client: Any) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        client.meta.events.register("before-send.s3.*", self._record)

    def _record(self, request: Any, **kwargs: Any) -> None:
        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
        self.sent.append((operation, headers))

    def operations(self) -> list[str]:
        return [op for op, _ in self.sent]


def _client(s3: SeaweedFS) -> Any:
    return make_s3_client(Settings(r2_endpoint_url=s3.endpoint_url, r2_bucket=s3.bucket), get_credentials())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_r2_compatible(wire: WireLog) -> None:
    for operation, headers in wire.sent:
        assert not [h for h in headers if h.startswith("x-amz-checksum-")], (operation, headers)
        assert "aws-chunked" not in headers.get("content-encoding", ""), operation
        assert "x-amz-trailer" not in headers, operation
        if operation in ("PutObject", "UploadPart"):
            assert "content-md5" in headers, operation


def test_small_upload_download_round_trip_with_sha256(s3_env: SeaweedFS, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "best.pt"
    path.write_bytes(data)
    client = _client(s3_env)
    wire = WireLog(client)
    result = upload_file(client, path, s3_env.bucket, "checkpoints/projects/1/jobs/1/best.pt")
    assert result.sha256 == _sha(data) and result.size == len(data) and result.parts == 1
    assert_r2_compatible(wire)

    independent = s3_env.client()
    head = independent.head_object(Bucket=s3_env.bucket, Key=result.key)
    assert head["Metadata"]["sha256"] == _sha(data)
    body = independent.get_object(Bucket=s3_env.bucket, Key=result.key)["Body"].read()
    assert _sha(body) == _sha(data)

    cached = download_file(client, result.url)
    assert cached == objects_dir() / _sha(data) and cached.read_bytes() == data
    # Cached: the same checkpoint is not downloaded again (no GetObject, not even a HEAD).
    wire.sent.clear()
    assert download_checkpoint(result.url, client=client, expected_sha256=_sha(data)) == cached
    assert wire.operations() == []
    # A second upload of the same bytes is verified, not re-sent.
    again = upload_file(client, path, s3_env.bucket, result.key)
    assert again.skipped and "PutObject" not in wire.operations()


def test_multipart_20mb_equal_parts_and_content_etag(s3_env: SeaweedFS, tmp_path: Path) -> None:
    data = os.urandom(20 * 1000 * 1000)
    path = tmp_path / "last.pt"
    path.write_bytes(data)
    client = _client(s3_env)
    wire = WireLog(client)
    result = upload_file(client, path, s3_env.bucket, "big/last.pt", part_size=5 * MiB)
    assert result.parts == 4 and result.etag.endswith("-4")
    part_sizes = [int(h["content-length"]) for op, h in wire.sent if op == "UploadPart"]
    assert sorted(part_sizes, reverse=True) == [5 * MiB] * 3 + [len(data) - 15 * MiB]
    assert_r2_compatible(wire)
    assert s3_env.client().list_multipart_uploads(Bucket=s3_env.bucket).get("Uploads", []) == []
    body = s3_env.client().get_object(Bucket=s3_env.bucket, Key="big/last.pt")["Body"].read()
    assert _sha(body) == _sha(data)


def test_corrupt_object_never_becomes_a_cache_entry(s3_env: SeaweedFS) -> None:
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="bad.pt", Body=b"tampered", Metadata={"sha256": "0" * 64})
    client = _client(s3_env)
    with pytest.raises(StorageError, match="does not match"):
        download_file(client, f"r2://{s3_env.bucket}/bad.pt")
    assert list(objects_dir().iterdir()) == []  # neither a cache entry nor a partial file


def test_changed_local_file_is_refused(s3_env: SeaweedFS, tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    path.write_bytes(b"new content")
    with pytest.raises(StorageError, match="changed") as info:
        upload_file(_client(s3_env), path, s3_env.bucket, "x.pt", expected_sha256=_sha(b"old content"))
    assert not info.value.retryable


def test_dataset_zip_download_and_safe_extract(s3_env: SeaweedFS, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/cat/1.txt", "meow")
        archive.writestr("images/dog/1.txt", "woof")
    s3_env.client().put_object(
        Bucket=s3_env.bucket,
        Key="datasets/7/dataset.zip",
        Body=buffer.getvalue(),
        Metadata={"sha256": _sha(buffer.getvalue())},
    )
    dest, downloaded = fetch_dataset(_client(s3_env), f"r2://{s3_env.bucket}/datasets/7/dataset.zip", tmp_path / "cache")
    assert downloaded
    assert (dest / "images" / "cat" / "1.txt").read_text() == "meow"
    assert (dest / "images" / "dog" / "1.txt").read_text() == "woof"
