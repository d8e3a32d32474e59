"""The job and predict commands on real tiny timm runs (test_resnet, 32 px, CPU), each through the real
``vision-platform`` executable on its own data dir: early stopping, cancel → resume → extend, predict."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.holds import Holds
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EPOCH_2_FIRST_BATCH = 4  # 3 classes x 10 images, 24 train at batch 8: 3 batches an epoch


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VP_FAULT"}
    env.update(VP_HOME=str(home), **extra)
    return env


def run_cli(home: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vision_platform", *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(home, **extra), cwd=str(ROOT))


def write_job(path: Path, dataset: Path, **overrides: object) -> Path:
    config: dict[str, object] = {"dataset": str(dataset), "model": "test_resnet", "epochs": 2, "batch_size": 8,
                                 "image_size": 32, "seed": 1, "name": "tiny colours"}
    config.update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


def db_rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "vision_platform.db") as db:
        return db.execute(sql).fetchall()


def epochs_of(home: Path, job_id: int) -> list[object]:
    return [r[0] for r in db_rows(home, f"select epoch from training_metrics where job_id = {job_id} and kind = 'epoch' "
                                        "order by id")]


def test_patience_stops_a_run_that_does_not_improve(tmp_path: Path) -> None:
    """Every image is the same picture in both classes: val accuracy is 0.5 at every epoch (half the
    stratified val split is each class, whatever the model predicts), so with patience 1 the run stops
    after epoch 2 of 5 — by construction, not by chance."""
    data = tmp_path / "same"
    for label in ("left", "right"):
        (data / label).mkdir(parents=True)
        for index in range(10):
            Image.new("RGB", (32, 32), (120, 60, 30)).save(data / label / f"{index}.png")
    home = tmp_path / "home"
    result = run_cli(home, "train", str(write_job(tmp_path / "job.yaml", data, epochs=5, patience=1)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "early stopping: val/accuracy did not improve for 1 epochs" in result.stdout
    assert db_rows(home, "select status, current_epoch, epochs, best_metric_value from training_jobs") == [
        ("completed", 2, 5, 0.5)]
    assert epochs_of(home, 1) == [1, 2]
    assert "early stopping" in (home / "runs" / "job_1" / "worker.log").read_text()


def test_cancel_resume_extend_commands(tmp_path: Path) -> None:
    data = make_imagefolder(tmp_path / "colours", classes=("red", "green", "blue"), per_class=10, size=32)
    home = tmp_path / "home"
    holds = Holds(tmp_path / "holds", EPOCH_2_FIRST_BATCH)
    train = subprocess.Popen([sys.executable, "-m", "vision_platform", "train", str(write_job(tmp_path / "j.yaml", data))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
                             env=_env(home, VP_FAULT=holds.fault_spec))
    try:
        wait_until(lambda: holds.is_held(EPOCH_2_FIRST_BATCH), "the worker to be held in epoch 2", timeout=240)
        assert db_rows(home, "select status from training_jobs") == [("running",)]

        cancel = run_cli(home, "cancel", "1")  # the worker stops at the next batch; last.pt is epoch 1's
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert cancel.stdout.splitlines() == ["job 1: stop requested; waiting for the worker to finish its batch…",
                                              "job 1 cancelled"]
        assert train.wait(120) == 1
    finally:
        if train.poll() is None:
            holds.release_all()
            train.kill()
        train.communicate()
    assert db_rows(home, "select status from training_jobs") == [("cancelled",)]
    assert epochs_of(home, 1) == [1]

    resume = run_cli(home, "job", "resume", "1")
    assert resume.returncode == 0, resume.stdout + resume.stderr
    assert "job 1 completed" in resume.stdout
    assert epochs_of(home, 1) == [1, 2]  # epoch 2 re-run once, never twice

    refused = run_cli(home, "resume", "1")
    assert refused.returncode == 2 and "extend it by N epochs instead of resuming" in refused.stderr

    extend = run_cli(home, "extend", "1", "--epochs", "1")
    assert extend.returncode == 0, extend.stdout + extend.stderr
    assert db_rows(home, "select status, epochs, current_epoch from training_jobs") == [("completed", 3, 3)]
    assert epochs_of(home, 1) == [1, 2, 3]
    assert db_rows(home, "select epoch from checkpoints where kind = 'last'") == [(3,)]

    shown = json.loads(run_cli(home, "job", "show", "1", "--json").stdout)
    assert [m["epoch"] for m in shown["metrics"]] == [1, 2, 3] and shown["epochs"] == 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data dir holding one finished 1-epoch classifier, and its dataset."""
    root = tmp_path_factory.mktemp("predict")
    data = make_imagefolder(root / "colours", classes=("red", "green", "blue"), per_class=10, size=32)
    home = root / "home"
    result = run_cli(home, "train", str(write_job(root / "job.yaml", data, epochs=1)))
    assert result.returncode == 0, result.stdout + result.stderr
    return home, data


def test_predict_writes_a_dice_folder_that_reads_back_as_a_dataset(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from core.datasets import open_dataset

    home, data = trained
    out = tmp_path / "dice"
    result = run_cli(home, "predict", "1", str(data / "red"), str(data / "blue"), "--out", str(out), "--conf", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 21  # piped: one plain line per image, then the summary (no progress bar)
    assert all(line.split(": ", 1)[1].split()[0] in ("red", "green", "blue") for line in lines[:20]), lines[:3]
    assert lines[-1].startswith("20 of 20 images predicted with #1 tiny colours — best")
    documents = sorted((out / "annotations").iterdir())
    assert len(documents) == 20 and len(list((out / "images").iterdir())) == 20
    first = json.loads(documents[0].read_text())
    assert first["imagePath"] == f"../images/{documents[0].stem}.png" and first["imageData"] is None
    assert sum(first["flags"].values()) == 1 and (first["imageWidth"], first["imageHeight"]) == (32, 32)
    index = open_dataset(out)
    assert len(index.images) == 20 and set(index.class_names) <= {"red", "green", "blue"}


def test_predict_csv_coco_and_beside_the_images(trained: tuple[Path, Path], tmp_path: Path) -> None:
    home, data = trained
    images = sorted((data / "green").iterdir())[:3]
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    result = run_cli(home, "predict", "1", *map(str, images), str(broken), "--format", "csv", "--out", str(tmp_path))
    assert result.returncode == 1  # one image failed: the others are written all the same
    assert f"{broken}: error: " in result.stdout
    rows = list(csv.DictReader(io.StringIO((tmp_path / "predictions.csv").read_text())))
    assert {r["image"] for r in rows} == {*map(str, images), str(broken)}
    ranked = [r for r in rows if r["image"] == str(images[0])]
    assert [r["rank"] for r in ranked] == [str(i) for i in range(1, len(ranked) + 1)] and ranked[0]["kind"] == "class"
    assert [r["error"] for r in rows if r["image"] == str(broken)][0]

    coco = run_cli(home, "predict", "1", *map(str, images), "--format", "coco", "--out", str(tmp_path))
    assert coco.returncode == 0, coco.stdout + coco.stderr
    document = json.loads((tmp_path / "predictions.json").read_text())
    assert [i["file_name"] for i in document["images"]] == list(map(str, images))
    assert {c["name"] for c in document["categories"]} <= {"red", "green", "blue"}
    assert {a["image_id"] for a in document["annotations"]} == {1, 2, 3}
    again = run_cli(home, "predict", "1", *map(str, images), "--format", "coco", "--out", str(tmp_path))
    assert again.returncode == 2 and "predictions.json exists" in again.stderr

    beside = run_cli(home, "predict", "1", str(images[0]))  # DICE beside the image, nothing else touched
    assert beside.returncode == 0, beside.stderr
    assert json.loads(images[0].with_suffix(".json").read_text())["imagePath"] == images[0].name
    images[0].with_suffix(".json").write_text('{"shapes": [], "mine": true}')
    kept = run_cli(home, "predict", "1", str(images[0]))
    assert kept.returncode == 0 and "kept 1 existing file(s)" in kept.stderr
    assert json.loads(images[0].with_suffix(".json").read_text())["mine"] is True

    missing = run_cli(home, "predict", "7", str(images[0]))
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no job with id 7: `vision-platform job list` shows the jobs"
