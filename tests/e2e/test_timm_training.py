"""End-to-end: `vision-platform train` runs a real timm classifier in a worker process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import yaml

from core.config import config_from_dict
from core.db.engine import Store, open_store
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from tests.conftest import NETGUARD_LOG, network_attempts_since
from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.holds import Holds
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, home: Path, timeout: float = 300, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VP_HOME=str(home))  # PYTHONPATH: the repo and the network guard (conftest)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "vision_platform", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))


def write_job(path: Path, dataset: Path, **overrides: object) -> Path:
    config: dict[str, object] = {"dataset": str(dataset), "model": "test_resnet", "epochs": 3, "batch_size": 8,
                                 "image_size": 32, "learning_rate": 0.005, "seed": 1}
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


# colour_dataset: 72 images, ~57 train at batch 8 = 7-8 batches an epoch; global batch 9 is inside epoch 2.
EPOCH_2_BATCH = 9


@pytest.fixture(scope="module")
def colour_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colours") / "data"
    make_imagefolder(root, classes=("red", "green", "blue"), per_class=24, size=32)
    return root


def test_train_cli_end_to_end(vp_home: Path, colour_dataset: Path, tmp_path: Path) -> None:
    job_file = write_job(tmp_path / "job.yaml", colour_dataset)
    result = run_cli("train", str(job_file), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job 1 completed" in result.stdout

    store = open_store()
    job = job_store.get_job(store, 1)
    assert job.status == "completed" and job.completed_at is not None
    assert job.num_classes == 3  # from the worker's "dataset" event, once the dataset was read
    epochs = job_store.metric_rows(store, 1, kind="epoch")
    assert [row.epoch for row in epochs] == [1, 2, 3]
    assert all(row.loss is not None and row.accuracy is not None and row.learning_rate is not None for row in epochs)
    steps = job_store.metric_rows(store, 1, kind="step")
    assert steps and all(row.loss is not None for row in steps)
    # Colour classes are easy: clearly above chance (1/3).
    assert max(row.accuracy or 0 for row in epochs) >= 0.7
    assert job.best_metric_name == "val/accuracy" and job.best_metric_value is not None

    run_dir = Path(job.output_dir or "")
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    assert args["model"] == "test_resnet" and args["epochs"] == 3 and args["split"]["strategy"] == "auto"

    checkpoints = {c.kind: c for c in job_store.checkpoints(store, 1)}
    assert set(checkpoints) == {"best", "last"}
    assert checkpoints["last"].epoch == 3
    from core.reporter import sha256_file

    for ckpt in checkpoints.values():
        assert ckpt.sha256 == sha256_file(Path(ckpt.path))
        state = torch.load(ckpt.path, map_location="cpu", weights_only=True)
        assert state["class_names"] == ["blue", "green", "red"]

    from adapters.timm_adapter import TimmAdapter
    from core.reporter import JsonLinesReporter

    config = config_from_dict({"dataset": str(colour_dataset), "device": "cpu"})
    adapter = TimmAdapter(config, tmp_path / "infer", JsonLinesReporter())
    adapter.load_checkpoint(Path(checkpoints["best"].path))
    hits = 0
    for colour in ("red", "green", "blue"):
        for image in sorted((colour_dataset / colour).iterdir())[:4]:
            prediction = adapter.run_inference(image, top_k=2)
            assert len(prediction["top_k"]) == 2 and prediction["inference_time_ms"] > 0
            hits += prediction["top_k"][0]["label"] == colour
    assert hits >= 9, f"only {hits}/12 training images classified correctly"

    # Per-image validation predictions of the best model, for the GUI's interactive confusion matrix.
    from core.db.models import Artifact
    from core.evaluation import ValPredictions

    with store.read() as session:
        kinds = {a.kind: a.path for a in session.query(Artifact).filter(Artifact.job_id == 1)}
    predictions = ValPredictions.load(kinds["val_predictions"])
    assert predictions.class_names == ["blue", "green", "red"]
    assert 10 <= len(predictions.items) <= 20 and int(predictions.confusion().sum()) == len(predictions.items)
    for item in predictions.items:
        assert Path(item["path"]).is_file() and item["pred"] == max(range(3), key=lambda k: item["scores"][k])

    listing = run_cli("jobs", home=vp_home)
    assert "completed" in listing.stdout and "3/3" in listing.stdout
    shown = run_cli("show", "1", home=vp_home)
    assert "val/accuracy" in shown.stdout and "best" in shown.stdout and "last" in shown.stdout


def _start_in_thread(store: Store, job_id: int) -> tuple[threading.Thread, dict[str, str]]:
    outcome: dict[str, str] = {}
    thread = threading.Thread(target=lambda: outcome.update(status=JobRunner(store).run(job_id)))
    thread.start()
    return thread, outcome


def test_kill_minus_nine_mid_epoch_then_resume(vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store()
    config = config_from_dict({"dataset": str(colour_dataset), "model": "test_resnet", "epochs": 3, "batch_size": 8,
                               "image_size": 32, "seed": 3})
    job_id = job_store.create_job(store, config)
    holds = Holds(vp_home / "holds", EPOCH_2_BATCH)  # held inside epoch 2: the kill lands mid-epoch
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    thread, outcome = _start_in_thread(store, job_id)
    wait_until(lambda: holds.is_held(EPOCH_2_BATCH) and job_store.latest_checkpoint(store, job_id, "last") is not None,
               "the worker held in epoch 2, epoch 1's checkpoint recorded")
    worker_pid = job_store.get_job(store, job_id).worker_pid
    assert worker_pid
    os.kill(worker_pid, signal.SIGKILL)
    thread.join(60)
    assert outcome["status"] == "failed"
    job = job_store.get_job(store, job_id)
    assert job.status == "failed"
    assert "SIGKILL" in (job.error_message or "") and job.exit_code == -signal.SIGKILL
    with sqlite3.connect(store.db_file) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None and last.epoch == 1
    state = torch.load(last.path, map_location="cpu", weights_only=True)
    assert state["epoch"] == 1

    monkeypatch.delenv("VP_FAULT")
    job_store.requeue_for_resume(store, job_id)
    thread, outcome = _start_in_thread(store, job_id)
    thread.join(180)
    assert outcome["status"] == "completed"
    epochs = [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")]
    assert epochs == [1, 2, 3]  # resumed at 2, no epoch twice
    log_text = (Path(job.output_dir or "") / "worker.log").read_text()
    assert "resuming from" in log_text and "at epoch 2" in log_text


def test_cancel_between_batches_then_extend(vp_home: Path, colour_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store()
    config = config_from_dict({"dataset": str(colour_dataset), "model": "test_resnet", "epochs": 2, "batch_size": 8,
                               "image_size": 32})
    job_id = job_store.create_job(store, config)
    holds = Holds(vp_home / "holds", EPOCH_2_BATCH)  # held inside epoch 2: the cancel lands between batches
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    thread, outcome = _start_in_thread(store, job_id)
    wait_until(lambda: holds.is_held(EPOCH_2_BATCH) and job_store.latest_checkpoint(store, job_id, "last") is not None,
               "the worker held in epoch 2, epoch 1's checkpoint recorded")
    assert job_store.request_cancel(store, job_id) == "stopping"
    thread.join(60)
    assert outcome["status"] == "cancelled"
    assert job_store.get_job(store, job_id).status == "cancelled"

    monkeypatch.delenv("VP_FAULT")
    job_store.requeue_for_resume(store, job_id, extra_epochs=1)
    thread, outcome = _start_in_thread(store, job_id)
    thread.join(180)
    assert outcome["status"] == "completed"
    assert [r.epoch for r in job_store.metric_rows(store, job_id, kind="epoch")] == [1, 2, 3]
    assert job_store.get_job(store, job_id).epochs == 3


def test_bad_inputs_give_clear_errors(vp_home: Path, colour_dataset: Path, tmp_path: Path) -> None:
    missing = run_cli("train", str(write_job(tmp_path / "a.yaml", tmp_path / "nope")), home=vp_home)
    assert missing.returncode == 2 and "dataset not found" in missing.stderr and "nope" in missing.stderr

    unknown_key = tmp_path / "b.yaml"
    unknown_key.write_text(f"dataset: {colour_dataset}\nbatchsize: 4\n")
    result = run_cli("train", str(unknown_key), home=vp_home)
    assert result.returncode == 2 and "unknown key 'batchsize'" in result.stderr

    bad_model = run_cli("train", str(write_job(tmp_path / "c.yaml", colour_dataset, model="resnet_99x", epochs=1)),
                        home=vp_home)
    assert bad_model.returncode == 2  # refused by preflight, before the job is queued
    assert "timm offers no model 'resnet_99x'" in bad_model.stderr and "did you mean" in bad_model.stderr
    assert "job 1" not in bad_model.stdout
    assert "Traceback" not in bad_model.stderr  # a user error, not a crash

    offset = NETGUARD_LOG.stat().st_size
    no_weights = run_cli("train", str(write_job(tmp_path / "d.yaml", colour_dataset, model="resnet18", pretrained=True)),
                         home=vp_home, extra_env={"HF_HOME": str(tmp_path / "empty_hf")})
    assert no_weights.returncode == 2  # preflight names the missing weights before the job is queued
    assert "the pretrained weights of timm model 'resnet18' are not on this computer" in no_weights.stderr
    assert "weights download timm resnet18" in no_weights.stderr
    assert "import a weights file" in no_weights.stderr and "train from scratch" in no_weights.stderr
    assert network_attempts_since(offset) == ""  # no download tried (so no minutes-long retry either)


def test_corrupt_image_is_skipped_and_reported(vp_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_imagefolder(data, classes=("red", "green"), per_class=12, size=32, ext=".jpg")
    good = sorted((data / "red").iterdir())[0]
    corrupt = data / "red" / "zz_truncated.jpg"
    corrupt.write_bytes(good.read_bytes()[:200])
    result = run_cli("train", str(write_job(tmp_path / "job.yaml", data, epochs=1)), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "zz_truncated.jpg" in result.stdout + result.stderr


def test_empty_class_folder_is_named(vp_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_imagefolder(data, classes=("red", "green"), per_class=10, size=32)
    (data / "purple").mkdir()
    result = run_cli("train", str(write_job(tmp_path / "job.yaml", data, epochs=1)), home=vp_home)
    assert "purple" in result.stdout + result.stderr


def test_app_killed_worker_follows_and_job_becomes_interrupted(vp_home: Path, colour_dataset: Path, tmp_path: Path) -> None:
    import psutil

    job_file = write_job(tmp_path / "job.yaml", colour_dataset, epochs=3)
    holds = Holds(tmp_path / "holds", 1)  # the worker waits after its first batch: the app dies mid-run
    env = dict(os.environ, VP_HOME=str(vp_home), VP_FAULT=holds.fault_spec)
    cli = subprocess.Popen([sys.executable, "-m", "vision_platform", "train", str(job_file)], env=env, cwd=str(ROOT),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = open_store()
    try:
        wait_until(lambda: holds.is_held(1), "the worker's first batch")
        job = job_store.list_jobs(store)[0]
        assert job.status == "running" and job.worker_pid
        cli.kill()  # the app (runner) dies without any cleanup
        cli.wait(10)
        # The worker notices its parent is gone and exits by itself (no orphan holding the GPU).
        wait_until(lambda: not psutil.pid_exists(job.worker_pid) or psutil.Process(job.worker_pid).status() == "zombie",
                   "the orphaned worker's exit")
    finally:
        if cli.poll() is None:
            cli.kill()
    assert job_store.reconcile_orphaned_jobs(store) == [job.id]
    assert job_store.get_job(store, job.id).status == "interrupted"


def test_the_split_a_timm_job_trains_on_is_the_one_the_preview_shows(vp_home: Path, tmp_path: Path) -> None:
    """A dataset with its own train/val folders: `auto` trains on its folders, an explicit `random` on
    the random split — each exactly the counts `core.datasets.split_dataset` (the preview) gives."""
    from core.datasets import open_dataset, split_dataset

    data = make_imagefolder(tmp_path / "data", classes=("red", "blue"), per_class=12, size=32, splits=("train", "val"))
    index = open_dataset(data)
    for strategy in ("auto", "random"):
        expected = split_dataset(index, strategy, 0.5, 7)
        job = write_job(tmp_path / f"{strategy}.yaml", data, epochs=1, split={"strategy": strategy, "ratio": 0.5, "seed": 7})
        home = vp_home / strategy
        result = run_cli("train", str(job), home=home)
        assert result.returncode == 0, result.stdout + result.stderr
        log = (home / "runs" / "job_1" / "worker.log").read_text(encoding="utf-8", errors="replace")
        assert f"{len(expected.train)} training and {len(expected.val)} validation images" in log, (strategy, log[-800:])
    assert len(split_dataset(index, "auto", 0.5, 7).val) != len(split_dataset(index, "random", 0.5, 7).val)
