"""End-to-end: a timm job with a chosen augmentation trains through `vision-platform train`, and a
misspelt augmentation option stops the job before it starts, naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from core.db.engine import open_store
from core.jobs import store as job_store
from tests.e2e.test_timm_training import colour_dataset, run_cli, write_job  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def test_standard_preset_with_every_timm_option_trains(vp_home: Path, colour_dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    # standard plus RandAugment, random erasing, mixup and cutmix: every path of adapters.timm_augment
    augmentation = {"preset": "standard", "options": {"auto_augment": "rand-m9-mstd0.5-inc1", "re_prob": 0.25,
                                                       "mixup": 0.8, "cutmix": 1.0, "vflip": 0.1}}
    job_file = write_job(tmp_path / "job.yaml", colour_dataset, epochs=2, augmentation=augmentation)
    result = run_cli("train", str(job_file), home=vp_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job 1 completed" in result.stdout

    store = open_store()
    job = job_store.get_job(store, 1)
    assert job.status == "completed"
    epochs = job_store.metric_rows(store, 1, kind="epoch")
    assert [row.epoch for row in epochs] == [1, 2]
    assert all(row.loss is not None and row.accuracy is not None for row in epochs)
    run_dir = Path(job.output_dir or "")
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    assert args["augmentation"] == augmentation
    best = next(c for c in job_store.checkpoints(store, 1) if c.kind == "best")
    state = torch.load(best.path, map_location="cpu", weights_only=True)
    assert state["image_size"] == 32 and sorted(state["class_names"]) == ["blue", "green", "red"]


def test_misspelt_option_fails_before_training(vp_home: Path, colour_dataset: Path, tmp_path: Path) -> None:  # noqa: F811
    job_file = write_job(tmp_path / "job.yaml", colour_dataset, augmentation={"options": {"hfilp": 0.0}})
    result = run_cli("train", str(job_file), home=vp_home)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "'hfilp'" in output and "did you mean 'hflip'" in output
    with pytest.raises(job_store.JobError, match="no job with id 1"):
        job_store.get_job(open_store(), 1)
