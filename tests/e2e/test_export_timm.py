"""Export of a tiny trained timm classifier through the CLI (ONNX + TorchScript, parity, records), the
MLflow model registered under the project's name, and the bad inputs of issue 14."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.exports import CORRUPT_MESSAGE, MISMATCH_MESSAGE, card_path
from tests.e2e.test_timm_training import run_cli, write_job
from tests.helpers.datasets_gen import make_imagefolder
from tests.helpers.export_checks import (
    assert_recorded,
    assert_same_predictions,
    db_rows,
    export_via_cli,
    val_images,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding job 1: a 1-epoch timm classifier (32 px colours)."""
    root = tmp_path_factory.mktemp("timm_export")
    dataset = make_imagefolder(root / "data", classes=("red", "green", "blue"), per_class=12, size=32)
    home = root / "vp_home"
    home.mkdir()
    result = run_cli("train", str(write_job(root / "job.yaml", dataset, epochs=1)), home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    return home


@pytest.fixture
def home(trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VP_HOME", str(trained))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return trained


def test_onnx_and_torchscript_pass_parity_are_recorded_and_predict_like_the_checkpoint(home: Path) -> None:
    onnx = Path(export_via_cli(home, 1, "onnx")["file"])
    script = Path(export_via_cli(home, 1, "torchscript", "--dynamic-batch")["file"])
    assert onnx == home / "runs" / "job_1" / "exports" / "best.onnx"
    card = json.loads(card_path(onnx).read_text())
    assert card["class_names"] == ["blue", "green", "red"] and card["input"]["shape"] == [1, 3, 32, 32]
    assert card["parity"]["agreement"]["top1_agreement"] == 1.0
    assert_recorded(home, 1, [onnx, script])
    checkpoint = home / "runs" / "job_1" / "weights" / "best.pt"
    images = val_images(home, 1)
    assert assert_same_predictions(checkpoint, onnx, "timm", "classify", images) == len(images)
    assert assert_same_predictions(checkpoint, script, "timm", "classify", images) == len(images)

    # The Inference page (and `predict JOB`'s model list) offers the ONNX export, vouched for by its card.
    from core.db.engine import open_store
    from core.services.checkpoints import model_choices

    (offered,) = [c for c in model_choices(open_store()) if c.path == str(onnx)]
    assert offered.label.startswith("#1 ") and offered.label.endswith("— ONNX export (verified)")
    assert (offered.framework, offered.task, offered.trusted) == ("timm", "classify", True)


def test_mlflow_model_is_registered_once_per_job_and_predicts_like_the_checkpoint(home: Path) -> None:
    first = run_cli("model-register", "1", home=home, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "models:/Default/1" in first.stdout and "verified ONNX attached" in first.stdout
    again = run_cli("model-register", "1", home=home)
    assert "models:/Default/1" in again.stdout  # one version per job

    import mlflow
    import torch

    from adapters.export_models import TimmSubject

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/Default/1")
    assert model.metadata.get_input_schema() is not None and model.metadata.saved_input_example_info
    subject = TimmSubject({"source": str(home / "runs/job_1/weights/best.pt"), "task": "classify"})
    for image in val_images(home, 1):
        array = subject.preprocess(image)
        with torch.no_grad():
            expected = subject.module(torch.from_numpy(array))[0].numpy()
        predicted = np.asarray(model.predict(array))
        assert np.allclose(predicted, expected, atol=1e-5) and predicted.argmax() == expected.argmax()
    local = mlflow.artifacts.download_artifacts("models:/Default/1")
    assert (Path(local) / "onnx" / "best.onnx").is_file()


def test_a_byte_flipped_onnx_fails_verification_with_the_documented_message(home: Path, tmp_path: Path) -> None:
    onnx = Path(export_via_cli(home, 1, "onnx")["file"])
    flipped = tmp_path / "flipped.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    shutil.copy(card_path(onnx), card_path(flipped))
    result = run_cli("export-check", str(flipped), home=home)
    assert result.returncode == 2
    assert f"{flipped} {MISMATCH_MESSAGE}: its sha256 differs" in result.stderr, result.stderr
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx.read_bytes()[:2000])
    shutil.copy(card_path(onnx), card_path(truncated))
    result = run_cli("export-check", str(truncated), home=home)
    assert result.returncode == 2 and f"{truncated} {CORRUPT_MESSAGE}" in result.stderr, result.stderr


def test_an_onnx_whose_input_is_not_its_cards_is_refused_and_nothing_is_registered(home: Path, tmp_path: Path) -> None:
    onnx = Path(export_via_cli(home, 1, "onnx")["file"])
    other = tmp_path / "other.onnx"
    shutil.copy(onnx, other)
    card = json.loads(card_path(onnx).read_text())
    card["input"]["shape"] = [1, 3, 64, 64]
    card_path(other).write_text(json.dumps(card))
    rows_before = db_rows(home, "select count(*) from artifacts")
    result = run_cli("export-check", str(other), home=home)
    assert result.returncode == 2
    assert f"{other} {MISMATCH_MESSAGE}: its input shape is [1, 3, 32, 32], the card says [1, 3, 64, 64]" in result.stderr
    predicted = run_cli("predict", str(other), str(val_images(home, 1)[0]), "--format", "csv", "--out",
                        str(tmp_path / "out"), home=home)
    assert predicted.returncode == 2 and MISMATCH_MESSAGE in predicted.stderr
    assert db_rows(home, "select count(*) from artifacts") == rows_before


def test_torchscript_from_elsewhere_needs_consent(home: Path, tmp_path: Path) -> None:
    script = Path(export_via_cli(home, 1, "torchscript")["file"])
    foreign = tmp_path / "foreign.torchscript"
    shutil.copy(script, foreign)  # no card, not written by this app
    refused = run_cli("export-check", str(foreign), home=home)
    assert refused.returncode == 2 and str(foreign) in refused.stderr and "confirm to trust it" in refused.stderr
    trusted = run_cli("export-check", str(foreign), "--trust", home=home)
    assert trusted.returncode == 2 and "has no model card" in trusted.stderr  # loaded, then named the gap


def test_an_export_failing_half_way_leaves_no_file_and_no_row(home: Path) -> None:
    exports = home / "runs" / "job_1" / "exports"
    for stale in exports.glob("best.torchscript*"):
        stale.unlink()
    rows_before = db_rows(home, "select count(*) from artifacts where kind like 'export:torchscript%'")
    result = run_cli("export", "1", "--format", "torchscript", "--fault", "after_export", home=home)
    assert result.returncode == 2 and "fault hook" in result.stderr
    assert not list(exports.glob("best.torchscript*")) and not list(exports.glob(".export-*"))
    assert db_rows(home, "select count(*) from artifacts where kind like 'export:torchscript%'") == rows_before
