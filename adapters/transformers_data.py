"""Our dataset index → the tensors a transformers image processor and model expect.

One torch ``Dataset`` per task over ``ImageRecord``s (the datasets layer's split, not a copy):
classification yields a class index; detection yields COCO-style annotations (one per object: the
parts of a labelme group are one box) that the processor turns
into its own targets (DETR-family: normalised centre boxes); segmentation rasterises every polygon,
rectangle and circle into a class-index mask, background 0 and class *i* of the dataset at *i + 1*.
Images are decoded when a batch needs them (``workers`` loader processes do it in parallel).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.datasets.model import ImageRecord, Shape, group_instances

BACKGROUND = "background"
AREA_SHAPES = ("rectangle", "polygon", "circle")


def load_rgb(path: Path) -> Any:
    from PIL import Image

    from core.datasets.images import check_image_limits

    check_image_limits(path)
    with Image.open(path) as image:
        return image.convert("RGB")


def object_boxes(shapes: list[Shape], class_ids: dict[str, int]) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(label, box) per object of a class: an object drawn in several parts (a labelme group) is one
    box, the union of its area parts."""
    boxes = []
    for instance in group_instances([s for s in shapes if s.shape_type in AREA_SHAPES]):
        if instance.label in class_ids:
            boxes.append((instance.label, instance.bbox()))
    return boxes


def coco_annotations(shapes: list[Shape], class_ids: dict[str, int], image_id: int) -> dict[str, Any]:
    """The processor's ``coco_detection`` input: boxes as [x, y, w, h] pixels, one per object."""
    annotations = []
    for label, (x1, y1, x2, y2) in object_boxes(shapes, class_ids):
        width, height = x2 - x1, y2 - y1
        if width > 0 and height > 0:
            annotations.append({"bbox": [x1, y1, width, height], "category_id": class_ids[label],
                                "area": width * height, "iscrowd": 0})
    return {"image_id": image_id, "annotations": annotations}


def truth_boxes(shapes: list[Shape], class_ids: dict[str, int]) -> list[list[float]]:
    """``[class, x1, y1, x2, y2]`` rows in pixels, one per object (val_predictions.json and mAP)."""
    return [[float(class_ids[label]), *box] for label, box in object_boxes(shapes, class_ids)]


def class_mask(shapes: list[Shape], class_ids: dict[str, int], size: tuple[int, int]) -> Any:
    """A uint8 mask of the image size: 0 background, ``class_ids[label]`` inside each area shape
    (drawn in file order, so a later shape covers an earlier one)."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for shape in shapes:
        value = class_ids.get(shape.label)
        if value is None or shape.shape_type not in AREA_SHAPES:
            continue
        if shape.shape_type == "polygon" and len(shape.points) >= 3:
            draw.polygon([(float(x), float(y)) for x, y in shape.points], fill=value)
        elif shape.shape_type == "rectangle":
            draw.rectangle(shape.bbox(), fill=value)
        elif shape.shape_type == "circle":
            draw.ellipse(shape.bbox(), fill=value)
    return mask


@dataclass
class Sample:
    record: ImageRecord
    label: int = -1  # classification


class TaskDataset:
    """A map-style dataset (torch's protocol: ``__len__``/``__getitem__``) of processed examples."""

    def __init__(self, task: str, samples: list[Sample], processor: Any, class_ids: dict[str, int]) -> None:
        self.task = task
        self.samples = samples
        self.processor = processor
        self.class_ids = class_ids

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        image = load_rgb(sample.record.path)
        if self.task == "classify":
            encoded = self.processor(images=image, return_tensors="pt")
            return {"pixel_values": encoded["pixel_values"][0], "labels": sample.label}
        if self.task == "detect":
            target = coco_annotations(sample.record.shapes, self.class_ids, index)
            encoded = self.processor(images=image, annotations=target, return_tensors="pt")
            item = {"pixel_values": encoded["pixel_values"][0], "labels": encoded["labels"][0]}
            if "pixel_mask" in encoded:
                item["pixel_mask"] = encoded["pixel_mask"][0]
            return item
        mask = class_mask(sample.record.shapes, self.class_ids, image.size)
        encoded = self.processor(images=image, segmentation_maps=mask, return_tensors="pt")
        return {"pixel_values": encoded["pixel_values"][0], "labels": encoded["labels"][0].long()}


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack pixel tensors (every processor here yields one fixed size); detection targets stay a list."""
    import torch

    collated: dict[str, Any] = {"pixel_values": torch.stack([item["pixel_values"] for item in batch])}
    if "pixel_mask" in batch[0]:
        collated["pixel_mask"] = torch.stack([item["pixel_mask"] for item in batch])
    labels = [item["labels"] for item in batch]
    if isinstance(labels[0], Mapping):
        collated["labels"] = [dict(label) for label in labels]
    elif isinstance(labels[0], int):
        collated["labels"] = torch.tensor(labels, dtype=torch.long)
    else:
        collated["labels"] = torch.stack(labels)
    return collated
