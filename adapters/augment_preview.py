"""Augmented training samples of a dataset, drawn by the job's own framework (the Train page's preview).

A preview is only worth looking at if it shows what the job will train on, so nothing here
re-implements an augmentation: the samples come from the train side of the job's split
(``core.datasets.split_dataset``, the one split decision) and each framework augments them with the
code its jobs run, from the options the job would resolve (``core.augmentation``):

- timm: ``adapters.timm_augment.TimmAugment.preview`` on images decoded at its cache side, the fast
  path's own batch operations;
- Ultralytics: its own dataset classes (``build_yolo_dataset`` / ``ClassificationDataset``) built with
  the hyper-parameters a job passes to ``train()``, so mosaic, mixup, copy-paste, HSV and the affine
  are Ultralytics' own (a converted subset of the split, linked, in a temp folder);
- transformers: ``adapters.transformers_data.Augmenter`` (the job's train transforms), then the
  square resize its processor applies.

Boxes (clipped to the image) and masks are drawn on each sample; one PNG per sample. It runs in the
``augment-preview`` helper process (``adapters.worker``): the app never imports a framework.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.augmentation import augmentation_options
from core.config import SPLIT_DEFAULTS, ConfigError

MIN_COUNT, MAX_COUNT = 1, 16
MOSAIC_POOL = 4  # Ultralytics draws mosaic/mixup partners from a pool this many times the preview's size
_PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40))
Box = tuple[int, float, float, float, float]  # class id, x1, y1, x2, y2 in pixels of the sample


class PreviewError(Exception):
    """A request that cannot be previewed (the message names the dataset and the reason)."""


@dataclass(frozen=True)
class PreviewRequest:
    dataset: str
    framework: str
    task: str
    image_size: int
    preset: str = "light"
    options: dict[str, Any] = field(default_factory=dict)
    dataset_format: str = "auto"
    count: int = 12
    seed: int = 0
    split: dict[str, Any] = field(default_factory=dict)  # the job's split (strategy, ratio, seed, file)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreviewRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PreviewError(f"unknown preview request key(s): {', '.join(unknown)}")
        request = cls(**data)
        if not MIN_COUNT <= request.count <= MAX_COUNT:
            raise PreviewError(f"count must be {MIN_COUNT}…{MAX_COUNT}, got {request.count}")
        return request

    def resolved_options(self) -> dict[str, Any]:
        return augmentation_options(self.framework, self.preset, self.options)


@dataclass
class PreviewSample:
    png: bytes
    width: int
    height: int
    caption: str  # the class (classify) or the object count
    source: str  # the dataset image it starts from (a mosaic's first tile)
    boxes: list[Box] = field(default_factory=list)


@dataclass
class _Drawn:
    """A framework's augmented sample before drawing: RGB uint8 HWC, boxes, per-object masks."""

    image: Any  # numpy uint8 (H, W, 3)
    source: str
    label: int = -1
    boxes: list[Box] = field(default_factory=list)
    masks: list[Any] = field(default_factory=list)  # numpy bool (H, W), one per object (segment)
    class_map: Any = None  # numpy int (H, W), class id + 1 per pixel, 0 background (semantic segment)


# ------------------------------------------------------------------------------------- dataset


def _train_records(request: PreviewRequest) -> tuple[Any, list[Any]]:
    """The dataset index and the records a job would train on (with a label or an object)."""
    from core.datasets import DatasetError, open_dataset, split_dataset

    split = {**SPLIT_DEFAULTS.model_dump(), **request.split}
    try:
        index = open_dataset(request.dataset, request.dataset_format)
        result = split_dataset(index, split["strategy"], split["ratio"], split["seed"], split.get("file"))
    except DatasetError as exc:
        raise PreviewError(str(exc)) from None
    usable = [r for r in result.train if not r.header_error and (r.labels or r.class_names() if request.task == "classify"
                                                                   else r.instances())]
    if not usable:
        raise PreviewError(f"{request.dataset}: no training image with {'a class' if request.task == 'classify' else 'objects'} "
                           f"to preview for {request.task}")
    return index, usable


def _chosen(records: list[Any], count: int, rng: random.Random) -> list[Any]:
    """``count`` records (repeated when the split has fewer: each draw is augmented anew)."""
    if len(records) >= count:
        return rng.sample(records, count)
    return [records[i % len(records)] for i in range(count)]


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------- frameworks


def _timm_samples(request: PreviewRequest, index: Any, records: list[Any]) -> list[_Drawn]:
    import numpy as np
    import torch

    from adapters.timm_augment import TimmAugment
    from adapters.timm_data import decode_resized

    augment = TimmAugment(request.resolved_options(), request.image_size, "cpu",
                          num_classes=len(index.class_names), seed=request.seed)
    batch = torch.from_numpy(np.stack([decode_resized(r.path, augment.cache_side) for r in records]))
    images = augment.preview(batch)
    ids = {name: i for i, name in enumerate(index.class_names)}
    return [_Drawn(image.permute(1, 2, 0).numpy(), r.rel, ids.get((r.labels or r.class_names())[0], -1))
            for image, r in zip(images, records, strict=True)]


def _ultralytics_samples(request: PreviewRequest, index: Any, records: list[Any], pool: list[Any]) -> list[_Drawn]:
    """Ultralytics' own training dataset over a linked subset (``pool``: the chosen records first)."""
    import yaml

    from adapters.ultralytics_env import import_ultralytics
    from core.datasets import DatasetError, SplitResult
    from core.datasets.convert import to_yolo

    import_ultralytics()
    from ultralytics.utils import LOGGER

    LOGGER.setLevel(logging.WARNING)  # its dataset scan chatter is not the helper's answer
    with tempfile.TemporaryDirectory(prefix="vp-augment-preview-") as folder:
        subset = dataclasses.replace(index, images=pool)
        try:
            out = to_yolo(subset, Path(folder) / "data", task=request.task, split=SplitResult(train=pool, val=pool[:1]))
        except DatasetError as exc:
            raise PreviewError(str(exc)) from None
        cfg = _ultralytics_cfg(request)
        if request.task == "classify":
            return _ultralytics_classify(out, cfg, len(records))
        data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
        return _ultralytics_detect(out, cfg, data, len(records))


def _ultralytics_cfg(request: PreviewRequest) -> Any:
    from ultralytics.cfg import get_cfg

    # The job's hyper-parameters (what _train_args passes), plus full-size per-object masks to draw.
    return get_cfg(overrides={**request.resolved_options(), "task": request.task, "imgsz": request.image_size,
                              "mask_ratio": 1, "overlap_mask": False, "cache": False, "fraction": 1.0})


def _ultralytics_classify(out: Path, cfg: Any, count: int) -> list[_Drawn]:
    from ultralytics.data.dataset import ClassificationDataset

    dataset = ClassificationDataset(str(out / "train"), cfg, augment=True, prefix="train")
    order = _pool_order(dataset.samples, count)
    drawn = []
    for i in order:
        item = dataset[i]
        image = (item["img"].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        drawn.append(_Drawn(image, Path(dataset.samples[i][0]).name, int(item["cls"])))
    return drawn


def _pool_order(samples: list[Any], count: int) -> list[int]:
    """``count`` indices into Ultralytics' dataset of the pool (seeded; repeated when the pool is smaller:
    each draw is augmented anew)."""
    if len(samples) < count:
        return [i % len(samples) for i in range(count)]
    return random.sample(range(len(samples)), count)


def _ultralytics_detect(out: Path, cfg: Any, data: dict[str, Any], count: int) -> list[_Drawn]:
    from ultralytics.data import build_yolo_dataset

    names = data["names"]
    data = {**data, "names": dict(enumerate(names)) if isinstance(names, list) else names, "channels": 3}
    dataset: Any = build_yolo_dataset(cfg, str(out / "images" / "train"), batch=count, data=data, mode="train")
    files = list(dataset.im_files)
    return [_yolo_item(dataset[i], Path(files[i]).name) for i in _pool_order(files, count)]


def _yolo_item(item: dict[str, Any], source: str) -> _Drawn:
    image = item["img"].permute(1, 2, 0).numpy()
    height, width = image.shape[:2]
    boxes: list[Box] = []
    for cls, (cx, cy, w, h) in zip(item["cls"].view(-1).tolist(), item["bboxes"].tolist(), strict=True):
        boxes.append((int(cls), (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
    masks = [m.numpy() > 0 for m in item["masks"]] if "masks" in item and item["masks"].ndim == 3 else []
    return _Drawn(image, source, boxes=boxes, masks=masks)


def _transformers_samples(request: PreviewRequest, index: Any, records: list[Any]) -> list[_Drawn]:
    import numpy as np
    from PIL import Image

    from adapters.transformers_data import Augmenter, task_example

    # As the transformers adapter numbers them: segmentation masks keep 0 for the background.
    first = 1 if request.task == "segment" else 0
    class_ids = {name: i + first for i, name in enumerate(index.class_names)}
    augment = Augmenter(request.task, request.resolved_options(), request.image_size)
    size = request.image_size
    drawn = []
    for record in records:
        example = augment(task_example(request.task, record, class_ids))
        width, height = example.image.size
        sx, sy = size / width, size / height
        image = np.asarray(example.image.resize((size, size), Image.Resampling.BILINEAR))
        boxes = [(c, x1 * sx, y1 * sy, x2 * sx, y2 * sy) for c, (x1, y1, x2, y2) in zip(example.categories, example.boxes, strict=True)]
        class_map = (np.asarray(example.mask.resize((size, size), Image.Resampling.NEAREST)).astype(int)
                     if example.mask is not None else None)
        label = class_ids[(record.labels or record.class_names())[0]] if request.task == "classify" else -1
        drawn.append(_Drawn(image, record.rel, label, boxes, class_map=class_map))
    return drawn


# ------------------------------------------------------------------------------------- drawing


def _clipped(box: Box, width: int, height: int) -> Box | None:
    cls, x1, y1, x2, y2 = box
    x1, x2 = min(max(x1, 0.0), float(width)), min(max(x2, 0.0), float(width))
    y1, y2 = min(max(y1, 0.0), float(height)), min(max(y2, 0.0), float(height))
    return (cls, x1, y1, x2, y2) if x2 - x1 >= 1 and y2 - y1 >= 1 else None


def _colour(cls: int) -> tuple[int, int, int]:
    return _PALETTE[cls % len(_PALETTE)]


def _overlay(image: Any, drawn: _Drawn) -> Any:
    """The image with each object's mask (or the class map) tinted in its class colour."""
    import numpy as np

    out = image.astype(np.float32)
    layers: list[tuple[Any, int]] = [(mask, box[0]) for mask, box in zip(drawn.masks, drawn.boxes, strict=False)]
    if drawn.class_map is not None:
        layers += [(drawn.class_map == value, value - 1) for value in np.unique(drawn.class_map) if value > 0]
    for mask, cls in layers:
        out[mask] = out[mask] * 0.55 + np.array(_colour(cls), dtype=np.float32) * 0.45
    return out.round().clip(0, 255).astype(np.uint8)


def _caption(drawn: _Drawn, boxes: list[Box], class_names: list[str]) -> str:
    """The class (classify), the classes painted (semantic masks) or the object count."""
    import numpy as np

    if 0 <= drawn.label < len(class_names):
        return class_names[drawn.label]
    if drawn.class_map is not None:
        present = [class_names[v - 1] for v in np.unique(drawn.class_map) if 0 < v <= len(class_names)]
        return ", ".join(present) or "background only"
    return f"{len(boxes)} object{'s' if len(boxes) != 1 else ''}"


def _render(drawn: _Drawn, class_names: list[str]) -> PreviewSample:
    from PIL import Image, ImageDraw

    height, width = drawn.image.shape[:2]
    boxes = [b for b in (_clipped(box, width, height) for box in drawn.boxes) if b is not None]
    picture = Image.fromarray(_overlay(drawn.image, drawn))
    pen = ImageDraw.Draw(picture)
    line = max(2, round(min(width, height) / 120))  # still visible in a thumbnail
    for cls, x1, y1, x2, y2 in boxes:
        pen.rectangle((x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=_colour(cls), width=line)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    caption = _caption(drawn, boxes, class_names)
    return PreviewSample(buffer.getvalue(), width, height, caption, drawn.source, boxes)


# ------------------------------------------------------------------------------------- entry points


def preview_samples(request: PreviewRequest) -> list[PreviewSample]:
    """``request.count`` augmented samples of the dataset's training images, drawn (deterministic for a seed)."""
    try:
        request.resolved_options()
    except ConfigError as exc:
        raise PreviewError(str(exc)) from None
    index, records = _train_records(request)
    rng = random.Random(request.seed)
    chosen = _chosen(records, request.count, rng)
    _seed_everything(request.seed)
    if request.framework == "timm":
        drawn = _timm_samples(request, index, chosen)
    elif request.framework == "ultralytics":
        unique = list({r.rel: r for r in chosen}.values())
        rest = [r for r in records if r.rel not in {u.rel for u in unique}]
        pool = unique + rng.sample(rest, min(len(rest), MOSAIC_POOL * request.count))
        drawn = _ultralytics_samples(request, index, chosen, pool)
    elif request.framework == "transformers":
        drawn = _transformers_samples(request, index, chosen)
    else:
        raise PreviewError(f"no augmentation preview for framework {request.framework!r}")
    return [_render(item, list(index.class_names)) for item in drawn]


def write_preview(request: PreviewRequest, out_dir: Path) -> dict[str, Any]:
    """The samples as ``sample_NN.png`` in ``out_dir``, and the JSON answer that lists them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    listed = []
    for number, sample in enumerate(preview_samples(request)):
        path = out_dir / f"sample_{number:02d}.png"
        path.write_bytes(sample.png)
        listed.append({"file": str(path), "caption": sample.caption, "source": sample.source,
                       "width": sample.width, "height": sample.height, "boxes": [list(box) for box in sample.boxes]})
    return {"samples": listed, "framework": request.framework, "preset": request.preset,
            "options": request.resolved_options()}


def main(argv: list[str]) -> int:
    """``augment-preview --request FILE --out DIR``: one JSON line on stdout, or the reason on stderr (exit 2)."""
    parser = argparse.ArgumentParser(prog="vision-platform augment-preview")
    parser.add_argument("--request", type=Path, required=True, help="JSON: a PreviewRequest")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    args = parser.parse_args(argv)
    try:
        request = PreviewRequest.from_dict(json.loads(args.request.read_text(encoding="utf-8")))
        answer = write_preview(request, args.out)
    except (PreviewError, OSError, ValueError, TypeError) as exc:
        print(f"augmentation preview: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0
