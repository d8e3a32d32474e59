"""End-to-end: a timm job whose decoded images exceed the memory budget streams them and completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.config import config_from_dict
from core.db.engine import open_store
from core.jobs import store as job_store
from tests.e2e.test_timm_training import run_cli, write_job
from tests.helpers.datasets_gen import make_imagefolder

pytestmark = pytest.mark.slow

SIZE = 64  # 12 KiB decoded per image: 120 images are 1.4 MB, above a 1 MB budget


def test_a_job_larger_than_its_memory_budget_streams_and_completes(vp_home: Path, tmp_path: Path) -> None:
    data = make_imagefolder(tmp_path / "data", per_class=40, size=SIZE, ext=".jpg")
    broken = data / "red" / "red_broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    budget = run_cli("settings", "set", "memory_budget_mb", "1", home=vp_home)
    assert budget.returncode == 0 and "memory_budget_mb = 1" in budget.stdout, budget.stdout + budget.stderr

    job_file = write_job(tmp_path / "job.yaml", data, epochs=2, batch_size=16, image_size=SIZE, workers=2)
    result = run_cli("train", str(job_file), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job 1 completed" in result.stdout

    store = open_store()
    job = job_store.get_job(store, 1)
    run_dir = Path(job.output_dir or "")
    assert json.loads((run_dir / "job.json").read_text())["memory_budget_mb"] == 1
    log = (run_dir / "worker.log").read_text()
    assert "streaming from disk with 2 loader processes" in log and "more than the memory budget of 1 MB" in log
    assert "unreadable image skipped" in log and str(broken) in log
    assert [row.epoch for row in job_store.metric_rows(store, 1, kind="epoch")] == [1, 2]

    from adapters.timm_adapter import TimmAdapter
    from core.evaluation import ValPredictions
    from core.reporter import JsonLinesReporter

    best = {c.kind: c for c in job_store.checkpoints(store, 1)}["best"]
    assert torch.load(best.path, map_location="cpu", weights_only=True)["class_names"] == ["blue", "green", "red"]
    adapter = TimmAdapter(config_from_dict({"dataset": str(data), "device": "cpu"}), tmp_path / "infer", JsonLinesReporter())
    adapter.load_checkpoint(Path(best.path))
    prediction = adapter.run_inference(data / "green" / "green_000.jpg", top_k=3)
    assert sorted(p["label"] for p in prediction["top_k"]) == ["blue", "green", "red"]
    assert abs(sum(p["confidence"] for p in prediction["top_k"]) - 1) < 1e-4

    # The validation predictions name the images that streamed through validation, never the broken one.
    predictions = ValPredictions.load(run_dir / "val_predictions.json")
    paths = [item["path"] for item in predictions.items]
    assert paths and str(broken) not in paths and all(Path(p).is_file() for p in paths)
