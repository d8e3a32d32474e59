"""Export of tiny trained YOLO detect, segment and pose models through the CLI: ONNX and TorchScript pass
parity (boxes matched at IoU >= 0.9, mask IoU, keypoint distance), and the ONNX file predicts the
checkpoint's boxes in the worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.test_timm_training import run_cli
from tests.helpers.datasets_gen import make_dice_detection, make_dice_pose
from tests.helpers.export_checks import assert_recorded, assert_same_predictions, export_via_cli, val_images

pytestmark = pytest.mark.slow

FAST_ARGS = {"mosaic": 0.0, "plots": False, "warmup_epochs": 0, "val": True}


MODEL_SUFFIX = {"detect": "", "segment": "-seg", "pose": "-pose"}


def _train(tmp_path: Path, home: Path, task: str) -> None:
    if task == "pose":
        dataset = make_dice_pose(tmp_path / "dice", n=16, size=64)
    else:
        dataset = make_dice_detection(tmp_path / "dice", n=16, size=64, polygons=task == "segment")
    config = {"framework": "ultralytics", "task": task, "model": "yolo11n" + MODEL_SUFFIX[task],
              "pretrained": False, "dataset": str(dataset), "epochs": 1, "batch_size": 8, "image_size": 64,
              "workers": 0, "device": "cpu", "split": {"strategy": "random", "ratio": 0.75, "seed": 1},
              "framework_args": {**FAST_ARGS, "fliplr": 0.0} if task == "pose" else FAST_ARGS}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", str(tmp_path / "job.yaml"), home=home)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_yolo_exports_pass_parity_and_the_onnx_predicts_the_checkpoints_boxes(vp_home: Path, tmp_path: Path,
                                                                              task: str) -> None:
    _train(tmp_path, vp_home, task)
    onnx = export_via_cli(vp_home, 1, "onnx")
    script = export_via_cli(vp_home, 1, "torchscript")
    agreement = onnx["parity"]["agreement"]
    assert agreement["box_match_rate"] == 1.0 and agreement["extra"] == 0
    if task == "segment" and agreement["boxes"]:
        assert agreement["mask_iou"] >= 0.9
    if task == "pose" and agreement["boxes"]:
        assert agreement["max_keypoint_distance_px"] <= 1.0
    assert_recorded(vp_home, 1, [Path(onnx["file"]), Path(script["file"])])
    checkpoint = vp_home / "runs" / "job_1" / "weights" / "best.pt"
    assert_same_predictions(checkpoint, Path(onnx["file"]), "ultralytics", task, val_images(vp_home, 1))


def test_ultralytics_formats_list_the_exporters_table_with_reasons(vp_home: Path) -> None:
    import json

    result = run_cli("export-formats", "ultralytics", "--json", home=vp_home)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["onnx"]["available"] and rows["torchscript"]["available"]
    from ultralytics.engine.exporter import export_formats

    assert set(rows) == {name for name in export_formats()["Argument"] if name != "-"}
    for row in rows.values():
        assert row["available"] or row["reason"], row
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        assert rows["openvino"] == {**rows["openvino"], "available": False,
                                    "reason": "needs the openvino package (not installed)"}
