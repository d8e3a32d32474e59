"""Export of tiny trained transformers models (ViT classifier, DETR detector) through the CLI: ONNX and
TorchScript pass parity and the ONNX file predicts what the checkpoint predicts; the ViT's MLflow model
(transformers flavour) predicts the checkpoint's top-1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_transformers_training import job, make_solid_colours, train_via_cli
from tests.helpers.datasets_gen import make_dice_detection
from tests.helpers.export_checks import assert_recorded, assert_same_predictions, export_via_cli
from tests.helpers.export_checks import val_images as job_val_images

pytestmark = pytest.mark.slow


def _checkpoint(home: Path) -> Path:
    return home / "runs" / "job_1" / "weights" / "best" / "model.safetensors"


def test_vit_classifier_exports_and_registers(vp_home: Path, tmp_path: Path) -> None:
    dataset = make_solid_colours(tmp_path / "solid", per_class=8)
    train_via_cli(vp_home, tmp_path, job("classify", dataset, epochs=1))
    onnx, script = export_via_cli(vp_home, 1, "onnx"), export_via_cli(vp_home, 1, "torchscript")
    assert onnx["parity"]["agreement"]["top1_agreement"] == 1.0
    assert_recorded(vp_home, 1, [Path(onnx["file"]), Path(script["file"])])
    images = job_val_images(vp_home, 1)
    assert assert_same_predictions(_checkpoint(vp_home), Path(onnx["file"]), "transformers", "classify", images)

    from tests.e2e.test_timm_training import run_cli

    registered = run_cli("model-register", "1", home=vp_home, timeout=600)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    import mlflow

    from core.inference import InferenceClient

    mlflow.set_tracking_uri(f"sqlite:///{vp_home / 'mlflow.db'}")
    predicted = mlflow.pyfunc.load_model("models:/Default/1").predict([str(p) for p in images])
    client = InferenceClient()
    try:
        client.load(_checkpoint(vp_home), framework="transformers", device="cpu", task="classify")
        for row, image in zip(predicted.to_dict("records"), images, strict=True):
            assert row[0]["label"] == client.predict(image)["top_k"][0]["label"]
    finally:
        client.close()


def test_detr_detector_exports_pass_parity_and_predict_the_checkpoints_boxes(vp_home: Path, tmp_path: Path) -> None:
    dataset = make_dice_detection(tmp_path / "shapes", n=12, size=64, polygons=True)
    train_via_cli(vp_home, tmp_path, job("detect", dataset, epochs=1))
    onnx, script = export_via_cli(vp_home, 1, "onnx"), export_via_cli(vp_home, 1, "torchscript")
    assert onnx["parity"]["agreement"]["boxes"] > 0 and onnx["parity"]["agreement"]["box_match_rate"] == 1.0
    assert_recorded(vp_home, 1, [Path(onnx["file"]), Path(script["file"])])
    images = job_val_images(vp_home, 1)
    assert assert_same_predictions(_checkpoint(vp_home), Path(onnx["file"]), "transformers", "detect", images) > 0
