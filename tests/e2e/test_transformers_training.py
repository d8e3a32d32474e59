"""End-to-end: `vision-platform train` runs tiny from-scratch transformers models in a worker process.

Classification (ViT), detection (DETR) and semantic segmentation (SegFormer), each 2 layers wide 32,
on 32-64 px generated images, on the CPU: metrics per epoch in the DB, best/last checkpoints that load
and predict, resume after a kill, extend, and the two refusals (an uncached Hub id, pickle-only weights).
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
from pathlib import Path

import pytest
import yaml
from PIL import Image

from adapters.transformers_adapter import TransformersAdapter
from core.config import config_from_dict
from core.db.engine import Store, open_store
from core.db.models import TrainingJob
from core.jobs import store as job_store
from core.jobs.runner import JobRunner
from core.reporter import NullReporter, sha256_file
from tests.conftest import NETGUARD_LOG, network_attempts_since
from tests.e2e.test_timm_training import run_cli
from tests.helpers.datasets_gen import make_dice_detection
from tests.helpers.holds import Holds
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.slow

SOLID = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220)}
TINY = {"layers": 2, "hidden_size": 32}
# solid_dataset: 60 images, 48 train at batch 8 = 6 batches an epoch; global batch 9 is inside epoch 2.
EPOCH_2_BATCH = 9


def make_solid_colours(root: Path, per_class: int = 20, size: int = 32) -> Path:
    """ImageFolder of whole-image colours (jittered): learnable by a 2-layer ViT in an epoch or two."""
    rng = random.Random(0)
    for name, rgb in SOLID.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            colour = tuple(max(0, min(255, value + rng.randint(-30, 30))) for value in rgb)
            Image.new("RGB", (size, size), colour).save(root / name / f"{name}_{index:03d}.png")
    return root


def job(task: str, dataset: Path, **overrides: object) -> dict[str, object]:
    model = {"classify": "vit-scratch", "detect": "detr-scratch", "segment": "segformer-scratch"}[task]
    config: dict[str, object] = {
        "framework": "transformers", "task": task, "model": model, "dataset": str(dataset), "epochs": 2,
        "batch_size": 8 if task == "classify" else 4, "image_size": 32 if task == "classify" else 64,
        "learning_rate": 0.003, "device": "cpu", "seed": 1, "framework_args": dict(TINY),
    }
    config.update(overrides)
    return config


def write_job(path: Path, config: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def solid_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_solid_colours(tmp_path_factory.mktemp("solid") / "data")


@pytest.fixture(scope="module")
def shapes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dice_detection(tmp_path_factory.mktemp("shapes") / "data", n=16, size=64, polygons=True)


def train_via_cli(vp_home: Path, tmp_path: Path, config: dict[str, object]) -> tuple[Store, TrainingJob]:
    result = run_cli("train", str(write_job(tmp_path / "job.yaml", config)), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job 1 completed" in result.stdout
    store = open_store()
    return store, job_store.get_job(store, 1)


def epoch_values(store: Store, job_id: int) -> dict[int, dict[str, float]]:
    return {row.epoch: json.loads(row.extra_metrics or "{}") for row in job_store.metric_rows(store, job_id, kind="epoch")}


def loaded_best(store: Store, job_id: int, task: str, tmp_path: Path) -> TransformersAdapter:
    checkpoints = {c.kind: c for c in job_store.checkpoints(store, job_id)}
    assert set(checkpoints) == {"best", "last"}
    for checkpoint in checkpoints.values():
        assert checkpoint.sha256 == sha256_file(Path(checkpoint.path))
        assert Path(checkpoint.path).name == "model.safetensors"
        assert (Path(checkpoint.path).parent / "config.json").is_file()
    assert TransformersAdapter.checkpoint_task(Path(checkpoints["best"].path)) == task
    config = config_from_dict({"dataset": str(tmp_path), "framework": "transformers", "task": task, "device": "cpu"})
    adapter = TransformersAdapter(config, tmp_path / "infer", NullReporter())
    adapter.load_checkpoint(Path(checkpoints["best"].path))
    return adapter


def test_classification_beats_chance_and_its_best_checkpoint_predicts(vp_home: Path, solid_dataset: Path,
                                                                      tmp_path: Path) -> None:
    store, trained = train_via_cli(vp_home, tmp_path, job("classify", solid_dataset, epochs=3))
    assert trained.status == "completed" and trained.num_classes == 3
    epochs = epoch_values(store, 1)
    assert sorted(epochs) == [1, 2, 3]
    assert all({"val/loss", "val/accuracy", "train/loss", "lr"} <= set(values) for values in epochs.values())
    assert max(values["val/accuracy"] for values in epochs.values()) >= 0.7  # chance is 1/3
    steps = job_store.metric_rows(store, 1, kind="step")
    assert steps and all(row.loss is not None and row.learning_rate is not None for row in steps)
    assert trained.best_metric_name == "val/accuracy"

    adapter = loaded_best(store, 1, "classify", tmp_path)
    assert adapter.class_names == ["blue", "green", "red"]
    hits = 0
    for colour in SOLID:
        for image in sorted((solid_dataset / colour).iterdir())[:3]:
            prediction = adapter.run_inference(image, top_k=2)
            assert len(prediction["top_k"]) == 2 and prediction["image_size"] == [32, 32]
            hits += prediction["top_k"][0]["label"] == colour
    assert hits >= 7, f"only {hits}/9 images classified correctly"

    from core.evaluation import ValPredictions

    predictions = ValPredictions.load(Path(trained.output_dir or "") / "val_predictions.json")
    assert isinstance(predictions, ValPredictions) and predictions.class_names == ["blue", "green", "red"]
    assert int(predictions.confusion().sum()) == len(predictions.items) == 12


def test_detection_reports_map_per_epoch_and_predicts_boxes(vp_home: Path, shapes_dataset: Path,
                                                            tmp_path: Path) -> None:
    store, trained = train_via_cli(vp_home, tmp_path, job("detect", shapes_dataset))
    epochs = epoch_values(store, 1)
    assert sorted(epochs) == [1, 2]
    assert all({"val/loss", "val/map50", "val/map50_95", "train/loss"} <= set(values) for values in epochs.values())
    assert trained.best_metric_name == "val/map50_95"

    adapter = loaded_best(store, 1, "detect", tmp_path)
    assert adapter.class_names == ["circle", "square"]
    image = sorted((shapes_dataset / "images").iterdir())[0]
    result = adapter.run_inference(image, conf=0.0)
    assert result["task"] == "detect" and result["image_size"] == [64, 64] and result["boxes"]
    for box in result["boxes"]:
        assert box["label"] in ("circle", "square") and 0.0 <= box["confidence"] <= 1.0
        assert -1 <= box["x1"] <= box["x2"] <= 65 and -1 <= box["y1"] <= box["y2"] <= 65

    from core.evaluation import DetectionValPredictions, ValPredictions

    predictions = ValPredictions.load(Path(trained.output_dir or "") / "val_predictions.json")
    assert isinstance(predictions, DetectionValPredictions) and len(predictions.items) == 4
    assert all(item["truth"] for item in predictions.items)


def test_segmentation_reports_iou_per_epoch_and_predicts_a_class_mask(vp_home: Path, shapes_dataset: Path,
                                                                      tmp_path: Path) -> None:
    store, trained = train_via_cli(vp_home, tmp_path, job("segment", shapes_dataset))
    epochs = epoch_values(store, 1)
    assert sorted(epochs) == [1, 2]
    for values in epochs.values():
        assert {"val/loss", "val/miou", "val/pixel_accuracy", "val/iou/background"} <= set(values)
        assert 0.0 <= values["val/miou"] <= 1.0
    assert trained.num_classes == 3 and trained.best_metric_name == "val/miou"  # background + 2 classes

    adapter = loaded_best(store, 1, "segment", tmp_path)
    assert adapter.class_names == ["background", "circle", "square"]
    image = sorted((shapes_dataset / "images").iterdir())[0]
    result = adapter.run_inference(image, mask_png=True)
    assert result["task"] == "segment" and result["image_size"] == [64, 64]
    mask = Image.open(io.BytesIO(result["mask_png"]))
    assert mask.size == (64, 64) and mask.mode == "L"
    assert set(mask.getdata()) <= {0, 1, 2}  # pixel = class id
    for region in result["masks"]:
        assert region["class_id"] in (1, 2) and len(region["polygon"]) >= 3


def _run_in_thread(store: Store, job_id: int) -> tuple[threading.Thread, dict[str, str]]:
    outcome: dict[str, str] = {}
    thread = threading.Thread(target=lambda: outcome.update(status=JobRunner(store).run(job_id)))
    thread.start()
    return thread, outcome


def test_kill_mid_epoch_then_resume_then_extend(vp_home: Path, solid_dataset: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store()
    job_id = job_store.create_job(store, config_from_dict(job("classify", solid_dataset, epochs=2)))
    holds = Holds(vp_home / "holds", EPOCH_2_BATCH)  # held inside epoch 2: the kill lands mid-epoch
    monkeypatch.setenv("VP_FAULT", holds.fault_spec)
    thread, outcome = _run_in_thread(store, job_id)
    wait_until(lambda: holds.is_held(EPOCH_2_BATCH), "the worker held in epoch 2")
    worker_pid = job_store.get_job(store, job_id).worker_pid
    assert worker_pid
    os.kill(worker_pid, signal.SIGKILL)
    thread.join(60)
    assert outcome["status"] == "failed"
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None and last.epoch == 1

    monkeypatch.delenv("VP_FAULT")
    job_store.requeue_for_resume(store, job_id)
    thread, outcome = _run_in_thread(store, job_id)
    thread.join(300)
    assert outcome["status"] == "completed"
    assert [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")] == [1, 2]  # no epoch twice
    run_dir = Path(job_store.get_job(store, job_id).output_dir or "")
    log_text = (run_dir / "worker.log").read_text()
    assert "resuming from" in log_text and "at epoch 2" in log_text

    job_store.requeue_for_resume(store, job_id, extra_epochs=1)
    thread, outcome = _run_in_thread(store, job_id)
    thread.join(300)
    assert outcome["status"] == "completed"
    assert [row.epoch for row in job_store.metric_rows(store, job_id, kind="epoch")] == [1, 2, 3]
    last = job_store.latest_checkpoint(store, job_id, "last")
    assert last is not None and last.epoch == 3 and job_store.get_job(store, job_id).epochs == 3


def test_uncached_hub_model_fails_with_the_documented_message(vp_home: Path, solid_dataset: Path,
                                                             tmp_path: Path) -> None:
    offset = NETGUARD_LOG.stat().st_size
    config = job("classify", solid_dataset, model="example-org/vit-not-cached", framework_args={})
    result = run_cli("train", str(write_job(tmp_path / "job.yaml", config)), home=vp_home,
                     extra_env={"HF_HOME": str(tmp_path / "empty_hf")})
    assert result.returncode == 1
    assert "the Hugging Face model 'example-org/vit-not-cached' is not in the local cache" in result.stderr
    assert "training never downloads" in result.stderr and "download it first" in result.stderr
    assert "Traceback" not in result.stderr
    assert network_attempts_since(offset) == ""


def test_folder_with_only_pickle_weights_is_refused(vp_home: Path, solid_dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "downloaded-vit"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTForImageClassification"]}))
    (folder / "pytorch_model.bin").write_bytes(b"not loaded: pickles can run code")
    config = job("classify", solid_dataset, model=str(folder), framework_args={})
    result = run_cli("train", str(write_job(tmp_path / "job.yaml", config)), home=vp_home)
    assert result.returncode == 1
    assert f"{folder} has weights only as pickle files (pytorch_model.bin)" in result.stderr
    assert "safetensors" in result.stderr and "Traceback" not in result.stderr
