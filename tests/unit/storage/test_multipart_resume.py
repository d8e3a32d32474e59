"""A multipart upload killed half-way (a real SIGKILL in a real outbox process, a real S3 server).

The outbox runs in a subprocess with ``VP_FAULT=kill_after_upload_part=2``: the process kills
itself once two parts are in the bucket and recorded in its SQLite file. The "restarted app" is this
test process opening the same data dir: it must resume the saved upload id (sending only the
missing parts, with the same part size) or abort it, and leave no multipart upload in the bucket.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.db.engine import Store
from core.db.models import Upload, utcnow
from core.settings import Settings
from core.storage.client import make_s3_client
from core.storage.credentials import get_credentials
from core.storage.outbox import (
    STALE_AFTER_S,
    abort_orphaned_uploads,
    enqueue_upload,
    list_uploads,
    run_outbox,
)
from tests.conftest import ROOT
from tests.fixtures.s3server import SeaweedFS

MiB = 1024 * 1024
PART = 5 * MiB
KEY = "checkpoints/projects/1/jobs/1/last.pt"
pytestmark = pytest.mark.s3

OUTBOX_PROCESS = f"""
from core.db.engine import open_store
from core.settings import Settings
from core.storage.outbox import run_outbox
store = open_store()
run_outbox(store, Settings.load(store), part_size={PART})
raise SystemExit("the fault point did not kill the outbox")
"""


def _kill_mid_upload(s3: SeaweedFS, store: Store, path: Path) -> Upload:
    """Queue ``path``, run the outbox in a process that is killed after part 2; the row it left."""
    enqueue_upload(store, job_id=None, checkpoint_id=None, local_path=path, bucket=s3.bucket, key=KEY)
    env = {**os.environ, "VP_FAULT": "kill_after_upload_part=2",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    done = subprocess.run([sys.executable, "-c", OUTBOX_PROCESS], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0 and "did not kill" not in done.stderr, done.stderr[-2000:]
    if sys.platform != "win32":
        assert done.returncode == -9, (done.returncode, done.stderr[-2000:])
    (row,) = list_uploads(store)
    return row


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class UploadPartLog:
    """What a client sends as UploadPart (part number, Content-Length), from botocore's event hook."""

    def __init__(self, client: Any) -> None:
        self.parts: list[tuple[int, int]] = []
        client.meta.events.register("before-send.s3.UploadPart", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        number = int(request.url.split("partNumber=")[1].split("&")[0])
        self.parts.append((number, int(request.headers["Content-Length"])))


def _restart(store: Store, s3: SeaweedFS) -> tuple[Any, UploadPartLog]:
    """The next app start: the killed process's heartbeat is older than the takeover limit."""
    client = make_s3_client(Settings(r2_endpoint_url=s3.endpoint_url, r2_bucket=s3.bucket), get_credentials())
    wire = UploadPartLog(client)
    later = utcnow() + timedelta(seconds=STALE_AFTER_S + 1)
    run_outbox(store, Settings.load(store), client=client, now=later)
    return client, wire


def _bucket_uploads(s3: SeaweedFS) -> list[dict[str, Any]]:
    return list(s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []))


@pytest.mark.reliability(row=12, fault="SIGKILL of the outbox process after multipart part 2; restart resumes")
@pytest.mark.reliability(row=14, fault="part sizes across an upload resumed after a kill")
def test_killed_multipart_upload_is_resumed_with_equal_parts(s3_env: SeaweedFS, store: Store, tmp_path: Path) -> None:
    data = os.urandom(4 * PART + 3 * MiB)  # parts 5,5,5,5,3 MiB
    path = tmp_path / "last.pt"
    path.write_bytes(data)
    row = _kill_mid_upload(s3_env, store, path)

    # What the kill left: the upload id, the part size, the file's hash and exactly two recorded parts.
    assert row.state == "uploading" and row.multipart_upload_id
    assert (row.multipart_part_size, row.multipart_sha256) == (PART, _sha(data))
    recorded = {int(n) for n in json.loads(row.multipart_etags or "{}")}
    assert len(recorded) == 2
    assert [u["UploadId"] for u in _bucket_uploads(s3_env)] == [row.multipart_upload_id]
    listed = s3_env.client().list_parts(Bucket=s3_env.bucket, Key=KEY, UploadId=row.multipart_upload_id)["Parts"]
    sizes_before = {int(p["PartNumber"]): int(p["Size"]) for p in listed}
    assert recorded <= set(sizes_before)

    _client, wire = _restart(store, s3_env)

    sent = dict(wire.parts)
    assert set(sent) == {1, 2, 3, 4, 5} - recorded  # resumed: the recorded parts were not sent again
    final = {**{n: sizes_before[n] for n in recorded}, **sent}
    assert [final[n] for n in sorted(final)] == [PART] * 4 + [3 * MiB]  # row 14: equal non-final parts
    (synced,) = list_uploads(store)
    assert synced.state == "synced" and synced.sha256 == _sha(data)
    assert synced.multipart_upload_id is None and synced.multipart_etags is None
    body = s3_env.client().get_object(Bucket=s3_env.bucket, Key=KEY)["Body"].read()
    assert _sha(body) == _sha(data)
    assert _bucket_uploads(s3_env) == []


@pytest.mark.reliability(row=12, fault="SIGKILL mid multipart upload, then the file changes; restart aborts")
def test_killed_upload_of_a_file_that_changed_is_aborted_and_redone(
    s3_env: SeaweedFS, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(os.urandom(3 * PART))
    killed = _kill_mid_upload(s3_env, store, path)
    newer = os.urandom(3 * PART + 1)  # training wrote a newer last.pt meanwhile
    path.write_bytes(newer)

    _client, wire = _restart(store, s3_env)

    assert sorted(n for n, _ in wire.parts) == [1, 2, 3, 4]  # a fresh upload, every part sent
    (row,) = list_uploads(store)
    assert row.state == "synced" and row.sha256 == _sha(newer) and row.multipart_upload_id is None
    body = s3_env.client().get_object(Bucket=s3_env.bucket, Key=KEY)["Body"].read()
    assert _sha(body) == _sha(newer)
    assert _bucket_uploads(s3_env) == []  # the killed upload was aborted, not left to bill
    assert killed.multipart_upload_id not in {u["UploadId"] for u in _bucket_uploads(s3_env)}


@pytest.mark.reliability(row=12, fault="SIGKILL mid multipart upload, then the file is deleted; restart aborts")
def test_killed_upload_of_a_deleted_file_leaves_nothing_in_the_bucket(
    s3_env: SeaweedFS, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(os.urandom(3 * PART))
    _kill_mid_upload(s3_env, store, path)
    path.unlink()

    _restart(store, s3_env)

    (row,) = list_uploads(store)
    assert row.state == "failed" and "file not found" in (row.last_error or "")
    assert row.multipart_upload_id is None
    assert _bucket_uploads(s3_env) == []  # the orphan sweep aborted what the row no longer records
    assert s3_env.client().list_objects_v2(Bucket=s3_env.bucket).get("KeyCount", 0) == 0


@pytest.mark.reliability(row=12, fault="multipart uploads orphaned under our prefix (no row records them)")
def test_orphan_sweep_aborts_only_old_unrecorded_uploads_under_our_prefixes(
    s3_env: SeaweedFS, store: Store, tmp_path: Path
) -> None:
    plain = s3_env.client()

    def start(key: str) -> str:
        return str(plain.create_multipart_upload(Bucket=s3_env.bucket, Key=key)["UploadId"])

    orphan, recorded, foreign = start("checkpoints/projects/1/jobs/9/last.pt"), start(KEY), start("other-app/x.bin")
    dataset_orphan = start("datasets/3/dataset.zip")
    row_id = enqueue_upload(store, job_id=None, checkpoint_id=None, local_path=tmp_path / "x", bucket=s3_env.bucket,
                            key=KEY)
    with store.write() as session:
        session.get(Upload, row_id).multipart_upload_id = recorded  # type: ignore[union-attr]
    client = make_s3_client(Settings(r2_endpoint_url=s3_env.endpoint_url, r2_bucket=s3_env.bucket), get_credentials())

    assert abort_orphaned_uploads(store, client, s3_env.bucket) == []  # young: maybe a live uploader's
    later = utcnow() + timedelta(seconds=STALE_AFTER_S + 1)
    aborted = abort_orphaned_uploads(store, client, s3_env.bucket, now=later)

    assert sorted(aborted) == ["checkpoints/projects/1/jobs/9/last.pt", "datasets/3/dataset.zip"]
    left = {u["UploadId"] for u in _bucket_uploads(s3_env)}
    assert left == {recorded, foreign} and not left & {orphan, dataset_orphan}
