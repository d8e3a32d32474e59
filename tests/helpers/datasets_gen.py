"""Golden datasets generated on the fly for tests (datasets layer, adapters, GUI).

Every generator draws real images a tiny model can learn (a class is a colour or a shape) and
writes the annotation format exactly as the tool it imitates would. All randomness comes from a
seeded ``random.Random``, so a given call always produces the same files.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, ImageDraw

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (230, 210, 40),
    "purple": (150, 50, 190),
    "orange": (240, 140, 30),
    "cyan": (40, 200, 210),
    "white": (240, 240, 240),
}
SHAPE_COLOURS = {"square": (200, 50, 50), "circle": (50, 80, 210), "triangle": (50, 170, 60)}


def _colour(name: str, index: int) -> tuple[int, int, int]:
    if name in PALETTE:
        return PALETTE[name]
    palette = list(PALETTE.values())
    return palette[index % len(palette)]


def _jitter(rng: random.Random, colour: tuple[int, int, int], amount: int = 25) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)
    return (r, g, b)


def _background(rng: random.Random, size: int) -> Image.Image:
    grey = rng.randint(90, 150)
    return Image.new("RGB", (size, size), (grey, grey, grey))


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, quality=90)
    else:
        image.save(path)


def make_imagefolder(
    root: str | Path,
    classes: Sequence[str] = ("red", "green", "blue"),
    per_class: int = 20,
    size: int = 32,
    *,
    splits: Sequence[str] | None = None,
    val_every: int = 4,
    seed: int = 0,
    ext: str = ".png",
) -> Path:
    """root/<class>/<class>_NNN.png (or root/{train,val}/<class>/ with ``splits``).

    Class i is a filled shape of colour i (circle, square, triangle in turn) at a random place, on a
    grey background: easy for a tiny CNN, not trivially constant.
    """
    root = Path(root)
    rng = random.Random(seed)
    for ci, name in enumerate(classes):
        colour = _colour(name, ci)
        for i in range(per_class):
            image = _background(rng, size)
            draw = ImageDraw.Draw(image)
            extent = rng.randint(size // 3, size // 2)
            x0, y0 = rng.randint(0, size - extent), rng.randint(0, size - extent)
            fill = _jitter(rng, colour)
            kind = ci % 3
            if kind == 0:
                draw.ellipse((x0, y0, x0 + extent, y0 + extent), fill=fill)
            elif kind == 1:
                draw.rectangle((x0, y0, x0 + extent, y0 + extent), fill=fill)
            else:
                draw.polygon([(x0 + extent / 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=fill)
            parts = [name, f"{name}_{i:03d}{ext}"]
            if splits:
                parts.insert(0, splits[1] if len(splits) > 1 and i % val_every == val_every - 1 else splits[0])
            _save(image, root.joinpath(*parts))
    return root


def _draw_objects(
    rng: random.Random, index: int, size: int, classes: Sequence[str]
) -> tuple[Image.Image, list[tuple[str, tuple[float, float, float, float]]]]:
    """An image with 1-2 objects (first one's class cycles through ``classes``); their pixel boxes."""
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    objects: list[tuple[str, tuple[float, float, float, float]]] = []
    count = 1 + (index % 2)
    for k in range(count):
        label = classes[index % len(classes)] if k == 0 else classes[rng.randrange(len(classes))]
        # Left and right halves: objects never overlap.
        half = size // 2
        extent = rng.randint(max(6, size // 5), max(7, half - 4))
        x0 = rng.randint(k * half + 1, (k + 1) * half - extent - 1)
        y0 = rng.randint(1, size - extent - 1)
        box = (float(x0), float(y0), float(x0 + extent), float(y0 + extent))
        fill = _jitter(rng, SHAPE_COLOURS.get(label, _colour(label, classes.index(label))))
        if label == "circle":
            draw.ellipse(box, fill=fill)
        elif label == "triangle":
            draw.polygon([(box[0] + extent / 2, box[1]), (box[0], box[3]), (box[2], box[3])], fill=fill)
        else:
            draw.rectangle(box, fill=fill)
        objects.append((label, box))
    return image, objects


def _outline(label: str, box: tuple[float, float, float, float], vertices: int = 16) -> list[list[float]]:
    x1, y1, x2, y2 = box
    if label == "circle":
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        return [
            [round(cx + rx * math.cos(2 * math.pi * i / vertices), 2), round(cy + ry * math.sin(2 * math.pi * i / vertices), 2)]
            for i in range(vertices)
        ]
    if label == "triangle":
        return [[(x1 + x2) / 2, y1], [x1, y2], [x2, y2]]
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def labelme_json(
    image_path: str, width: int, height: int, shapes: list[dict[str, Any]], flags: dict[str, bool] | None = None
) -> dict[str, Any]:
    return {
        "version": "5.0.1",
        "flags": flags or {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }


def labelme_shape(label: str, shape_type: str, points: list[list[float]], group_id: int | None = None) -> dict[str, Any]:
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}}


def _dice_paths(root: Path, stem: str, ext: str, layout: str) -> tuple[Path, Path, str]:
    """(image path, JSON path, imagePath as written in the JSON) for a layout: "dice" (images/ +
    annotations/) or "labelme" (each JSON beside its image)."""
    if layout == "dice":
        return root / "images" / f"{stem}{ext}", root / "annotations" / f"{stem}.json", f"../images/{stem}{ext}"
    if layout == "labelme":
        return root / f"{stem}{ext}", root / f"{stem}.json", f"{stem}{ext}"
    raise ValueError(f"unknown layout {layout!r}")


def make_dice_detection(
    root: str | Path,
    n: int = 12,
    size: int = 64,
    layout: str = "dice",
    *,
    classes: Sequence[str] = ("circle", "square"),
    polygons: bool = False,
    seed: int = 0,
    ext: str = ".jpg",
) -> Path:
    """DICE detection set: squares as rectangles, circles as rectangles (or ellipses as polygons).

    ``polygons=True`` annotates every object as a polygon (a segmentation dataset). Rectangle corners
    are written in a varying order, as real annotation tools do.
    """
    root = Path(root)
    rng = random.Random(seed)
    for i in range(n):
        image, objects = _draw_objects(rng, i, size, classes)
        stem = f"img_{i:04d}"
        image_path, json_path, image_ref = _dice_paths(root, stem, ext, layout)
        _save(image, image_path)
        shapes = []
        for label, (x1, y1, x2, y2) in objects:
            if polygons:
                shapes.append(labelme_shape(label, "polygon", _outline(label, (x1, y1, x2, y2))))
            elif i % 3 == 2:
                shapes.append(labelme_shape(label, "rectangle", [[x2, y2], [x1, y1]]))  # reversed corners
            else:
                shapes.append(labelme_shape(label, "rectangle", [[x1, y1], [x2, y2]]))
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(labelme_json(image_ref, size, size, shapes)), encoding="utf-8")
    return root


def make_dice_classification(
    root: str | Path,
    classes: Sequence[str] = ("red", "green", "blue"),
    per_class: int = 6,
    size: int = 32,
    layout: str = "dice",
    *,
    seed: int = 0,
) -> Path:
    """DICE classification: image-level labels as labelme flags (the true flag is the class)."""
    root = Path(root)
    folder = make_imagefolder(root / ".gen", classes, per_class, size, seed=seed)
    for name in classes:
        for i in range(per_class):
            stem = f"{name}_{i:03d}"
            image_path, json_path, image_ref = _dice_paths(root, stem, ".png", layout)
            image_path.parent.mkdir(parents=True, exist_ok=True)
            (folder / name / f"{stem}.png").replace(image_path)
            flags = {other: other == name for other in classes}
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(labelme_json(image_ref, size, size, [], flags)), encoding="utf-8")
        (folder / name).rmdir()
    folder.rmdir()
    return root


def make_dice_pose(root: str | Path, n: int = 6, size: int = 64, *, seed: int = 0) -> Path:
    """DICE pose: a 'person' rectangle plus 'head', 'left', 'right' points sharing its group_id."""
    root = Path(root)
    rng = random.Random(seed)
    for i in range(n):
        image, objects = _draw_objects(rng, i, size, ("square",))
        stem = f"pose_{i:04d}"
        image_path, json_path, image_ref = _dice_paths(root, stem, ".png", "dice")
        _save(image, image_path)
        shapes = []
        for g, (_, (x1, y1, x2, y2)) in enumerate(objects, start=1):
            shapes.append(labelme_shape("person", "rectangle", [[x1, y1], [x2, y2]], group_id=g))
            shapes.append(labelme_shape("head", "point", [[(x1 + x2) / 2, y1 + 1]], group_id=g))
            shapes.append(labelme_shape("left", "point", [[x1 + 1, (y1 + y2) / 2]], group_id=g))
            shapes.append(labelme_shape("right", "point", [[x2 - 1, (y1 + y2) / 2]], group_id=g))
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(labelme_json(image_ref, size, size, shapes)), encoding="utf-8")
    return root


def make_yolo_detection(
    root: str | Path,
    n: int = 12,
    size: int = 64,
    *,
    classes: Sequence[str] = ("circle", "square"),
    splits: Sequence[str] = ("train", "val"),
    val_every: int = 4,
    names_as: str = "list",
    segment: bool = False,
    seed: int = 0,
    ext: str = ".jpg",
) -> Path:
    """Ultralytics layout: images/{train,val}, labels/{train,val}, data.yaml (names as list or dict)."""
    root = Path(root)
    rng = random.Random(seed)
    for i in range(n):
        image, objects = _draw_objects(rng, i, size, classes)
        split = splits[1] if len(splits) > 1 and i % val_every == val_every - 1 else splits[0]
        stem = f"img_{i:04d}"
        _save(image, root / "images" / split / f"{stem}{ext}")
        lines = []
        for label, box in objects:
            class_id = list(classes).index(label)
            if segment:
                coords = " ".join(f"{x / size:.6f} {y / size:.6f}" for x, y in _outline(label, box))
                lines.append(f"{class_id} {coords}")
            else:
                x1, y1, x2, y2 = box
                lines.append(
                    f"{class_id} {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} "
                    f"{(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}"
                )
        label_path = root / "labels" / split / f"{stem}.txt"
        label_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    names: Any = list(classes) if names_as == "list" else dict(enumerate(classes))
    config = {"path": ".", "names": names}
    config.update({s: f"images/{s}" for s in splits})
    (root / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


def make_coco_detection(
    root: str | Path,
    n: int = 12,
    size: int = 64,
    *,
    classes: Sequence[str] = ("circle", "square"),
    seed: int = 0,
) -> Path:
    """COCO: images/*.jpg + annotations/instances.json; circles carry a polygon segmentation.

    Category ids start at 1 and are listed in reverse order, to check readers sort them by id.
    """
    root = Path(root)
    rng = random.Random(seed)
    images, annotations = [], []
    for i in range(n):
        image, objects = _draw_objects(rng, i, size, classes)
        name = f"img_{i:04d}.jpg"
        _save(image, root / "images" / name)
        images.append({"id": i + 100, "file_name": name, "width": size, "height": size})
        for label, (x1, y1, x2, y2) in objects:
            segmentation = [[v for point in _outline(label, (x1, y1, x2, y2)) for v in point]] if label == "circle" else []
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 100,
                    "category_id": list(classes).index(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "segmentation": segmentation,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": name} for i, name in reversed(list(enumerate(classes)))]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}), encoding="utf-8"
    )
    return root
