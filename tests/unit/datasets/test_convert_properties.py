"""Property test of the labelme → YOLO converter on arbitrary shapes (matrix row 21).

Hypothesis draws labelme files whose points lie anywhere — inside the image, on its border, far outside,
negative — as rectangles and polygons of any vertex count. Whatever the input, every YOLO label line the
converter writes has a class id in range and coordinates in [0, 1]; detect boxes have a positive size and
segment polygons at least 3 points; a shape wholly outside the image is never written as a zero box.
No time limit: the examples' count is fixed, their speed never decides the outcome.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.datasets import open_dataset
from core.datasets.convert import to_yolo
from tests.helpers.datasets_gen import labelme_json, labelme_shape

SIZE = 32
CLASSES = ("cat", "dog", "eel")
coordinate = st.floats(min_value=-3 * SIZE, max_value=4 * SIZE, allow_nan=False, allow_infinity=False)
point = st.lists(coordinate, min_size=2, max_size=2)
rectangle = st.tuples(st.sampled_from(CLASSES), st.just("rectangle"), st.lists(point, min_size=2, max_size=2))
polygon = st.tuples(st.sampled_from(CLASSES), st.just("polygon"), st.lists(point, min_size=3, max_size=9))
image_shapes = st.lists(st.one_of(rectangle, polygon), min_size=1, max_size=5)


def _write_dice(root: Path, images: list[list[tuple[str, str, list[list[float]]]]]) -> None:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i, shapes in enumerate(images):
        Image.new("RGB", (SIZE, SIZE), (90, 90, 90)).save(root / "images" / f"img_{i}.png")
        document = labelme_json(f"../images/img_{i}.png", SIZE, SIZE,
                                [labelme_shape(label, kind, points) for label, kind, points in shapes])
        (root / "annotations" / f"img_{i}.json").write_text(json.dumps(document), encoding="utf-8")


def _label_lines(out: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for path in sorted((out / "labels").rglob("*.txt"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.reliability(row=21, fault="labelme points anywhere: outside the image, negative, degenerate")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=st.lists(image_shapes, min_size=4, max_size=4), task=st.sampled_from(("detect", "segment")))
def test_yolo_labels_stay_in_the_image_whatever_the_points(images: list[list[tuple[str, str, list[list[float]]]]],
                                                           task: str) -> None:
    """matrix row 21: coordinates in [0, 1], class ids in range, polygons of ≥ 3 points, boxes of positive size."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "data"
        _write_dice(root, images)
        index = open_dataset(root, "dice")
        out = to_yolo(index, Path(folder) / "yolo", task=task, link=False)
        for values in _label_lines(out):
            class_id, coords = int(values[0]), values[1:]
            assert values[0] == class_id and 0 <= class_id < len(index.class_names)
            assert all(0.0 <= v <= 1.0 for v in coords), values
            if task == "detect":
                assert len(coords) == 4 and coords[2] > 0 and coords[3] > 0, values
            else:
                assert len(coords) >= 6 and len(coords) % 2 == 0, values
