"""One definition each: run-dir names, result contracts, the labelme writer, sub-commands, the child
environment (offline, MLflow telemetry off), split defaults and state tuples."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml

from core import paths
from core.config import DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED, SPLIT_DEFAULTS, TASKS, Task, defaults
from core.contracts import ClassifyValItem, DetectionValItem, inference_result
from core.evaluation import DetectionValPredictions, ValPredictions, save_val_predictions
from core.files import sha256_file
from core.jobs import ACTIVE_STATES, ALL_STATES, FINAL_STATES, JobState
from core.launch import child_env, subcommand
from core.rundir import CHECKPOINT_KINDS, RunDir

# mlflow.telemetry.utils._is_ci_env_or_testing: any of these disables telemetry on its own.
_MLFLOW_CI_VARS = ("PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CI", "CIRCLECI", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
                   "TF_BUILD", "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION",
                   "CLOUD_RUN_EXECUTION", "RUNBOT_HOST_URL", "RUNBOT_BUILD_NAME", "RUNBOT_WORKER_ID")


def test_run_dir_names_every_file_once(vp_home: Path) -> None:
    run = RunDir.for_job(7)
    assert run.root == paths.job_dir(7) == RunDir.of(None, 7).root
    assert RunDir.of(str(run.root), 99) == run
    names = {p.relative_to(run.root).as_posix() for p in (run.stop, run.args, run.job_info, run.log,
                                                          run.val_predictions, run.best, run.last, run.verified_last)}
    assert names == {"STOP", "args.yaml", "job.json", "worker.log", "val_predictions.json", "weights/best.pt",
                     "weights/last.pt", "weights/last.verified.pt"}
    assert [run.checkpoint(kind) for kind in CHECKPOINT_KINDS] == [run.best, run.last]


def test_job_info_round_trips_and_is_empty_without_the_file(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.read_job_info() == {}
    run.write_job_info({"job_id": 3, "project_id": 1, "resume": True})
    assert json.loads((tmp_path / "job.json").read_text()) == {"job_id": 3, "project_id": 1, "resume": True}
    assert run.read_job_info()["job_id"] == 3


def test_val_predictions_writer_keeps_the_on_disk_format(tmp_path: Path) -> None:
    items: list[ClassifyValItem] = [{"path": "a.png", "true": 0, "pred": 1, "scores": [0.4, 0.6]}]
    target = save_val_predictions(tmp_path / "val_predictions.json", task="classify", epoch=2,
                                  class_names=["cat", "dog"], items=items)
    assert json.loads(target.read_text()) == {"format": 1, "task": "classify", "epoch": 2,
                                              "class_names": ["cat", "dog"], "items": items}
    loaded = ValPredictions.load(target)
    assert isinstance(loaded, ValPredictions) and loaded.confusion().tolist() == [[0, 1], [0, 0]]

    boxes: list[DetectionValItem] = [{"path": "b.png", "truth": [[0, 1, 1, 9, 9]], "predictions": [[0, 0.9, 1, 1, 9, 9]]}]
    target = save_val_predictions(tmp_path / "det.json", task="detect", epoch=None, class_names=["box"], items=boxes)
    data = json.loads(target.read_text())
    assert (data["conf_threshold"], data["iou_threshold"]) == (0.25, 0.5)
    detections = ValPredictions.load(target)
    assert isinstance(detections, DetectionValPredictions) and detections.confusion().tolist() == [[1, 0], [0, 0]]


def test_inference_result_builder_has_every_key() -> None:
    result = inference_result("classify", elapsed_ms=1.23456, image_size=(40, 30),
                              top_k=[{"class_id": 1, "label": "b", "confidence": 0.7}])
    assert result == {"task": "classify", "inference_time_ms": 1.235, "image_size": [40, 30], "boxes": [],
                      "masks": [], "keypoints": [], "top_k": [{"class_id": 1, "label": "b", "confidence": 0.7}]}


def test_prediction_export_and_converter_write_the_same_labelme_a_reader_accepts(tmp_path: Path) -> None:
    from PIL import Image

    from core.datasets.convert import to_dice
    from core.datasets.dice import read_dice
    from core.services.inference import write_dice

    folder = tmp_path / "exported"
    folder.mkdir()
    image = folder / "shot.png"
    Image.new("RGB", (64, 48), "white").save(image)
    result = inference_result("detect", elapsed_ms=5, image_size=(64, 48), boxes=[
        {"x1": 4.0, "y1": 5.0, "x2": 30.123, "y2": 40.0, "confidence": 0.8, "class_id": 0, "label": "ünïcode"}])
    written = write_dice(result, image)
    index = read_dice(folder)
    shape = index.images[0].shapes[0]
    assert written == folder / "shot.json" and shape.label == "ünïcode" and shape.shape_type == "rectangle"
    assert shape.points == [(4.0, 5.0), (30.12, 40.0)]

    converted = to_dice(index, tmp_path / "converted")
    document = json.loads((converted / "annotations" / "shot.json").read_text(encoding="utf-8"))
    exported = json.loads(written.read_text(encoding="utf-8"))
    assert document.keys() == exported.keys() and document["version"] == exported["version"]
    assert document["shapes"][0].keys() == exported["shapes"][0].keys()
    assert read_dice(converted).images[0].shapes[0].points == shape.points


def test_sha256_file_is_the_plain_digest(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_subcommand_runs_this_interpreter_or_the_frozen_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.helper_process import helper_command
    from core.inference import infer_worker_command
    from core.jobs.runner import worker_command

    assert subcommand("models", "timm") == [sys.executable, "-m", "vision_platform", "models", "timm"]
    assert infer_worker_command() == subcommand("infer-worker")
    assert worker_command(Path("r"), resume=True) == subcommand("worker", "--run-dir", "r", "--resume")
    assert helper_command("sysinfo") == (sys.executable, ["-m", "vision_platform", "sysinfo"])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert subcommand("infer-worker") == [sys.executable, "infer-worker"]


def test_child_env_is_offline_and_respects_the_users_choices(vp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    env = child_env()
    assert env["HF_HUB_OFFLINE"] == "0"  # a user's explicit choice stays
    assert env["YOLO_OFFLINE"] == "1" and env["YOLO_AUTOINSTALL"] == "false"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "true"  # never negotiable
    assert env["VP_HOME"] == str(paths.data_dir())


def test_helper_processes_get_the_child_env(vp_home: Path) -> None:
    from app.helper_process import helper_environment

    env = helper_environment()
    assert env.value("MLFLOW_DISABLE_TELEMETRY") == "true" and env.value("YOLO_OFFLINE") == "1"


def test_mlflow_in_a_child_process_starts_no_telemetry_client(vp_home: Path) -> None:
    """The real MLflow 3 reads the variables at import: no telemetry client exists in a child, and
    it is our variables that disable it (not a CI or test marker, not a dev build)."""
    env = {k: v for k, v in child_env().items() if k not in _MLFLOW_CI_VARS}
    probe = ("import mlflow, mlflow.telemetry.utils as u, mlflow.telemetry.client as c; "
             "print(u._IS_IN_CI_ENV_OR_TESTING, u._IS_MLFLOW_DEV_VERSION, c.get_telemetry_client() is None)")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-3:] == ["False", "False", "True"]


def test_split_defaults_come_from_the_config_model() -> None:
    import argparse

    from core.datasets.cli import register

    assert defaults()["split"] == SPLIT_DEFAULTS.model_dump()  # defaults.yaml agrees with the model
    assert (DEFAULT_SPLIT_RATIO, DEFAULT_SPLIT_SEED) == (SPLIT_DEFAULTS.ratio, SPLIT_DEFAULTS.seed)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", "convert", "src", "--to", "yolo", "out"])
    assert (args.split_ratio, args.seed) == (SPLIT_DEFAULTS.ratio, SPLIT_DEFAULTS.seed)


def test_converter_table_is_the_cli_choice_list() -> None:
    import argparse

    from core.datasets.cli import register
    from core.datasets.convert import CONVERTERS

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["dataset", "convert", "src", "--to", "nope", "out"])
    for name in CONVERTERS:
        assert parser.parse_args(["dataset", "convert", "src", "--to", name, "out"]).to == name
    assert set(CONVERTERS) == {"yolo", "coco", "imagefolder", "dice"}


def test_state_and_task_tuples_are_their_literals() -> None:
    assert ALL_STATES == get_args(JobState) and set(ACTIVE_STATES) <= set(ALL_STATES)
    assert not set(ACTIVE_STATES) & set(FINAL_STATES)
    assert TASKS == get_args(Task)
    assert yaml.safe_load("task: classify")["task"] in TASKS
