"""The augmentation preview (adapters.augment_preview): each framework's own pipeline on real files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.augment_preview import PreviewError, PreviewRequest, preview_samples
from core.datasets import open_dataset
from tests.helpers.datasets_gen import make_dice_detection, make_imagefolder


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("preview")
    return {
        "classify": make_imagefolder(root / "shapes", per_class=6, size=48),
        "detect": make_dice_detection(root / "boxes", 16, size=80),
        "segment": make_dice_detection(root / "polygons", 16, size=80, polygons=True),
    }


CASES = [("timm", "classify"), ("ultralytics", "classify"), ("ultralytics", "detect"), ("ultralytics", "segment"),
         ("transformers", "classify"), ("transformers", "detect"), ("transformers", "segment")]


@pytest.mark.parametrize(("framework", "task"), CASES)
def test_preview_returns_the_count_at_the_image_size_with_boxes_inside(
        datasets: dict[str, Path], framework: str, task: str) -> None:
    request = PreviewRequest(dataset=str(datasets[task]), framework=framework, task=task, image_size=64,
                             preset="standard", count=9, seed=4)
    samples = preview_samples(request)
    assert len(samples) == 9
    for sample in samples:
        with Image.open(io.BytesIO(sample.png)) as image:
            assert image.size == (sample.width, sample.height) == (64, 64)
        for _cls, x1, y1, x2, y2 in sample.boxes:
            assert 0 <= x1 < x2 <= sample.width and 0 <= y1 < y2 <= sample.height
        assert sample.caption
    if task == "detect":
        assert sum(len(s.boxes) for s in samples) >= 9, "the detection samples carry their objects"
    if task == "classify":
        assert {s.caption for s in samples} <= {"red", "green", "blue"}


@pytest.mark.parametrize("framework", ["timm", "ultralytics", "transformers"])
def test_preview_is_deterministic_for_a_seed(datasets: dict[str, Path], framework: str) -> None:
    task = "classify" if framework == "timm" else "detect"

    def pngs(seed: int) -> list[bytes]:
        request = PreviewRequest(dataset=str(datasets[task]), framework=framework, task=task, image_size=64,
                                 preset="heavy", count=8, seed=seed)
        return [sample.png for sample in preview_samples(request)]

    first = pngs(1)
    assert pngs(1) == first
    assert pngs(2) != first


def test_without_augmentation_the_boxes_are_the_datasets_own(datasets: dict[str, Path]) -> None:
    """Preset "none": transformers' samples are the images resized, and the drawn boxes are the
    annotated ones scaled with them (the drawing is aligned with the pixels)."""
    index = open_dataset(str(datasets["detect"]), "auto")
    by_name = {record.rel: record for record in index.images}
    request = PreviewRequest(dataset=str(datasets["detect"]), framework="transformers", task="detect",
                             image_size=160, preset="none", count=8, seed=0)
    for sample in preview_samples(request):
        record = by_name[sample.source]
        expected = sorted(tuple(round(v * 2, 3) for v in i.bbox()) for i in record.instances())
        assert sorted(tuple(round(v, 3) for v in box[1:]) for box in sample.boxes) == expected


def test_overrides_and_bad_requests_are_named(datasets: dict[str, Path]) -> None:
    with pytest.raises(PreviewError, match="mosiac"):
        preview_samples(PreviewRequest(dataset=str(datasets["detect"]), framework="ultralytics", task="detect",
                                       image_size=64, options={"mosiac": 0.0}))
    with pytest.raises(PreviewError, match="count"):
        PreviewRequest.from_dict({"dataset": "x", "framework": "timm", "task": "classify", "image_size": 64,
                                  "count": 40})
    missing = datasets["detect"].parent / "missing"
    with pytest.raises(PreviewError, match="missing"):
        preview_samples(PreviewRequest(dataset=str(missing), framework="timm", task="classify", image_size=64))


def test_ultralytics_jobs_train_with_the_chosen_preset(vp_home: Path) -> None:
    """The preset's hyper-parameters reach ``train()`` by Ultralytics' names; overrides and then
    framework_args win; the default preset keeps Ultralytics' own recipe (what jobs always used)."""
    from adapters.ultralytics_adapter import UltralyticsAdapter
    from core.augmentation import PRESETS
    from core.config import config_from_dict
    from core.events import EventWriter
    from core.reporter import JsonLinesReporter

    def args(**extra: Any) -> dict[str, Any]:
        config = config_from_dict({"framework": "ultralytics", "task": "detect", "model": "yolo11n",
                                   "dataset": str(vp_home), "device": "cpu", **extra})
        return UltralyticsAdapter(config, vp_home / "runs" / "job_1", JsonLinesReporter(EventWriter(io.StringIO())))._train_args()

    default = args()
    assert {key: default[key] for key in PRESETS["ultralytics"]["standard"]} == PRESETS["ultralytics"]["standard"]
    chosen = args(augmentation={"preset": "none", "options": {"fliplr": 0.5}}, framework_args={"mosaic": 0.25})
    assert (chosen["mixup"], chosen["hsv_v"], chosen["fliplr"], chosen["mosaic"]) == (0.0, 0.0, 0.5, 0.25)
