"""Our dataset index → the tensors a transformers image processor and model expect.

One torch ``Dataset`` per task over ``ImageRecord``s (the datasets layer's split, not a copy):
classification yields a class index; detection yields COCO-style annotations (one per object: the
parts of a labelme group are one box) that the processor turns
into its own targets (DETR-family: normalised centre boxes); segmentation rasterises every polygon,
rectangle and circle into a class-index mask, background 0 and class *i* of the dataset at *i + 1*.
Images are decoded when a batch needs them (``workers`` loader processes do it in parallel).
Training examples are augmented first (:class:`Augmenter`: torchvision v2 transforms, the job's
``augmentation`` options), so a flip or crop moves the boxes and the mask with the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    boxes = object_boxes(shapes, class_ids)
    return coco_from_boxes([box for _, box in boxes], [class_ids[label] for label, _ in boxes], image_id)


def coco_from_boxes(boxes: list[tuple[float, float, float, float]], categories: list[int], image_id: int) -> dict[str, Any]:
    annotations = []
    for (x1, y1, x2, y2), category in zip(boxes, categories, strict=True):
        width, height = x2 - x1, y2 - y1
        if width > 0 and height > 0:
            annotations.append({"bbox": [x1, y1, width, height], "category_id": category,
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
class Example:
    """One example as the augmentation sees it: the RGB image with its objects (boxes in pixels,
    x1 y1 x2 y2, and class ids: detect) or its class mask (segment)."""

    image: Any  # PIL RGB
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    mask: Any = None  # PIL "L" of the image size


def task_example(task: str, record: ImageRecord, class_ids: dict[str, int]) -> Example:
    image = load_rgb(record.path)
    if task == "detect":
        objects = object_boxes(record.shapes, class_ids)
        return Example(image, [box for _, box in objects], [class_ids[label] for label, _ in objects])
    if task == "segment":
        return Example(image, mask=class_mask(record.shapes, class_ids, image.size))
    return Example(image)


_AUTO_AUGMENT = {"trivialaugment": "TrivialAugmentWide", "randaugment": "RandAugment"}
FILL_GREY = 114  # what the zoom's empty border is filled with (Ultralytics' letterbox grey)


class Augmenter:
    """The job's ``augmentation`` options (``core.augmentation``'s transformers keys) as torchvision v2
    transforms over an :class:`Example`: flips, crops and zooms move its boxes (tv_tensors
    BoundingBoxes; boxes pushed out are dropped) and its mask (tv_tensors Mask, nearest) with the
    image; colour changes touch the image only. Picklable, for DataLoader worker processes."""

    def __init__(self, task: str, options: Mapping[str, Any], image_size: int) -> None:
        from torchvision.transforms import v2

        self.task = task
        steps: list[Any] = []
        crop = options.get("crop_scale")
        if crop and task in ("classify", "segment"):
            steps.append(v2.RandomResizedCrop(image_size, scale=(float(crop[0]), float(crop[1])), antialias=True))
        zoom, shift = options.get("zoom"), float(options.get("translate") or 0.0)
        if task == "detect" and (zoom or shift):
            scale = (float(zoom[0]), float(zoom[1])) if zoom else None
            steps.append(v2.RandomAffine(degrees=0.0, translate=(shift, shift) if shift else None, scale=scale,
                                         fill=FILL_GREY))
        for key, flip in (("hflip", v2.RandomHorizontalFlip), ("vflip", v2.RandomVerticalFlip)):
            if float(options.get(key) or 0.0) > 0:
                steps.append(flip(p=float(options[key])))
        jitter = float(options.get("color_jitter") or 0.0)
        if jitter > 0:
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
        policy = options.get("auto_augment")
        if policy and task == "classify":
            if policy not in _AUTO_AUGMENT:
                raise ValueError(f"augmentation.options.auto_augment: unknown policy {policy!r}; "
                                 f"choose one of {', '.join(_AUTO_AUGMENT)} or null")
            steps.append(getattr(v2, _AUTO_AUGMENT[policy])())
        if task == "detect":
            steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1.0)]
        self.transforms = v2.Compose(steps) if steps else None

    def __call__(self, example: Example) -> Example:
        if self.transforms is None:
            return example
        import torch
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional

        width, height = example.image.size
        data: dict[str, Any] = {"image": tv_tensors.Image(functional.pil_to_tensor(example.image))}
        if self.task == "detect":
            data["boxes"] = tv_tensors.BoundingBoxes(torch.tensor(example.boxes, dtype=torch.float32).reshape(-1, 4),
                                                     format="XYXY", canvas_size=(height, width))
            data["labels"] = torch.tensor(example.categories, dtype=torch.long)
        if example.mask is not None:
            data["mask"] = tv_tensors.Mask(functional.pil_to_tensor(example.mask))
        out = self.transforms(data)
        mask = functional.to_pil_image(out["mask"]) if "mask" in out else None
        boxes = [tuple(float(v) for v in box) for box in out["boxes"].tolist()] if "boxes" in out else []
        categories = [int(c) for c in out["labels"].tolist()] if "labels" in out else []
        return Example(functional.to_pil_image(out["image"]), boxes, categories, mask)  # type: ignore[arg-type]


@dataclass
class Sample:
    record: ImageRecord
    label: int = -1  # classification


class TaskDataset:
    """A map-style dataset (torch's protocol: ``__len__``/``__getitem__``) of processed examples."""

    def __init__(self, task: str, samples: list[Sample], processor: Any, class_ids: dict[str, int],
                 augment: Augmenter | None = None) -> None:
        self.task = task
        self.samples = samples
        self.processor = processor
        self.class_ids = class_ids
        self.augment = augment  # training set only

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        example = task_example(self.task, sample.record, self.class_ids)
        if self.augment is not None:
            example = self.augment(example)
        image = example.image
        if self.task == "classify":
            encoded = self.processor(images=image, return_tensors="pt")
            return {"pixel_values": encoded["pixel_values"][0], "labels": sample.label}
        if self.task == "detect":
            target = coco_from_boxes(example.boxes, example.categories, index)
            encoded = self.processor(images=image, annotations=target, return_tensors="pt")
            item = {"pixel_values": encoded["pixel_values"][0], "labels": encoded["labels"][0]}
            if "pixel_mask" in encoded:
                item["pixel_mask"] = encoded["pixel_mask"][0]
            return item
        encoded = self.processor(images=image, segmentation_maps=example.mask, return_tensors="pt")
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
