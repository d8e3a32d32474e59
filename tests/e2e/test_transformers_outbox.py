"""End-to-end: a transformers job's checkpoints are model folders, and they travel through the R2/S3
outbox as folders: every file under the checkpoint's prefix in a real bucket (SeaweedFS), and a
download restores a folder that loads and predicts.

The training run has the endpoint but no keys, so its sync listener queues the folder's files and
leaves them pending (no race between the job's end and a background upload); ``vision-platform sync``
with the keys then uploads what was queued, as after a restart with the keys set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from adapters.transformers_adapter import TransformersAdapter
from core.config import config_from_dict
from core.db.engine import open_store
from core.jobs import store as job_store
from core.reporter import NullReporter
from core.rundir import RunDir, checkpoint_folder_of
from core.storage.outbox import list_uploads
from core.storage.r2url import checkpoint_key
from tests.e2e.test_timm_training import run_cli
from tests.e2e.test_transformers_training import SOLID, job, make_solid_colours, write_job
from tests.fixtures.s3server import SeaweedFS

pytestmark = [pytest.mark.slow, pytest.mark.s3]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {file.relative_to(folder).as_posix(): file.read_bytes() for file in folder.rglob("*") if file.is_file()}


def test_best_folder_goes_to_the_bucket_and_comes_back_as_a_model(
        s3: SeaweedFS, vp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("R2_BUCKET", s3.bucket)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    dataset = make_solid_colours(tmp_path / "data", per_class=10)
    trained = run_cli("train", str(write_job(tmp_path / "job.yaml", job("classify", dataset, epochs=1))), home=vp_home)
    assert trained.returncode == 0, trained.stdout + trained.stderr

    store = open_store()
    run = RunDir(Path(job_store.get_job(store, 1).output_dir or ""))
    best = run.checkpoint_dir("best")
    local = _folder_files(best)
    assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= set(local)
    queued = {Path(row.local_path).relative_to(best).as_posix() for row in list_uploads(store)
              if Path(row.local_path).parent == best}
    assert queued == set(local)  # the listener queued every file of the folder (no keys: still pending)

    keys = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    synced = run_cli("sync", home=vp_home, extra_env=keys)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    prefix = checkpoint_key(1, 1, "best/")
    client = s3.client()
    for name, data in local.items():
        obj = client.get_object(Bucket=s3.bucket, Key=prefix + name)
        assert obj["Metadata"]["sha256"] == _sha(data) and _sha(obj["Body"].read()) == _sha(data)
    rows = {row.kind: row for row in job_store.checkpoints(store, 1)}
    assert (rows["best"].sync_state, rows["best"].r2_url) == ("synced", f"r2://{s3.bucket}/{prefix}")
    assert checkpoint_folder_of(rows["best"].path) == best

    for file in best.rglob("*"):  # this computer lost the run's folder; the bucket still has it
        file.unlink()
    fetched = run_cli("checkpoint", "download", "1", "--out", str(tmp_path / "fetched"), home=vp_home,
                      extra_env=keys)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    restored = tmp_path / "fetched" / "best"
    assert fetched.stdout.strip() == f"downloaded to {restored}"
    assert _folder_files(restored) == local

    config = config_from_dict({"dataset": str(dataset), "framework": "transformers", "task": "classify",
                               "device": "cpu"})
    adapter = TransformersAdapter(config, tmp_path / "infer", NullReporter())
    adapter.load_checkpoint(restored / "model.safetensors")
    assert adapter.class_names == sorted(SOLID)
    prediction = adapter.run_inference(next((dataset / "red").iterdir()), top_k=3)
    assert [item["label"] for item in prediction["top_k"]] and len(prediction["top_k"]) == 3
