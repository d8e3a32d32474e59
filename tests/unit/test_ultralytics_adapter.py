"""Ultralytics adapter pieces that need no training: names, metrics, trust, and bad input refused early."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.base import AdapterError
from adapters.ultralytics_metrics import map_epoch_metrics, step_metrics
from core.config import config_from_dict
from tests.helpers.datasets_gen import make_dice_classification, make_dice_detection, make_yolo_detection


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def status(self, state: str, message: str = "") -> None:
        self.events.append(("status", state))

    def dataset(self, *, num_classes: int, class_names: list[str]) -> None:
        self.events.append(("dataset", num_classes))

    def progress(self, epoch: int, epochs: int, step: int, steps: int | None) -> None: ...

    def metrics(self, values: dict[str, float], *, epoch: int, step: int | None = None, kind: str = "epoch") -> None:
        self.events.append(("metrics", values))

    def checkpoint(self, kind: str, path: Path, *, epoch: int, metric_name: str | None = None,
                   metric_value: float | None = None, sha256: str | None = None) -> None: ...

    def artifact(self, kind: str, path: Path) -> None: ...

    def warning(self, message: str, path: str | None = None) -> None:
        self.events.append(("warning", message))

    def log(self, message: str, level: str = "info") -> None: ...

    def should_stop(self) -> bool:
        return False


def _adapter(vp_home: Path, dataset: Path | str, task: str = "detect", **overrides: Any) -> Any:
    from adapters.ultralytics_adapter import UltralyticsAdapter

    data: dict[str, Any] = {"framework": "ultralytics", "task": task, "model": "yolo11n", "dataset": str(dataset),
                            "image_size": 64, "epochs": 1, "device": "cpu"}
    data.update(overrides)
    return UltralyticsAdapter(config_from_dict(data), vp_home / "runs" / "job_1", _Recorder())


# ------------------------------------------------------------------------------------------ names


def test_epoch_metrics_are_mapped_to_our_names() -> None:
    raw = {
        "train/box_loss": 1.0, "train/cls_loss": 2.0, "train/dfl_loss": 0.5, "train/seg_loss": 0.25,
        "metrics/precision(B)": 0.1, "metrics/recall(B)": 0.2, "metrics/mAP50(B)": 0.3, "metrics/mAP50-95(B)": 0.4,
        "metrics/mAP50(M)": 0.5, "metrics/mAP50-95(M)": 0.6, "metrics/mAP50(P)": 0.7,
        "val/box_loss": 3.0, "val/cls_loss": 1.0, "lr/pg0": 0.01, "lr/pg1": 0.02, "fitness": 9.0,
    }
    mapped = map_epoch_metrics(raw)
    assert mapped["train/loss"] == pytest.approx(3.75)
    assert mapped["val/loss"] == pytest.approx(4.0)
    assert (mapped["val/precision"], mapped["val/recall"], mapped["val/map50"], mapped["val/map50_95"]) == (0.1, 0.2, 0.3, 0.4)
    assert (mapped["val/mask_map50"], mapped["val/mask_map50_95"], mapped["val/pose_map50"]) == (0.5, 0.6, 0.7)
    assert mapped["lr"] == 0.01 and "fitness" not in mapped

    classify = map_epoch_metrics({"train/loss": 1.2, "metrics/accuracy_top1": 0.5, "metrics/accuracy_top5": 1.0, "val/loss": 0.9})
    assert classify == {"train/loss": 1.2, "val/loss": 0.9, "val/accuracy": 0.5, "val/top5": 1.0}


def test_step_metrics_sum_components_and_skip_non_finite() -> None:
    values = step_metrics({"box_loss": 1.0, "cls_loss": 2.0, "dfl_loss": float("nan")}, 0.001)
    assert values == {"train/box_loss": 1.0, "train/cls_loss": 2.0, "train/loss": 3.0, "lr": 0.001}


def test_models_are_listed_from_the_package_without_importing_it(vp_home: Path) -> None:
    code = (
        "import json, sys\n"
        "from adapters.registry import list_models\n"
        "names = list_models('ultralytics')\n"
        "print(json.dumps({'names': names, 'imported': 'ultralytics' in sys.modules or 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    names = set(result["names"])
    assert not result["imported"]
    assert {"yolo11n", "yolo11x", "yolo11n-seg", "yolo11n-cls", "yolo11n-pose", "yolov8s", "yolo26n"} <= names
    assert not any("obb" in n or "world" in n or n.startswith("yoloe") for n in names)
    assert "yolov10n" in names and "yolov10nn" not in names  # already-scaled files are not expanded again

    from adapters.ultralytics_adapter import UltralyticsAdapter

    assert set(UltralyticsAdapter.models_for_task("segment")) >= {"yolo11n-seg", "yolov8m-seg"}
    assert not UltralyticsAdapter.pretrained_available("yolo11n")


def test_cached_weights_are_found_and_listed(vp_home: Path) -> None:
    from adapters import ultralytics_models as models
    from adapters.ultralytics_adapter import UltralyticsAdapter

    cache = models.ultralytics_weights_dir()
    cache.mkdir(parents=True)
    (cache / "yolo11n.pt").write_bytes(b"not read by this test")
    (cache / "custom-det.pt").write_bytes(b"")
    assert UltralyticsAdapter.pretrained_available("yolo11n")
    assert UltralyticsAdapter.pretrained_available("yolo11n.pt")
    assert "custom-det" in UltralyticsAdapter.all_models()


# -------------------------------------------------------------------------------------- bad input


def test_pretrained_that_is_not_cached_fails_at_once_with_the_ways_out(vp_home: Path, tmp_path: Path) -> None:
    adapter = _adapter(vp_home, tmp_path, model="yolo11s", pretrained=True)
    with pytest.raises(AdapterError) as info:
        adapter.prepare_model()
    message = str(info.value)
    assert "yolo11s" in message and "yolo11s.pt" in message and "yolo11s.yaml" in message


def test_unknown_model_name_is_refused(vp_home: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="unknown Ultralytics model"):
        _adapter(vp_home, tmp_path, model="yolo99z").prepare_model()


def test_a_dataset_without_boxes_is_refused_before_training(vp_home: Path, tmp_path: Path) -> None:
    dataset = make_dice_classification(tmp_path / "labels_only", per_class=3)
    with pytest.raises(AdapterError, match="no boxes"):
        _adapter(vp_home, dataset, "detect").prepare_data()


def test_a_class_id_outside_names_is_refused(vp_home: Path, tmp_path: Path) -> None:
    dataset = make_yolo_detection(tmp_path / "yolo", n=8)
    label = sorted((dataset / "labels" / "train").glob("*.txt"))[0]
    label.write_text("7 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    with pytest.raises(AdapterError, match="class id 7 is out of range"):
        _adapter(vp_home, dataset, "detect").prepare_data()


def test_an_image_over_the_pixel_limit_is_refused(vp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.datasets import images

    dataset = make_dice_detection(tmp_path / "dice", n=6)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(AdapterError, match="pixel limit"):
        _adapter(vp_home, dataset, "detect").prepare_data()


def test_prepare_data_writes_our_own_data_yaml(vp_home: Path, tmp_path: Path) -> None:
    import yaml

    dataset = make_dice_detection(tmp_path / "dice", n=8)
    adapter = _adapter(vp_home, dataset, "detect")
    adapter.prepare_data()
    data = yaml.safe_load(Path(adapter.data_path).read_text(encoding="utf-8"))
    assert set(data) <= {"path", "train", "val", "nc", "names"}
    assert Path(data["path"]).is_relative_to(adapter.run_dir)
    assert sorted(data["names"].values()) == ["circle", "square"]


# ------------------------------------------------------------------------------------------ trust


def test_checkpoints_need_trust_by_content_not_by_folder(vp_home: Path, tmp_path: Path) -> None:
    """matrix row 28: a .pt in the app's own folders is not trusted for being there; consent is by sha256."""
    from adapters.ultralytics_adapter import checkpoint_task, require_trust
    from core import paths, trust
    from core.files import sha256_file

    foreign = tmp_path / "downloaded.pt"
    foreign.write_bytes(b"pickle")
    with pytest.raises(AdapterError, match="not a file this app wrote.*confirm to trust it"):
        checkpoint_task(foreign)
    with pytest.raises(AdapterError, match="confirm to trust it"):
        _adapter(vp_home, tmp_path, weights=str(foreign)).prepare_model()
    assert require_trust(foreign, trusted=True) == foreign.resolve()
    planted = paths.runs_dir() / "job_9" / "weights" / "best.pt"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"dropped here by something else")
    with pytest.raises(AdapterError, match="confirm to trust it"):
        require_trust(planted, trusted=False)
    trust.write_manifest([sha256_file(planted)])  # what core writes when the user consents to this content
    assert require_trust(planted, trusted=False) == planted.resolve()
    with pytest.raises(AdapterError, match="confirm to trust it"):
        require_trust(foreign, trusted=False)


def test_inference_bytes_are_checked_against_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.ultralytics_adapter import _decode_image
    from core.datasets import images

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buffer, format="PNG")
    assert _decode_image(buffer.getvalue()).size == (64, 48)
    with pytest.raises(AdapterError, match="cannot decode"):
        _decode_image(b"not an image")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(AdapterError, match="pixel limit"):
        _decode_image(buffer.getvalue())
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 10)
    with pytest.raises(AdapterError, match="MB limit"):
        _decode_image(buffer.getvalue())


@pytest.mark.slow
def test_a_classify_checkpoint_is_refused_for_a_detect_job(vp_home: Path, tmp_path: Path) -> None:
    from adapters.ultralytics_env import import_ultralytics
    from core import paths

    import_ultralytics()
    from ultralytics import YOLO

    checkpoint = paths.runs_dir() / "job_7" / "weights" / "best.pt"
    checkpoint.parent.mkdir(parents=True)
    YOLO("yolo11n-cls.yaml").save(checkpoint)
    from adapters.ultralytics_adapter import checkpoint_task
    from core import trust
    from core.files import sha256_file

    trust.write_manifest([sha256_file(checkpoint)])  # the user imported it as trusted (trust is by content)

    assert checkpoint_task(checkpoint) == "classify"
    with pytest.raises(AdapterError, match="is a classify model; this job's task is detect"):
        _adapter(vp_home, tmp_path, "detect", weights=str(checkpoint)).prepare_model()
    adapter = _adapter(vp_home, tmp_path, "detect")
    with pytest.raises(AdapterError, match="is a classify model"):
        adapter.load_checkpoint(checkpoint)


def test_importing_ultralytics_keeps_pillow_errors_for_corrupt_files(tmp_path: Path) -> None:
    """Ultralytics patches Image.open to pip-install pi-heif on unknown files; offline that would turn a
    corrupt image into a ModuleNotFoundError crash instead of a finding."""
    from PIL import Image, UnidentifiedImageError

    from adapters.ultralytics_env import import_ultralytics

    import_ultralytics()
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(junk)
