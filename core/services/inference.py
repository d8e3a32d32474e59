"""Inference and prediction export: the Inference page and ``vision-platform predict`` share this path.

Both run the model in one warm ``infer-worker`` process (:class:`core.inference.InferenceClient`):
each image is predicted once at the worker's low raw threshold and then filtered here at the user's
confidence and IoU (``filter_predictions``), so the CLI's ``--conf 0.3`` shows exactly what the
canvas shows with its slider at 0.30. Predictions are written as DICE (labelme JSON, beside each
image or in the DICE layout ``images/`` + ``annotations/`` under an output folder), one COCO json,
or one CSV. Nothing the user wrote is replaced unless they ask (``overwrite``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from core.contracts import InferenceResult
from core.datasets.dice import LabelmeDocument, LabelmeShape, labelme_document, labelme_shape, write_labelme
from core.files import atomic_write_bytes
from core.services import ServiceError
from core.services.checkpoints import ModelChoice

if TYPE_CHECKING:  # the client (numpy, subprocess plumbing) is imported when a model is loaded
    from core.inference import InferenceClient

DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.5
KEYPOINT_MIN_CONFIDENCE = 0.5  # keypoints the model itself doubts are neither drawn nor exported
Result = Mapping[str, Any]  # an InferenceResult (core.contracts), or the filtered copy the canvas holds
PredictionFormat = Literal["dice", "coco", "csv"]
PREDICTION_FORMATS: tuple[PredictionFormat, ...] = get_args(PredictionFormat)
COCO_FILE = "predictions.json"
CSV_FILE = "predictions.csv"
DICE_IMAGES, DICE_ANNOTATIONS = "images", "annotations"
CSV_COLUMNS = ("image", "width", "height", "kind", "rank", "label", "class_id", "confidence",
               "x1", "y1", "x2", "y2", "error")


@dataclass(frozen=True)
class ImagePrediction:
    """One image's predictions at the asked thresholds, or why there are none."""

    image: Path
    result: Result | None = None
    error: str | None = None


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # existing files kept (overwrite not asked)


# -- inputs ------------------------------------------------------------------------------------------
def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Paths with folders expanded to their images (sorted, one level deep). A named file is kept
    whatever it is: a non-image then gets its own clear error. Walks folders: not on the GUI thread."""
    from core.datasets.images import IMAGE_EXTENSIONS

    out: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS))
        else:
            out.append(path)
    return out


def check_thresholds(conf: float, iou: float) -> None:
    for name, value in (("confidence", conf), ("IoU", iou)):
        if not 0.0 <= value <= 1.0:
            raise ServiceError(f"the {name} threshold must be between 0 and 1, not {value}")


# -- model and predictions ---------------------------------------------------------------------------
def _other_framework(framework: str, path: Path) -> str | None:
    """The next framework whose declared checkpoint patterns match ``path`` (``core.frameworks``)."""
    from core.frameworks import CatalogError, declared_catalog, frameworks_for_file

    try:
        candidates = frameworks_for_file(path, declared_catalog())
    except CatalogError:
        return None
    return next((name for name in candidates if name != framework), None)


def load_model(client: InferenceClient, choice: ModelChoice, *, trusted: bool | None = None,
               device: str = "auto") -> dict[str, Any]:
    """Load ``choice`` in the warm worker (a no-op when it is loaded already); returns the worker's
    model info (task, class names) plus ``wall_ms``. A file of unknown origin that the guessed
    framework cannot read is tried with the other one.

    Trust (``core.trust``): ``trusted`` (else ``choice.consented``) is the user's consent to this load;
    without it only the content the database vouched for (``choice.sha256``) loads as trusted, and
    the worker checks the file still has it."""
    from core.inference import InferenceError
    from core.trust import CONSENT_MARKER

    started = time.perf_counter()
    consent = choice.consented if trusted is None else trusted
    trusted_load, vouched = consent or choice.sha256 is not None, None if consent else choice.sha256
    path = Path(choice.path)
    try:
        info = client.load(path, framework=choice.framework, trusted=trusted_load, sha256=vouched, device=device,
                           task=choice.task)
    except InferenceError as first_error:
        if choice.job_id is not None or CONSENT_MARKER in str(first_error):
            raise ServiceError(str(first_error)) from None
        other = _other_framework(choice.framework, path)
        if other is None:
            raise ServiceError(str(first_error)) from None
        try:
            info = client.load(path, framework=other, trusted=trusted_load, sha256=vouched, device=device)
        except InferenceError:
            raise ServiceError(str(first_error)) from None
    task = info.get("task")
    if choice.task and task and choice.task != task:
        raise ServiceError(f"{path.name} is a {task} model but its job trained {choice.task}.")
    return {**info, "wall_ms": (time.perf_counter() - started) * 1000}


def predict_image(client: InferenceClient, image: Path) -> InferenceResult:
    """The raw (unfiltered) predictions for one image; InferenceError says why there are none."""
    result: InferenceResult = client.predict(image)  # type: ignore[assignment]
    return result


def predict_images(client: InferenceClient, images: Iterable[Path], *, conf: float = DEFAULT_CONF,
                   iou: float = DEFAULT_IOU) -> Iterator[ImagePrediction]:
    """Each image's filtered predictions in order; a bad image yields its error and the rest go on."""
    from core.inference import InferenceError, filter_predictions

    check_thresholds(conf, iou)
    for image in images:
        try:
            raw = predict_image(client, image)
        except InferenceError as exc:
            yield ImagePrediction(image, error=str(exc))
            continue
        yield ImagePrediction(image, filter_predictions(dict(raw), conf=conf, iou=iou))


def summary(result: Result) -> str:
    """One line for a result: "3 objects: 2 circle, 1 square", "red 91.2 %", "field 24.8 % of the image"
    (semantic segmentation: the classes' areas, largest first) or "nothing found"."""
    top_k = result.get("top_k") or []
    boxes = result.get("boxes") or []
    class_mask = result.get("class_mask")
    if class_mask is not None and not boxes:
        return _area_summary(class_mask)
    if top_k and not boxes:
        return f"{top_k[0]['label']} {top_k[0]['confidence'] * 100:.1f} %"
    if not boxes:
        return "nothing found"
    counts: dict[str, int] = {}
    for box in boxes:
        counts[box["label"]] = counts.get(box["label"], 0) + 1
    parts = ", ".join(f"{n} {label}" for label, n in sorted(counts.items(), key=lambda item: -item[1]))
    return f"{len(boxes)} object{'s' if len(boxes) != 1 else ''}: {parts}"


def _area_summary(class_mask: Any) -> str:
    areas = [area for area in class_mask["areas"] if area["class_id"] != 0]  # 0 is the background
    if not areas:
        return "background only"
    parts = ", ".join(f"{area['label']} {area['fraction'] * 100:.1f} %" for area in areas[:3])
    return f"{parts} of the image" + (f" (+{len(areas) - 3} more classes)" if len(areas) > 3 else "")


# -- DICE (labelme) ----------------------------------------------------------------------------------
MASK_PNG_SUFFIX = ".mask.png"
def _shapes(result: Result) -> list[LabelmeShape]:
    """Masks as polygons, boxes as rectangles, confident keypoints as points sharing their box's group."""
    grouped = bool(result.get("keypoints"))
    shapes = [labelme_shape(mask["label"], [(float(x), float(y)) for x, y in mask["polygon"]], "polygon",
                            description=f"confidence {mask['confidence']:.3f}")
              for mask in result.get("masks") or [] if len(mask.get("polygon") or []) >= 3]
    for group, box in enumerate(result.get("boxes") or [], start=1):
        shapes.append(labelme_shape(box["label"], [(box["x1"], box["y1"]), (box["x2"], box["y2"])], "rectangle",
                                    group_id=group if grouped else None,
                                    description=f"confidence {box['confidence']:.3f}"))
    for group, instance in enumerate(result.get("keypoints") or [], start=1):
        for index, point in enumerate(instance.get("points") or []):
            confidence = float(point[2]) if len(point) > 2 else 1.0
            if confidence >= KEYPOINT_MIN_CONFIDENCE:
                shapes.append(labelme_shape(f"kp{index}", [(float(point[0]), float(point[1]))], "point",
                                            group_id=group, description=f"confidence {confidence:.3f}"))
    return shapes


def dice_document(result: Result, image_path: str) -> LabelmeDocument:
    """A labelme/DICE document of a (filtered) result; ``image_path`` relative to the JSON. A
    classification's top-1 label is the image-level flag, as DICE classification sets store it."""
    width, height = (list(result.get("image_size") or []) + [None, None])[:2]
    flags = {item["label"]: rank == 0 for rank, item in enumerate(result.get("top_k") or [])}
    return labelme_document(_shapes(result), image_path, width, height, flags)


def dice_json_path(image: Path, out_dir: Path | None = None) -> Path:
    """Where an image's DICE JSON goes: beside it, or ``out_dir/annotations/<stem>.json``."""
    if out_dir is None:
        return image.with_suffix(".json")
    return out_dir / DICE_ANNOTATIONS / f"{image.stem}.json"


def write_dice(result: Result, image: Path, out_dir: Path | None = None) -> Path:
    """Write one image's DICE JSON (atomically). With ``out_dir`` the image is linked or copied into
    ``out_dir/images/`` so the folder is a DICE dataset the app can register as it is."""
    target = dice_json_path(image, out_dir)
    write_class_mask(result, target)
    if out_dir is None:
        return write_labelme(dice_document(result, image.name), target)
    from core.datasets.convert import link_or_copy

    placed = out_dir / DICE_IMAGES / image.name
    if placed.resolve() != image.resolve():
        link_or_copy(image, placed)
    return write_labelme(dice_document(result, posixpath.join("..", DICE_IMAGES, image.name)), target)


def write_class_mask(result: Result, annotation: Path) -> Path | None:
    """A semantic segmentation's mask PNG (pixel = class id) beside its annotation: ``<stem>.mask.png``."""
    mask = result.get("class_mask")
    if not mask:
        return None
    from core.contracts import class_mask_png
    from core.files import atomic_write_bytes

    target = annotation.with_name(f"{annotation.stem}{MASK_PNG_SUFFIX}")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, class_mask_png(mask))
    return target


def export_dice(predictions: Iterable[ImagePrediction], *, out_dir: Path | None = None,
                overwrite: bool = False) -> ExportReport:
    """DICE JSON for every image with predictions; an existing JSON is kept unless ``overwrite``
    (beside an image it may hold the user's own annotations)."""
    report = ExportReport()
    used: set[str] = set()
    for item in predictions:
        if item.result is None:
            continue
        target = dice_json_path(item.image, out_dir)
        if out_dir is not None and target.name in used:
            raise ServiceError(f"two images are named {item.image.stem}.*: a DICE folder holds one annotation per "
                               "name; export them in separate runs or rename one")
        used.add(target.name)
        if target.exists() and not overwrite:
            report.skipped.append(target)
            continue
        try:
            report.written.append(write_dice(item.result, item.image, out_dir))
        except OSError as exc:
            raise ServiceError(f"could not write {target}: {exc}") from None
    return report


# -- COCO and CSV ------------------------------------------------------------------------------------
def _categories(items: list[ImagePrediction]) -> list[dict[str, Any]]:
    names: dict[int, str] = {}
    for item in items:
        result: dict[str, Any] = dict(item.result or {})
        for entry in [*(result.get("boxes") or []), *(result.get("top_k") or [])]:
            names.setdefault(int(entry["class_id"]), str(entry["label"]))
    return [{"id": class_id, "name": name} for class_id, name in sorted(names.items())]


def _coco_annotations(image_id: int, result: Result, next_id: int) -> list[dict[str, Any]]:
    masks = result.get("masks") or []
    boxes = result.get("boxes") or []
    out: list[dict[str, Any]] = []
    for index, box in enumerate(boxes):
        w, h = box["x2"] - box["x1"], box["y2"] - box["y1"]
        entry: dict[str, Any] = {"id": next_id + len(out), "image_id": image_id, "category_id": box["class_id"],
                                 "bbox": [round(box["x1"], 2), round(box["y1"], 2), round(w, 2), round(h, 2)],
                                 "area": round(w * h, 2), "score": round(box["confidence"], 5), "iscrowd": 0}
        if len(masks) == len(boxes):
            entry["segmentation"] = [[round(v, 2) for point in masks[index]["polygon"] for v in point]]
        out.append(entry)
    if not boxes:
        out += [{"id": next_id + rank, "image_id": image_id, "category_id": item["class_id"],
                 "score": round(item["confidence"], 5)} for rank, item in enumerate(result.get("top_k") or [])]
    return out


def coco_document(items: list[ImagePrediction]) -> dict[str, Any]:
    """COCO: images, categories, and one annotation per box (with ``score``; classification: per class)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, item in enumerate((i for i in items if i.result is not None), start=1):
        assert item.result is not None
        width, height = (list(item.result.get("image_size") or []) + [None, None])[:2]
        images.append({"id": image_id, "file_name": str(item.image), "width": width, "height": height})
        annotations += _coco_annotations(image_id, item.result, len(annotations) + 1)
    return {"info": {"description": "vision-platform predictions"}, "images": images,
            "categories": _categories(items), "annotations": annotations}


def _csv_rows(item: ImagePrediction) -> list[list[Any]]:
    if item.result is None:
        return [[str(item.image), "", "", "", "", "", "", "", "", "", "", "", item.error or ""]]
    width, height = (list(item.result.get("image_size") or []) + [None, None])[:2]
    head = [str(item.image), width, height]
    rows = [[*head, "box", rank, b["label"], b["class_id"], round(b["confidence"], 5),
             round(b["x1"], 2), round(b["y1"], 2), round(b["x2"], 2), round(b["y2"], 2), ""]
            for rank, b in enumerate(item.result.get("boxes") or [], start=1)]
    if not rows:
        rows = [[*head, "class", rank, c["label"], c["class_id"], round(c["confidence"], 5), "", "", "", "", ""]
                for rank, c in enumerate(item.result.get("top_k") or [], start=1)]
    return rows or [[*head, "none", "", "", "", "", "", "", "", "", ""]]


def csv_text(items: list[ImagePrediction]) -> str:
    """One row per box (or per ranked class); an image with nothing found or an error still has its row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerows(_csv_rows(item))
    return buffer.getvalue()


def _write_file(target: Path, text: str, overwrite: bool) -> ExportReport:
    if target.exists() and not overwrite:
        raise ServiceError(f"{target} exists: choose another --out folder or allow overwriting it")
    try:
        atomic_write_bytes(target, text.encode("utf-8"))
    except OSError as exc:
        raise ServiceError(f"could not write {target}: {exc}") from None
    return ExportReport(written=[target])


def write_predictions(items: list[ImagePrediction], fmt: str, out_dir: Path | None = None, *,
                      overwrite: bool = False) -> ExportReport:
    """Write ``items`` as ``fmt``: DICE beside the images (or into ``out_dir``), else
    ``out_dir/predictions.json`` (COCO) or ``out_dir/predictions.csv`` (``out_dir`` default: here)."""
    if fmt not in PREDICTION_FORMATS:
        raise ServiceError(f"unknown prediction format {fmt!r}: use one of {', '.join(PREDICTION_FORMATS)}")
    if fmt == "dice":
        return export_dice(items, out_dir=out_dir, overwrite=overwrite)
    folder = out_dir if out_dir is not None else Path(os.getcwd())
    if fmt == "coco":
        return _write_file(folder / COCO_FILE, json.dumps(coco_document(items), indent=1), overwrite)
    return _write_file(folder / CSV_FILE, csv_text(items), overwrite)


def predict_and_write(choice: ModelChoice, inputs: Iterable[str | Path], *, fmt: str = "dice",
                      out_dir: Path | None = None, conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU,
                      trusted: bool | None = None, device: str = "auto", overwrite: bool = False,
                      client: InferenceClient | None = None,
                      on_image: Callable[[ImagePrediction, int, int], None] | None = None,
                      ) -> tuple[list[ImagePrediction], ExportReport]:
    """Load ``choice`` in a warm worker, predict every image of ``inputs`` and write them as ``fmt``.

    ``on_image(prediction, done, total)`` follows the progress. The worker is closed at the end unless
    the caller passed its own ``client``.
    """
    if fmt not in PREDICTION_FORMATS:
        raise ServiceError(f"unknown prediction format {fmt!r}: use one of {', '.join(PREDICTION_FORMATS)}")
    check_thresholds(conf, iou)
    images = image_files(inputs)
    if not images:
        raise ServiceError("no images found there (jpg, png, bmp, gif, webp, tif): name image files or folders")
    missing = [str(p) for p in images if not p.exists()]
    if missing:
        raise ServiceError(f"{missing[0]}: no such file" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    from core.inference import InferenceClient

    own = client is None
    worker = client or InferenceClient()
    items: list[ImagePrediction] = []
    try:
        load_model(worker, choice, trusted=trusted, device=device)
        for item in predict_images(worker, images, conf=conf, iou=iou):
            items.append(item)
            if on_image is not None:
                on_image(item, len(items), len(images))
    finally:
        if own:
            worker.close()
    return items, write_predictions(items, fmt, out_dir, overwrite=overwrite)
